#include "h2/h2_session.h"

#include "core/log.h"

namespace grelay {

struct H2SessionCallbacks {
  static ssize_t send(nghttp2_session*, const uint8_t* data, size_t len, int,
                      void* user_data) noexcept {
    auto* self = static_cast<H2Session*>(user_data);
    self->conn_.output().append(data, len);
    return static_cast<ssize_t>(len);
  }

  static int send_data(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd,
                       size_t length, nghttp2_data_source* source, void* user_data) noexcept {
    // Never WOULDBLOCK here: nghttp2 would keep the frame and call back later, when its
    // source may be gone. Backpressure happens before, in the read callbacks.
    auto* self = static_cast<H2Session*>(user_data);
    ChunkChain& out = self->conn_.output();
    out.append(framehd, 9);
    if (frame->data.padlen > 0) {
      // Sessions never pad, so padlen stays 0; kept correct should that change.
      uint8_t pad_len = static_cast<uint8_t>(frame->data.padlen - 1);
      out.append(&pad_len, 1);
    }
    self->write_body(source, out, length);
    if (frame->data.padlen > 1) {
      static const uint8_t zeros[256] = {};
      out.append(zeros, frame->data.padlen - 1);
    }
    return 0;
  }
};

void set_common_callbacks(nghttp2_session_callbacks* cbs) noexcept {
  nghttp2_session_callbacks_set_send_callback(cbs, H2SessionCallbacks::send);
  nghttp2_session_callbacks_set_send_data_callback(cbs, H2SessionCallbacks::send_data);
}

H2Session::H2Session(uv_loop_t* loop, ChunkPool& pool, FlushQueue& flush_queue, nghttp2_mem* mem,
                     bool eager_connection_window) noexcept
    : conn_(loop, pool, *this),
      mem_(mem),
      pool_(pool),
      flush_queue_(flush_queue),
      eager_connection_window_(eager_connection_window) {}

H2Session::~H2Session() {
  flush_queue_.remove(*this);
}

bool H2Session::start_session(bool server, const nghttp2_session_callbacks* callbacks,
                              std::initializer_list<nghttp2_settings_entry> extra) noexcept {
  nghttp2_option* raw_option = nullptr;
  if (nghttp2_option_new(&raw_option) != 0) return false;
  NgOptionPtr option(raw_option);
  // Window updates follow what was written to the other side, not what arrived.
  nghttp2_option_set_no_auto_window_update(raw_option, 1);
  // nghttp2 would keep up to max_concurrent_streams closed streams per connection; client
  // sessions keep what RFC 9113 §5.1 needs of them in a ClosedStreams instead.
  nghttp2_option_set_no_closed_streams(raw_option, 1);
  // Requests are checked against HTTP/2's message rules by RequestCheck, in the pass that
  // reads their fields anyway: nghttp2's own checks cost about a tenth of a unary call.
  // Backend answers keep nghttp2's checks.
  if (server) nghttp2_option_set_no_http_messaging(raw_option, 1);
  nghttp2_session* session = nullptr;
  void* self = static_cast<H2Session*>(this);
  int rv = server ? nghttp2_session_server_new3(&session, callbacks, self, raw_option, mem_)
                  : nghttp2_session_client_new3(&session, callbacks, self, raw_option, mem_);
  if (rv != 0) return false;
  session_.reset(session);
  nghttp2_settings_entry settings[8];
  size_t n = 0;
  settings[n++] = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(stream_window_size)};
  settings[n++] = {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, max_frame_size};
  // SETTINGS_NO_RFC7540_PRIORITIES is not sent: nghttp2 would then schedule same-urgency
  // streams one after another (RFC 9218 non-incremental), and one long server stream would
  // starve every other call on its connection.
  for (const nghttp2_settings_entry& entry : extra) {
    if (n < std::size(settings)) settings[n++] = entry;
  }
  if (nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, settings, n) != 0 ||
      nghttp2_session_set_local_window_size(session, NGHTTP2_FLAG_NONE, 0,
                                            connection_window_size) != 0) {
    return false;
  }
  schedule_send();
  return true;
}

void H2Session::schedule_send() noexcept {
  if (!conn_.closing()) flush_queue_.add(*this);
}

void H2Session::on_data_received(size_t n) noexcept {
  if (eager_connection_window_ && n > 0) nghttp2_session_consume_connection(session_.get(), n);
}

void H2Session::consume(int32_t stream_id, size_t n, bool peer_ended) noexcept {
  if (n == 0 || !session_ || conn_.closing()) return;
  if (peer_ended) {
    // The stream's window no longer matters, and finding the stream costs a lookup.
    if (eager_connection_window_) return;
    nghttp2_session_consume_connection(session_.get(), n);
  } else if (eager_connection_window_) {
    // For a stream already closed only the connection part (if any) is left to grant.
    nghttp2_session_consume_stream(session_.get(), stream_id, n);
  } else {
    nghttp2_session_consume(session_.get(), stream_id, n);
  }
  schedule_send();
}

void H2Session::flush_now() noexcept {
  if (conn_.closing() || !session_) return;
  for (;;) {
    int rv = nghttp2_session_send(session_.get());
    if (rv != 0) {
      GRELAY_LOG_DEBUG("h2 send failed: %s", nghttp2_strerror(rv));
      close();
      return;
    }
    conn_.flush();
    if (conn_.closing()) return;
    // The socket took everything: streams paused for the high-water mark may go on.
    if (!conn_.writing() && conn_.output().empty() && resume_paused()) continue;
    break;
  }
  // Reading stopped while the output was piling up; it drained, so read again.
  if (conn_.output().size() < output_high_water) conn_.resume_reading();
  if (!conn_.writing() && conn_.output().empty() &&
      nghttp2_session_want_read(session_.get()) == 0 &&
      nghttp2_session_want_write(session_.get()) == 0) {
    close();
  }
}

bool H2Session::pause_if_backed_up(int32_t stream_id) noexcept {
  if (conn_.output().size() < output_high_water) return false;
  paused_streams_.push_back(stream_id);
  return true;
}

bool H2Session::resume_paused() noexcept {
  if (paused_streams_.empty()) return false;
  std::vector<int32_t> paused;
  paused.swap(paused_streams_);
  for (int32_t id : paused)
    nghttp2_session_resume_data(session_.get(), id);
  return true;
}

bool H2Session::on_read(const uint8_t* data, size_t len) noexcept {
  ssize_t rv = receive(data, len);
  if (rv < 0) {
    GRELAY_LOG_DEBUG("h2 receive failed: %s", nghttp2_strerror(static_cast<int>(rv)));
    // nghttp2 has queued a GOAWAY for protocol errors; try to get it out before closing.
    nghttp2_session_send(session_.get());
    conn_.flush();
    return false;
  }
  flush_now();
  // A peer that sends but never reads would make the relay queue answers for it without end:
  // stop reading it until the output drains.
  if (!conn_.closing() && conn_.output().size() >= read_pause_output) conn_.pause_reading();
  return true;
}

void H2Session::on_read_end(int) noexcept {
  close();
}

void H2Session::on_write_done() noexcept {
  flush_now();
}

void H2Session::close() noexcept {
  flush_queue_.remove(*this);
  conn_.close();
}

void H2Session::on_closed() noexcept {
  on_teardown();
  delete this;
}

}  // namespace grelay
