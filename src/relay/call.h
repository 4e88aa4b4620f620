#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "core/chunk.h"
#include "core/grpc_frame.h"
#include "grelay/status.h"
#include "grelay/stream_relay.h"
#include "h2/downstream.h"
#include "h2/header_list.h"
#include "relay/admission.h"
#include "relay/attempt.h"
#include "relay/call_state.h"
#include "relay/deadline_queue.h"
#include "relay/snapshot.h"
#include "stats/worker_stats.h"
#include "upstream/upstream_handler.h"

namespace grelay {

class Worker;
class Cluster;
struct RouteConfig;

// One gRPC call: a client's stream on a Downstream paired with a stream on a backend
// connection. Owned by its downstream stream: the Downstream reports the stream's close
// through on_downstream_close(), which deletes the Call. The upstream stream is only referred
// to; the Call resets and forgets it when it goes first.
class Call final : public ServerStreamHandler, public UpstreamHandler, public DeadlineQueue::Entry {
 public:
  Call(Worker& worker, Downstream& downstream, int32_t stream_id) noexcept;
  ~Call();

  // From a per-thread cache of Call-sized blocks: a Call is freed on the worker that made it.
  static void* operator new(size_t size);
  static void operator delete(void* p) noexcept;

  // ServerStreamHandler: the client side.
  void on_request_header(nghttp2_rcbuf* name, nghttp2_rcbuf* value, FieldName f, std::string_view n,
                         std::string_view v) noexcept override;
  void on_request_headers_end() noexcept override;
  void on_request_data(const uint8_t* data, size_t len) noexcept override;
  void on_request_end() noexcept override;
  void on_downstream_close(uint32_t error_code) noexcept override;
  ResponsePull pull_response(size_t length) noexcept override;
  void write_response_body(ChunkChain& out, size_t length) noexcept override;
  void on_expire(const char* why) noexcept override;
  void on_response_not_sent(int lib_error) noexcept override;

  // UpstreamHandler: the backend side.
  void on_upstream_ready(BackendSession& session) noexcept override;
  void on_submit(ClientSession& session) noexcept override;
  void on_upstream_failed(StatusCode status, const std::string& why) noexcept override;
  void on_response_header(nghttp2_rcbuf* name, nghttp2_rcbuf* value, FieldName f,
                          bool later_block) noexcept override;
  void on_response_headers_end(bool end_stream) noexcept override;
  void on_response_data(const uint8_t* data, size_t len) noexcept override;
  void on_response_end() noexcept override;
  void on_upstream_close(uint32_t error_code) noexcept override;
  ssize_t read_request_body(size_t length, uint32_t* data_flags) noexcept override;
  void write_request_body(ChunkChain& out, size_t length) noexcept override;

  void on_deadline() noexcept override;

  // The request's method, path, authority (or host) and content-type, as far as they came.
  RequestHead request_head() const noexcept;
  // The request's metadata went over its listener's max_request_metadata: its fields were not
  // all kept, and the call is refused when its headers end.
  bool request_metadata_over_limit() const noexcept {
    return request_header_bytes_ > downstream_->listener().max_request_metadata;
  }

  // Counts the call among its listener's active calls until it ends.
  void count_in(Gauge& listener_calls) noexcept {
    listener_calls_ = &listener_calls;
    listener_calls.add(1);
  }

 private:
  // Fires when a retry's backoff is over.
  struct RetryTimer final : DeadlineQueue::Entry {
    explicit RetryTimer(Call& c) noexcept : call(c) {}
    void on_deadline() noexcept override { call.start_upstream(); }
    Call& call;
  };

  using Request = CallState::Request;
  using Response = CallState::Response;

  // What admission reads of the request headers, now complete.
  AdmissionRequest admission_request() noexcept;
  // Notes the call's |route| (null when none) and counts its start under it.
  void count_start(const RouteConfig* route, std::string_view path) noexcept;
  // The admission limit that depends on the worker's state: counts the call towards its
  // connection's max_client_share of |cluster_|, or returns the refusal when it holds it all.
  std::optional<Refusal> take_client_share() noexcept;
  // The call was admitted with |timeout| (none: no deadline): arms its timers and starts its
  // first attempt.
  void start_splice(std::optional<std::chrono::nanoseconds> timeout) noexcept;
  // Starts an attempt, the first or a retry: a fresh Attempt, counted, waits for a backend
  // stream from the cluster.
  void start_upstream() noexcept;
  // Ends the call with a relay-made |status|: Trailers-Only when nothing was sent yet,
  // trailers after the body otherwise (a reset if that would cut a message). With
  // |drop_pending| the response bytes not yet sent are dropped first.
  void finish(StatusCode status, const std::string& message, ErrorReason reason,
              bool drop_pending = false) noexcept;
  // Answers with one HEADERS frame that ends the stream: HTTP |http_status| with a gRPC
  // status (Trailers-Only when |http_status| is "200").
  void reject_http(const char* http_status, StatusCode status, const std::string& message,
                   ErrorReason reason) noexcept;
  // The backend's response has ended and its last bytes are going out: marks |pull| as the
  // end, and sends the trailers with it.
  void end_response(ResponsePull& pull) noexcept;
  // Wake the backend stream's request body, or the client stream's response body, if its
  // callback deferred.
  void resume_request() noexcept;
  void resume_response() noexcept;
  // A response HEADERS block (headers or trailers) just ended: true when it was over the
  // listener's max_response_metadata, in which case the call was ended with
  // RESOURCE_EXHAUSTED. Starts the count of the next block.
  bool response_block_too_large() noexcept;
  // Counts the finished call and writes its access log line.
  void record_end() noexcept;
  // Resets the backend stream (if any) with |error_code| and forgets it.
  void release_upstream(uint32_t error_code) noexcept;
  void forward_response_headers(bool end_stream) noexcept;
  bool retryable() const noexcept;
  // Counts a retry in grelay_retries_total (counts_ counts it for the access log).
  void count_retry() noexcept;
  // An attempt ended with |status| before anything was committed to the client: schedules a
  // retry under the route's policy and returns true, or returns false. |pushback| is the
  // attempt's grpc-retry-pushback-ms, if any.
  bool retry_attempt(StatusCode status, std::string_view pushback = {},
                     bool has_pushback = false) noexcept;
  // Tells the cluster how the attempt on the current backend stream ended.
  void note_outcome(StatusCode status) noexcept;
  // Forgets the current backend stream (resetting it if open) for a new attempt.
  void detach_for_retry() noexcept;
  // Stops keeping sent request bytes for a replay.
  void drop_replay() noexcept;
  std::string_view request_field(uint16_t index) const noexcept;

  // The call's deadline has passed, or will within the deadline timer's resolution (1 ms).
  bool deadline_passed() const noexcept;
  // Arms the deadline queue for the earlier of the deadline and the next idle check.
  void arm_timer() noexcept;

  Worker& worker_;
  // The config, routes and clusters this call started on; kept to its end across reloads.
  SnapshotRef snapshot_;
  Downstream* downstream_;
  int32_t stream_id_;
  // The attempt in progress, and the count of those made.
  Attempt attempt_;
  AttemptCounts counts_;
  const RouteConfig* route_ = nullptr;
  Cluster* cluster_ = nullptr;

  HeaderList request_headers_;
  // Where the fields the relay reads sit in |request_headers_| (first occurrence), noted as
  // they arrive so that no lookup scans the list.
  struct RequestFieldIndex {
    static constexpr uint16_t none = UINT16_MAX;
    uint16_t method = none;
    uint16_t path = none;
    uint16_t authority = none;
    uint16_t host = none;
    uint16_t content_type = none;
    uint16_t grpc_timeout = none;
  } request_index_;
  // Bit i: field i of |request_headers_| is not forwarded (hop-by-hop, or grpc-timeout, which
  // the relay restates). Fields past the 64th are classified again when forwarded.
  uint64_t unforwarded_ = 0;
  // Kept until the call ends: the response HEADERS frame refers to these fields uncopied.
  HeaderList response_headers_;
  HeaderList trailers_;
  ChunkChain request_body_;
  ChunkChain response_body_;
  GrpcFrameTracker response_frames_;
  GrpcFrameTracker request_frames_;

  // Where the call is counted: set once its request headers are complete.
  CallSeries* series_ = nullptr;
  EndpointStats* endpoint_stats_ = nullptr;
  Gauge* listener_calls_ = nullptr;
  uint64_t start_ns_ = 0;
  uint64_t request_bytes_ = 0;
  uint64_t response_bytes_ = 0;
  // Where the request and the response stand, and the status the client gets.
  CallState state_;

  // Absolute deadline on the uv_hrtime() clock (as TurnClock reads it); 0 when the call has none.
  uint64_t deadline_ns_ = 0;
  // The same deadline on the loop clock (uv_now()), for the deadline queue; 0 when none.
  uint64_t deadline_ms_ = 0;
  // stream_idle_timeout in ms (0: off) and the loop time of the last frame either way.
  uint64_t idle_timeout_ms_ = 0;
  uint64_t last_activity_ms_ = 0;
  RetryTimer retry_timer_{*this};
  // Request bytes kept for a replay (the route's retry buffer, or the default).
  size_t replay_limit_;
  // Request header value that picks the endpoint for lb = ring_hash.
  std::string_view affinity_;
  // The message of a relay-made status: sent in the relay's trailers and, with an access log,
  // logged.
  std::string relay_message_;
  // Bytes of request metadata (RFC 7541 size: name + value + 32 per field).
  size_t request_header_bytes_ = 0;
  // The call counts towards its connection's max_client_share of |cluster_|: a count held in
  // the worker from admission until the destructor gives it back, whatever the request and
  // response states do meanwhile.
  bool holds_share_ = false;
  // Bytes at the front of |request_body_| whose window was already handed back to the client.
  size_t consumed_prefix_ = 0;
  // False once request bytes were sent and dropped: the call can no longer be replayed. A fact
  // about |request_body_| across attempts, set once and never cleared; the request state says
  // where the client's request stands, not what the relay still holds of it.
  bool replayable_ = true;
};

}  // namespace grelay
