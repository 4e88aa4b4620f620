#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace grelay {

// The longest duration the config accepts (365 days), so that any duration converts to
// nanoseconds without overflow.
inline constexpr std::chrono::milliseconds max_config_duration{365LL * 24 * 3600 * 1000};

// Parses a config duration: digits, optionally a '.' and more digits, then a unit out of
// "ms", "s", "m", "h" ("250ms", "1.5s", "5m", "1h"). The value must be a whole, positive
// number of milliseconds no larger than max_config_duration. On failure returns nullopt
// and sets |*error| to a message such as "missing unit (use ms, s, m or h)".
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text, std::string* error);

}  // namespace grelay
