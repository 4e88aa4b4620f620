#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "grelay/config.h"
#include "upstream/upstream_handler.h"

namespace grelay {

class Endpoint;

// grpc.health.v1 messages, encoded by hand: HealthCheckRequest { string service = 1; }.
// Returns the request as one length-prefixed gRPC message.
std::string encode_health_request(std::string_view service);
// HealthCheckResponse { ServingStatus status = 1; } from one gRPC message's payload: the
// status (SERVING is 1), or nullopt when the bytes are no such message.
std::optional<uint64_t> decode_health_response(std::string_view message);

// What a probe's stream brought back, as HealthCheck collects it.
struct HealthAnswer {
  // How the stream closed: NGHTTP2_NO_ERROR, a reset's code, or h2_connection_lost.
  uint32_t error_code = 0;
  std::string http_status;
  std::string grpc_status;
  std::string grpc_message;  // at most its first 200 bytes
  std::string body;          // the response DATA, up to a few KiB
};

// What one probe found: whether the endpoint serves, and if not why (for the log).
struct HealthVerdict {
  bool serving = false;
  std::string why;
};

// Judges a finished probe: a stream closed cleanly with grpc-status 0 and a
// HealthCheckResponse saying SERVING is a success; anything else is a failure.
HealthVerdict judge_health_answer(const HealthAnswer& answer);

// The state machine of one endpoint's health checks, without I/O: when a probe is due or has
// timed out, and which results the endpoint hears. Results count in a row: while the
// endpoint is healthy, failures are told once unhealthy_threshold of them came in a row;
// while it is unhealthy, successes once healthy_threshold of them did. A result that
// confirms the endpoint's state is always told (so each counts in
// grelay_health_checks_total). Whether the endpoint is healthy is the endpoint's to know:
// finish() is told it.
class HealthCheckState {
 public:
  explicit HealthCheckState(const HealthCheckConfig& config) noexcept : config_(config) {}

  // True when a probe should start at |now_ms|: none is in flight and an interval passed
  // since the last one ended (the first is due at once).
  bool due(uint64_t now_ms) const noexcept { return !running_ && now_ms >= next_at_ms_; }
  void start(uint64_t now_ms) noexcept {
    running_ = true;
    started_at_ms_ = now_ms;
  }
  bool running() const noexcept { return running_; }
  // True when the probe in flight has run for the timeout or longer at |now_ms|.
  bool timed_out(uint64_t now_ms) const noexcept {
    return running_ && now_ms - started_at_ms_ >= static_cast<uint64_t>(config_.timeout.count());
  }
  // Ends the probe in flight (if any) with |serving| at |now_ms|; the next is due an
  // interval later. True when an endpoint that is |healthy| now is to hear |serving|.
  bool finish(bool serving, bool healthy, uint64_t now_ms) noexcept;
  // Forgets the probe in flight without a result.
  void abandon() noexcept { running_ = false; }

 private:
  const HealthCheckConfig& config_;
  bool running_ = false;
  uint64_t next_at_ms_ = 0;
  uint64_t started_at_ms_ = 0;
  uint32_t successes_ = 0;
  uint32_t failures_ = 0;
};

// Active health checks of one endpoint: grpc.health.v1.Health/Check every interval over the
// endpoint's own connections, judged by judge_health_answer and counted by HealthCheckState.
// Owned by its Endpoint.
class HealthCheck final : public UpstreamHandler {
 public:
  HealthCheck(Endpoint& endpoint, const HealthCheckConfig& config) noexcept;
  ~HealthCheck();
  HealthCheck(const HealthCheck&) = delete;
  HealthCheck& operator=(const HealthCheck&) = delete;

  // Starts a probe when one is due; fails one that ran past its timeout.
  void maintain(uint64_t now_ms) noexcept;

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

 private:
  // Ends the probe in flight with |serving|, tells the endpoint if the state machine says
  // so, and schedules the next.
  void finish(bool serving, const std::string& why) noexcept;
  // Cancels the probe in flight: its wait for a connection, or its stream.
  void abandon() noexcept;

  Endpoint& endpoint_;
  const HealthCheckConfig& config_;
  HealthCheckState state_;
  std::string request_;
  size_t sent_ = 0;
  BackendSession* session_ = nullptr;
  int32_t stream_id_ = 0;
  HealthAnswer answer_;
};

}  // namespace grelay
