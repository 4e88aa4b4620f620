#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace grelay {

// The longest timeout parse_grpc_timeout returns: 100000 hours (about 11 years). Larger
// values, including every "H" value past it (99999999H does not fit int64 nanoseconds),
// saturate here, so that `now + timeout` never overflows a steady_clock time point.
inline constexpr std::chrono::nanoseconds max_grpc_timeout = std::chrono::hours(100000);

// Parses a grpc-timeout value: 1 to 8 ASCII digits followed by one unit H M S m u n.
// Returns nullopt for anything else (empty, 9+ digits, sign, space, unknown unit).
// Results above max_grpc_timeout are clamped to it.
std::optional<std::chrono::nanoseconds> parse_grpc_timeout(std::string_view text) noexcept;

// Formats |d| as a grpc-timeout value of at most 8 digits. A zero or negative |d| formats
// as "1n" (the deadline has passed; the smallest timeout says so). When |d| is exact in some
// unit that fits, the coarsest such unit is used ("1S", "1500m"); otherwise the finest unit
// that fits, rounded up ("1234568u"), so the receiver never sees an earlier deadline than the
// real one. Values beyond every unit clamp to "99999999H".
std::string format_grpc_timeout(std::chrono::nanoseconds d);

}  // namespace grelay
