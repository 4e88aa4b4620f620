#include "h2/h2_session.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

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
    self->control_budget_.give(1);
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
  drop_kept();
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
  // Requests are checked against HTTP/2's message rules by RequestCheck, and backend answers
  // by ResponseCheck, in the pass that reads their fields anyway: nghttp2's own checks cost
  // about a tenth of a unary call. ResponseCheck applies nghttp2's rules for answers exactly
  // (test/fuzz/fuzz_response_check.cc holds the two to the same verdicts).
  nghttp2_option_set_no_http_messaging(raw_option, 1);
  nghttp2_option_set_max_continuations(raw_option, max_continuations);
  // Header blocks are bounded by max_request_metadata and max_response_metadata (at most
  // 1 MiB, counted with 32 bytes per field, more than HPACK ever needs); nghttp2's own bound
  // (64 KiB) would otherwise refuse larger ones that the config allows.
  nghttp2_option_set_max_send_header_block_length(raw_option, max_metadata_limit + 1024);
  // Client resets are budgeted by ServerSession, which closes the connection with GOAWAY;
  // nghttp2's own budget would only stop taking new streams and leave it open.
  if (server) nghttp2_option_set_stream_reset_rate_limit(raw_option, UINT64_MAX, 1);
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
  if (!conn_.closing() && !lingering_) flush_queue_.add(*this);
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

void H2Session::consume_stream(int32_t stream_id, size_t n) noexcept {
  if (n == 0 || !session_ || conn_.closing()) return;
  nghttp2_session_consume_stream(session_.get(), stream_id, n);
  schedule_send();
}

void H2Session::flush_now() noexcept {
  if (conn_.closing() || !session_) return;
  if (lingering_) {
    linger_flush();
    return;
  }
  before_send();
  if (conn_.closing() || lingering_) return;
  for (;;) {
    int rv = nghttp2_session_send(session_.get());
    if (rv != 0) {
      fail_session(rv);
      return;
    }
    conn_.flush();
    if (conn_.closing()) return;
    // The socket took everything: streams paused for the high-water mark may go on.
    if (!conn_.writing() && conn_.output().empty() && resume_paused()) continue;
    break;
  }
  // Reading stopped while the output was piling up; it drained, so read again.
  if (conn_.output().size() < output_high_water) {
    conn_.resume_reading();
    if (input_waits_for_output_) {
      input_waits_for_output_ = false;
      flush_queue_.defer_input(*this);
    }
  }
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

void H2Session::start_turn() noexcept {
  const uint64_t turn = flush_queue_.turn();
  if (turn != read_turn_) {
    read_turn_ = turn;
    read_this_turn_ = 0;
    frames_this_turn_ = 0;
  }
}

bool H2Session::may_read() noexcept {
  start_turn();
  return kept_.empty() && read_this_turn_ < read_budget_per_turn &&
         frames_this_turn_ < frame_budget_per_turn;
}

size_t H2Session::feed(const uint8_t* data, size_t len) noexcept {
  size_t done = 0;
  while (done < len && frames_this_turn_ < frame_budget_per_turn) {
    // Closed for abuse: what the peer still sends is not looked at.
    if (closed()) return len;
    const size_t n = std::min(len - done, receive_slice);
    const ssize_t rv = receive(data + done, n);
    if (rv < 0) {
      fail_session(static_cast<int>(rv));
      return len;
    }
    done += n;
  }
  return closed() ? len : done;
}

void H2Session::keep(const uint8_t* data, size_t len) {
  ReadBlock* block = pool_.reading();
  if (block != nullptr && data >= block->data && data + len <= block->data + read_block_size) {
    pool_.hold(block);
    kept_.push_back({block, data, len});
  } else {
    // Not bytes of the read being handled (a connection hands over only those): copied, a
    // block's worth at a time.
    while (len > 0) {
      block = pool_.get_block();
      const size_t n = std::min(len, read_block_size);
      std::memcpy(block->data, data, n);
      kept_.push_back({block, block->data, n});
      data += n;
      len -= n;
    }
  }
  flush_queue_.defer_input(*this);
}

void H2Session::drop_kept() noexcept {
  for (const Kept& kept : kept_)
    ChunkPool::release(kept.block);
  kept_.clear();
}

void H2Session::after_input() noexcept {
  if (closed()) {
    drop_kept();
    return;
  }
  flush_now();
  // A peer that sends but never reads would make the relay queue answers for it without end:
  // stop reading it until the output drains.
  if (!conn_.closing() && !lingering_ && conn_.output().size() >= read_pause_output) {
    conn_.pause_reading();
  }
}

bool H2Session::on_read(const uint8_t* data, size_t len) noexcept {
  start_turn();
  read_this_turn_ += len;
  // Closed for abuse: what the peer still sends is not looked at.
  if (lingering_) return true;
  if (!kept_.empty()) {
    // After input already waiting (a TLS read hands over several blocks): in order.
    keep(data, len);
    return true;
  }
  const size_t done = feed(data, len);
  if (done < len) keep(data + done, len - done);
  after_input();
  return true;
}

void H2Session::resume_kept_input() noexcept {
  if (closed()) {
    drop_kept();
    return;
  }
  if (conn_.output().size() >= read_pause_output) {
    // The peer does not read its answers: its input waits, as its socket does, until the
    // output drains (flush_now() resumes it then).
    input_waits_for_output_ = true;
    return;
  }
  start_turn();
  size_t resumed = 0;
  while (resumed < kept_.size() && !closed()) {
    Kept& kept = kept_[resumed];
    pool_.set_reading(kept.block);
    const size_t done = feed(kept.data, kept.len);
    pool_.set_reading(nullptr);
    if (done < kept.len) {
      kept.data += done;
      kept.len -= done;
      break;
    }
    ChunkPool::release(kept.block);
    ++resumed;
  }
  kept_.erase(kept_.begin(), kept_.begin() + static_cast<ptrdiff_t>(resumed));
  if (!kept_.empty() && !closed()) flush_queue_.defer_input(*this);
  after_input();
  // All taken: the socket may be read again (the next poll finds what waits there).
}

int H2Session::abuse(PeerError why, uint32_t code, const char* debug) noexcept {
  if (!abused_) {
    abused_ = true;
    abuse_ = {why, code, debug};
  }
  return NGHTTP2_ERR_CALLBACK_FAILURE;
}

int H2Session::check_other_budgets(const nghttp2_frame& frame) noexcept {
  switch (frame.hd.type) {
    case NGHTTP2_DATA:
      // An empty one (padlen counts the Pad Length field too: the payload is what is left).
      if (!(frame.hd.flags & NGHTTP2_FLAG_END_STREAM) &&
          ++empty_frames_ > max_empty_frames_in_a_row) {
        return abuse(PeerError::empty_frame_flood, NGHTTP2_ENHANCE_YOUR_CALM,
                     "too many empty frames");
      }
      return 0;
    case NGHTTP2_SETTINGS:
    case NGHTTP2_PING:
      if (frame.hd.flags & NGHTTP2_FLAG_ACK) return 0;
      if (!control_budget_.take(uv_now(loop()))) {
        return abuse(PeerError::control_frame_flood, NGHTTP2_ENHANCE_YOUR_CALM,
                     "too many control frames");
      }
      return 0;
    default:
      return 0;
  }
}

void H2Session::on_goaway_sent(const nghttp2_frame& frame) noexcept {
  // The relay's own GOAWAYs through nghttp2 (drain, idle, a retired backend connection) say
  // NO_ERROR; any other one is nghttp2 ending the connection for a protocol error.
  if (frame.goaway.error_code == NGHTTP2_NO_ERROR) return;
  char peer[64];
  conn_.peer_name(peer, sizeof(peer));
  char detail[96];
  std::snprintf(detail, sizeof(detail), "HTTP/2 error %s",
                nghttp2_http2_strerror(frame.goaway.error_code));
  report_peer_error(side(), PeerError::protocol_error, peer, detail);
}

void H2Session::fail_session(int rv) noexcept {
  if (abused_) {
    close_for(abuse_.why, abuse_.code, abuse_.debug);
  } else if (rv == NGHTTP2_ERR_FLOODED) {
    // The peer sends SETTINGS or PINGs (or makes the relay reset streams) faster than it
    // reads their acknowledgements.
    close_for(PeerError::control_frame_flood, NGHTTP2_ENHANCE_YOUR_CALM, "too many control frames");
  } else if (rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS) {
    close_for(PeerError::continuation_flood, NGHTTP2_ENHANCE_YOUR_CALM,
              "too many CONTINUATION frames");
  } else {
    close_for(PeerError::protocol_error, NGHTTP2_PROTOCOL_ERROR, nghttp2_strerror(rv));
  }
}

void H2Session::close_for(PeerError why, uint32_t code, const char* debug) noexcept {
  if (conn_.closing() || lingering_) return;
  char peer[64];
  conn_.peer_name(peer, sizeof(peer));
  report_peer_error(side(), why, peer, debug);
  lingering_ = true;
  flush_queue_.remove(*this);
  conn_.stop_timer();
  const size_t debug_len = std::min<size_t>(std::strlen(debug), 128);
  const uint32_t last_stream_id =
      session_ ? static_cast<uint32_t>(nghttp2_session_get_last_proc_stream_id(session_.get())) : 0;
  uint8_t goaway[9 + 8 + 128];
  const size_t length = 8 + debug_len;
  goaway[0] = static_cast<uint8_t>(length >> 16);
  goaway[1] = static_cast<uint8_t>(length >> 8);
  goaway[2] = static_cast<uint8_t>(length);
  goaway[3] = NGHTTP2_GOAWAY;
  goaway[4] = 0;
  std::memset(goaway + 5, 0, 4);
  for (int i = 0; i < 4; ++i) {
    goaway[9 + i] = static_cast<uint8_t>(last_stream_id >> (24 - 8 * i));
    goaway[13 + i] = static_cast<uint8_t>(code >> (24 - 8 * i));
  }
  std::memcpy(goaway + 17, debug, debug_len);
  conn_.output().append(goaway, 9 + length);
  conn_.start_timer(linger_ms);
  linger_flush();
}

void H2Session::linger_flush() noexcept {
  conn_.flush();
  if (conn_.closing()) return;
  // FIN once the GOAWAY is out: closing with unread input would send RST, which can make the
  // peer drop the GOAWAY unread. The socket closes at the peer's EOF or after linger_ms.
  if (!conn_.writing() && conn_.output().empty()) conn_.shutdown_write();
}

void H2Session::on_timer() noexcept {
  if (lingering_) {
    close();
    return;
  }
  on_session_timer();
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
