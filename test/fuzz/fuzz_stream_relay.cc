// Fuzzes what a hostile client can send to a host application that embeds the relay: the input
// is fed to a host's own nghttp2 server session (in memory, no socket) whose callbacks go to a
// grelay::StreamRelay first, as examples/embed wires them. The host answers the streams the
// relay leaves it (content-types that are not gRPC) with a small body. Backends are
// unreachable (port 1), so relayed calls end in relay-made statuses and deadlines.
//
// Input layout: one flags byte, then the bytes the client sends, in chunks of 9 bytes.
//   bits 0-2  unless all set (7), the HTTP/2 client preface is sent first
//   bit 3     the host's session keeps nghttp2's HTTP messaging checks on
//   bit 4     the relay takes every stream (want() says yes), not only gRPC ones
//   bit 5     after the input, the host drains the StreamRelay, and the loop runs on
//   bit 6     after the input, the host expires the relay's streams
//   bit 7     the StreamRelay is destroyed while the session still lives, then the session
//             takes one more chunk of the input (the host's own streams only)
// The same corpus format as fuzz_downstream, whose seeds these share.

#include <nghttp2/nghttp2.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "core/log.h"
#include "grelay/config.h"
#include "grelay/relay.h"
#include "grelay/stream_relay.h"

namespace {

constexpr std::string_view fuzz_config_text = R"toml(
[[listener]]
address = "127.0.0.1:0"
max_request_metadata = 4096

[[route]]
service = "fuzz.Deadline"
cluster = "refused"
timeout = "1ms"

[[route]]
none = true
cluster = "refused"

[[cluster]]
name = "refused"
endpoints = ["127.0.0.1:1"]
connect_timeout = "1ms"
)toml";

constexpr std::string_view client_preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr size_t chunk = 9;
constexpr int loop_turns = 30;

std::shared_ptr<const grelay::Config> fuzz_config;

struct Host {
  nghttp2_session* session = nullptr;
  std::unique_ptr<grelay::StreamRelay> relay;
  bool failed = false;
};

ssize_t own_body(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                 nghttp2_data_source*, void*) {
  const size_t n = length < 3 ? length : 3;
  std::memcpy(buf, "ok\n", n);
  *flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

Host* host_of(void* user) {
  return static_cast<Host*>(user);
}

nghttp2_session_callbacks* callbacks() {
  nghttp2_session_callbacks* cbs;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_begin_headers_callback(
      cbs, [](nghttp2_session*, const nghttp2_frame* f, void* u) {
        Host* h = host_of(u);
        if (h->relay) h->relay->on_begin_headers(f);
        return 0;
      });
  nghttp2_session_callbacks_set_on_header_callback2(
      cbs, [](nghttp2_session*, const nghttp2_frame* f, nghttp2_rcbuf* n, nghttp2_rcbuf* v, uint8_t,
              void* u) {
        Host* h = host_of(u);
        if (h->relay) h->relay->on_header(f, n, v);
        return 0;
      });
  nghttp2_session_callbacks_set_on_frame_recv_callback(
      cbs, [](nghttp2_session* s, const nghttp2_frame* f, void* u) {
        Host* h = host_of(u);
        if (h->relay && h->relay->on_frame_recv(f)) return 0;
        // The host's own streams: answered once their request ends.
        if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
            (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
          const nghttp2_nv ok[] = {{(uint8_t*)":status", (uint8_t*)"200", 7, 3, 0}};
          nghttp2_data_provider provider{};
          provider.read_callback = own_body;
          nghttp2_submit_response(s, f->hd.stream_id, ok, 1, &provider);
        }
        return 0;
      });
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
      cbs, [](nghttp2_session* s, uint8_t, int32_t id, const uint8_t* d, size_t len, void* u) {
        Host* h = host_of(u);
        if (h->relay && h->relay->on_data_chunk_recv(id, d, len)) return 0;
        nghttp2_session_consume(s, id, len);
        return 0;
      });
  nghttp2_session_callbacks_set_on_frame_send_callback(
      cbs, [](nghttp2_session*, const nghttp2_frame* f, void* u) {
        Host* h = host_of(u);
        if (h->relay) h->relay->on_frame_send(f);
        return 0;
      });
  nghttp2_session_callbacks_set_on_frame_not_send_callback(
      cbs, [](nghttp2_session*, const nghttp2_frame* f, int error, void* u) {
        Host* h = host_of(u);
        if (h->relay) h->relay->on_frame_not_send(f, error);
        return 0;
      });
  nghttp2_session_callbacks_set_on_stream_close_callback(
      cbs, [](nghttp2_session*, int32_t id, uint32_t code, void* u) {
        Host* h = host_of(u);
        if (h->relay) h->relay->on_stream_close(id, code);
        return 0;
      });
  return cbs;
}

// Feeds |bytes| to the host's session and drains what it answers; false once the session
// gave up on the client (a connection error), as a host would close the connection.
bool feed(Host& host, std::string_view bytes) {
  if (host.failed) return false;
  if (!bytes.empty()) {
    const ssize_t rv = nghttp2_session_mem_recv(
        host.session, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    if (rv < 0) host.failed = true;
  }
  const uint8_t* out;
  ssize_t n;
  while (!host.failed && (n = nghttp2_session_mem_send(host.session, &out)) > 0) {
  }
  if (n < 0) host.failed = true;
  return !host.failed;
}

void run_loop(uv_loop_t& loop, Host& host, int turns) {
  for (int i = 0; i < turns; ++i) {
    uv_run(&loop, UV_RUN_NOWAIT);
    feed(host, {});
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* level = std::getenv("GRELAY_FUZZ_LOG");
  grelay::set_log_level(level && std::string_view(level) == "debug" ? grelay::LogLevel::debug
                                                                    : grelay::LogLevel::error);
  fuzz_config = grelay::parse_config(fuzz_config_text, "fuzz_stream_relay.toml");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);

  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    grelay::Relay relay(&loop, fuzz_config);
    Host host;
    {
      nghttp2_session_callbacks* cbs = callbacks();
      nghttp2_option* option;
      nghttp2_option_new(&option);
      nghttp2_option_set_no_auto_window_update(option, 1);
      if (!(flags & 0x08)) nghttp2_option_set_no_http_messaging(option, 1);
      nghttp2_session_server_new3(&host.session, cbs, &host, option,
                                  grelay::StreamRelay::session_allocator(relay));
      nghttp2_option_del(option);
      nghttp2_session_callbacks_del(cbs);
    }
    grelay::StreamRelay::Options options;
    options.peer = "192.0.2.1:1";
    options.on_output = [&host] { feed(host, {}); };
    if (flags & 0x10) options.want = [](const grelay::RequestHead&) { return true; };
    host.relay = std::make_unique<grelay::StreamRelay>(relay, host.session, std::move(options));
    nghttp2_submit_settings(host.session, NGHTTP2_FLAG_NONE, nullptr, 0);

    if ((flags & 0x07) != 0x07) feed(host, client_preface);
    while (!input.empty() && !host.failed) {
      const size_t n = input.size() < chunk ? input.size() : chunk;
      if ((flags & 0x80) && input.size() <= chunk) {
        // The host drops the relay first; the session takes the last chunk alone.
        host.relay.reset();
      }
      feed(host, input.substr(0, n));
      input.remove_prefix(n);
      uv_run(&loop, UV_RUN_NOWAIT);
    }
    if (host.relay && (flags & 0x20)) host.relay->drain();
    if (host.relay && (flags & 0x40)) host.relay->expire("fuzz: the host expires its streams");
    run_loop(loop, host, loop_turns);
    // The host closes the connection: the relay first, then its session.
    host.relay.reset();
    nghttp2_session_del(host.session);
    bool done = false;
    relay.shutdown(false, [&done] { done = true; });
    while (!done)
      uv_run(&loop, UV_RUN_ONCE);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0) std::abort();
  return 0;
}
