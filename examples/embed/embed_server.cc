// An h2c server of its own (nghttp2 + libuv) that answers GET /healthz itself and hands every
// gRPC stream to grelay, on the same connection: the smallest host of a grelay::StreamRelay.
//
//   embed_server CONFIG ADDRESS PORT
//
// CONFIG is a grelay config: its routes and clusters serve the relayed streams, and its first
// [[listener]] gives their limits (the server listens on ADDRESS:PORT itself; PORT 0 picks a
// free one). It prints "listening on ADDRESS:PORT" once it accepts. SIGTERM drains: each
// connection gets GOAWAY, the calls in flight run to their end (for 10 s at most; then the
// relay ends them with UNAVAILABLE), and the server exits once the last connection closes.
// SIGINT stops at once.

#include <grelay/config.h>
#include <grelay/relay.h>
#include <grelay/stream_relay.h>
#include <nghttp2/nghttp2.h>
#include <uv.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace {

// Output held for the socket before the server stops asking nghttp2 for more: with a client
// that does not read, this and the relay's per-stream windows are all the memory it costs.
constexpr size_t max_unwritten = 64 * 1024;
// How long SIGTERM lets calls in flight run, and how long their relay-made ends then get.
constexpr uint64_t drain_ms = 10000;
constexpr uint64_t expire_ms = 1000;

struct Server;

// One client connection: its socket, its nghttp2 session, and the relay's part in it.
struct Connection {
  Connection(Server& s) : server(s) {}

  bool start();
  void on_read(const uint8_t* data, size_t len);
  // Writes what nghttp2 has to send, while the socket keeps up.
  void send();
  // send() once this loop turn's reads are all in (Server::flush_check).
  void schedule();
  void close();

  Server& server;
  uv_tcp_t tcp;
  nghttp2_session* session = nullptr;
  std::unique_ptr<grelay::StreamRelay> relay;
  // Streams this server answers itself (GET /healthz), by id.
  std::set<int32_t> own_health;
  // What send() takes from nghttp2 before writing it.
  std::string out;
  size_t unwritten = 0;
  bool closing = false;
  bool scheduled = false;
};

struct Server {
  uv_loop_t* loop;
  uv_tcp_t listener;
  uv_signal_t sigint, sigterm;
  // SIGTERM's drain: first the time calls in flight get, then the time their ends get.
  uv_timer_t drain_timer;
  bool expired = false;
  std::unique_ptr<grelay::Relay> relay;
  std::set<Connection*> connections;
  // Connections with output to write after what they read, written once per loop turn after
  // the loop polled: the frames answering every read of a turn leave in one write.
  uv_check_t flush_check;
  std::vector<Connection*> to_flush;
  std::vector<Connection*> flushing;
  bool stopping = false;
};

struct WriteReq {
  uv_write_t req;
  Connection* conn;
  std::string data;
};

int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  static_cast<Connection*>(user)->relay->on_begin_headers(frame);
  return 0;
}

int on_header(nghttp2_session*, const nghttp2_frame* frame, nghttp2_rcbuf* name,
              nghttp2_rcbuf* value, uint8_t, void* user) {
  auto* c = static_cast<Connection*>(user);
  if (c->relay->on_header(frame, name, value)) return 0;
  nghttp2_vec n = nghttp2_rcbuf_get_buf(name);
  nghttp2_vec v = nghttp2_rcbuf_get_buf(value);
  std::string_view field(reinterpret_cast<const char*>(n.base), n.len);
  std::string_view text(reinterpret_cast<const char*>(v.base), v.len);
  if (field == ":path" && text == "/healthz") c->own_health.insert(frame->hd.stream_id);
  return 0;
}

ssize_t health_body(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                    nghttp2_data_source*, void*) {
  static constexpr char body[] = "ok\n";
  const size_t n = std::min(length, sizeof(body) - 1);
  std::memcpy(buf, body, n);
  *flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

int on_frame_recv(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
  auto* c = static_cast<Connection*>(user);
  if (c->relay->on_frame_recv(frame)) return 0;
  // The host's own streams: /healthz is answered once its request has ended; anything else
  // that is not the relay's is not found.
  if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
    const int32_t id = frame->hd.stream_id;
    const bool health = c->own_health.erase(id) > 0;
    const nghttp2_nv ok[] = {
        {(uint8_t*)":status", (uint8_t*)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t*)"content-type", (uint8_t*)"text/plain", 12, 10, NGHTTP2_NV_FLAG_NONE}};
    const nghttp2_nv missing[] = {
        {(uint8_t*)":status", (uint8_t*)"404", 7, 3, NGHTTP2_NV_FLAG_NONE}};
    nghttp2_data_provider provider{};
    provider.read_callback = health_body;
    if (health)
      nghttp2_submit_response(session, id, ok, 2, &provider);
    else
      nghttp2_submit_response(session, id, missing, 1, nullptr);
  }
  return 0;
}

int on_data_chunk_recv(nghttp2_session* session, uint8_t, int32_t stream_id, const uint8_t* data,
                       size_t len, void* user) {
  auto* c = static_cast<Connection*>(user);
  if (c->relay->on_data_chunk_recv(stream_id, data, len)) return 0;
  // The host's own stream: its bytes are not kept, so its window is given back at once.
  nghttp2_session_consume(session, stream_id, len);
  return 0;
}

int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  static_cast<Connection*>(user)->relay->on_frame_send(frame);
  return 0;
}

int on_frame_not_send(nghttp2_session*, const nghttp2_frame* frame, int error, void* user) {
  static_cast<Connection*>(user)->relay->on_frame_not_send(frame, error);
  return 0;
}

int on_stream_close(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* user) {
  auto* c = static_cast<Connection*>(user);
  c->relay->on_stream_close(stream_id, error_code);
  // Whoever answered it: what this server noted while the relay read its headers goes too.
  c->own_health.erase(stream_id);
  return 0;
}

bool Connection::start() {
  nghttp2_session_callbacks* cbs;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback2(cbs, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
  nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, on_frame_not_send);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
  nghttp2_option* option;
  nghttp2_option_new(&option);
  // The relay gives back the window of the bytes it forwards (StreamRelay requires it).
  nghttp2_option_set_no_auto_window_update(option, 1);
  // The relay checks every request's header block itself, this server's /healthz included;
  // the requests it answers itself carry no body to check.
  nghttp2_option_set_no_http_messaging(option, 1);
  const int rv = nghttp2_session_server_new3(&session, cbs, this, option,
                                             grelay::StreamRelay::session_allocator(*server.relay));
  nghttp2_option_del(option);
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0) return false;

  grelay::StreamRelay::Options options;
  sockaddr_storage peer{};
  int len = sizeof(peer);
  char name[64] = "";
  if (uv_tcp_getpeername(&tcp, reinterpret_cast<sockaddr*>(&peer), &len) == 0) {
    char ip[48] = "";
    uv_ip_name(reinterpret_cast<const sockaddr*>(&peer), ip, sizeof(ip));
    // The port sits at the same place in sockaddr_in and sockaddr_in6.
    std::snprintf(name, sizeof(name), "%s:%d", ip,
                  ntohs(reinterpret_cast<const sockaddr_in*>(&peer)->sin_port));
  }
  options.peer = name;
  // The relay calls it from its own flush, after this server's (below): write at once.
  options.on_output = [this] { send(); };
  try {
    relay = std::make_unique<grelay::StreamRelay>(*server.relay, session, std::move(options));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "embed_server: %s\n", e.what());
    return false;
  }
  // 100 concurrent streams and a 1 MiB window per stream for the client, and 16 MiB for the
  // connection: the relay gives credit back as bytes reach a backend, so a connection window
  // no larger than one stream's would let one slow upload stall every stream.
  const nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100},
                                             {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20}};
  nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, settings, 2);
  nghttp2_session_set_local_window_size(session, NGHTTP2_FLAG_NONE, 0, 16 << 20);
  send();
  return true;
}

void Connection::on_read(const uint8_t* data, size_t len) {
  const ssize_t rv = nghttp2_session_mem_recv(session, data, len);
  if (rv < 0) {
    close();
    return;
  }
  schedule();
}

void Connection::schedule() {
  if (closing || scheduled) return;
  scheduled = true;
  server.to_flush.push_back(this);
}

// After the loop polled: a connection closed meanwhile is still here (handles are freed after
// this phase), and is skipped.
void on_flush_check(uv_check_t* check) {
  auto* server = static_cast<Server*>(check->data);
  server->flushing.swap(server->to_flush);
  for (Connection* c : server->flushing) {
    c->scheduled = false;
    c->send();
  }
  server->flushing.clear();
}

void on_written(uv_write_t* req, int status) {
  std::unique_ptr<WriteReq> w(reinterpret_cast<WriteReq*>(req));
  Connection* c = w->conn;
  c->unwritten -= w->data.size();
  // A closed connection's writes end with UV_ECANCELED before its close callback runs.
  if (c->closing) return;
  if (status < 0) {
    c->close();
    return;
  }
  c->send();
}

void Connection::send() {
  if (closing) return;
  while (unwritten < max_unwritten) {
    // Up to 64 KiB of frames, into a buffer kept from one send to the next.
    out.clear();
    while (out.size() < 64 * 1024) {
      const uint8_t* data;
      const ssize_t n = nghttp2_session_mem_send(session, &data);
      if (n < 0) {
        close();
        return;
      }
      if (n == 0) break;
      out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    if (out.empty()) break;
    size_t written = 0;
    if (unwritten == 0) {
      // Nothing queued before it: the socket may take it all now, with no write request.
      uv_buf_t buf = uv_buf_init(out.data(), static_cast<unsigned>(out.size()));
      const int n = uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp), &buf, 1);
      if (n < 0 && n != UV_EAGAIN) {
        close();
        return;
      }
      if (n > 0) written = static_cast<size_t>(n);
    }
    if (written == out.size()) continue;
    // The rest waits for the socket; no more is taken from nghttp2 past max_unwritten.
    auto* req = new WriteReq;
    req->conn = this;
    req->data.assign(out, written, std::string::npos);
    uv_buf_t buf = uv_buf_init(req->data.data(), static_cast<unsigned>(req->data.size()));
    unwritten += req->data.size();
    if (uv_write(&req->req, reinterpret_cast<uv_stream_t*>(&tcp), &buf, 1, on_written) != 0) {
      unwritten -= req->data.size();
      delete req;
      close();
      return;
    }
  }
  if (!nghttp2_session_want_read(session) && !nghttp2_session_want_write(session) &&
      unwritten == 0) {
    close();
  }
}

void Connection::close() {
  if (closing) return;
  closing = true;
  // The relay goes first (it refers to the session), then the session; writes still pending
  // are cancelled.
  relay.reset();
  if (session) nghttp2_session_del(session);
  session = nullptr;
  server.connections.erase(this);
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp),
           [](uv_handle_t* h) { delete static_cast<Connection*>(h->data); });
}

void on_alloc(uv_handle_t*, size_t, uv_buf_t* buf) {
  static char storage[64 * 1024];
  *buf = uv_buf_init(storage, sizeof(storage));
}

void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(stream->data);
  if (nread < 0) {
    c->close();
    return;
  }
  if (nread > 0)
    c->on_read(reinterpret_cast<const uint8_t*>(buf->base), static_cast<size_t>(nread));
}

void on_connection(uv_stream_t* listener, int status) {
  auto* server = static_cast<Server*>(listener->data);
  if (status < 0 || server->stopping) return;
  auto* c = new Connection(*server);
  uv_tcp_init(server->loop, &c->tcp);
  c->tcp.data = c;
  server->connections.insert(c);
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
    c->close();
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  if (!c->start()) {
    c->close();
    return;
  }
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), on_alloc, on_read);
}

void close_all(Server& server) {
  for (Connection* c : std::set<Connection*>(server.connections))
    c->close();
}

// SIGTERM's drain time is over: the relay ends its calls with UNAVAILABLE; a second later the
// connections still open are closed.
void on_drain_timer(uv_timer_t* timer) {
  auto* server = static_cast<Server*>(timer->data);
  if (server->expired) {
    close_all(*server);
    return;
  }
  server->expired = true;
  for (Connection* c : std::set<Connection*>(server->connections)) {
    if (c->relay) c->relay->expire("embed_server: drain time is over");
    c->send();
  }
  uv_timer_start(&server->drain_timer, on_drain_timer, expire_ms, 0);
}

void on_signal(uv_signal_t* handle, int signum) {
  auto* server = static_cast<Server*>(handle->data);
  const bool drain = signum == SIGTERM;
  if (server->stopping && drain) return;
  if (!server->stopping) {
    server->stopping = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&server->listener), nullptr);
    // The relay's shutdown completes once every connection's StreamRelay is gone.
    server->relay->shutdown(drain, [server] {
      uv_close(reinterpret_cast<uv_handle_t*>(&server->sigint), nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(&server->sigterm), nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(&server->drain_timer), nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(&server->flush_check), nullptr);
    });
  }
  if (!drain) {
    close_all(*server);
    return;
  }
  for (Connection* c : std::set<Connection*>(server->connections)) {
    // GOAWAY: no new stream; the open ones (the relay's, drained by the shutdown, and the
    // host's) finish, and send() closes the connection once nghttp2 has nothing left to do.
    nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(c->session), NGHTTP2_NO_ERROR,
                          nullptr, 0);
    c->send();
  }
  uv_timer_start(&server->drain_timer, on_drain_timer, drain_ms, 0);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s CONFIG ADDRESS PORT\n", argv[0]);
    return 2;
  }
  // A client that hangs up mid-write must not kill the process.
  std::signal(SIGPIPE, SIG_IGN);
  Server server;
  server.loop = uv_default_loop();
  try {
    server.relay = std::make_unique<grelay::Relay>(server.loop, grelay::load_config(argv[1]));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "embed_server: %s\n", e.what());
    return 1;
  }
  sockaddr_in address{};
  if (uv_ip4_addr(argv[2], std::atoi(argv[3]), &address) != 0) {
    std::fprintf(stderr, "embed_server: bad address %s:%s\n", argv[2], argv[3]);
    return 2;
  }
  uv_tcp_init(server.loop, &server.listener);
  server.listener.data = &server;
  int rv = uv_tcp_bind(&server.listener, reinterpret_cast<const sockaddr*>(&address), 0);
  if (rv == 0) rv = uv_listen(reinterpret_cast<uv_stream_t*>(&server.listener), 128, on_connection);
  if (rv != 0) {
    std::fprintf(stderr, "embed_server: listen: %s\n", uv_strerror(rv));
    return 1;
  }
  sockaddr_storage bound{};
  int len = sizeof(bound);
  uv_tcp_getsockname(&server.listener, reinterpret_cast<sockaddr*>(&bound), &len);
  std::printf("listening on %s:%d\n", argv[2],
              ntohs(reinterpret_cast<const sockaddr_in*>(&bound)->sin_port));
  std::fflush(stdout);

  uv_signal_init(server.loop, &server.sigint);
  uv_signal_init(server.loop, &server.sigterm);
  uv_timer_init(server.loop, &server.drain_timer);
  uv_check_init(server.loop, &server.flush_check);
  server.flush_check.data = &server;
  uv_check_start(&server.flush_check, on_flush_check);
  // It runs while there is anything else to do, and does not keep the loop alive itself.
  uv_unref(reinterpret_cast<uv_handle_t*>(&server.flush_check));
  server.sigint.data = server.sigterm.data = server.drain_timer.data = &server;
  uv_signal_start(&server.sigint, on_signal, SIGINT);
  uv_signal_start(&server.sigterm, on_signal, SIGTERM);
  uv_run(server.loop, UV_RUN_DEFAULT);
  server.relay.reset();
  uv_loop_close(server.loop);
  return 0;
}
