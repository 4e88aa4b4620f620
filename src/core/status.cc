#include "grelay/status.h"

#include <charconv>
#include <iterator>

namespace grelay {

namespace {

// HTTP/2 error codes (RFC 9113, section 7) that get a status of their own. Spelled out here
// so that core does not depend on nghttp2's headers.
constexpr uint32_t h2_refused_stream = 0x7;
constexpr uint32_t h2_cancel = 0x8;
constexpr uint32_t h2_enhance_your_calm = 0xb;
constexpr uint32_t h2_inadequate_security = 0xc;

constexpr std::string_view status_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

}  // namespace

StatusCode status_from_grpc_status(std::string_view text) noexcept {
  // Nearly every answer: one digit (0 above all).
  if (text.size() == 1 && text[0] >= '0' && text[0] <= '9') {
    return static_cast<StatusCode>(text[0] - '0');
  }
  int code = -1;
  const char* end = text.data() + text.size();
  auto [stop, ec] = std::from_chars(text.data(), end, code);
  if (ec != std::errc() || stop != end || code < 0 ||
      code >= static_cast<int>(std::size(status_names))) {
    return StatusCode::unknown;
  }
  return static_cast<StatusCode>(code);
}

std::string_view status_name(StatusCode code) noexcept {
  const auto index = static_cast<int>(code);
  // A code read off the wire may be any integer; those outside the table are UNKNOWN.
  if (index < 0 || index >= static_cast<int>(std::size(status_names))) return "UNKNOWN";
  return status_names[index];
}

StatusCode status_from_http(int http_status) noexcept {
  switch (http_status) {
    case 400:
    case 431:
      return StatusCode::internal;
    case 401:
      return StatusCode::unauthenticated;
    case 403:
      return StatusCode::permission_denied;
    case 404:
      return StatusCode::unimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return StatusCode::unavailable;
    default:
      return StatusCode::unknown;
  }
}

StatusCode status_from_h2_error(uint32_t h2_error) noexcept {
  switch (h2_error) {
    case h2_refused_stream:
      return StatusCode::unavailable;
    case h2_cancel:
      return StatusCode::cancelled;
    case h2_enhance_your_calm:
      return StatusCode::resource_exhausted;
    case h2_inadequate_security:
      return StatusCode::permission_denied;
    default:
      return StatusCode::internal;
  }
}

}  // namespace grelay
