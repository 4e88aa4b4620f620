#include "config/duration.h"

#include <cstdint>

#include "config/config_rules.h"

namespace grelay {

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Milliseconds in one |unit|, or 0 when |unit| is not a known unit.
int64_t unit_ms(std::string_view unit) {
  if (unit == "ms") return 1;
  if (unit == "s") return 1000;
  if (unit == "m") return 60 * 1000;
  if (unit == "h") return 3600 * 1000;
  return 0;
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text, std::string* error) {
  constexpr std::string_view units = "use ms, s, m or h";
  if (text.empty()) {
    *error = "empty duration";
    return std::nullopt;
  }
  size_t i = 0;
  if (!is_digit(text[0])) {
    *error = "must start with a number, e.g. \"30s\"";
    return std::nullopt;
  }
  // Bounded so that whole * unit_ms("h") cannot overflow; anything this large is rejected
  // by the range check below anyway.
  constexpr int64_t whole_limit = 1'000'000'000'000;
  int64_t whole = 0;
  bool too_large = false;
  for (; i < text.size() && is_digit(text[i]); ++i) {
    whole = whole * 10 + (text[i] - '0');
    if (whole > whole_limit) {
      too_large = true;
      whole = whole_limit;
    }
  }
  // The fraction is kept as |fraction| / |scale|, to at most 9 significant places.
  int64_t fraction = 0;
  int64_t scale = 1;
  bool fraction_dropped = false;
  if (i < text.size() && text[i] == '.') {
    ++i;
    if (i == text.size() || !is_digit(text[i])) {
      *error = "expected digits after '.'";
      return std::nullopt;
    }
    for (; i < text.size() && is_digit(text[i]); ++i) {
      if (scale < 1'000'000'000) {
        fraction = fraction * 10 + (text[i] - '0');
        scale *= 10;
      } else if (text[i] != '0') {
        fraction_dropped = true;
      }
    }
  }
  std::string_view unit = text.substr(i);
  if (unit.empty()) {
    *error = "missing unit (" + std::string(units) + ")";
    return std::nullopt;
  }
  int64_t per_unit = unit_ms(unit);
  if (per_unit == 0) {
    *error = "unknown unit '" + std::string(unit) + "' (" + std::string(units) + ")";
    return std::nullopt;
  }
  if (fraction_dropped || (fraction * per_unit) % scale != 0) {
    *error = "must be a whole number of milliseconds";
    return std::nullopt;
  }
  const std::chrono::milliseconds ms(whole * per_unit + fraction * per_unit / scale);
  std::string bound = duration_error(too_large ? std::chrono::milliseconds::max() : ms);
  if (!bound.empty()) {
    *error = std::move(bound);
    return std::nullopt;
  }
  return ms;
}

}  // namespace grelay
