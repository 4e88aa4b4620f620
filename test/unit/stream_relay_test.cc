#include "grelay/stream_relay.h"

#include <doctest/doctest.h>
#include <nghttp2/nghttp2.h>
#include <uv.h>

#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "grelay/relay.h"
#include "relay_support.h"

// StreamRelay on a host session fed in memory by an nghttp2 client session: which streams it
// takes, what it answers on them, and what it refuses to be built on.

namespace {

constexpr const char* config_text =
    "[[listener]]\naddress = \"127.0.0.1:0\"\n\n"
    "[[route]]\nservice = \"test.Echo\"\ncluster = \"echo\"\n\n"
    "[[cluster]]\nname = \"echo\"\nendpoints = [\"127.0.0.1:1\"]\n";

nghttp2_nv field(const char* name, const char* value) {
  return {(uint8_t*)name, (uint8_t*)value, strlen(name), strlen(value), NGHTTP2_NV_FLAG_NONE};
}

// The host's side: a server session whose callbacks go to |relay| first.
struct Host {
  nghttp2_session* session = nullptr;
  grelay::StreamRelay* relay = nullptr;
  int outputs = 0;

  explicit Host(bool leave_windows_to_user = true) {
    nghttp2_session_callbacks* cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_begin_headers_callback(
        cbs, [](nghttp2_session*, const nghttp2_frame* f, void* u) {
          if (auto* r = static_cast<Host*>(u)->relay) r->on_begin_headers(f);
          return 0;
        });
    nghttp2_session_callbacks_set_on_header_callback2(
        cbs, [](nghttp2_session*, const nghttp2_frame* f, nghttp2_rcbuf* n, nghttp2_rcbuf* v,
                uint8_t, void* u) {
          if (auto* r = static_cast<Host*>(u)->relay) r->on_header(f, n, v);
          return 0;
        });
    nghttp2_session_callbacks_set_on_frame_recv_callback(
        cbs, [](nghttp2_session*, const nghttp2_frame* f, void* u) {
          if (auto* r = static_cast<Host*>(u)->relay) r->on_frame_recv(f);
          return 0;
        });
    nghttp2_session_callbacks_set_on_stream_close_callback(
        cbs, [](nghttp2_session*, int32_t id, uint32_t code, void* u) {
          if (auto* r = static_cast<Host*>(u)->relay) r->on_stream_close(id, code);
          return 0;
        });
    nghttp2_option* option;
    nghttp2_option_new(&option);
    if (leave_windows_to_user) nghttp2_option_set_no_auto_window_update(option, 1);
    nghttp2_session_server_new2(&session, cbs, this, option);
    nghttp2_option_del(option);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, nullptr, 0);
  }
  ~Host() { nghttp2_session_del(session); }
};

// The client's side: what it received per stream.
struct Client {
  nghttp2_session* session = nullptr;
  std::map<int32_t, std::map<std::string, std::string>> fields;
  // The error code each stream closed with.
  std::map<int32_t, uint32_t> closed;

  Client() {
    nghttp2_session_callbacks* cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(
        cbs, [](nghttp2_session*, const nghttp2_frame* f, const uint8_t* n, size_t nlen,
                const uint8_t* v, size_t vlen, uint8_t, void* u) {
          static_cast<Client*>(u)->fields[f->hd.stream_id][std::string((const char*)n, nlen)] =
              std::string((const char*)v, vlen);
          return 0;
        });
    nghttp2_session_callbacks_set_on_stream_close_callback(
        cbs, [](nghttp2_session*, int32_t id, uint32_t code, void* u) {
          static_cast<Client*>(u)->closed[id] = code;
          return 0;
        });
    nghttp2_session_client_new(&session, cbs, this);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, nullptr, 0);
  }
  ~Client() { nghttp2_session_del(session); }

  int32_t request(const char* path, const char* content_type, const char* pad = "") {
    const nghttp2_nv nva[] = {field(":method", "POST"),
                              field(":scheme", "http"),
                              field(":path", path),
                              field(":authority", "example"),
                              field("content-type", content_type),
                              field("te", "trailers"),
                              field("x-pad", pad)};
    return nghttp2_submit_request(session, nullptr, nva, 7, nullptr, nullptr);
  }
};

// Moves every byte each way until both sides are quiet.
void exchange(Client& client, Host& host) {
  for (bool moved = true; moved;) {
    moved = false;
    const uint8_t* data;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(client.session, &data)) > 0) {
      REQUIRE(nghttp2_session_mem_recv(host.session, data, static_cast<size_t>(n)) == n);
      moved = true;
    }
    while ((n = nghttp2_session_mem_send(host.session, &data)) > 0) {
      REQUIRE(nghttp2_session_mem_recv(client.session, data, static_cast<size_t>(n)) == n);
      moved = true;
    }
  }
}

grelay::StreamRelay::Options options(Host& host) {
  grelay::StreamRelay::Options o;
  o.on_output = [&host] { ++host.outputs; };
  return o;
}

}  // namespace

TEST_CASE("StreamRelay takes gRPC streams and leaves the others to the host") {
  with_relay(config_text, [](uv_loop_t&, grelay::Relay& relay) {
    Host host;
    Client client;
    grelay::StreamRelay stream_relay(relay, host.session, options(host));
    host.relay = &stream_relay;
    const int32_t web = client.request("/index.html", "text/html");
    const int32_t unrouted = client.request("/other.Svc/Method", "application/grpc");
    exchange(client, host);
    // The host's stream: the relay holds nothing of it and answered nothing.
    CHECK_FALSE(stream_relay.relays(web));
    CHECK(client.fields.count(web) == 0);
    // The relay's: refused at once, as on a listener, with its Trailers-Only answer.
    REQUIRE(client.fields.count(unrouted) == 1);
    CHECK(client.fields[unrouted][":status"] == "200");
    CHECK(client.fields[unrouted]["grpc-status"] == "12");
    CHECK(client.fields[unrouted]["grpc-message"] == "no route for /other.Svc/Method");
    CHECK(stream_relay.stream_count() == 0);
  });
}

TEST_CASE("StreamRelay keeps many streams apart, open at once and closed in any order") {
  with_relay(config_text, [](uv_loop_t&, grelay::Relay& relay) {
    Host host;
    Client client;
    grelay::StreamRelay stream_relay(relay, host.session, options(host));
    host.relay = &stream_relay;
    // Requests without their end (no END_STREAM): each stream stays open, answered.
    std::vector<int32_t> ids;
    for (int i = 0; i < 90; ++i) {
      const nghttp2_nv nva[] = {field(":method", "POST"), field(":scheme", "http"),
                                field(":path", "/other.Svc/M"), field(":authority", "a"),
                                field("content-type", "application/grpc")};
      nghttp2_priority_spec none{};
      ids.push_back(
          nghttp2_submit_headers(client.session, NGHTTP2_FLAG_NONE, -1, &none, nva, 5, nullptr));
    }
    exchange(client, host);
    CHECK(stream_relay.stream_count() == 90);
    for (int32_t id : ids) {
      REQUIRE(client.fields.count(id) == 1);
      CHECK(client.fields[id]["grpc-status"] == "12");
    }
    // The client resets every third stream, then the rest end one by one.
    for (size_t i = 0; i < ids.size(); i += 3)
      nghttp2_submit_rst_stream(client.session, NGHTTP2_FLAG_NONE, ids[i], NGHTTP2_CANCEL);
    exchange(client, host);
    CHECK(stream_relay.stream_count() == 60);
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i % 3 == 0) continue;
      CHECK(stream_relay.relays(ids[i]));
      nghttp2_data_provider empty{};
      empty.read_callback = [](nghttp2_session*, int32_t, uint8_t*, size_t, uint32_t* flags,
                               nghttp2_data_source*, void*) -> ssize_t {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        return 0;
      };
      nghttp2_submit_data(client.session, NGHTTP2_FLAG_END_STREAM, ids[i], &empty);
    }
    exchange(client, host);
    CHECK(stream_relay.stream_count() == 0);
  });
}

TEST_CASE("StreamRelay asks the host's want() once a request's headers are complete") {
  with_relay(config_text, [](uv_loop_t&, grelay::Relay& relay) {
    Host host;
    Client client;
    std::vector<std::string> asked;
    grelay::StreamRelay::Options o = options(host);
    o.want = [&asked](const grelay::RequestHead& head) {
      asked.push_back(std::string(head.method) + " " + std::string(head.path) + " " +
                      std::string(head.authority) + " " + std::string(head.content_type));
      return false;
    };
    grelay::StreamRelay stream_relay(relay, host.session, std::move(o));
    host.relay = &stream_relay;
    const int32_t id = client.request("/test.Echo/Unary", "application/grpc");
    exchange(client, host);
    CHECK(asked == std::vector<std::string>{"POST /test.Echo/Unary example application/grpc"});
    CHECK_FALSE(stream_relay.relays(id));
    CHECK(client.fields.count(id) == 0);
  });
}

TEST_CASE("Destroying a StreamRelay resets the streams it answers on the host's session") {
  with_relay(config_text, [](uv_loop_t&, grelay::Relay& relay) {
    Host host;
    Client client;
    auto stream_relay = std::make_unique<grelay::StreamRelay>(relay, host.session, options(host));
    host.relay = stream_relay.get();
    // Routed: it waits for a backend connection (the loop does not run), so it stays open.
    const int32_t call = client.request("/test.Echo/Unary", "application/grpc");
    const int32_t own = client.request("/index.html", "text/html");
    exchange(client, host);
    REQUIRE(stream_relay->relays(call));
    CHECK(stream_relay->stream_count() == 1);
    stream_relay.reset();
    host.relay = nullptr;
    exchange(client, host);
    CHECK(client.closed == std::map<int32_t, uint32_t>{{call, NGHTTP2_CANCEL}});
    CHECK(client.fields.count(own) == 0);
  });
}

TEST_CASE("StreamRelay::expire ends the calls it answers with UNAVAILABLE") {
  with_relay(config_text, [](uv_loop_t&, grelay::Relay& relay) {
    Host host;
    Client client;
    grelay::StreamRelay stream_relay(relay, host.session, options(host));
    host.relay = &stream_relay;
    const int32_t call = client.request("/test.Echo/Unary", "application/grpc");
    exchange(client, host);
    REQUIRE(stream_relay.relays(call));
    stream_relay.expire("host drain time is over");
    exchange(client, host);
    CHECK(client.fields[call][":status"] == "200");
    CHECK(client.fields[call]["grpc-status"] == "14");
    CHECK(client.fields[call]["grpc-message"] == "host drain time is over");
    // A new stream is the host's alone now.
    const int32_t later = client.request("/test.Echo/Unary", "application/grpc");
    exchange(client, host);
    CHECK_FALSE(stream_relay.relays(later));
    CHECK(client.fields.count(later) == 0);
    host.relay = nullptr;
  });
}

TEST_CASE("A request over max_request_metadata is the relay's to refuse, whatever want() says") {
  with_relay(
      std::string("[[listener]]\naddress = \"127.0.0.1:0\"\nmax_request_metadata = 1024\n\n") +
          "[[cluster]]\nname = \"echo\"\nendpoints = [\"127.0.0.1:1\"]\n\n"
          "[[route]]\nservice = \"test.Echo\"\ncluster = \"echo\"\n",
      [](uv_loop_t&, grelay::Relay& relay) {
        Host host;
        Client client;
        grelay::StreamRelay::Options o = options(host);
        o.want = [](const grelay::RequestHead&) { return false; };
        grelay::StreamRelay stream_relay(relay, host.session, std::move(o));
        host.relay = &stream_relay;
        const std::string pad(1100, 'p');
        const int32_t big = client.request("/index.html", "text/html", pad.c_str());
        const int32_t small = client.request("/index.html", "text/html");
        exchange(client, host);
        CHECK(client.fields[big]["grpc-status"] == "8");
        CHECK(client.fields.count(small) == 0);
        host.relay = nullptr;
      });
}

TEST_CASE("StreamRelay refuses a session it cannot serve") {
  with_relay(config_text, [](uv_loop_t&, grelay::Relay& relay) {
    Host host;
    Client client;
    CHECK_THROWS_AS(grelay::StreamRelay(relay, client.session, options(host)),
                    std::invalid_argument);
    Host automatic(false);
    CHECK_THROWS_WITH_AS(grelay::StreamRelay(relay, automatic.session, options(automatic)),
                         "StreamRelay: the host's session must be created with "
                         "nghttp2_option_set_no_auto_window_update()",
                         std::invalid_argument);
    CHECK_THROWS_AS(grelay::StreamRelay(relay, host.session, {}), std::invalid_argument);
    grelay::StreamRelay::Options far = options(host);
    far.listener = 1;
    CHECK_THROWS_AS(grelay::StreamRelay(relay, host.session, std::move(far)), std::out_of_range);
  });
}

TEST_CASE("A graceful Relay shutdown completes once the host's StreamRelays are gone") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    grelay::Relay relay(&loop, grelay::parse_config(config_text, "embed.toml"));
    Host host;
    bool done = false;
    auto stream_relay = std::make_unique<grelay::StreamRelay>(relay, host.session, options(host));
    relay.shutdown(true, [&done] { done = true; });
    for (int i = 0; i < 5; ++i)
      uv_run(&loop, UV_RUN_NOWAIT);
    CHECK_FALSE(done);
    // Once it has begun, no new one is taken.
    CHECK_THROWS_AS(grelay::StreamRelay(relay, host.session, options(host)), std::runtime_error);
    stream_relay.reset();
    while (!done)
      uv_run(&loop, UV_RUN_ONCE);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}
