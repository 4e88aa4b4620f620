#pragma once

#include <cstdint>
#include <string_view>

#include "grelay/export.h"

namespace grelay {

// gRPC status codes, as carried in the `grpc-status` trailer.
enum class StatusCode : int {
  ok = 0,
  cancelled = 1,
  unknown = 2,
  invalid_argument = 3,
  deadline_exceeded = 4,
  not_found = 5,
  already_exists = 6,
  permission_denied = 7,
  resource_exhausted = 8,
  failed_precondition = 9,
  aborted = 10,
  out_of_range = 11,
  unimplemented = 12,
  internal = 13,
  unavailable = 14,
  data_loss = 15,
  unauthenticated = 16,
};

// The canonical upper-case name of |code| ("OK", "UNAVAILABLE", ...).
GRELAY_API std::string_view status_name(StatusCode code) noexcept;

// The status a `grpc-status` value |text| names: a decimal number of 0 to 16 and nothing
// else. Any other value (empty, a sign, spaces, trailing bytes, out of range) is UNKNOWN,
// as gRPC's clients read it. The relay's only parser of the field.
GRELAY_API StatusCode status_from_grpc_status(std::string_view text) noexcept;

// The status a relay reports for a backend answer that carries HTTP status |http_status|
// and no `grpc-status` (gRPC's HTTP-to-gRPC status mapping).
GRELAY_API StatusCode status_from_http(int http_status) noexcept;

// The status a relay reports when the backend resets a stream with HTTP/2 error code
// |h2_error| before sending a status.
GRELAY_API StatusCode status_from_h2_error(uint32_t h2_error) noexcept;

}  // namespace grelay
