#include "relay/call.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include "core/grpc_timeout.h"
#include "core/log.h"
#include "core/turn_clock.h"
#include "relay/worker.h"
#include "upstream/backend_session.h"
#include "upstream/cluster.h"

// A Call's backend side: its attempts (each an Attempt on a backend stream), the backend's
// answer on the attempt that counts, and the retries, transparent and under the route's
// policy, with their counts. The client side and the request body are in call.cc; endings,
// deadlines and the record of a finished call in call_end.cc.

namespace grelay {
namespace {

// A REFUSED_STREAM call is replayed on another connection at most this many times.
constexpr uint32_t max_refused_retries = 3;

}  // namespace

// --- attempts ----------------------------------------------------------------------------

void Call::start_upstream() noexcept {
  // Each attempt starts afresh: its own stream, replay offset and answer.
  attempt_ = Attempt{};
  if (counts_.start()) count_retry();
  cluster_->open_stream(*this, affinity_);
}

void Call::count_retry() noexcept {
  if (cluster_->stats()) cluster_->stats()->retries.add();
}

bool Call::retryable() const noexcept {
  return replayable_ && state_.response() == Response::none &&
         state_.request() != Request::discarded;
}

void Call::on_upstream_ready(BackendSession& session) noexcept {
  if (state_.request() == Request::discarded || state_.response() == Response::done) return;
  // The request goes out when the backend connection next writes, at the end of this loop
  // turn; a client that resets the call before then costs the backend nothing.
  attempt_.session = &session;
  attempt_.stream_id = 0;
  EndpointStats* endpoint = session.endpoint().stats();
  if (endpoint != endpoint_stats_) {
    if (endpoint_stats_) endpoint_stats_->active_calls.add(-1);
    endpoint_stats_ = endpoint;
    if (endpoint_stats_) endpoint_stats_->active_calls.add(1);
  }
  session.queue_request(*this);
}

void Call::on_upstream_failed(StatusCode status, const std::string& why) noexcept {
  if (state_.request() == Request::discarded || state_.response() != Response::none) return;
  // Nothing reached a backend yet: another endpoint may take the call.
  if (counts_.in_round < cluster_->endpoint_count() && retryable() &&
      status == StatusCode::unavailable) {
    start_upstream();
    return;
  }
  if (retry_attempt(status)) return;
  state_.discard_request();
  finish(status, why, ErrorReason::no_endpoint);
}

void Call::on_response_header(nghttp2_rcbuf* name, nghttp2_rcbuf* value, FieldName f,
                              bool later_block) noexcept {
  const size_t block_bytes =
      attempt_.add_block_field(rcbuf_view(name).size(), rcbuf_view(value).size());
  // Past the limit the fields are not kept: the block is refused when it ends.
  if (block_bytes > downstream_->listener().max_response_metadata) return;
  // Fields of this hop only (te, host: the session's ResponseCheck fails the stream on the
  // others) are not forwarded, so not kept; nor are pseudo-header fields of trailers, which
  // the check refuses too.
  if (is_hop_by_hop(f)) return;
  const bool trailers = later_block && attempt_.answer != Attempt::Answer::none;
  (trailers ? trailers_ : response_headers_).add(name, value);
}

bool Call::response_block_too_large() noexcept {
  const size_t bytes = attempt_.end_block();
  const uint32_t limit = downstream_->listener().max_response_metadata;
  if (bytes <= limit) return false;
  // The client could not be given it (and HTTP/2 libraries refuse blocks past 64 KiB): the
  // call ends with a status of the relay's, and the backend stream is cancelled.
  response_headers_.clear();
  trailers_.clear();
  if (attempt_.session) {
    drop_replay();
    release_upstream(NGHTTP2_CANCEL);
  }
  finish(StatusCode::resource_exhausted,
         "backend response metadata of " + std::to_string(bytes) +
             " bytes is over the relay's limit of " + std::to_string(limit),
         ErrorReason::response_metadata_too_large);
  return true;
}

void Call::on_response_headers_end(bool end_stream) noexcept {
  if (response_block_too_large()) return;
  // Trailers end the response through on_response_end().
  if (attempt_.answer != Attempt::Answer::none || state_.response() != Response::none) return;
  std::string_view status_text = response_headers_.get(":status");
  int http_status = 0;
  std::from_chars(status_text.data(), status_text.data() + status_text.size(), http_status);
  if (http_status >= 100 && http_status < 200) {
    response_headers_.clear();
    return;
  }
  attempt_.answer = Attempt::Answer::headers;
  if (http_status != 200 && !response_headers_.has("grpc-status")) {
    StatusCode status = status_from_http(http_status);
    note_outcome(status);
    if (retry_attempt(status)) return;
    drop_replay();
    release_upstream(NGHTTP2_CANCEL);
    finish(status, "backend answered HTTP " + std::string(status_text) + " without a gRPC status",
           ErrorReason::backend_http_status);
    return;
  }
  if (end_stream) {
    // Trailers-Only: the attempt failed or succeeded without committing anything yet.
    StatusCode status = status_from_grpc_status(response_headers_.get("grpc-status"));
    note_outcome(status);
    if (status != StatusCode::ok &&
        retry_attempt(status, response_headers_.get("grpc-retry-pushback-ms"),
                      response_headers_.has("grpc-retry-pushback-ms"))) {
      return;
    }
  }
  // The backend processed the request: it will not be replayed.
  drop_replay();
  forward_response_headers(end_stream);
}

void Call::forward_response_headers(bool end_stream) noexcept {
  NvArray nva;
  for (const auto& f : response_headers_.fields()) {
    nva.add_kept(f.name, f.value);
  }
  // A Trailers-Only answer goes to the client as it came: one HEADERS frame ending the stream.
  if (end_stream) {
    state_.response_end(status_from_grpc_status(response_headers_.get("grpc-status")));
  } else {
    state_.response_started();
  }
  downstream_->send_response(stream_id_, nva.data(), nva.size(), end_stream ? nullptr : this);
}

void Call::on_response_data(const uint8_t* data, size_t len) noexcept {
  if (idle_timeout_ms_) last_activity_ms_ = uv_now(worker_.loop());
  if (!state_.response_streaming()) {
    attempt_.session->consume(attempt_.stream_id, len);
    return;
  }
  response_body_.append_read(data, len);
  resume_response();
}

void Call::on_response_end() noexcept {
  if (attempt_.answer != Attempt::Answer::ended && state_.response_streaming()) {
    note_outcome(status_from_grpc_status(trailers_.get("grpc-status")));
  }
  attempt_.answer = Attempt::Answer::ended;
  resume_response();
}

void Call::on_upstream_close(uint32_t error_code) noexcept {
  BackendSession* session = attempt_.session;
  attempt_.session = nullptr;
  // The stream is gone: bytes still buffered need no backend window any more.
  if (session) session->consume(attempt_.stream_id, response_body_.size(), /*peer_ended=*/true);
  if (attempt_.answer == Attempt::Answer::ended || state_.response() == Response::done) {
    state_.discard_request();
    return;
  }
  if (error_code == NGHTTP2_REFUSED_STREAM && retryable() &&
      counts_.in_round < max_refused_retries + cluster_->endpoint_count()) {
    // The backend never processed the stream: replaying it, from the first byte, is safe.
    start_upstream();
    return;
  }
  StatusCode status = error_code == h2_connection_lost    ? StatusCode::unavailable
                      : error_code == h2_malformed_answer ? StatusCode::internal
                                                          : status_from_h2_error(error_code);
  if (session && error_code != NGHTTP2_REFUSED_STREAM) {
    attempt_.session = session;
    note_outcome(status);
    attempt_.session = nullptr;
  }
  if (retry_attempt(status)) return;
  state_.discard_request();
  if (error_code == h2_connection_lost) {
    finish(StatusCode::unavailable, "backend connection lost",
           ErrorReason::backend_connection_lost);
  } else if (error_code == h2_malformed_answer) {
    finish(StatusCode::internal,
           "backend answer is malformed (RFC 9113 section 8); the relay reset its stream",
           ErrorReason::backend_malformed);
  } else {
    finish(status_from_h2_error(error_code),
           std::string("backend reset the stream: ") + nghttp2_http2_strerror(error_code),
           ErrorReason::backend_reset);
  }
}

// --- retries -----------------------------------------------------------------------------

void Call::note_outcome(StatusCode status) noexcept {
  if (attempt_.session) cluster_->report(attempt_.session->endpoint(), status);
  if (route_->retry) {
    const auto& on = route_->retry->on;
    bool failure = std::find(on.begin(), on.end(), status) != on.end();
    cluster_->retry_budget(*route_->retry).record(failure);
  }
}

bool Call::retry_attempt(StatusCode status, std::string_view pushback, bool has_pushback) noexcept {
  if (!route_ || !route_->retry || !retryable()) return false;
  const RetryConfig& policy = *route_->retry;
  if (std::find(policy.on.begin(), policy.on.end(), status) == policy.on.end()) return false;
  if (counts_.policy + 1 >= policy.attempts) return false;
  uint64_t delay_ms = 0;
  if (has_pushback) {
    // The backend says when to come back; a malformed or negative value means "do not".
    uint64_t ms = 0;
    auto [end, ec] = std::from_chars(pushback.data(), pushback.data() + pushback.size(), ms);
    if (ec != std::errc() || end != pushback.data() + pushback.size() || pushback.empty()) {
      return false;
    }
    delay_ms = ms;
  } else {
    // Exponential backoff with full jitter.
    uint64_t cap = static_cast<uint64_t>(policy.backoff.count())
                   << std::min<uint32_t>(counts_.policy, 20);
    cap = std::min<uint64_t>(cap, static_cast<uint64_t>(policy.max_backoff.count()));
    delay_ms = cap > 0 ? static_cast<uint64_t>(std::rand()) % (cap + 1) : 0;
  }
  if (deadline_ns_ != 0 && TurnClock::now_ns() + delay_ms * 1000000 >= deadline_ns_) return false;
  if (!cluster_->retry_budget(policy).allows_retry()) {
    GRELAY_LOG_DEBUG("stream %d: retry budget of cluster %s spent; not retrying", stream_id_,
                     cluster_->config().name.c_str());
    return false;
  }
  counts_.start_policy_retry();
  count_retry();
  GRELAY_LOG_DEBUG("stream %d: attempt failed with %s; retry %u in %llu ms", stream_id_,
                   std::string(status_name(status)).c_str(), counts_.policy,
                   static_cast<unsigned long long>(delay_ms));
  detach_for_retry();
  worker_.retry_timers().add(retry_timer_, uv_now(worker_.loop()) + delay_ms);
  return true;
}

void Call::detach_for_retry() noexcept {
  cancel_wait();
  if (attempt_.session) {
    BackendSession* session = attempt_.session;
    attempt_.session = nullptr;
    session->reset(attempt_.stream_id, *this, NGHTTP2_CANCEL);
    session->consume(attempt_.stream_id, response_body_.size());
  }
  // The response kept is the failed attempt's; the next attempt (start_upstream()) starts
  // its own.
  response_headers_.clear();
  trailers_.clear();
  response_body_.clear();
}

void Call::release_upstream(uint32_t error_code) noexcept {
  cancel_wait();
  worker_.retry_timers().remove(retry_timer_);
  state_.discard_request();
  if (!attempt_.session) return;
  BackendSession* session = attempt_.session;
  attempt_.session = nullptr;
  session->reset(attempt_.stream_id, *this, error_code);
  session->consume(attempt_.stream_id, response_body_.size());
}

}  // namespace grelay
