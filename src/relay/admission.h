#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "grelay/config.h"
#include "grelay/status.h"
#include "stats/worker_stats.h"

namespace grelay {

// application/grpc, alone or with a subtype (+proto) or parameters.
bool is_grpc_content_type(std::string_view content_type) noexcept;

class Router;

// What admission reads of a call whose request headers are complete.
struct AdmissionRequest {
  std::string_view method;
  std::string_view path;
  // :authority, or host when the request gave only host (RFC 9113 §8.3.1).
  std::string_view authority;
  std::string_view content_type;
  // The grpc-timeout value; none when the request has no such field.
  std::optional<std::string_view> grpc_timeout;
  // Bytes of request metadata (RFC 7541 size) and the listener's max_request_metadata. Past
  // the limit the fields were not all kept: nothing else is read.
  size_t metadata_bytes = 0;
  size_t max_metadata = 0;
  // subjectAltName values of the client's verified certificate; nullptr when it has none.
  const std::vector<std::string>* client_sans = nullptr;
};

// A status the relay answers a call with itself, before anything reaches a backend.
struct Refusal {
  // "200": a gRPC Trailers-Only answer; otherwise a plain HTTP error carrying the status too.
  const char* http_status = "200";
  StatusCode status = StatusCode::unknown;
  ErrorReason reason = ErrorReason::none;
  std::string message;
};

// What admission decided: the route the call is counted under and follows (null when none
// matched, or when the metadata was too large to look), its timeout, or a refusal.
struct Admission {
  const RouteConfig* route = nullptr;
  // The smaller of the client's grpc-timeout and the route's cap; none when neither is set.
  std::optional<std::chrono::nanoseconds> timeout;
  // Set when the relay answers the call itself.
  std::optional<Refusal> refusal;
};

// The route, checks and deadline of a call: request headers in, a plan or a relay-made status
// out. No I/O and no state, so it is testable without a loop; limits that depend on the
// worker's state (max_client_share) are the Call's. Checks run in the order a client can fix
// them: metadata size, method, content-type, route, grpc-timeout.
Admission admit(const AdmissionRequest& request, const Router& router);

}  // namespace grelay
