#pragma once

#include <cstddef>
#include <cstdint>

namespace grelay {

class BackendSession;

// One try of a Call on a backend stream: the stream it holds and how far it got. A retry,
// transparent or under the route's policy, starts a fresh one in its place. It lives inside its
// Call, so an attempt costs no allocation; the request body, which a retry replays, and the
// response, which reaches the client from one attempt only, stay with the Call.
struct Attempt {
  // How far the backend's answer on this stream got.
  enum class Answer : uint8_t {
    none,     // no final response headers yet (1xx ones are dropped)
    headers,  // the final response headers arrived; a later HEADERS block is the trailers
    ended,    // the backend ended its response (END_STREAM)
  };

  // Adds a field of |name_size| + |value_size| bytes to the response HEADERS block being
  // received, at its RFC 7541 size (name + value + 32); returns the block's size so far.
  size_t add_block_field(size_t name_size, size_t value_size) noexcept {
    block_bytes += name_size + value_size + 32;
    return block_bytes;
  }
  // The block ended: returns its size; the next block is counted from 0.
  size_t end_block() noexcept {
    const size_t bytes = block_bytes;
    block_bytes = 0;
    return bytes;
  }
  // Request bytes or the client's end arrived: true, once, when the stream's request body
  // callback deferred and the caller must resume it.
  bool request_resumes() noexcept {
    if (!session || !request_deferred) return false;
    request_deferred = false;
    return true;
  }

  // The backend connection the attempt is on: referred to, never owned. Null before one was
  // picked and once the stream is over or reset.
  BackendSession* session = nullptr;
  // 0 while the request waits in |session|'s queue to be submitted (Call::on_submit()).
  int32_t stream_id = 0;
  Answer answer = Answer::none;
  // The stream's request body callback returned NGHTTP2_ERR_DEFERRED for want of bytes. The
  // request direction of the stream, apart from how far the answer got.
  bool request_deferred = false;
  // Request bytes sent on this stream but kept at the front of the Call's request body for a
  // replay, until the backend answers or they pass the replay limit.
  size_t replay_offset = 0;
  // Bytes of the response HEADERS block being received.
  size_t block_bytes = 0;
};

// The attempts a Call made: one place for what grpc-previous-rpc-attempts, the access log's
// "retries" and grelay_retries_total say.
struct AttemptCounts {
  // An attempt starts. True when it is a transparent retry (another endpoint, a refused stream
  // replayed), which counts in |retries| now; the first attempt of a round does not, a policy
  // retry having counted when it was scheduled.
  bool start() noexcept {
    const bool transparent_retry = in_round > 0;
    if (transparent_retry) ++retries;
    ++in_round;
    return transparent_retry;
  }
  // A retry under the route's policy was scheduled: it counts now, and its attempt starts a new
  // round.
  void start_policy_retry() noexcept {
    ++policy;
    ++retries;
    in_round = 0;
  }

  // Attempts since the call started or since the last policy retry: transparent retries are
  // bounded by it.
  uint32_t in_round = 0;
  // Retries under the route's retry policy: grpc-previous-rpc-attempts.
  uint32_t policy = 0;
  // Every attempt after the first, policy and transparent alike: the access log's "retries"
  // and grelay_retries_total.
  uint32_t retries = 0;
};

}  // namespace grelay
