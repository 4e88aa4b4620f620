#include "relay/admission.h"

#include <algorithm>

#include "core/grpc_timeout.h"
#include "route/router.h"

namespace grelay {

bool is_grpc_content_type(std::string_view ct) noexcept {
  constexpr std::string_view grpc = "application/grpc";
  if (ct.substr(0, grpc.size()) != grpc) return false;
  return ct.size() == grpc.size() || ct[grpc.size()] == '+' || ct[grpc.size()] == ';';
}

namespace {

Admission refuse(Admission admission, const char* http_status, StatusCode status,
                 std::string message, ErrorReason reason) {
  admission.refusal = Refusal{http_status, status, reason, std::move(message)};
  return admission;
}

}  // namespace

Admission admit(const AdmissionRequest& request, const Router& router) {
  Admission admission;
  if (request.metadata_bytes > request.max_metadata) {
    return refuse(admission, "200", StatusCode::resource_exhausted,
                  "request metadata of " + std::to_string(request.metadata_bytes) +
                      " bytes is over the relay's limit of " + std::to_string(request.max_metadata),
                  ErrorReason::metadata_too_large);
  }
  admission.route = router.match(request.path, request.authority, request.client_sans);
  if (request.method != "POST") {
    return refuse(admission, "405", StatusCode::internal,
                  "method " + std::string(request.method) + " not allowed: gRPC calls use POST",
                  ErrorReason::bad_method);
  }
  if (!is_grpc_content_type(request.content_type)) {
    return refuse(admission, "415", StatusCode::internal,
                  "invalid gRPC request content-type '" + std::string(request.content_type) + "'",
                  ErrorReason::bad_content_type);
  }
  if (!admission.route) {
    return refuse(admission, "200", StatusCode::unimplemented,
                  "no route for " + std::string(request.path), ErrorReason::no_route);
  }
  if (request.grpc_timeout) {
    admission.timeout = parse_grpc_timeout(*request.grpc_timeout);
    if (!admission.timeout) {
      return refuse(admission, "200", StatusCode::internal,
                    "malformed grpc-timeout '" + std::string(*request.grpc_timeout) + "'",
                    ErrorReason::bad_timeout);
    }
  }
  if (admission.route->timeout) {
    auto cap = std::chrono::duration_cast<std::chrono::nanoseconds>(*admission.route->timeout);
    admission.timeout = admission.timeout ? std::min(*admission.timeout, cap) : cap;
  }
  return admission;
}

}  // namespace grelay
