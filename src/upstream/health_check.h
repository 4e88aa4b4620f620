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

// Active health checks of one endpoint: grpc.health.v1.Health/Check every interval over the
// endpoint's own connections. Owned by its Endpoint.
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
  // Ends the probe in flight with |serving|, and schedules the next.
  void finish(bool serving, const std::string& why) noexcept;
  void abandon() noexcept;

  Endpoint& endpoint_;
  const HealthCheckConfig& config_;
  std::string request_;
  size_t sent_ = 0;
  BackendSession* session_ = nullptr;
  int32_t stream_id_ = 0;
  bool running_ = false;
  uint64_t next_at_ms_ = 0;
  uint64_t started_at_ms_ = 0;
  std::string grpc_status_;
  std::string grpc_message_;
  std::string http_status_;
  std::string body_;
  uint32_t successes_ = 0;
  uint32_t failures_ = 0;
};

}  // namespace grelay
