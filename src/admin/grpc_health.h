#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace grelay {

// grpc.health.v1's ServingStatus: what the admin endpoint's Health service reports for
// grelay itself.
enum class ServingStatus : uint8_t {
  unknown = 0,
  serving = 1,
  not_serving = 2,
  service_unknown = 3,
};

// What Check and Watch report for |service| while the process's own status is |process|:
//   "" and "grelay"  |process|: SERVING, NOT_SERVING once a drain began (readiness; "" is
//                    what Kubernetes' gRPC probe asks by default)
//   "liveness"       SERVING while the process answers at all, draining included, so that a
//                    liveness probe never kills a pod that is finishing its calls
//   anything else    SERVICE_UNKNOWN
ServingStatus health_of(std::string_view service, ServingStatus process) noexcept;

// Reads the single uncompressed gRPC message of a unary request body (its 5-byte prefix and
// payload) into |message|. False when |body| is not exactly one such message.
bool take_single_grpc_message(std::string_view body, std::string_view& message) noexcept;

// Decodes a HealthCheckRequest { string service = 1; } by hand: the protobuf wire format,
// unknown fields skipped. False on malformed input.
bool parse_health_check_request(std::string_view message, std::string& service);

// One length-prefixed gRPC message holding HealthCheckResponse { ServingStatus status = 1; }.
std::string health_check_response_frame(ServingStatus status);

}  // namespace grelay
