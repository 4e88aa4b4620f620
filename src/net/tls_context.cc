#include "net/tls_context.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/tls1.h>
#include <openssl/x509v3.h>

#include <cstring>

#include "config/tls_files.h"

namespace grelay {
namespace {

// Cipher suites for TLS 1.2: forward secret AEAD only. TLS 1.3 uses OpenSSL's defaults (all
// AEAD).
constexpr const char* tls12_ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20";
constexpr unsigned char alpn_h2[] = {2, 'h', '2'};
// The ALPN select callback's argument on listeners that serve HTTP/1.1 too (web = true).
constexpr unsigned char offer_http1 = 1;

// Whether the ALPN list |in| (length-prefixed names) holds |name|; sets |out| to it.
bool find_protocol(const unsigned char* in, unsigned int inlen, std::string_view name,
                   const unsigned char** out) noexcept {
  for (unsigned int i = 0; i < inlen;) {
    const unsigned int n = in[i];
    if (i + 1 + n > inlen) break;
    if (std::string_view(reinterpret_cast<const char*>(in + i + 1), n) == name) {
      *out = in + i + 1;
      return true;
    }
    i += 1 + n;
  }
  return false;
}
constexpr unsigned char session_id_context[] = "grelay";
// Session ticket keys as OpenSSL 3 stores them: name, HMAC secret, AES key.
constexpr size_t ticket_keys_size = 80;

// Settings every context shares, server or client.
SslCtxPtr new_context(const SSL_METHOD* method, std::string& error) {
  SslCtxPtr ctx(SSL_CTX_new(method));
  if (!ctx) {
    error = "cannot create a TLS context: " + take_openssl_error();
    return nullptr;
  }
  SSL_CTX* c = ctx.get();
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  SSL_CTX_set_options(
      c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Idle connections give their record buffers back; many idle clients stay cheap.
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
  // Reads take every record the socket delivered at once.
  SSL_CTX_set_read_ahead(c, 1);
  if (SSL_CTX_set_cipher_list(c, tls12_ciphers) != 1) {
    error = "cannot set the TLS 1.2 cipher suites: " + take_openssl_error();
    return nullptr;
  }
  return ctx;
}

bool is_ip_literal(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// Whether SNI |name| (lowercase) is served by |pattern| ("host" or "*.domain").
bool name_matches(std::string_view pattern, std::string_view name) {
  if (pattern.size() > 2 && pattern[0] == '*' && pattern[1] == '.') {
    // One label, not empty, then the domain.
    std::string_view domain = pattern.substr(1);
    if (name.size() <= domain.size()) return false;
    std::string_view label = name.substr(0, name.size() - domain.size());
    return name.substr(label.size()) == domain && label.find('.') == std::string_view::npos;
  }
  return pattern == name;
}

}  // namespace

// The notAfter time of the certificate |ctx| presents, in seconds since the epoch; -1 when it
// has none.
int64_t certificate_not_after(SSL_CTX* ctx) {
  X509* cert = SSL_CTX_get0_certificate(ctx);
  if (!cert) return -1;
  tm when{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &when) != 1) return -1;
  return static_cast<int64_t>(timegm(&when));
}

// --- server ------------------------------------------------------------------------------

std::shared_ptr<const ServerTlsContext> ServerTlsContext::create(const ListenerTlsConfig& config,
                                                                 const ServerTlsContext* previous,
                                                                 bool http1, std::string& error) {
  std::shared_ptr<ServerTlsContext> self(new ServerTlsContext());
  for (size_t i = 0; i < config.certificates.size(); ++i) {
    const TlsCertificate& pair = config.certificates[i];
    SslCtxPtr ctx = new_context(TLS_server_method(), error);
    if (!ctx) return nullptr;
    SSL_CTX* c = ctx.get();
    SSL_CTX_set_session_id_context(c, session_id_context, sizeof(session_id_context) - 1);
    SSL_CTX_set_num_tickets(c, 1);
    SSL_CTX_set_client_hello_cb(c, client_hello_cb, nullptr);
    SSL_CTX_set_alpn_select_cb(c, alpn_select_cb,
                               http1 ? const_cast<unsigned char*>(&offer_http1) : nullptr);
    SSL_CTX_set_tlsext_servername_callback(c, servername_cb);
    SSL_CTX_set_tlsext_servername_arg(c, self.get());
    error = load_cert_pair(c, pair.cert, pair.key);
    if (!error.empty()) return nullptr;
    if (!config.client_ca.empty()) {
      error = load_verify_ca(c, config.client_ca);
      if (!error.empty()) return nullptr;
      // The CertificateRequest names the acceptable CAs.
      STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(config.client_ca.c_str());
      if (names) SSL_CTX_set_client_CA_list(c, names);
      ERR_clear_error();
      int mode = SSL_VERIFY_PEER;
      if (config.client_verify == ClientCertMode::require) {
        mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
      }
      SSL_CTX_set_verify(c, mode, nullptr);
    }
    for (const std::string& name : pair.names) {
      self->names_.emplace_back(name, i);
    }
    self->contexts_.push_back(std::move(ctx));
  }
  if (self->contexts_.empty()) {
    error = "no certificate";
    return nullptr;
  }
  if (previous) {
    // Tickets are sealed with the default context's keys; keep them across a reload.
    unsigned char keys[ticket_keys_size];
    SSL_CTX* old_ctx = previous->contexts_[0].get();
    if (SSL_CTX_get_tlsext_ticket_keys(old_ctx, keys, sizeof(keys)) == 1) {
      SSL_CTX_set_tlsext_ticket_keys(self->contexts_[0].get(), keys, sizeof(keys));
    }
    OPENSSL_cleanse(keys, sizeof(keys));
    ERR_clear_error();
  }
  return self;
}

SSL* ServerTlsContext::new_ssl() const noexcept {
  SSL* ssl = SSL_new(contexts_[0].get());
  if (!ssl) {
    ERR_clear_error();
    return nullptr;
  }
  SSL_set_accept_state(ssl);
  return ssl;
}

SSL_CTX* ServerTlsContext::find(std::string_view name) const noexcept {
  for (const auto& [pattern, index] : names_) {
    if (name_matches(pattern, name)) return contexts_[index].get();
  }
  return nullptr;
}

int ServerTlsContext::servername_cb(SSL* ssl, int*, void* arg) noexcept {
  const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!sni) return SSL_TLSEXT_ERR_OK;
  char lower[256];
  size_t len = std::strlen(sni);
  if (len >= sizeof(lower)) return SSL_TLSEXT_ERR_OK;
  for (size_t i = 0; i < len; ++i) {
    char c = sni[i];
    lower[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
  }
  SSL_CTX* ctx = static_cast<const ServerTlsContext*>(arg)->find({lower, len});
  // An unknown name gets the default certificate.
  if (ctx && ctx != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, ctx);
  return SSL_TLSEXT_ERR_OK;
}

int ServerTlsContext::client_hello_cb(SSL* ssl, int* alert, void*) noexcept {
  // A client that offers no ALPN at all is refused like one that does not offer h2.
  const unsigned char* ext = nullptr;
  size_t len = 0;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &ext,
                                &len) != 1) {
    *alert = SSL_AD_NO_APPLICATION_PROTOCOL;
    return SSL_CLIENT_HELLO_ERROR;
  }
  return SSL_CLIENT_HELLO_SUCCESS;
}

int ServerTlsContext::alpn_select_cb(SSL*, const unsigned char** out, unsigned char* outlen,
                                     const unsigned char* in, unsigned int inlen,
                                     void* arg) noexcept {
  // h2 whatever the client's order; http/1.1 only where the listener serves web calls.
  if (find_protocol(in, inlen, "h2", out)) {
    *outlen = 2;
    return SSL_TLSEXT_ERR_OK;
  }
  if (arg && find_protocol(in, inlen, "http/1.1", out)) {
    *outlen = 8;
    return SSL_TLSEXT_ERR_OK;
  }
  // OpenSSL answers with the no_application_protocol alert.
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

std::vector<int64_t> ServerTlsContext::not_after() const {
  std::vector<int64_t> out;
  for (const SslCtxPtr& ctx : contexts_)
    out.push_back(certificate_not_after(ctx.get()));
  return out;
}

// --- client ------------------------------------------------------------------------------

std::shared_ptr<const ClientTlsContext> ClientTlsContext::create(const ClusterTlsConfig& config,
                                                                 std::string& error) {
  std::shared_ptr<ClientTlsContext> self(new ClientTlsContext());
  self->ctx_ = new_context(TLS_client_method(), error);
  if (!self->ctx_) return nullptr;
  SSL_CTX* c = self->ctx_.get();
  self->server_name_ = config.server_name;
  self->verify_ = config.verify;
  if (config.verify) {
    if (!config.ca.empty()) {
      error = load_verify_ca(c, config.ca);
      if (!error.empty()) return nullptr;
    } else if (SSL_CTX_set_default_verify_paths(c) != 1) {
      error = "cannot load the system's CA certificates: " + take_openssl_error();
      return nullptr;
    }
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
  }
  if (!config.cert.empty()) {
    error = load_cert_pair(c, config.cert, config.key);
    if (!error.empty()) return nullptr;
  }
  // Returns 0 on success, unlike most of OpenSSL.
  if (SSL_CTX_set_alpn_protos(c, alpn_h2, sizeof(alpn_h2)) != 0) {
    error = "cannot set ALPN: " + take_openssl_error();
    return nullptr;
  }
  return self;
}

int64_t ClientTlsContext::not_after() const {
  return certificate_not_after(ctx_.get());
}

SSL* ClientTlsContext::new_ssl(const std::string& host) const noexcept {
  SSL* ssl = SSL_new(ctx_.get());
  if (!ssl) {
    ERR_clear_error();
    return nullptr;
  }
  SSL_set_connect_state(ssl);
  const std::string& name = server_name_.empty() ? host : server_name_;
  bool ok = true;
  if (is_ip_literal(name)) {
    // SNI carries no IP addresses; the certificate must hold this IP as a SAN.
    if (verify_) ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) == 1;
  } else {
    ok = SSL_set_tlsext_host_name(ssl, name.c_str()) == 1;
    if (ok && verify_) {
      SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      ok = SSL_set1_host(ssl, name.c_str()) == 1;
    }
  }
  if (!ok) {
    ERR_clear_error();
    SSL_free(ssl);
    return nullptr;
  }
  return ssl;
}

}  // namespace grelay
