#include "relay/call.h"

#include <algorithm>
#include <charconv>
#include <cstdio>

#include "core/grpc_timeout.h"
#include "core/log.h"
#include "core/percent.h"
#include "relay/worker.h"
#include "upstream/backend_session.h"
#include "upstream/cluster.h"

namespace grelay {
namespace {

// A REFUSED_STREAM call is replayed on another connection at most this many times.
constexpr uint32_t max_refused_retries = 3;
// Request metadata larger than this is not forwarded (RESOURCE_EXHAUSTED): backends and
// HTTP/2 libraries commonly refuse header blocks past 64 KiB.
constexpr size_t max_request_header_bytes = 64 * 1024;
// Request bytes kept after sending, until the backend answers, so a stream it refused can be
// replayed. A call that sends more before any answer can no longer be replayed.
constexpr size_t replay_limit = 64 * 1024;

bool is_grpc_content_type(std::string_view ct) noexcept {
  constexpr std::string_view grpc = "application/grpc";
  if (ct.substr(0, grpc.size()) != grpc) return false;
  return ct.size() == grpc.size() || ct[grpc.size()] == '+' || ct[grpc.size()] == ';';
}

// Copies |length| bytes of |from|, starting |offset| bytes in, to |to| and reports them to
// |frames|. |offset| + |length| is at most a replay buffer and one DATA frame's payload, far
// less than 16 chunks.
void copy_range(const ChunkChain& from, size_t offset, size_t length, ChunkChain& to,
                GrpcFrameTracker* frames) noexcept {
  iovec iov[16];
  int n = from.peek(iov, 16, offset + length);
  for (int i = 0; i < n; ++i) {
    auto* base = static_cast<const uint8_t*>(iov[i].iov_base);
    size_t len = iov[i].iov_len;
    if (offset >= len) {
      offset -= len;
      continue;
    }
    base += offset;
    len -= offset;
    offset = 0;
    to.append(base, len);
    if (frames) frames->advance(base, len);
  }
}

// The grpc-status and grpc-message fields of a relay-made status.
struct StatusFields {
  StatusFields(StatusCode status, const std::string& message)
      : encoded(percent_encode_grpc_message(message)) {
    std::snprintf(code, sizeof(code), "%d", static_cast<int>(status));
  }
  void add_to(NvArray& nva) const {
    nva.add("grpc-status", code);
    if (!encoded.empty()) nva.add("grpc-message", encoded);
  }
  char code[4];
  std::string encoded;
};

}  // namespace

Call::Call(Worker& worker, ServerSession& downstream, int32_t stream_id) noexcept
    : worker_(worker),
      snapshot_(worker.snapshot()),
      downstream_(&downstream),
      stream_id_(stream_id),
      request_body_(downstream.pool()),
      response_body_(downstream.pool()) {}

Call::~Call() {
  worker_.deadlines().remove(*this);
  cancel_wait();
  release_upstream(NGHTTP2_CANCEL);
  // Request bytes never forwarded still hold the client's connection window.
  downstream_->consume(stream_id_, request_body_.size() - consumed_prefix_);
}

// --- client side -------------------------------------------------------------------------

void Call::on_request_header(nghttp2_rcbuf* name, nghttp2_rcbuf* value) noexcept {
  request_header_bytes_ += rcbuf_view(name).size() + rcbuf_view(value).size() + 32;
  // Past the limit the fields are not kept: the call is refused when the block ends.
  if (request_header_bytes_ <= max_request_header_bytes) request_headers_.add(name, value);
}

void Call::on_request_headers_end() noexcept {
  if (request_header_bytes_ > max_request_header_bytes) {
    finish(StatusCode::resource_exhausted,
           "request metadata of " + std::to_string(request_header_bytes_) +
               " bytes is over the relay's limit of " + std::to_string(max_request_header_bytes));
    return;
  }
  std::string_view method = request_headers_.get(":method");
  std::string_view path = request_headers_.get(":path");
  if (method != "POST") {
    reject_http("405", StatusCode::internal,
                "method " + std::string(method) + " not allowed: gRPC calls use POST");
    return;
  }
  std::string_view content_type = request_headers_.get("content-type");
  if (!is_grpc_content_type(content_type)) {
    reject_http("415", StatusCode::internal,
                "invalid gRPC request content-type '" + std::string(content_type) + "'");
    return;
  }
  route_ = snapshot_->router().match(path, request_headers_.get(":authority"));
  if (!route_) {
    finish(StatusCode::unimplemented, "no route for " + std::string(path));
    return;
  }
  std::optional<std::chrono::nanoseconds> timeout;
  if (request_headers_.has("grpc-timeout")) {
    std::string_view text = request_headers_.get("grpc-timeout");
    timeout = parse_grpc_timeout(text);
    if (!timeout) {
      finish(StatusCode::internal, "malformed grpc-timeout '" + std::string(text) + "'");
      return;
    }
  }
  if (route_->timeout) {
    auto cap = std::chrono::duration_cast<std::chrono::nanoseconds>(*route_->timeout);
    timeout = timeout ? std::min(*timeout, cap) : cap;
  }
  if (timeout) {
    // The deadline starts now, when the request arrives.
    deadline_ns_ = uv_hrtime() + static_cast<uint64_t>(timeout->count());
    uint64_t ms = static_cast<uint64_t>((timeout->count() + 999999) / 1000000);
    deadline_ms_ = uv_now(worker_.loop()) + ms;
  }
  // The route's stream_idle_timeout wins over the listener's ("off" is 0).
  const auto& idle = route_->stream_idle_timeout ? route_->stream_idle_timeout
                                                 : downstream_->listener().stream_idle_timeout;
  if (idle && idle->count() > 0) {
    idle_timeout_ms_ = static_cast<uint64_t>(idle->count());
    last_activity_ms_ = uv_now(worker_.loop());
  }
  arm_timer();
  cluster_ = &snapshot_->cluster(route_->cluster_index);
  start_upstream();
}

void Call::on_request_data(const uint8_t* data, size_t len) noexcept {
  if (idle_timeout_ms_) last_activity_ms_ = uv_now(worker_.loop());
  if (upstream_done_ || response_ == Response::done) {
    downstream_->consume(stream_id_, len);
    return;
  }
  request_body_.append(data, len);
  if (upstream_) upstream_->resume(upstream_id_);
}

void Call::on_request_end() noexcept {
  request_ended_ = true;
  if (upstream_) upstream_->resume(upstream_id_);
}

void Call::on_downstream_close(uint32_t error_code) noexcept {
  if (upstream_ && error_code != NGHTTP2_NO_ERROR) {
    GRELAY_LOG_DEBUG("stream %d: client closed (%s); cancelling the backend stream", stream_id_,
                     nghttp2_http2_strerror(error_code));
  }
  // The destructor resets a backend stream still open with CANCEL.
  delete this;
}

ssize_t Call::read_response_body(size_t length, uint32_t* data_flags) noexcept {
  if (!response_body_.empty()) {
    *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    return static_cast<ssize_t>(std::min(length, response_body_.size()));
  }
  if (relay_end_) {
    response_ = Response::done;
    // Trailers after half a message would hand the client a corrupt message: reset instead.
    if (!response_frames_.at_boundary()) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
    StatusFields fields(relay_status_, relay_message_);
    NvArray nva;
    fields.add_to(nva);
    downstream_->submit_trailer(stream_id_, nva.data(), nva.size());
    return 0;
  }
  if (response_ended_) {
    response_ = Response::done;
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    if (!trailers_.empty()) {
      *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      NvArray nva;
      for (const auto& f : trailers_.fields()) {
        std::string_view name = rcbuf_view(f.name);
        if (name.empty() || name[0] == ':' || is_hop_by_hop(name)) continue;
        nva.add(name, rcbuf_view(f.value));
      }
      downstream_->submit_trailer(stream_id_, nva.data(), nva.size());
    }
    return 0;
  }
  return NGHTTP2_ERR_DEFERRED;
}

void Call::write_response_body(ChunkChain& out, size_t length) noexcept {
  copy_range(response_body_, 0, length, out, &response_frames_);
  response_body_.drain(length);
  if (upstream_) upstream_->consume(upstream_id_, length);
}

// --- backend side ------------------------------------------------------------------------

void Call::start_upstream() noexcept {
  ++attempts_;
  cluster_->open_stream(*this);
}

bool Call::retryable() const noexcept {
  return replayable_ && response_ == Response::none && !upstream_done_;
}

void Call::drop_replay() noexcept {
  if (replay_offset_ > 0) replayable_ = false;
  request_body_.drain(replay_offset_);
  consumed_prefix_ -= replay_offset_;
  replay_offset_ = 0;
}

void Call::on_upstream_ready(BackendSession& session) noexcept {
  if (upstream_done_ || response_ == Response::done) return;
  NvArray nva;
  for (const auto& f : request_headers_.fields()) {
    std::string_view name = rcbuf_view(f.name);
    if (is_hop_by_hop(name) || name == "grpc-timeout") continue;
    nva.add(name, rcbuf_view(f.value));
  }
  nva.add("te", "trailers");
  std::string timeout;
  if (deadline_ns_ != 0) {
    uint64_t now = uv_hrtime();
    auto remaining = std::chrono::nanoseconds(deadline_ns_ > now ? deadline_ns_ - now : 0);
    timeout = format_grpc_timeout(remaining);
    nva.add("grpc-timeout", timeout);
  }
  int32_t id = session.submit_request(nva.data(), nva.size(), this);
  if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE && retryable()) {
    // This connection used up its stream ids: it takes no more calls; another one does.
    session.retire();
    start_upstream();
    return;
  }
  if (id < 0) {
    upstream_done_ = true;
    finish(StatusCode::unavailable,
           std::string("cannot open a backend stream: ") + nghttp2_strerror(id));
    return;
  }
  upstream_ = &session;
  upstream_id_ = id;
}

void Call::on_upstream_failed(StatusCode status, const std::string& why) noexcept {
  if (upstream_done_ || response_ != Response::none) return;
  // Nothing reached a backend yet: another endpoint may take the call.
  if (attempts_ < cluster_->endpoint_count() && retryable()) {
    replay_offset_ = 0;
    start_upstream();
    return;
  }
  upstream_done_ = true;
  finish(status, why);
}

void Call::on_response_header(nghttp2_rcbuf* name, nghttp2_rcbuf* value,
                              bool later_block) noexcept {
  (later_block && final_headers_seen_ ? trailers_ : response_headers_).add(name, value);
}

void Call::on_response_headers_end(bool end_stream) noexcept {
  // Trailers end the response through on_response_end().
  if (final_headers_seen_ || response_ != Response::none) return;
  std::string_view status_text = response_headers_.get(":status");
  int http_status = 0;
  std::from_chars(status_text.data(), status_text.data() + status_text.size(), http_status);
  if (http_status >= 100 && http_status < 200) {
    response_headers_.clear();
    return;
  }
  final_headers_seen_ = true;
  // The backend processed the request: it will not be replayed.
  drop_replay();
  if (http_status != 200 && !response_headers_.has("grpc-status")) {
    release_upstream(NGHTTP2_CANCEL);
    finish(status_from_http(http_status),
           "backend answered HTTP " + std::string(status_text) + " without a gRPC status");
    return;
  }
  forward_response_headers(end_stream);
}

void Call::forward_response_headers(bool end_stream) noexcept {
  NvArray nva;
  for (const auto& f : response_headers_.fields()) {
    std::string_view name = rcbuf_view(f.name);
    if (is_hop_by_hop(name)) continue;
    nva.add(name, rcbuf_view(f.value));
  }
  // A Trailers-Only answer goes to the client as it came: one HEADERS frame ending the stream.
  response_ = end_stream ? Response::done : Response::streaming;
  downstream_->submit_response(stream_id_, nva.data(), nva.size(), end_stream ? nullptr : this);
  response_headers_.clear();
}

void Call::on_response_data(const uint8_t* data, size_t len) noexcept {
  if (idle_timeout_ms_) last_activity_ms_ = uv_now(worker_.loop());
  if (response_ != Response::streaming || relay_end_) {
    upstream_->consume(upstream_id_, len);
    return;
  }
  response_body_.append(data, len);
  downstream_->resume(stream_id_);
}

void Call::on_response_end() noexcept {
  response_ended_ = true;
  if (response_ == Response::streaming) downstream_->resume(stream_id_);
}

void Call::on_upstream_close(uint32_t error_code) noexcept {
  BackendSession* session = upstream_;
  upstream_ = nullptr;
  // The stream is gone: bytes still buffered need no backend window any more.
  if (session) session->consume(upstream_id_, response_body_.size());
  if (response_ended_ || response_ == Response::done) {
    upstream_done_ = true;
    return;
  }
  if (error_code == NGHTTP2_REFUSED_STREAM && retryable() &&
      attempts_ < max_refused_retries + cluster_->endpoint_count()) {
    // The backend never processed the stream: replaying it, from the first byte, is safe.
    replay_offset_ = 0;
    start_upstream();
    return;
  }
  upstream_done_ = true;
  if (error_code == h2_connection_lost) {
    finish(StatusCode::unavailable, "backend connection lost");
  } else {
    finish(status_from_h2_error(error_code),
           std::string("backend reset the stream: ") + nghttp2_http2_strerror(error_code));
  }
}

ssize_t Call::read_request_body(size_t length, uint32_t* data_flags) noexcept {
  size_t available = request_body_.size() - replay_offset_;
  if (available > 0) {
    *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    return static_cast<ssize_t>(std::min(length, available));
  }
  if (request_ended_) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return 0;
  }
  return NGHTTP2_ERR_DEFERRED;
}

void Call::write_request_body(ChunkChain& out, size_t length) noexcept {
  copy_range(request_body_, replay_offset_, length, out, nullptr);
  replay_offset_ += length;
  // The client gets window back once, for bytes a replay sends again too.
  if (replay_offset_ > consumed_prefix_) {
    downstream_->consume(stream_id_, replay_offset_ - consumed_prefix_);
    consumed_prefix_ = replay_offset_;
  }
  if (!replayable_ || replay_offset_ > replay_limit) drop_replay();
}

// --- endings -----------------------------------------------------------------------------

void Call::arm_timer() noexcept {
  uint64_t at = deadline_ms_;
  if (idle_timeout_ms_) {
    uint64_t idle_at = last_activity_ms_ + idle_timeout_ms_;
    at = at ? std::min(at, idle_at) : idle_at;
  }
  if (at) worker_.deadlines().add(*this, at);
}

void Call::on_expire(const char* why) noexcept {
  release_upstream(NGHTTP2_CANCEL);
  finish(StatusCode::unavailable, why, true);
}

void Call::on_deadline() noexcept {
  uint64_t now = uv_now(worker_.loop());
  if (deadline_ms_ == 0 || now < deadline_ms_) {
    if (!idle_timeout_ms_ || response_ == Response::done) return;
    // Frames moved since the check was armed: look again when the stream may be idle.
    if (now < last_activity_ms_ + idle_timeout_ms_) {
      arm_timer();
      return;
    }
    GRELAY_LOG_DEBUG("stream %d: no frame for stream_idle_timeout; resetting", stream_id_);
    release_upstream(NGHTTP2_CANCEL);
    finish(StatusCode::unavailable,
           "stream idle for " + std::to_string(idle_timeout_ms_) + " ms (stream_idle_timeout)",
           true);
    return;
  }
  GRELAY_LOG_DEBUG("stream %d: deadline exceeded; cancelling the backend stream", stream_id_);
  release_upstream(NGHTTP2_CANCEL);
  finish(StatusCode::deadline_exceeded, "deadline exceeded", true);
}

void Call::release_upstream(uint32_t error_code) noexcept {
  cancel_wait();
  upstream_done_ = true;
  if (!upstream_) return;
  BackendSession* session = upstream_;
  upstream_ = nullptr;
  session->reset(upstream_id_, *this, error_code);
  session->consume(upstream_id_, response_body_.size());
}

void Call::finish(StatusCode status, const std::string& message, bool drop_pending) noexcept {
  if (response_ == Response::done) return;
  if (upstream_) release_upstream(NGHTTP2_CANCEL);
  upstream_done_ = true;
  if (drop_pending || response_ == Response::none) response_body_.clear();
  if (response_ == Response::none) {
    reject_http("200", status, message);
    return;
  }
  relay_end_ = true;
  relay_status_ = status;
  relay_message_ = message;
  downstream_->resume(stream_id_);
}

void Call::reject_http(const char* http_status, StatusCode status,
                       const std::string& message) noexcept {
  upstream_done_ = true;
  response_ = Response::done;
  StatusFields fields(status, message);
  NvArray nva;
  nva.add(":status", http_status);
  nva.add("content-type", "application/grpc");
  fields.add_to(nva);
  downstream_->submit_response(stream_id_, nva.data(), nva.size(), nullptr);
}

}  // namespace grelay
