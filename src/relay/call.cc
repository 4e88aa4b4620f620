#include "relay/call.h"

#include <algorithm>
#include <charconv>

#include "core/block_cache.h"
#include "core/grpc_timeout.h"
#include "core/log.h"
#include "core/turn_clock.h"
#include "relay/admission.h"
#include "relay/worker.h"
#include "upstream/backend_session.h"
#include "upstream/cluster.h"

// A Call's client side: the request's headers (admission, then the start of the splice) and
// body, and the response body sent to the client; then the request as sent to a backend, kept
// for a replay until the backend answers. Backend attempts and retries are in
// call_attempt.cc, endings in call_end.cc.

namespace grelay {
namespace {

// Request bytes kept after sending, until the backend answers, so a stream it refused can be
// replayed. A call that sends more before any answer can no longer be replayed.
constexpr size_t replay_limit = 64 * 1024;

// Calls come and go by the thousand per second on a worker: their memory is reused.
using CallBlocks = BlockCache<sizeof(Call), 1024>;

// Request fields the relay does not pass on as they came.
bool unforwarded(FieldName f) noexcept {
  return is_hop_by_hop(f) || f == FieldName::grpc_timeout;
}

}  // namespace

// Call is final, so every Call is exactly sizeof(Call) bytes.
void* Call::operator new(size_t) {
  return CallBlocks::take();
}

void Call::operator delete(void* p) noexcept {
  CallBlocks::give(p);
}

Call::Call(Worker& worker, Downstream& downstream, int32_t stream_id) noexcept
    : worker_(worker),
      snapshot_(worker.snapshot()),
      downstream_(&downstream),
      stream_id_(stream_id),
      request_body_(worker.pool()),
      response_body_(worker.pool()),
      start_ns_(TurnClock::now_ns()),
      replay_limit_(replay_limit) {}

Call::~Call() {
  if (endpoint_stats_) endpoint_stats_->active_calls.add(-1);
  if (listener_calls_) listener_calls_->add(-1);
  if (holds_share_) worker_.release_share(*downstream_, *cluster_);
  if (series_ && cluster_) cluster_->stats()->active_calls.add(-1);
  worker_.deadlines().remove(*this);
  worker_.retry_timers().remove(retry_timer_);
  cancel_wait();
  release_upstream(NGHTTP2_CANCEL);
  // Request bytes never forwarded still hold the client's connection window.
  downstream_->give_credit(stream_id_, request_body_.size() - consumed_prefix_, false);
}

// --- client side -------------------------------------------------------------------------

void Call::on_request_header(nghttp2_rcbuf* name, nghttp2_rcbuf* value, FieldName f,
                             std::string_view n, std::string_view v) noexcept {
  request_header_bytes_ += n.size() + v.size() + 32;
  // Past the limit the fields are not kept: the call is refused when the block ends.
  if (request_header_bytes_ > downstream_->listener().max_request_metadata) return;
  const auto index = static_cast<uint16_t>(request_headers_.fields().size());
  request_headers_.add(name, value, n, v);
  uint16_t* slot = nullptr;
  switch (f) {
    case FieldName::other:
      return;
    case FieldName::host:
      slot = &request_index_.host;
      break;
    case FieldName::path:
      slot = &request_index_.path;
      break;
    case FieldName::method:
      slot = &request_index_.method;
      break;
    case FieldName::authority:
      slot = &request_index_.authority;
      break;
    case FieldName::content_type:
      slot = &request_index_.content_type;
      break;
    case FieldName::grpc_timeout:
      slot = &request_index_.grpc_timeout;
      break;
    default:
      break;
  }
  if (slot && *slot == RequestFieldIndex::none) *slot = index;
  if (index < 64 && unforwarded(f)) unforwarded_ |= uint64_t{1} << index;
}

std::string_view Call::request_field(uint16_t index) const noexcept {
  if (index == RequestFieldIndex::none) return {};
  return request_headers_.at(index).value;
}

RequestHead Call::request_head() const noexcept {
  RequestHead head;
  head.method = request_field(request_index_.method);
  head.path = request_field(request_index_.path);
  head.authority =
      request_field(request_index_.authority != RequestFieldIndex::none ? request_index_.authority
                                                                        : request_index_.host);
  head.content_type = request_field(request_index_.content_type);
  return head;
}

// The steps of on_request_headers_end(), inline: each runs once per call.
inline AdmissionRequest Call::admission_request() noexcept {
  AdmissionRequest request;
  request.metadata_bytes = request_header_bytes_;
  request.max_metadata = downstream_->listener().max_request_metadata;
  // Past the limit the fields were not all kept: admission reads no other.
  if (request.metadata_bytes > request.max_metadata) return request;
  // A request may name its authority in host instead (RFC 9113 §8.3.1).
  if (request_index_.authority == RequestFieldIndex::none) {
    request_index_.authority = request_index_.host;
  }
  request.method = request_field(request_index_.method);
  request.path = request_field(request_index_.path);
  request.authority = request_field(request_index_.authority);
  request.content_type = request_field(request_index_.content_type);
  if (request_index_.grpc_timeout != RequestFieldIndex::none) {
    request.grpc_timeout = request_field(request_index_.grpc_timeout);
  }
  const PeerIdentity* client = downstream_->peer_identity();
  request.client_sans = client ? &client->sans : nullptr;
  return request;
}

inline std::optional<Refusal> Call::take_client_share() noexcept {
  if (!worker_.take_share(*downstream_, *cluster_)) {
    return Refusal{"200", StatusCode::resource_exhausted, ErrorReason::client_share,
                   "this connection holds its max_client_share of cluster '" +
                       cluster_->config().name + "' (" +
                       std::to_string(cluster_->stream_capacity()) + " backend streams)"};
  }
  holds_share_ = true;
  return std::nullopt;
}

inline void Call::count_start(const RouteConfig* route, std::string_view path) noexcept {
  route_ = route;
  if (route_) {
    cluster_ = &snapshot_->cluster(route_->cluster_index);
    series_ = &snapshot_->stats().routed(
        static_cast<size_t>(route_ - snapshot_->config().routes.data()), path);
    cluster_->stats()->active_calls.add(1);
  } else {
    series_ = &snapshot_->stats().unrouted();
  }
  series_->started.add();
}

inline void Call::start_splice(std::optional<std::chrono::nanoseconds> timeout) noexcept {
  if (timeout) {
    // The deadline starts when the request arrives: in this loop turn.
    deadline_ns_ = TurnClock::now_ns() + static_cast<uint64_t>(timeout->count());
    uint64_t ms = static_cast<uint64_t>((timeout->count() + 999999) / 1000000);
    deadline_ms_ = uv_now(worker_.loop()) + ms;
  }
  if (route_->retry) replay_limit_ = route_->retry->buffer;
  const std::string& hash_header = cluster_->config().hash_header;
  if (!hash_header.empty()) affinity_ = request_headers_.get(hash_header);
  // The route's stream_idle_timeout wins over the listener's ("off" is 0).
  const auto& idle = route_->stream_idle_timeout ? route_->stream_idle_timeout
                                                 : downstream_->listener().stream_idle_timeout;
  if (idle && idle->count() > 0) {
    idle_timeout_ms_ = static_cast<uint64_t>(idle->count());
    last_activity_ms_ = uv_now(worker_.loop());
  }
  arm_timer();
  start_upstream();
}

void Call::on_request_headers_end() noexcept {
  state_.request_headers_end();
  // Ended already while its header block was still arriving (its connection expired it): the
  // client has its answer.
  if (state_.status_decided()) return;
  const AdmissionRequest request = admission_request();
  Admission admission = admit(request, snapshot_->router());
  count_start(admission.route, request.path);
  if (!admission.refusal) admission.refusal = take_client_share();
  if (admission.refusal) {
    const Refusal& refusal = *admission.refusal;
    reject_http(refusal.http_status, refusal.status, refusal.message, refusal.reason);
    return;
  }
  start_splice(admission.timeout);
}

void Call::on_request_data(const uint8_t* data, size_t len) noexcept {
  request_bytes_ += len;
  request_frames_.advance(data, len);
  if (idle_timeout_ms_) last_activity_ms_ = uv_now(worker_.loop());
  if (!state_.keeps_request_data()) {
    downstream_->give_credit(stream_id_, len, false);
    return;
  }
  request_body_.append_read(data, len);
  resume_request();
}

void Call::on_request_end() noexcept {
  state_.request_end();
  resume_request();
}

void Call::resume_request() noexcept {
  // Only a stream whose body callback said "deferred" needs waking: resuming any other
  // one costs nghttp2 a stream lookup to find nothing to do.
  if (attempt_.request_resumes()) attempt_.session->resume(attempt_.stream_id);
}

void Call::resume_response() noexcept {
  if (state_.response_resumes()) downstream_->resume(stream_id_);
}

ResponsePull Call::pull_response(size_t length) noexcept {
  ResponsePull pull;
  if (!response_body_.empty()) {
    pull.length = std::min(length, response_body_.size());
    // The last bytes of a backend's response carry the end too (and the trailers follow in
    // this frame's wake), rather than an empty DATA frame of their own.
    if (pull.length == response_body_.size() && attempt_.answer == Attempt::Answer::ended &&
        state_.response() != Response::relay_ending) {
      end_response(pull);
    }
    return pull;
  }
  if (state_.response() == Response::relay_ending) {
    state_.relay_end_sent();
    // Trailers after half a message would hand the client a corrupt message: reset instead.
    if (!response_frames_.at_boundary()) {
      pull.kind = ResponsePull::Kind::cut;
      return pull;
    }
    pull.end = true;
    pull.trailers = true;
    StatusFields fields(state_.status(), relay_message_);
    NvArray nva;
    fields.add_to(nva);
    downstream_->send_trailers(stream_id_, nva.data(), nva.size());
    return pull;
  }
  if (attempt_.answer == Attempt::Answer::ended) {
    end_response(pull);
    return pull;
  }
  state_.response_waits();
  pull.kind = ResponsePull::Kind::wait;
  return pull;
}

void Call::end_response(ResponsePull& pull) noexcept {
  pull.end = true;
  // No grpc-status reads as UNKNOWN, as an empty one does.
  state_.response_end(status_from_grpc_status(trailers_.get("grpc-status")));
  if (trailers_.empty()) return;
  pull.trailers = true;
  NvArray nva;
  // Only checked fields were kept (on_response_header()): no pseudo-header field (the
  // session's ResponseCheck refuses them in trailers) and no field of one hop.
  for (const auto& f : trailers_.fields())
    nva.add_kept(f.name, f.value);
  downstream_->send_trailers(stream_id_, nva.data(), nva.size());
}

void Call::write_response_body(ChunkChain& out, size_t length) noexcept {
  // The message framing is followed over the bytes as they leave, a peek's worth at a time
  // (a frame's bytes lie in a few segments: views, chunks, small nodes).
  for (size_t left = length; left > 0;) {
    iovec iov[16];
    const int n = response_body_.peek(iov, 16, left);
    size_t covered = 0;
    for (int i = 0; i < n; ++i) {
      response_frames_.advance(static_cast<const uint8_t*>(iov[i].iov_base), iov[i].iov_len);
      covered += iov[i].iov_len;
    }
    if (covered == 0) break;
    response_body_.move_to(out, covered);
    left -= covered;
  }
  response_bytes_ += length;
  if (attempt_.session)
    attempt_.session->consume(attempt_.stream_id, length,
                              attempt_.answer == Attempt::Answer::ended);
}

// --- the request to the backend, and its body kept for a replay -------------------------

void Call::drop_replay() noexcept {
  if (attempt_.replay_offset > 0) replayable_ = false;
  request_body_.drain(attempt_.replay_offset);
  consumed_prefix_ -= attempt_.replay_offset;
  attempt_.replay_offset = 0;
}

void Call::on_submit(ClientSession&) noexcept {
  BackendSession& session = *attempt_.session;
  NvArray nva;
  // host is not forwarded (HTTP/2 uses :authority); a request that gave only host gets its
  // value as :authority, ahead of every regular field.
  if (request_index_.authority == request_index_.host &&
      request_index_.host != RequestFieldIndex::none) {
    nva.add_kept(":authority", request_field(request_index_.host));
  }
  const auto& fields = request_headers_.fields();
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i < 64 && (unforwarded_ >> i) & 1) continue;
    std::string_view name = fields[i].name;
    if (i >= 64 && unforwarded(classify_field(name))) continue;
    // A retry states its own count (the relay's attempts), not the client's.
    if (counts_.policy > 0 && name == "grpc-previous-rpc-attempts") continue;
    nva.add_kept(name, fields[i].value);
  }
  nva.add_kept("te", "trailers");
  std::string previous;
  if (counts_.policy > 0) {
    previous = std::to_string(counts_.policy);
    nva.add("grpc-previous-rpc-attempts", previous);
  }
  std::string timeout;
  if (deadline_ns_ != 0) {
    uint64_t now = TurnClock::now_ns();
    auto remaining = std::chrono::nanoseconds(deadline_ns_ > now ? deadline_ns_ - now : 0);
    timeout = format_grpc_timeout(remaining);
    nva.add("grpc-timeout", timeout);
  }
  int32_t id = session.submit_request(nva.data(), nva.size(), this);
  if (id > 0) {
    attempt_.stream_id = id;
    return;
  }
  attempt_.session = nullptr;
  if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE && retryable()) {
    // This connection used up its stream ids: it takes no more calls; another one does.
    session.retire();
    start_upstream();
    return;
  }
  state_.discard_request();
  finish(StatusCode::unavailable,
         std::string("cannot open a backend stream: ") + nghttp2_strerror(id),
         ErrorReason::backend_stream);
}

ssize_t Call::read_request_body(size_t length, uint32_t* data_flags) noexcept {
  size_t available = request_body_.size() - attempt_.replay_offset;
  if (available > 0) {
    *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    // The client's last bytes carry END_STREAM, not an empty DATA frame of their own.
    if (state_.request() == Request::ended && available <= length)
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(std::min(length, available));
  }
  if (state_.request() == Request::ended) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return 0;
  }
  attempt_.request_deferred = true;
  return NGHTTP2_ERR_DEFERRED;
}

void Call::write_request_body(ChunkChain& out, size_t length) noexcept {
  if (!replayable_ && attempt_.replay_offset == 0) {
    // Nothing is kept for a replay any more: the bytes move to the output.
    request_body_.move_to(out, length);
    if (length > consumed_prefix_) {
      downstream_->give_credit(stream_id_, length - consumed_prefix_,
                               state_.request() == Request::ended);
      consumed_prefix_ = 0;
    } else {
      consumed_prefix_ -= length;
    }
    return;
  }
  out.append_range(request_body_, attempt_.replay_offset, length);
  attempt_.replay_offset += length;
  // The client gets window back once, for bytes a replay sends again too.
  if (attempt_.replay_offset > consumed_prefix_) {
    downstream_->give_credit(stream_id_, attempt_.replay_offset - consumed_prefix_,
                             state_.request() == Request::ended);
    consumed_prefix_ = attempt_.replay_offset;
  }
  if (!replayable_ || attempt_.replay_offset > replay_limit_) drop_replay();
}

}  // namespace grelay
