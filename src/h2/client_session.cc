#include "h2/client_session.h"

#include "core/log.h"

namespace grelay {
namespace {

std::string_view view(nghttp2_rcbuf* buf) noexcept {
  nghttp2_vec v = nghttp2_rcbuf_get_buf(buf);
  return {reinterpret_cast<const char*>(v.base), v.len};
}

ssize_t read_body_cb(nghttp2_session*, int32_t stream_id, uint8_t*, size_t length,
                     uint32_t* data_flags, nghttp2_data_source* source, void* user_data) noexcept {
  if (static_cast<H2Session*>(user_data)->pause_if_backed_up(stream_id)) {
    return NGHTTP2_ERR_DEFERRED;
  }
  return static_cast<ClientStreamHandler*>(source->ptr)->read_request_body(length, data_flags);
}

}  // namespace

struct ClientSessionCallbacks {
  static ClientSession* self(void* user_data) noexcept {
    return static_cast<ClientSession*>(static_cast<H2Session*>(user_data));
  }
  static ClientStreamHandler* handler_of(void* user_data, int32_t stream_id) noexcept {
    return static_cast<ClientStreamHandler*>(self(user_data)->stream_data(stream_id));
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, nghttp2_rcbuf* name,
                       nghttp2_rcbuf* value, uint8_t, void* user_data) noexcept {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    auto* handler = handler_of(user_data, frame->hd.stream_id);
    if (!handler) return 0;
    const std::string_view n = view(name);
    const FieldName f = classify_field(n);
    switch (handler->response_check_.on_field(f, n, view(value))) {
      case ResponseCheck::Verdict::pass:
        handler->on_response_header(name, value, f, frame->headers.cat == NGHTTP2_HCAT_HEADERS);
        break;
      case ResponseCheck::Verdict::drop:
        break;
      case ResponseCheck::Verdict::malformed:
        self(user_data)->reject_malformed(frame->hd.stream_id, *handler);
        break;
    }
    return 0;
  }

  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) noexcept {
    if (int rv = self(user_data)->check_budgets(*frame)) return rv;
    switch (frame->hd.type) {
      case NGHTTP2_GOAWAY:
        self(user_data)->on_goaway(
            frame->goaway.error_code,
            std::string_view(reinterpret_cast<const char*>(frame->goaway.opaque_data),
                             frame->goaway.opaque_data_len));
        return 0;
      case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK) self(user_data)->on_ping_ack();
        return 0;
      case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK)) {
          self(user_data)->max_concurrent_streams_ = nghttp2_session_get_remote_settings(
              self(user_data)->ng(), NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
          self(user_data)->on_remote_settings();
        }
        return 0;
      case NGHTTP2_HEADERS:
      case NGHTTP2_DATA:
        break;
      default:
        return 0;
    }
    auto* handler = handler_of(user_data, frame->hd.stream_id);
    if (!handler) return 0;
    bool end_stream = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (frame->hd.type == NGHTTP2_HEADERS ? !handler->response_check_.on_headers_end(end_stream)
                                          : end_stream && !handler->response_check_.on_end()) {
      self(user_data)->reject_malformed(frame->hd.stream_id, *handler);
      return 0;
    }
    if (frame->hd.type == NGHTTP2_HEADERS) {
      // After an informational (1xx) response nghttp2 files the final response under
      // NGHTTP2_HCAT_HEADERS, like trailers; the handler tells them apart.
      handler->on_response_headers_end(end_stream);
      handler = handler_of(user_data, frame->hd.stream_id);
      if (!handler) return 0;
    }
    if (end_stream) handler->on_response_end();
    return 0;
  }

  static int on_data_chunk_recv(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data,
                                size_t len, void* user_data) noexcept {
    self(user_data)->on_data_received(len);
    auto* handler = handler_of(user_data, stream_id);
    if (handler && !handler->response_check_.on_data(len)) {
      // DATA before the final answer, or past its content-length.
      self(user_data)->reject_malformed(stream_id, *handler);
      handler = nullptr;
    }
    if (handler) {
      handler->on_response_data(data, len);
    } else {
      self(user_data)->consume(stream_id, len);
    }
    return 0;
  }

  static int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* user_data) noexcept {
    if (frame->hd.type == NGHTTP2_GOAWAY) self(user_data)->on_goaway_sent(*frame);
    return 0;
  }

  static int on_stream_close(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                             void* user_data) noexcept {
    if (auto* handler = handler_of(user_data, stream_id)) {
      self(user_data)->clear_closing_stream_data(stream_id);
      self(user_data)->streams_.erase(*handler);
      self(user_data)->on_stream_count_changed();
      handler->on_upstream_close(error_code);
    }
    self(user_data)->on_stream_closed();
    return 0;
  }

  static nghttp2_session_callbacks* table() noexcept {
    static NgCallbacksPtr callbacks = [] {
      nghttp2_session_callbacks* cbs = nullptr;
      nghttp2_session_callbacks_new(&cbs);
      set_common_callbacks(cbs);
      nghttp2_session_callbacks_set_on_header_callback2(cbs, on_header);
      nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
      nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv);
      nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
      nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
      return NgCallbacksPtr(cbs);
    }();
    return callbacks.get();
  }
};

ClientSession::ClientSession(uv_loop_t* loop, ChunkPool& pool, FlushQueue& flush_queue,
                             nghttp2_mem* mem) noexcept
    : H2Session(loop, pool, flush_queue, mem, /*eager_connection_window=*/true) {}

bool ClientSession::start() noexcept {
  if (!start_session(false, ClientSessionCallbacks::table(), {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}})) {
    return false;
  }
  max_concurrent_streams_ =
      nghttp2_session_get_remote_settings(ng(), NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  return true;
}

int32_t ClientSession::submit_request(const nghttp2_nv* nva, size_t nvlen,
                                      ClientStreamHandler* handler) noexcept {
  nghttp2_data_provider provider;
  provider.source.ptr = handler;
  provider.read_callback = read_body_cb;
  int32_t id = nghttp2_submit_request(session_.get(), nullptr, nva, nvlen, &provider, handler);
  if (id > 0) {
    // The handler may have had a stream before (a retried call): the answer starts afresh.
    handler->response_check_ = ResponseCheck();
    forget_stream_data(id);
    streams_.push_front(*handler);
    schedule_send();
  }
  return id;
}

void ClientSession::queue_request(ClientStreamHandler& handler) noexcept {
  ++streams_submitted_;
  unsubmitted_.push_back(handler);
  on_stream_count_changed();
  schedule_send();
}

void ClientSession::before_send() noexcept {
  // A handler may queue another one (a retry on this connection) while it submits; it is
  // served in this same pass.
  while (ClientStreamHandler* handler = unsubmitted_.pop_front()) {
    const size_t queued_count = stream_count() + 1;
    handler->on_submit(*this);
    // A request submitted moves from the queue to the open streams: the count changed only
    // if the handler gave up instead.
    if (stream_count() != queued_count) on_stream_count_changed();
  }
}

void ClientSession::resume(int32_t stream_id) noexcept {
  if (closed()) return;
  nghttp2_session_resume_data(session_.get(), stream_id);
  schedule_send();
}

void ClientSession::reset(int32_t stream_id, ClientStreamHandler& handler,
                          uint32_t error_code) noexcept {
  if (stream_id == 0) {
    unsubmitted_.erase(handler);
    on_stream_count_changed();
    return;
  }
  streams_.erase(handler);
  on_stream_count_changed();
  // Requests are submitted right before nghttp2 writes, so the stream is open and found by
  // one lookup; a request nghttp2 still holds (the backend lowered its stream limit) is found
  // in its short queue of unsent ones. nghttp2 would otherwise report the stream's close to
  // |handler| later, by the pointer given at submit time.
  set_stream_data(stream_id, nullptr);
  if (closed()) return;
  nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE, stream_id, error_code);
  schedule_send();
}

void ClientSession::reject_malformed(int32_t stream_id, ClientStreamHandler& handler) noexcept {
  GRELAY_LOG_DEBUG("backend stream %d: malformed answer; resetting it with PROTOCOL_ERROR",
                   stream_id);
  streams_.erase(handler);
  on_stream_count_changed();
  set_stream_data(stream_id, nullptr);
  nghttp2_submit_rst_stream(session_.get(), NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_PROTOCOL_ERROR);
  schedule_send();
  handler.on_upstream_close(h2_malformed_answer);
}

void ClientSession::ping() noexcept {
  if (closed() || !session_) return;
  nghttp2_submit_ping(session_.get(), NGHTTP2_FLAG_NONE, nullptr);
  schedule_send();
}

void ClientSession::write_body(nghttp2_data_source* source, ChunkChain& out,
                               size_t length) noexcept {
  static_cast<ClientStreamHandler*>(source->ptr)->write_request_body(out, length);
}

void ClientSession::fail_all_streams(uint32_t error_code) noexcept {
  while (ClientStreamHandler* handler = unsubmitted_.pop_front()) {
    on_stream_count_changed();
    handler->on_upstream_close(NGHTTP2_REFUSED_STREAM);
  }
  while (ClientStreamHandler* handler = streams_.pop_front()) {
    on_stream_count_changed();
    handler->on_upstream_close(error_code);
  }
}

}  // namespace grelay
