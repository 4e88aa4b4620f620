// Http1Session on a loop, with a real client socket: a request as its handler gets it, the
// answer's framing, keep-alive, pipelining, request-body flow control, and the answer to each
// budget (the parser's own verdicts are in request_parser_test.cc).

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/chunk.h"
#include "grelay/config.h"
#include "h1/http1_session.h"
#include "net/flush_queue.h"
#include "test_client.h"

namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;
using grelay::Downstream;
using grelay::Http1Session;
using grelay::ResponsePull;
using grelay::ServerStreamHandler;

// A stream handler that keeps what it is told, and answers "200 hello" (chunked, with
// grpc-status 0 as trailers) once the request ends.
class FakeHandler final : public ServerStreamHandler {
 public:
  FakeHandler(Downstream& downstream, int32_t stream_id) : downstream_(downstream), id(stream_id) {}

  void on_request_header(nghttp2_rcbuf*, nghttp2_rcbuf*, grelay::FieldName, std::string_view n,
                         std::string_view v) noexcept override {
    fields.emplace_back(std::string(n), std::string(v));
  }
  void on_request_headers_end() noexcept override { headers_ended = true; }
  void on_request_data(const uint8_t* data, size_t len) noexcept override {
    body.append(reinterpret_cast<const char*>(data), len);
    if (credit) downstream_.give_credit(id, len, false);
  }
  void on_request_end() noexcept override {
    ended = true;
    if (answer_at_end) answer();
  }
  void on_downstream_close(uint32_t error_code) noexcept override { closed = error_code; }
  ResponsePull pull_response(size_t length) noexcept override {
    ResponsePull pull;
    const size_t n = std::min(length, reply.size() - sent);
    pull.length = n;
    if (sent + n == reply.size()) {
      pull.end = true;
      if (trailers) {
        pull.trailers = true;
        const nghttp2_nv nv[] = {field("grpc-status", "0")};
        downstream_.send_trailers(id, nv, 1);
      }
    }
    return pull;
  }
  void write_response_body(grelay::ChunkChain& out, size_t length) noexcept override {
    out.append(reply.data() + sent, length);
    sent += length;
  }
  void on_response_not_sent(int) noexcept override {}
  void on_expire(const char*) noexcept override { expired = true; }

  // Sends the response head ("200", content-type text/plain); the body is pulled.
  void answer() {
    const nghttp2_nv nv[] = {field(":status", "200"), field("content-type", "text/plain")};
    downstream_.send_response(id, nv, 2, this);
  }

  static nghttp2_nv field(std::string_view name, std::string_view value) {
    return {reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
            reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
            NGHTTP2_NV_FLAG_NONE};
  }

  Downstream& downstream_;
  int32_t id;
  Fields fields;
  std::string body;
  bool headers_ended = false;
  bool ended = false;
  bool expired = false;
  // -1 until told of its close.
  int64_t closed = -1;
  // Settings: answer when the request ends; give credit for body bytes; send trailers.
  bool answer_at_end = true;
  bool credit = true;
  bool trailers = true;
  std::string reply = "hello";
  size_t sent = 0;
};

// One Http1Session on a loop of its own, with a blocking client socket.
class Rig final : public grelay::Http1SessionOwner {
 public:
  explicit Rig(const std::string& listener_keys = "", bool refuse = false) : refuse_(refuse) {
    REQUIRE(uv_loop_init(&loop) == 0);
    queue = std::make_unique<grelay::FlushQueue>(&loop);
    config = grelay::parse_config("[[listener]]\naddress = \"127.0.0.1:0\"\nweb = true\n" +
                                      listener_keys +
                                      "\n[[route]]\nprefix = \"/\"\ncluster = \"c\"\n"
                                      "[[cluster]]\nname = \"c\"\nendpoints = [\"127.0.0.1:1\"]\n",
                                  "test.toml");
    grelay::test::SocketPair pair = grelay::test::tcp_pair();
    client = pair.client;
    ::fcntl(client, F_SETFL, ::fcntl(client, F_GETFL) | O_NONBLOCK);
    session = new Http1Session(&loop, pool, *queue, *this);
    REQUIRE(session->connection().open(pair.server) == 0);
    session->start(config, config->listeners[0], "");
  }

  ~Rig() {
    if (!gone) session->close();
    run_until([this] { return gone; });
    bool closed = false;
    queue->close([](void* done) { *static_cast<bool*>(done) = true; }, &closed);
    while (!closed)
      uv_run(&loop, UV_RUN_ONCE);
    queue.reset();
    CHECK(uv_loop_close(&loop) == 0);
    ::close(client);
  }

  ServerStreamHandler* on_new_request(Http1Session& s, int32_t stream_id) noexcept override {
    if (refuse_) return nullptr;
    handlers.push_back(std::make_unique<FakeHandler>(s, stream_id));
    if (configure) configure(*handlers.back());
    return handlers.back().get();
  }
  void on_session_gone(Http1Session&) noexcept override { gone = true; }

  // Runs the loop (reading what the session sends) until |done|() or 5 s.
  template <typename Done>
  bool run_until(Done done, int timeout_ms = 5000) {
    const uint64_t end = uv_hrtime() + static_cast<uint64_t>(timeout_ms) * 1000000;
    while (!done()) {
      if (uv_hrtime() > end) return false;
      uv_run(&loop, UV_RUN_NOWAIT);
      take_input();
      ::usleep(200);
    }
    return true;
  }
  // Sends |bytes| to the session, running the loop while the socket is full.
  void send(std::string_view bytes) {
    size_t sent = 0;
    run_until(
        [&] {
          if (sent < bytes.size()) {
            const ssize_t n =
                ::send(client, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
            if (n > 0) sent += static_cast<size_t>(n);
          }
          return sent == bytes.size();
        },
        10000);
    REQUIRE(sent == bytes.size());
  }
  // Runs the loop until the session has sent |text| (or more) since the last call, or closed.
  std::string receive_until(std::string_view text, int timeout_ms = 5000) {
    run_until([&] { return received.find(text) != std::string::npos || eof; }, timeout_ms);
    return received;
  }
  std::string receive_until_eof(int timeout_ms = 5000) {
    run_until([&] { return eof; }, timeout_ms);
    return received;
  }

  uv_loop_t loop;
  grelay::ChunkPool pool;
  std::unique_ptr<grelay::FlushQueue> queue;
  std::shared_ptr<const grelay::Config> config;
  Http1Session* session = nullptr;
  int client = -1;
  std::vector<std::unique_ptr<FakeHandler>> handlers;
  // Applied to each new handler.
  void (*configure)(FakeHandler&) = nullptr;
  std::string received;
  bool eof = false;
  bool gone = false;

 private:
  void take_input() {
    char buf[65536];
    for (;;) {
      const ssize_t n = ::recv(client, buf, sizeof(buf), 0);
      if (n > 0) {
        received.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0) eof = true;
      return;
    }
  }
  bool refuse_;
};

const std::string chunked_hello =
    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n"
    "5\r\nhello\r\n0\r\ngrpc-status: 0\r\n\r\n";

}  // namespace

TEST_CASE(
    "Http1Session: a request reaches its handler as an HTTP/2 one; the answer is chunked "
    "with its trailers") {
  Rig rig;
  rig.send("POST /pkg.Svc/M HTTP/1.1\r\nHost: relay.test\r\nContent-Length: 2\r\nX-A: b\r\n\r\nhi");
  CHECK(rig.receive_until("\r\n0\r\ngrpc-status: 0\r\n\r\n") == chunked_hello);
  REQUIRE(rig.handlers.size() == 1);
  const FakeHandler& h = *rig.handlers[0];
  CHECK(h.id == 1);
  CHECK(h.fields == Fields{{":method", "POST"},
                           {":scheme", "http"},
                           {":path", "/pkg.Svc/M"},
                           {":authority", "relay.test"},
                           {"content-length", "2"},
                           {"x-a", "b"}});
  CHECK(h.headers_ended);
  CHECK(h.body == "hi");
  CHECK(h.ended);
  CHECK(rig.run_until([&] { return h.closed == NGHTTP2_NO_ERROR; }));
  CHECK_FALSE(rig.eof);
}

TEST_CASE("Http1Session keeps the connection for the next request, on the next odd stream id") {
  Rig rig;
  for (int i = 0; i < 3; ++i) {
    rig.received.clear();
    rig.send("GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK(rig.receive_until("grpc-status: 0\r\n\r\n") == chunked_hello);
  }
  REQUIRE(rig.handlers.size() == 3);
  CHECK(rig.handlers[0]->id == 1);
  CHECK(rig.handlers[1]->id == 3);
  CHECK(rig.handlers[2]->id == 5);
  CHECK_FALSE(rig.eof);
}

TEST_CASE(
    "Http1Session answers pipelined requests in order, the next one unparsed until the "
    "answer before it is out") {
  Rig rig;
  rig.configure = [](FakeHandler& h) {
    h.answer_at_end = false;
    h.reply = "answer " + std::to_string(h.id);
  };
  rig.send("GET /one HTTP/1.1\r\nHost: h\r\n\r\nGET /two HTTP/1.1\r\nHost: h\r\n\r\n");
  REQUIRE(rig.run_until([&] { return !rig.handlers.empty() && rig.handlers[0]->ended; }));
  // A while for anything more that would come.
  rig.run_until([] { return false; }, 100);
  CHECK(rig.handlers.size() == 1);
  CHECK(rig.received.empty());
  rig.handlers[0]->answer();
  REQUIRE(rig.run_until([&] { return rig.handlers.size() == 2 && rig.handlers[1]->ended; }));
  CHECK(rig.handlers[1]->fields[2] == std::pair<std::string, std::string>{":path", "/two"});
  rig.handlers[1]->answer();
  const std::string both = rig.receive_until("answer 3\r\n0\r\ngrpc-status: 0\r\n\r\n");
  const size_t first = both.find("answer 1");
  const size_t second = both.find("answer 3");
  CHECK(first != std::string::npos);
  CHECK(second != std::string::npos);
  CHECK(first < second);
  CHECK(rig.handlers[0]->closed == NGHTTP2_NO_ERROR);
}

TEST_CASE("Http1Session reads a request body only while its handler gives credit back") {
  Rig rig;
  rig.configure = [](FakeHandler& h) {
    h.credit = false;
    h.answer_at_end = false;
  };
  const size_t size = 8 * 1024 * 1024;
  std::string request = "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(size) +
                        "\r\n\r\n" + std::string(size, 'b');
  // The client writes what the sockets take; the session stops reading past 64 KiB uncredited.
  size_t sent = 0;
  rig.run_until(
      [&] {
        const ssize_t n =
            ::send(rig.client, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (n > 0) sent += static_cast<size_t>(n);
        return sent == request.size();
      },
      1000);
  REQUIRE(rig.handlers.size() == 1);
  FakeHandler& h = *rig.handlers[0];
  // 64 KiB, and at most the rest of the read that went over it.
  CHECK(h.body.size() > 0);
  CHECK(h.body.size() <= 2 * 64 * 1024);
  CHECK(sent < request.size());
  // Credit given back: the rest comes.
  h.credit = true;
  rig.session->give_credit(h.id, h.body.size(), false);
  rig.run_until([&] {
    if (sent < request.size()) {
      const ssize_t n =
          ::send(rig.client, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<size_t>(n);
    }
    return h.ended;
  });
  CHECK(h.body == std::string(size, 'b'));
}

TEST_CASE("Http1Session answers 100 Continue once the handler exists") {
  Rig rig;
  rig.send("POST /p HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
  CHECK(rig.receive_until("\r\n\r\n") == "HTTP/1.1 100 Continue\r\n\r\n");
  REQUIRE(rig.handlers.size() == 1);
  rig.send("ok");
  CHECK(rig.receive_until("grpc-status: 0\r\n\r\n") ==
        "HTTP/1.1 100 Continue\r\n\r\n" + chunked_hello);
  CHECK(rig.handlers[0]->body == "ok");
}

TEST_CASE("Http1Session: HTTP/1.0 without keep-alive gets a body that ends with the connection") {
  Rig rig;
  rig.send("GET /p HTTP/1.0\r\nHost: h\r\n\r\n");
  CHECK(rig.receive_until_eof() ==
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nhello");
  REQUIRE(rig.handlers.size() == 1);
  CHECK(rig.handlers[0]->closed == NGHTTP2_NO_ERROR);
}

TEST_CASE("Http1Session: a client gone mid-exchange cancels its handler") {
  Rig rig;
  rig.configure = [](FakeHandler& h) { h.answer_at_end = false; };
  rig.send("GET /p HTTP/1.1\r\nHost: h\r\n\r\n");
  REQUIRE(rig.run_until([&] { return !rig.handlers.empty() && rig.handlers[0]->ended; }));
  ::shutdown(rig.client, SHUT_WR);
  CHECK(rig.run_until([&] { return rig.handlers[0]->closed == NGHTTP2_CANCEL; }));
  CHECK(rig.run_until([&] { return rig.gone; }));
}

TEST_CASE("Http1Session answers 503 when its owner refuses the request") {
  Rig rig("", /*refuse=*/true);
  rig.send("GET /p HTTP/1.1\r\nHost: h\r\n\r\n");
  const std::string answer = rig.receive_until_eof();
  CHECK(answer.rfind("HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n", 0) == 0);
  CHECK(rig.eof);
}

TEST_CASE("Http1Session answers each broken or oversized request with its status and closes") {
  struct Case {
    std::string name;
    std::string listener_keys;
    std::string request;
    std::string status_line;
  };
  const std::vector<Case> cases = {
      {"request line", "", "GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n",
       "HTTP/1.1 414 URI Too Long\r\n"},
      {"header section over max_request_metadata", "max_request_metadata = 2048",
       "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(3000, 'v') + "\r\n\r\n",
       "HTTP/1.1 431 Request Header Fields Too Large\r\n"},
      {"bad chunk", "", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
       "HTTP/1.1 400 Bad Request\r\n"},
      {"no Host", "", "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n"},
      {"version", "", "GET / HTTP/2.0\r\nHost: h\r\n\r\n",
       "HTTP/1.1 505 HTTP Version Not Supported\r\n"},
      {"head timeout", "request_headers_timeout = \"200ms\"", "GET / HTTP/1.1\r\nHost",
       "HTTP/1.1 408 Request Timeout\r\n"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Rig rig(c.listener_keys);
    rig.send(c.request);
    const std::string answer = rig.receive_until_eof();
    CAPTURE(answer);
    CHECK(answer.rfind(c.status_line + "content-type: text/plain\r\n", 0) == 0);
    CHECK(answer.find("connection: close\r\n") != std::string::npos);
    CHECK(rig.eof);
    if (c.name == "bad chunk") {
      // The head was fine: its handler had the request, and hears that it was malformed.
      REQUIRE(rig.handlers.size() == 1);
      CHECK(rig.handlers[0]->closed == NGHTTP2_PROTOCOL_ERROR);
    } else {
      CHECK(rig.handlers.empty());
    }
  }
}

TEST_CASE("Http1Session closes a connection idle past its idle_timeout") {
  Rig rig("idle_timeout = \"200ms\"");
  rig.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  CHECK(rig.receive_until("grpc-status: 0\r\n\r\n") == chunked_hello);
  CHECK(rig.receive_until_eof(3000) == chunked_hello);
  CHECK(rig.eof);
}

TEST_CASE(
    "Http1Session drains: between requests it closes, during one it closes after the "
    "answer, which says connection: close") {
  {
    Rig rig;
    rig.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK(rig.receive_until("grpc-status: 0\r\n\r\n") == chunked_hello);
    rig.session->drain();
    CHECK(rig.receive_until_eof() == chunked_hello);
    CHECK(rig.eof);
  }
  Rig rig;
  rig.configure = [](FakeHandler& h) { h.answer_at_end = false; };
  rig.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  REQUIRE(rig.run_until([&] { return !rig.handlers.empty() && rig.handlers[0]->ended; }));
  rig.session->drain();
  // A while: the exchange goes on.
  rig.run_until([] { return false; }, 100);
  CHECK_FALSE(rig.eof);
  rig.handlers[0]->answer();
  CHECK(rig.receive_until_eof() ==
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n"
        "connection: close\r\n\r\n5\r\nhello\r\n0\r\ngrpc-status: 0\r\n\r\n");
  CHECK(rig.handlers[0]->closed == NGHTTP2_NO_ERROR);
}

TEST_CASE("Http1Session expires: the handler is told, and an exchange it leaves open is cut") {
  Rig rig;
  rig.configure = [](FakeHandler& h) { h.answer_at_end = false; };
  rig.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  REQUIRE(rig.run_until([&] { return !rig.handlers.empty() && rig.handlers[0]->ended; }));
  rig.session->expire("drain_timeout reached");
  CHECK(rig.handlers[0]->expired);
  // This handler does not end its exchange: linger_ms (1 s) later the connection is closed.
  CHECK(rig.receive_until_eof(3000).empty());
  CHECK(rig.eof);
  CHECK(rig.handlers[0]->closed == NGHTTP2_CANCEL);
}
