// TlsLayer and the TLS contexts, with a client and a server layer talking in memory.

#include <doctest/doctest.h>
#include <openssl/err.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/chunk.h"
#include "grelay/config.h"
#include "net/tls_context.h"
#include "net/tls_contexts.h"
#include "net/tls_layer.h"
#include "test_certs.h"

using grelay::ChunkChain;
using grelay::ChunkPool;
using grelay::TlsLayer;
using grelay::test::TestPki;

namespace {

struct TempDir {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("grelay-tls-test-" + std::to_string(::getpid()));
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

std::string drain(ChunkChain& chain) {
  std::string out(chain.size(), '\0');
  chain.copy_out(out.data(), out.size());
  chain.clear();
  return out;
}

// Everything |layer| can decrypt from |input| (which it takes whole).
std::string read_all(TlsLayer& layer, const std::string& input, long* last = nullptr) {
  layer.set_input(reinterpret_cast<const uint8_t*>(input.data()), input.size());
  std::string out;
  uint8_t buf[4096];
  long n;
  while ((n = layer.read(buf, sizeof(buf))) > 0)
    out.append(reinterpret_cast<char*>(buf), static_cast<size_t>(n));
  if (last) *last = n;
  layer.set_input(nullptr, 0);
  return out;
}

struct Pair {
  ChunkPool pool;
  std::unique_ptr<TlsLayer> client;
  std::unique_ptr<TlsLayer> server;
  TlsLayer::Step client_step = TlsLayer::Step::more;
  TlsLayer::Step server_step = TlsLayer::Step::more;

  Pair(const std::shared_ptr<const grelay::ServerTlsContext>& server_ctx,
       const std::shared_ptr<const grelay::ClientTlsContext>& client_ctx, const std::string& host) {
    REQUIRE(server_ctx);
    REQUIRE(client_ctx);
    server = std::make_unique<TlsLayer>(server_ctx->new_ssl(), server_ctx, pool);
    client = std::make_unique<TlsLayer>(client_ctx->new_ssl(host), client_ctx, pool);
  }

  // Runs both handshakes until neither moves; returns true when both are done.
  bool handshake() {
    using Step = TlsLayer::Step;
    for (int i = 0; i < 10; ++i) {
      if (client_step == Step::more) client_step = client->handshake();
      std::string to_server = drain(client->wire());
      if (server_step == Step::more) {
        server->set_input(reinterpret_cast<const uint8_t*>(to_server.data()), to_server.size());
        server_step = server->handshake();
        server->set_input(nullptr, 0);
      }
      std::string to_client = drain(server->wire());
      if (client_step == Step::more && !to_client.empty()) {
        client->set_input(reinterpret_cast<const uint8_t*>(to_client.data()), to_client.size());
        client_step = client->handshake();
        // Session tickets may have come with the last flight.
        uint8_t buf[256];
        while (client_step == Step::done && client->read(buf, sizeof(buf)) > 0) {
        }
        client->set_input(nullptr, 0);
      } else if (client_step == Step::done) {
        read_all(*client, to_client);  // Session tickets sent after the handshake.
      }
      if (client_step != Step::more && server_step != Step::more) break;
    }
    return client_step == Step::done && server_step == Step::done;
  }

  // Sends |text| from |from| to |to| through seal() and read().
  std::string send(TlsLayer& from, TlsLayer& to, const std::string& text) {
    ChunkChain plain(pool);
    plain.append(text.data(), text.size());
    REQUIRE(from.seal(plain, 1 << 20));
    CHECK(plain.empty());
    return read_all(to, drain(from.wire()));
  }
};

std::string subject_cn(TlsLayer& layer) {
  X509* cert = SSL_get0_peer_certificate(layer.ssl());
  if (!cert) return "";
  char cn[256] = "";
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
  return cn;
}

grelay::ListenerTlsConfig listener_tls(const TestPki::Pair& pair) {
  grelay::ListenerTlsConfig config;
  grelay::TlsCertificate cert;
  cert.cert = pair.cert;
  cert.key = pair.key;
  config.certificates.push_back(cert);
  return config;
}

grelay::ClusterTlsConfig cluster_tls(const std::string& ca, const std::string& server_name) {
  grelay::ClusterTlsConfig config;
  config.ca = ca;
  config.server_name = server_name;
  return config;
}

}  // namespace

TEST_CASE("a TLS client and server layer handshake with ALPN h2 and carry data") {
  TempDir tmp;
  TestPki pki(tmp.path);
  auto relay = pki.issue("relay", "DNS:relay.test,IP:127.0.0.1", 5);
  std::string error;
  auto server_ctx = grelay::ServerTlsContext::create(listener_tls(relay), nullptr, false, error);
  auto client_ctx = grelay::ClientTlsContext::create(cluster_tls(pki.ca(), "relay.test"), error);
  INFO(error);
  Pair pair(server_ctx, client_ctx, "ignored.example");
  REQUIRE(pair.handshake());
  CHECK(pair.client->established());
  CHECK(pair.server->established());
  CHECK(pair.server->peer() == nullptr);
  CHECK(pair.send(*pair.client, *pair.server, "PRI * HTTP/2.0") == "PRI * HTTP/2.0");
  std::string big(200000, 'x');
  for (size_t i = 0; i < big.size(); ++i)
    big[i] = static_cast<char>(i * 7);
  CHECK(pair.send(*pair.server, *pair.client, big) == big);

  // The peer's close_notify ends reading with -1.
  pair.client->shutdown();
  long last = 0;
  CHECK(read_all(*pair.server, drain(pair.client->wire()), &last).empty());
  CHECK(last == -1);
  CHECK(pair.server->error() == "the peer closed the TLS session");
}

// The application-data records in |wire| (TLS 1.3 hides every record type behind 23).
int count_records(const std::string& wire) {
  int records = 0;
  for (size_t at = 0; at + 5 <= wire.size(); ++records) {
    REQUIRE(static_cast<uint8_t>(wire[at]) == 23);
    at += 5 + (static_cast<uint8_t>(wire[at + 3]) << 8 | static_cast<uint8_t>(wire[at + 4]));
  }
  return records;
}

TEST_CASE("small pieces of plaintext are sealed into full records, big chunks as they are") {
  TempDir tmp;
  TestPki pki(tmp.path);
  auto relay = pki.issue("relay", "DNS:relay.test", 5);
  std::string error;
  Pair pair(grelay::ServerTlsContext::create(listener_tls(relay), nullptr, false, error),
            grelay::ClientTlsContext::create(cluster_tls(pki.ca(), "relay.test"), error),
            "relay.test");
  REQUIRE(pair.handshake());

  // 300 frames of 100 bytes, each in a chunk of its own (as relinked DATA chunks are):
  // 30,000 bytes make two records, not 300.
  ChunkChain plain(pair.pool);
  std::string expected;
  for (int i = 0; i < 300; ++i) {
    ChunkChain piece(pair.pool);
    std::string frame(100, static_cast<char>('a' + i % 26));
    piece.append(frame.data(), frame.size());
    piece.move_to(plain, piece.size());
    expected += frame;
  }
  iovec iov[400];
  REQUIRE(plain.peek(iov, 400) == 300);
  REQUIRE(pair.server->seal(plain, 1 << 20));
  CHECK(plain.empty());
  std::string wire = drain(pair.server->wire());
  CHECK(count_records(wire) == 2);
  CHECK(read_all(*pair.client, wire) == expected);

  // Full chunks go out one record each.
  std::string big(3 * grelay::chunk_size, 'z');
  plain.append(big.data(), big.size());
  REQUIRE(pair.server->seal(plain, 1 << 20));
  wire = drain(pair.server->wire());
  CHECK(count_records(wire) == 3);
  CHECK(read_all(*pair.client, wire) == big);

  // The limit stops sealing once the wire holds that much.
  plain.append(big.data(), big.size());
  REQUIRE(pair.server->seal(plain, 1000));
  CHECK(plain.size() == 2 * grelay::chunk_size);
  CHECK(count_records(drain(pair.server->wire())) == 1);
}

TEST_CASE("the backend name is verified, by DNS name or IP SAN") {
  TempDir tmp;
  TestPki pki(tmp.path);
  auto relay = pki.issue("relay", "DNS:relay.test,IP:127.0.0.1", 5);
  std::string error;
  auto server_ctx = grelay::ServerTlsContext::create(listener_tls(relay), nullptr, false, error);

  Pair by_ip(server_ctx, grelay::ClientTlsContext::create(cluster_tls(pki.ca(), ""), error),
             "127.0.0.1");
  CHECK(by_ip.handshake());

  Pair wrong_ip(server_ctx, grelay::ClientTlsContext::create(cluster_tls(pki.ca(), ""), error),
                "127.0.0.2");
  CHECK_FALSE(wrong_ip.handshake());
  CHECK(wrong_ip.client_step == TlsLayer::Step::failed);
  CHECK(wrong_ip.client->error() == "certificate verification failed: IP address mismatch");

  Pair wrong_name(server_ctx,
                  grelay::ClientTlsContext::create(cluster_tls(pki.ca(), "other.test"), error),
                  "127.0.0.1");
  CHECK_FALSE(wrong_name.handshake());
  CHECK(wrong_name.client->error() == "certificate verification failed: hostname mismatch");

  // An unknown CA, then no verification at all.
  TestPki other(tmp.path / "other");
  auto unknown = grelay::ClientTlsContext::create(cluster_tls(other.ca(), "relay.test"), error);
  Pair untrusted(server_ctx, unknown, "x");
  CHECK_FALSE(untrusted.handshake());
  CHECK(untrusted.client->error() ==
        "certificate verification failed: unable to get local issuer certificate");
  auto lax = cluster_tls(other.ca(), "relay.test");
  lax.verify = false;
  Pair unverified(server_ctx, grelay::ClientTlsContext::create(lax, error), "x");
  CHECK(unverified.handshake());
}

TEST_CASE("an expired backend certificate fails verification") {
  TempDir tmp;
  TestPki pki(tmp.path);
  auto old = pki.issue("old", "DNS:relay.test", 6, /*expired=*/true);
  std::string error;
  auto server_ctx = grelay::ServerTlsContext::create(listener_tls(old), nullptr, false, error);
  Pair pair(server_ctx,
            grelay::ClientTlsContext::create(cluster_tls(pki.ca(), "relay.test"), error), "x");
  CHECK_FALSE(pair.handshake());
  CHECK(pair.client->error() == "certificate verification failed: certificate has expired");
}

TEST_CASE("SNI picks the certificate; unknown names get the default") {
  TempDir tmp;
  TestPki pki(tmp.path);
  auto config = listener_tls(pki.issue("default", "DNS:relay.test", 1));
  auto a = pki.issue("a", "DNS:a.test", 2);
  auto b = pki.issue("b", "DNS:b.test,DNS:*.b.test", 3);
  config.certificates.push_back({{"a.test"}, a.cert, a.key, 0});
  config.certificates.push_back({{"b.test", "*.b.test"}, b.cert, b.key, 0});
  std::string error;
  auto server_ctx = grelay::ServerTlsContext::create(config, nullptr, false, error);
  REQUIRE(server_ctx);
  auto lax = cluster_tls("", "");
  lax.verify = false;
  auto client_ctx = grelay::ClientTlsContext::create(lax, error);
  const std::pair<std::string, std::string> cases[] = {
      {"a.test", "a"},   {"A.TEST", "a"},           {"b.test", "b"},
      {"x.b.test", "b"}, {"y.x.b.test", "default"}, {"c.test", "default"}};
  for (const auto& [name, cn] : cases) {
    const std::string& sni = name;
    INFO(sni);
    Pair pair(server_ctx, client_ctx, sni);
    REQUIRE(pair.handshake());
    CHECK(subject_cn(*pair.client) == cn);
  }
}

TEST_CASE("client certificates: the verified identity is read") {
  TempDir tmp;
  TestPki pki(tmp.path);
  auto config = listener_tls(pki.issue("relay", "DNS:relay.test", 1));
  config.client_ca = pki.ca();
  config.client_verify = grelay::ClientCertMode::require;
  auto client_pair = pki.issue("client", "DNS:client.test,URI:spiffe://t/c,IP:10.0.0.1", 2);
  std::string error;
  auto server_ctx = grelay::ServerTlsContext::create(config, nullptr, false, error);
  auto with_cert = cluster_tls(pki.ca(), "relay.test");
  with_cert.cert = client_pair.cert;
  with_cert.key = client_pair.key;
  Pair pair(server_ctx, grelay::ClientTlsContext::create(with_cert, error), "x");
  REQUIRE(pair.handshake());
  // TLS 1.3: the server checks the client's certificate on its last flight.
  CHECK(pair.send(*pair.client, *pair.server, "hi") == "hi");
  REQUIRE(pair.server->peer() != nullptr);
  const grelay::PeerIdentity& id = *pair.server->peer();
  CHECK(id.subject == "CN=client");
  CHECK(id.sans == std::vector<std::string>{"client.test", "spiffe://t/c", "10.0.0.1"});
  CHECK(id.description == "subject=CN=client san=DNS:client.test,URI:spiffe://t/c,IP:10.0.0.1");

  // Without a certificate the server refuses.
  Pair without(server_ctx,
               grelay::ClientTlsContext::create(cluster_tls(pki.ca(), "relay.test"), error), "x");
  without.handshake();
  CHECK(without.server_step == TlsLayer::Step::failed);
}

TEST_CASE("a client without ALPN h2 is refused") {
  TempDir tmp;
  TestPki pki(tmp.path);
  std::string error;
  auto server_ctx = grelay::ServerTlsContext::create(
      listener_tls(pki.issue("relay", "DNS:relay.test", 1)), nullptr, false, error);
  for (std::string alpn : {std::string(), std::string("\x08http/1.1", 9)}) {
    ChunkPool pool;
    TlsLayer server(server_ctx->new_ssl(), server_ctx, pool);
    SSL_CTX* raw = SSL_CTX_new(TLS_client_method());
    if (!alpn.empty()) {
      SSL_CTX_set_alpn_protos(raw, reinterpret_cast<const unsigned char*>(alpn.data()),
                              static_cast<unsigned>(alpn.size()));
    }
    SSL* ssl = SSL_new(raw);
    SSL_set_connect_state(ssl);
    TlsLayer client(ssl, nullptr, pool);
    SSL_CTX_free(raw);
    client.handshake();
    std::string hello = drain(client.wire());
    server.set_input(reinterpret_cast<const uint8_t*>(hello.data()), hello.size());
    CHECK(server.handshake() == TlsLayer::Step::failed);
    // The alert goes back: no_application_protocol (120).
    std::string alert = drain(server.wire());
    REQUIRE(alert.size() >= 7);
    CHECK(static_cast<uint8_t>(alert[0]) == 21);
    CHECK(static_cast<uint8_t>(alert[6]) == 120);
  }
}

TEST_CASE("a listener with web calls selects h2 first, then http/1.1") {
  TempDir tmp;
  TestPki pki(tmp.path);
  std::string error;
  auto server_ctx = grelay::ServerTlsContext::create(
      listener_tls(pki.issue("relay", "DNS:relay.test", 1)), nullptr, /*http1=*/true, error);
  REQUIRE(server_ctx);
  struct Case {
    std::string offered;
    std::string selected;
  };
  const std::vector<Case> cases = {
      {std::string("\x08http/1.1", 9), "http/1.1"},
      {std::string("\x08http/1.1\x02h2", 12), "h2"},
      {std::string("\x02h2\x08http/1.1", 12), "h2"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.selected);
    ChunkPool pool;
    TlsLayer server(server_ctx->new_ssl(), server_ctx, pool);
    SSL_CTX* raw = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_alpn_protos(raw, reinterpret_cast<const unsigned char*>(c.offered.data()),
                            static_cast<unsigned>(c.offered.size()));
    SSL* ssl = SSL_new(raw);
    SSL_set_connect_state(ssl);
    TlsLayer client(ssl, nullptr, pool);
    SSL_CTX_free(raw);
    // Client and server take turns until the server is done (the client's own check wants h2).
    client.handshake();
    for (int round = 0; round < 4 && !server.established(); ++round) {
      std::string out = drain(client.wire());
      server.set_input(reinterpret_cast<const uint8_t*>(out.data()), out.size());
      server.handshake();
      server.set_input(nullptr, 0);
      std::string back = drain(server.wire());
      client.set_input(reinterpret_cast<const uint8_t*>(back.data()), back.size());
      client.handshake();
      client.set_input(nullptr, 0);
    }
    CHECK(server.established());
    CHECK(server.alpn() == c.selected);
  }
}

TEST_CASE("TlsContexts::reload swaps in new files and keeps the old on failure") {
  TempDir tmp;
  TestPki pki(tmp.path);
  auto first = pki.issue("live", "DNS:relay.test", 100);
  auto config = grelay::parse_config("[[listener]]\naddress = \"127.0.0.1:0\"\ntls = { cert = \"" +
                                         first.cert + "\", key = \"" + first.key +
                                         "\" }\n[[listener]]\naddress = \"127.0.0.1:0\"\n",
                                     "t.toml");
  grelay::TlsContexts contexts(*config);
  REQUIRE(contexts.listener(0) != nullptr);
  CHECK(contexts.listener(1) == nullptr);
  CHECK(contexts.files() == std::vector<std::string>{first.cert, first.key});
  auto before = contexts.listener(0)->current();

  CHECK(contexts.reload() == 0);
  auto after = contexts.listener(0)->current();
  CHECK(after != before);

  // A key that belongs to another certificate: refused, the current context stays.
  TestPki other(tmp.path / "other");
  auto stranger = other.issue("live", "DNS:relay.test", 7);
  std::filesystem::copy_file(stranger.key, first.key,
                             std::filesystem::copy_options::overwrite_existing);
  CHECK(contexts.reload() == 1);
  CHECK(contexts.listener(0)->current() == after);
}
