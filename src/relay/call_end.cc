#include "relay/call.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include "core/log.h"
#include "core/turn_clock.h"
#include "relay/worker.h"
#include "upstream/backend_session.h"
#include "upstream/cluster.h"

// How a call ends: deadlines and idle streams, the client's close, relay-made statuses, and
// the record of each finished call. The client side is in call.cc, the backend attempts and
// retries in call_attempt.cc.

namespace grelay {

void Call::arm_timer() noexcept {
  uint64_t at = deadline_ms_;
  if (idle_timeout_ms_) {
    uint64_t idle_at = last_activity_ms_ + idle_timeout_ms_;
    at = at ? std::min(at, idle_at) : idle_at;
  }
  if (at) worker_.deadlines().add(*this, at);
}

void Call::on_downstream_close(uint32_t error_code) noexcept {
  if (attempt_.session && error_code != NGHTTP2_NO_ERROR) {
    GRELAY_LOG_DEBUG("stream %d: client closed (%s); cancelling the backend stream", stream_id_,
                     nghttp2_http2_strerror(error_code));
  }
  // A call that ends before its status was decided was cancelled by the client, unless its
  // deadline had passed: a client gives up at its deadline, its reset and the relay's timer
  // race, and the call is the deadline's whichever comes first.
  if (!state_.status_decided()) {
    const bool at_deadline = deadline_passed();
    if (at_deadline && worker_.access_log()) relay_message_ = "deadline exceeded";
    state_.client_closed(at_deadline);
  }
  record_end();
  // The destructor resets a backend stream still open with CANCEL.
  delete this;
}

void Call::on_response_not_sent(int lib_error) noexcept {
  // Whatever status the call was about to end with, the client gets a reset instead.
  release_upstream(NGHTTP2_CANCEL);
  state_.response_not_sent();
  if (worker_.access_log()) {
    relay_message_ = std::string("response headers not sent: ") + nghttp2_strerror(lib_error);
  }
}

void Call::on_expire(const char* why) noexcept {
  release_upstream(NGHTTP2_CANCEL);
  finish(StatusCode::unavailable, why, ErrorReason::connection_expired, true);
}

bool Call::deadline_passed() const noexcept {
  // The timer fires on the loop's millisecond clock, up to a millisecond after the deadline:
  // a reset within that millisecond came at the deadline.
  constexpr uint64_t timer_resolution_ns = 1000000;
  return deadline_ns_ != 0 && TurnClock::now_ns() + timer_resolution_ns >= deadline_ns_;
}

void Call::on_deadline() noexcept {
  uint64_t now = uv_now(worker_.loop());
  if (deadline_ms_ == 0 || now < deadline_ms_) {
    if (!idle_timeout_ms_ || state_.status_decided()) return;
    // Frames moved since the check was armed: look again when the stream may be idle.
    if (now < last_activity_ms_ + idle_timeout_ms_) {
      arm_timer();
      return;
    }
    GRELAY_LOG_DEBUG("stream %d: no frame for stream_idle_timeout; resetting", stream_id_);
    release_upstream(NGHTTP2_CANCEL);
    finish(StatusCode::unavailable,
           "stream idle for " + std::to_string(idle_timeout_ms_) + " ms (stream_idle_timeout)",
           ErrorReason::stream_idle_timeout, true);
    return;
  }
  GRELAY_LOG_DEBUG("stream %d: deadline exceeded; cancelling the backend stream", stream_id_);
  release_upstream(NGHTTP2_CANCEL);
  finish(StatusCode::deadline_exceeded, "deadline exceeded", ErrorReason::deadline_exceeded, true);
}

void Call::finish(StatusCode status, const std::string& message, ErrorReason reason,
                  bool drop_pending) noexcept {
  // The first ending decided wins (CallState says when a client does not get it).
  if (state_.status_decided()) return;
  if (attempt_.session) release_upstream(NGHTTP2_CANCEL);
  state_.discard_request();
  if (drop_pending || state_.response() == Response::none) response_body_.clear();
  if (state_.response() == Response::none) {
    reject_http("200", status, message, reason);
    return;
  }
  state_.relay_end(status, reason);
  relay_message_ = message;
  // The client stream's body callback sends the trailers once the bytes kept are out. It may
  // be deferred, by this Call or by its session's backpressure: it runs again either way.
  downstream_->resume(stream_id_);
}

void Call::reject_http(const char* http_status, StatusCode status, const std::string& message,
                       ErrorReason reason) noexcept {
  state_.discard_request();
  state_.relay_end(status, reason);
  // Kept only for the access log: most relay-made answers are never logged.
  if (worker_.access_log()) relay_message_ = message;
  StatusFields fields(status, message);
  NvArray nva;
  nva.add(":status", http_status);
  nva.add("content-type", "application/grpc");
  fields.add_to(nva);
  downstream_->send_response(stream_id_, nva.data(), nva.size(), nullptr);
}

void Call::record_end() noexcept {
  if (!series_) return;
  uint64_t duration = TurnClock::now_ns() - start_ns_;
  const StatusCode status = state_.status();
  const ErrorReason reason = state_.reason();
  series_->finish(status, duration, request_frames_.messages(), response_frames_.messages(),
                  request_bytes_, response_bytes_);
  if (reason != ErrorReason::none) snapshot_->stats().errors(reason).add();
  AccessLog* log = worker_.access_log();
  if (!log || !log->wants(status)) return;
  AccessLogEntry entry;
  entry.peer = worker_.peer_of(*downstream_);
  entry.authority = request_field(request_index_.authority);
  entry.path = request_field(request_index_.path);
  entry.protocol = call_protocol_name(downstream_->protocol());
  entry.route = series_->route;
  entry.cluster = series_->cluster;
  if (endpoint_stats_) entry.endpoint = endpoint_stats_->address;
  entry.status = status;
  entry.duration_ns = duration;
  entry.request_bytes = request_bytes_;
  entry.response_bytes = response_bytes_;
  entry.request_messages = request_frames_.messages();
  entry.response_messages = response_frames_.messages();
  entry.retries = counts_.retries;
  entry.error = error_reason_name(reason);
  if (reason != ErrorReason::none) entry.message = relay_message_;
  log->append(entry);
}

}  // namespace grelay
