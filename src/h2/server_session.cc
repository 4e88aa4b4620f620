#include "h2/server_session.h"

#include <algorithm>
#include <cstring>

#include "core/log.h"

namespace grelay {
namespace {

std::string_view view(nghttp2_rcbuf* buf) noexcept {
  nghttp2_vec v = nghttp2_rcbuf_get_buf(buf);
  return {reinterpret_cast<const char*>(v.base), v.len};
}

// How long the first GOAWAY of a shutdown waits for its PING to be acknowledged before the
// final GOAWAY goes out anyway.
constexpr uint64_t goaway_ack_wait_ms = 1000;
// The PING payload of a shutdown; acknowledgements of other PINGs are not ours.
constexpr uint8_t shutdown_ping[8] = {'g', 'r', 'e', 'l', 'a', 'y', 'g', 'a'};
// The HTTP/2 client connection preface (RFC 9113 §3.4): a client whose first bytes differ from
// it speaks HTTP/1.1 (listeners with web calls).
constexpr char client_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr uint8_t client_preface_size = sizeof(client_preface) - 1;

ssize_t read_body_cb(nghttp2_session*, int32_t stream_id, uint8_t*, size_t length,
                     uint32_t* data_flags, nghttp2_data_source* source, void* user_data) noexcept {
  if (static_cast<H2Session*>(user_data)->pause_if_backed_up(stream_id)) {
    return NGHTTP2_ERR_DEFERRED;
  }
  const ResponsePull pull = static_cast<ServerStreamHandler*>(source->ptr)->pull_response(length);
  const ssize_t n = data_source_result(pull, data_flags);
  // The bytes go out uncopied, through write_body().
  if (n > 0) *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  return n;
}

}  // namespace

struct ServerSessionCallbacks {
  static ServerSession* self(void* user_data) noexcept {
    return static_cast<ServerSession*>(static_cast<H2Session*>(user_data));
  }
  static ServerStreamHandler* handler_of(void* user_data, int32_t stream_id) noexcept {
    return static_cast<ServerStreamHandler*>(self(user_data)->stream_data(stream_id));
  }

  static int on_begin_headers(nghttp2_session* session, const nghttp2_frame* frame,
                              void* user_data) noexcept {
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    ServerSession* s = self(user_data);
    // A header block blocks the connection until it ends (CONTINUATION frames only).
    if (s->headers_stream_ == 0) {
      s->headers_stream_ = frame->hd.stream_id;
      // The one deadline this adds, so the timer is armed for it alone (and seldom restarted:
      // arm_timer_by()) instead of working out every deadline again on each request.
      if (s->listener_ && !s->closed()) {
        s->headers_deadline_ms_ =
            uv_now(s->loop()) +
            static_cast<uint64_t>(s->listener_->request_headers_timeout.count());
        s->conn_.arm_timer_by(s->headers_deadline_ms_);
      }
    }
    ServerStreamHandler* handler = s->owner_.on_new_stream(*s, frame->hd.stream_id);
    if (!handler) {
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                NGHTTP2_REFUSED_STREAM);
      return 0;
    }
    s->streams_.push_front(*handler);
    s->set_stream_data(frame->hd.stream_id, handler);
    s->on_stream_count_changed();
    return 0;
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, nghttp2_rcbuf* name,
                       nghttp2_rcbuf* value, uint8_t, void* user_data) noexcept {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    auto* handler = handler_of(user_data, frame->hd.stream_id);
    if (!handler) return 0;
    const bool trailer = frame->headers.cat != NGHTTP2_HCAT_REQUEST;
    const std::string_view n = view(name);
    const std::string_view v = view(value);
    const FieldName f = classify_field(n);
    if (!handler->request_check().on_field(f, n, v, trailer)) {
      self(user_data)->reject_malformed(frame->hd.stream_id, *handler);
    } else if (!trailer) {
      // Request trailers carry nothing gRPC uses; only the first HEADERS block is kept.
      handler->on_request_header(name, value, f, n, v);
    }
    return 0;
  }

  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) noexcept {
    if (int rv = self(user_data)->on_frame_received(*frame)) return rv;
    if (frame->hd.type == NGHTTP2_RST_STREAM) {
      // The stream's close, if it was open, follows; on_stream_close() tells the handler.
      self(user_data)->closed_streams_.on_reset_received(frame->hd.stream_id);
      return 0;
    }
    if (frame->hd.type == NGHTTP2_PING && (frame->hd.flags & NGHTTP2_FLAG_ACK)) {
      self(user_data)->on_ping_ack(frame->ping.opaque_data);
      return 0;
    }
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
    const int32_t stream_id = frame->hd.stream_id;
    auto* handler = handler_of(user_data, stream_id);
    if (!handler) return 0;
    const bool end_stream = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (frame->hd.type == NGHTTP2_HEADERS) {
      if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        if (!handler->request_check().on_headers_end()) {
          self(user_data)->reject_malformed(stream_id, *handler);
          return 0;
        }
        handler->on_request_headers_end();
        // The handler may have ended the stream; look it up again.
        handler = handler_of(user_data, stream_id);
        if (!handler) return 0;
      } else if (!end_stream) {
        // Trailers end the request; a later HEADERS block that does not is malformed.
        self(user_data)->reject_malformed(stream_id, *handler);
        return 0;
      }
    }
    if (end_stream) {
      if (!handler->request_check().on_end()) {
        self(user_data)->reject_malformed(stream_id, *handler);
        return 0;
      }
      handler->on_request_end();
    }
    return 0;
  }

  static int on_data_chunk_recv(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data,
                                size_t len, void* user_data) noexcept {
    self(user_data)->on_data_received(len);
    auto* handler = handler_of(user_data, stream_id);
    if (handler && !handler->request_check().on_data(len)) {
      // More body than the request's content-length declared.
      self(user_data)->reject_malformed(stream_id, *handler);
      handler = nullptr;
    }
    if (handler) {
      handler->on_request_data(data, len);
    } else {
      // Nobody will forward these bytes: hand the window back at once.
      self(user_data)->consume(stream_id, len);
    }
    return 0;
  }

  static int on_frame_send(nghttp2_session* session, const nghttp2_frame* frame,
                           void* user_data) noexcept {
    ServerSession* s = self(user_data);
    if (frame->hd.type == NGHTTP2_RST_STREAM) {
      s->closed_streams_.on_reset_sent(frame->hd.stream_id);
      // Resets the client made the relay send (a window overflow, a malformed request, ...)
      // may each have cost a backend stream: they are budgeted like the client's own resets.
      // NO_ERROR ends a stream whose answer is complete, and REFUSED_STREAM one the relay
      // never started (over the stream limit): neither cost anything.
      const uint32_t code = frame->rst_stream.error_code;
      if (code != NGHTTP2_NO_ERROR && code != NGHTTP2_REFUSED_STREAM &&
          !s->made_resets_.take(uv_now(s->loop()))) {
        return s->abuse(PeerError::made_reset_flood, NGHTTP2_ENHANCE_YOUR_CALM,
                        "too many streams reset by the relay");
      }
      return 0;
    }
    if (frame->hd.type == NGHTTP2_GOAWAY) {
      s->on_goaway_sent(*frame);
      return 0;
    }
    // A response that ended while the client is still sending: the rest of the request is
    // not wanted, so release the stream (as gRPC servers do, with NO_ERROR). gRPC answers
    // end with HEADERS; web answers (gRPC-Web, Connect) with DATA.
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        nghttp2_session_get_stream_remote_close(session, frame->hd.stream_id) == 0) {
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
    }
    return 0;
  }

  static int on_frame_not_send(nghttp2_session* session, const nghttp2_frame* frame, int lib_error,
                               void* user_data) noexcept {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    // The client would wait for an answer that never comes: say so, and end the stream.
    if (auto* handler = handler_of(user_data, frame->hd.stream_id)) {
      GRELAY_LOG_DEBUG("stream %d: response headers not sent (%s); resetting it",
                       frame->hd.stream_id, nghttp2_strerror(lib_error));
      handler->on_response_not_sent(lib_error);
    }
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                              NGHTTP2_INTERNAL_ERROR);
    return 0;
  }

  static int on_stream_close(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                             void* user_data) noexcept {
    ServerSession* s = self(user_data);
    s->closed_streams_.on_close(stream_id);
    // nghttp2 gave up on the stream mid-block (a header list too large): no block is open.
    if (stream_id == s->headers_stream_) s->headers_stream_ = 0;
    auto* handler = handler_of(user_data, stream_id);
    if (!handler) return 0;
    s->clear_closing_stream_data(stream_id);
    s->streams_.erase(*handler);
    handler->on_downstream_close(error_code);
    s->on_stream_count_changed();
    return 0;
  }

  static nghttp2_session_callbacks* table() noexcept {
    static NgCallbacksPtr callbacks = [] {
      nghttp2_session_callbacks* cbs = nullptr;
      nghttp2_session_callbacks_new(&cbs);
      set_common_callbacks(cbs);
      nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
      nghttp2_session_callbacks_set_on_header_callback2(cbs, on_header);
      nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
      nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv);
      nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
      nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, on_frame_not_send);
      nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
      return NgCallbacksPtr(cbs);
    }();
    return callbacks.get();
  }
};

// What closed_streams_ needs of its session, for one read.
struct ServerSessionInput final : ClosedStreams::Host {
  explicit ServerSessionInput(ServerSession& s) noexcept : session(s) {}

  ssize_t take(const uint8_t* data, size_t len) noexcept override {
    return nghttp2_session_mem_recv(session.ng(), data, len);
  }
  // A stream has its handler from its HEADERS until it closes, or until the session resets it
  // as malformed. The last stream looked up is remembered, so the frame's callbacks find it at
  // no cost.
  bool serving(int32_t stream_id) noexcept override {
    return session.stream_data(stream_id) != nullptr;
  }
  void reset_closed(int32_t stream_id) noexcept override {
    GRELAY_LOG_DEBUG("stream %d: frame after the client's RST_STREAM; RST_STREAM(STREAM_CLOSED)",
                     stream_id);
    nghttp2_submit_rst_stream(session.ng(), NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_STREAM_CLOSED);
  }
  void fail(uint32_t error_code, const char* why) noexcept override {
    // GOAWAY names the last stream nghttp2 took and says |why|; the session reads no more and
    // closes once the GOAWAY is out.
    session.close_for(PeerError::protocol_error, error_code, why);
  }

  ServerSession& session;
};

ServerSession::ServerSession(uv_loop_t* loop, ChunkPool& pool, FlushQueue& flush_queue,
                             nghttp2_mem* mem, ServerSessionOwner& owner) noexcept
    : H2Session(loop, pool, flush_queue, mem, /*eager_connection_window=*/false), owner_(owner) {}

bool ServerSession::start(std::shared_ptr<const Config> config, size_t listener_index) noexcept {
  config_ = std::move(config);
  const ListenerConfig& listener = config_->listeners[listener_index];
  listener_ = &listener;
  started_ms_ = idle_since_ms_ = uv_now(loop());
  // Over TLS the preface clock starts when the handshake is done.
  if (handshake_deadline_ms_ == 0) {
    preface_deadline_ms_ = started_ms_ + static_cast<uint64_t>(listener.preface_timeout.count());
  }
  if (listener.web) {
    // HTTP/1.1 clients send first and expect no SETTINGS: nothing is sent before the client
    // says what it speaks.
    greeting_ = Greeting::waiting;
    rearm_timer();
    return true;
  }
  return start_h2();
}

bool ServerSession::start_h2() noexcept {
  greeting_ = Greeting::h2;
  if (!start_session(
          true, ServerSessionCallbacks::table(),
          {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, listener_->max_concurrent_streams}})) {
    return false;
  }
  rearm_timer();
  if (drain_requested_) shutdown();
  return true;
}

bool ServerSession::on_read(const uint8_t* data, size_t len) noexcept {
  if (greeting_ == Greeting::h2) return H2Session::on_read(data, len);
  if (closed()) return true;
  if (greeting_ == Greeting::http1) {
    // The rest of a read that showed HTTP/1.1 (TLS records decrypted in one go): kept too.
    http1_input_.append(reinterpret_cast<const char*>(data), len);
    return true;
  }
  if (!greet(data, len)) return true;
  return H2Session::on_read(data, len);
}

bool ServerSession::greet(const uint8_t* data, size_t len) noexcept {
  const size_t n = std::min<size_t>(len, client_preface_size - preface_matched_);
  if (std::memcmp(data, client_preface + preface_matched_, n) != 0) {
    http1_input_.assign(client_preface, preface_matched_);
    http1_input_.append(reinterpret_cast<const char*>(data), len);
    to_http1();
    return false;
  }
  const uint8_t before = preface_matched_;
  preface_matched_ = static_cast<uint8_t>(preface_matched_ + n);
  if (preface_matched_ < client_preface_size) return false;
  if (!start_h2()) {
    GRELAY_LOG_WARN("cannot set up a client connection's session");
    close();
    return false;
  }
  // nghttp2 takes the preface from its first byte: the part that came in earlier reads first.
  if (before > 0) receive(reinterpret_cast<const uint8_t*>(client_preface), before);
  return true;
}

void ServerSession::to_http1() noexcept {
  greeting_ = Greeting::http1;
  preface_deadline_ms_ = 0;
  // The next bytes are for the session the connection goes to.
  conn_.pause_reading();
  schedule_send();
}

void ServerSession::flush_now() noexcept {
  if (greeting_ != Greeting::http1) {
    H2Session::flush_now();
    return;
  }
  // A write still in flight (TLS session tickets) cannot move: on_write_done() comes back.
  if (closed() || conn_.writing()) return;
  const std::string input = std::move(http1_input_);
  owner_.on_http1(*this, input);
  close();
}

int ServerSession::on_frame_received(const nghttp2_frame& frame) noexcept {
  if (int rv = check_budgets(frame)) return rv;
  switch (frame.hd.type) {
    case NGHTTP2_HEADERS:
      // The block ended (nghttp2 reports a HEADERS frame once its CONTINUATIONs are in).
      headers_stream_ = 0;
      break;
    case NGHTTP2_SETTINGS:
      if (preface_deadline_ms_ != 0 && !(frame.hd.flags & NGHTTP2_FLAG_ACK)) {
        preface_deadline_ms_ = 0;
        rearm_timer();
      }
      break;
    case NGHTTP2_RST_STREAM:
      if (!client_resets_.take(uv_now(loop()))) {
        return abuse(PeerError::reset_flood, NGHTTP2_ENHANCE_YOUR_CALM,
                     "too many streams reset by the client");
      }
      break;
    default:
      break;
  }
  return 0;
}

int ServerSession::send_response(int32_t stream_id, const nghttp2_nv* nva, size_t nvlen,
                                 ServerStreamHandler* body) noexcept {
  nghttp2_data_provider provider;
  provider.source.ptr = body;
  provider.read_callback = read_body_cb;
  int rv =
      nghttp2_submit_response(session_.get(), stream_id, nva, nvlen, body ? &provider : nullptr);
  schedule_send();
  return rv;
}

int ServerSession::send_trailers(int32_t stream_id, const nghttp2_nv* nva, size_t nvlen) noexcept {
  return nghttp2_submit_trailer(session_.get(), stream_id, nva, nvlen);
}

void ServerSession::resume(int32_t stream_id) noexcept {
  if (closed()) return;
  nghttp2_session_resume_data(session_.get(), stream_id);
  schedule_send();
}

void ServerSession::reset(int32_t stream_id, uint32_t error_code) noexcept {
  if (closed()) return;
  nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE, stream_id, error_code);
  schedule_send();
}

void ServerSession::shutdown() noexcept {
  if (greeting_ != Greeting::h2) {
    // The client's protocol is not known yet: whichever session serves it drains.
    drain_requested_ = true;
    return;
  }
  if (closed() || !session_ || goaway_ != Goaway::none) return;
  if (nghttp2_submit_shutdown_notice(session_.get()) != 0 ||
      nghttp2_submit_ping(session_.get(), NGHTTP2_FLAG_NONE, shutdown_ping) != 0) {
    send_final_goaway();
    return;
  }
  goaway_ = Goaway::notice_sent;
  notice_ms_ = uv_now(loop());
  schedule_send();
  rearm_timer();
}

void ServerSession::send_final_goaway() noexcept {
  if (closed() || !session_ || goaway_ == Goaway::final_sent) return;
  goaway_ = Goaway::final_sent;
  nghttp2_submit_goaway(session_.get(), NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_.get()), NGHTTP2_NO_ERROR,
                        nullptr, 0);
  schedule_send();
  rearm_timer();
}

void ServerSession::on_ping_ack(const uint8_t* opaque) noexcept {
  if (goaway_ != Goaway::notice_sent) return;
  if (std::memcmp(opaque, shutdown_ping, sizeof(shutdown_ping)) != 0) return;
  // A round trip since the first GOAWAY: every stream the client opened before it saw that
  // GOAWAY has arrived, so the last stream id is final.
  send_final_goaway();
}

void ServerSession::expire(const char* why) noexcept {
  if (closed()) return;
  if (greeting_ != Greeting::h2) {
    // No request yet.
    close();
    return;
  }
  send_final_goaway();
  ServerStreamHandler* handler = streams_.front();
  while (handler) {
    ServerStreamHandler* next = IntrusiveList<ServerStreamHandler>::next(*handler);
    handler->on_expire(why);
    handler = next;
  }
  schedule_send();
}

void ServerSession::on_stream_count_changed() noexcept {
  if (!listener_ || !listener_->idle_timeout || closed()) return;
  // The idle clock starts at 0 streams. It stops at 1, which needs nothing of the timer: a
  // deadline that went away only makes it fire once for nothing.
  if (!streams_.empty()) return;
  idle_since_ms_ = uv_now(loop());
  rearm_timer();
}

void ServerSession::rearm_timer() noexcept {
  if (closed() || !listener_) return;
  uint64_t next = UINT64_MAX;
  if (handshake_deadline_ms_ != 0) next = handshake_deadline_ms_;
  if (preface_deadline_ms_ != 0) next = std::min(next, preface_deadline_ms_);
  if (headers_stream_ != 0) next = std::min(next, headers_deadline_ms_);
  // Before the client's protocol is known, only the handshake and preface deadlines run.
  const bool h2 = greeting_ == Greeting::h2;
  if (h2 && listener_->idle_timeout && streams_.empty() && goaway_ == Goaway::none) {
    next = std::min(next, idle_since_ms_ + static_cast<uint64_t>(listener_->idle_timeout->count()));
  }
  if (h2 && listener_->max_connection_age && goaway_ == Goaway::none) {
    next =
        std::min(next, started_ms_ + static_cast<uint64_t>(listener_->max_connection_age->count()));
  }
  if (goaway_ == Goaway::notice_sent) next = std::min(next, notice_ms_ + goaway_ack_wait_ms);
  if (expire_ms_ != 0) next = std::min(next, expire_ms_);
  // Nothing due: a timer still armed fires once for nothing, cheaper than stopping it here
  // at the end of every call.
  if (next != UINT64_MAX) conn_.arm_timer_by(next);
}

void ServerSession::on_session_timer() noexcept {
  uint64_t now = uv_now(loop());
  if (handshake_deadline_ms_ != 0 && now >= handshake_deadline_ms_) {
    char peer[64];
    conn_.peer_name(peer, sizeof(peer));
    GRELAY_LOG_DEBUG("TLS client %s did not finish its handshake in time; closing", peer);
    close();
    return;
  }
  if (preface_deadline_ms_ != 0 && now >= preface_deadline_ms_) {
    close_for(PeerError::preface_timeout, NGHTTP2_NO_ERROR, "preface timeout");
    return;
  }
  if (headers_stream_ != 0 && now >= headers_deadline_ms_) {
    close_for(PeerError::headers_timeout, NGHTTP2_NO_ERROR, "request headers timeout");
    return;
  }
  if (expire_ms_ != 0 && now >= expire_ms_) {
    expire_ms_ = 0;
    expire("connection closed: max_connection_age_grace is over");
    return;
  }
  if (goaway_ == Goaway::notice_sent && now >= notice_ms_ + goaway_ack_wait_ms) {
    send_final_goaway();
  }
  if (greeting_ != Greeting::h2) {
    rearm_timer();
    return;
  }
  if (goaway_ == Goaway::none && listener_->max_connection_age &&
      now >= started_ms_ + static_cast<uint64_t>(listener_->max_connection_age->count())) {
    GRELAY_LOG_DEBUG("client connection reached max_connection_age: GOAWAY");
    if (listener_->max_connection_age_grace) {
      expire_ms_ = now + static_cast<uint64_t>(listener_->max_connection_age_grace->count());
    }
    shutdown();
  }
  if (goaway_ == Goaway::none && listener_->idle_timeout && streams_.empty() &&
      now >= idle_since_ms_ + static_cast<uint64_t>(listener_->idle_timeout->count())) {
    GRELAY_LOG_DEBUG("client connection idle for its idle_timeout: GOAWAY");
    shutdown();
  }
  rearm_timer();
}

void ServerSession::write_body(nghttp2_data_source* source, ChunkChain& out,
                               size_t length) noexcept {
  static_cast<ServerStreamHandler*>(source->ptr)->write_response_body(out, length);
}

bool ServerSession::rebind(int32_t stream_id, ServerStreamHandler& from,
                           ServerStreamHandler& to) noexcept {
  // The checks of the request so far go on where they stand.
  to.request_check() = from.request_check();
  streams_.erase(from);
  streams_.push_front(to);
  set_stream_data(stream_id, &to);
  return true;
}

void ServerSession::reject_malformed(int32_t stream_id, ServerStreamHandler& handler) noexcept {
  GRELAY_LOG_DEBUG("stream %d: malformed request; resetting it with PROTOCOL_ERROR", stream_id);
  nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_PROTOCOL_ERROR);
  set_stream_data(stream_id, nullptr);
  streams_.erase(handler);
  handler.on_downstream_close(NGHTTP2_PROTOCOL_ERROR);
  on_stream_count_changed();
  schedule_send();
}

ssize_t ServerSession::receive(const uint8_t* data, size_t len) noexcept {
  ServerSessionInput input(*this);
  return closed_streams_.receive(input, data, len);
}

void ServerSession::set_handshake_timeout(uint64_t ms) noexcept {
  // start() arms the timer.
  handshake_deadline_ms_ = uv_now(loop()) + ms;
}

void ServerSession::on_handshake_done() noexcept {
  handshake_deadline_ms_ = 0;
  preface_deadline_ms_ = uv_now(loop()) + static_cast<uint64_t>(listener_->preface_timeout.count());
  rearm_timer();
  TlsLayer& tls = *conn_.tls();
  if (greeting_ == Greeting::waiting) {
    // ALPN chose (the listener's context offers http/1.1 only with web calls).
    if (tls.alpn() == "http/1.1") {
      to_http1();
    } else if (!start_h2()) {
      GRELAY_LOG_WARN("cannot set up a client connection's session");
      close();
      return;
    }
  }
  if (tls.peer() || log_enabled(LogLevel::debug)) {
    char peer[64];
    conn_.peer_name(peer, sizeof(peer));
    GRELAY_LOG_AT(tls.peer() ? LogLevel::info : LogLevel::debug, "TLS client %s: %s %s%s%s", peer,
                  tls.version(), tls.cipher(), tls.peer() ? ", certificate " : "",
                  tls.peer() ? tls.peer()->description.c_str() : "");
  }
}

void ServerSession::on_teardown() noexcept {
  if (gauge_) gauge_->open.fetch_sub(1, std::memory_order_relaxed);
  gauge_.reset();
  while (ServerStreamHandler* handler = streams_.pop_front()) {
    handler->on_downstream_close(NGHTTP2_CANCEL);
  }
  owner_.on_session_gone(*this);
}

}  // namespace grelay
