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
  // The backend connection the attempt is on: referred to, never owned. Null before one was
  // picked and once the stream is over or reset.
  BackendSession* session = nullptr;
  // 0 while the request waits in |session|'s queue to be submitted (Call::on_submit()).
  int32_t stream_id = 0;
  // Request bytes sent on this stream but kept at the front of the Call's request body for a
  // replay, until the backend answers or they pass the replay limit.
  size_t replay_offset = 0;
  // Bytes of the response HEADERS block being received (RFC 7541 size: name + value + 32 per
  // field).
  size_t block_bytes = 0;
  // The backend's final (non-1xx) response headers arrived; later HEADERS are trailers.
  bool final_headers_seen = false;
  // The backend ended its response (END_STREAM).
  bool response_ended = false;
};

// The attempts a Call made: one place for what grpc-previous-rpc-attempts, the access log's
// "retries" and grelay_retries_total say.
struct AttemptCounts {
  // Attempts since the call started or since the last policy retry: transparent retries
  // (another endpoint, a refused stream replayed) are bounded by it.
  uint32_t in_round = 0;
  // Retries under the route's retry policy: grpc-previous-rpc-attempts.
  uint32_t policy = 0;
  // Every attempt after the first, policy and transparent alike: the access log's "retries"
  // and grelay_retries_total.
  uint32_t retries = 0;
};

}  // namespace grelay
