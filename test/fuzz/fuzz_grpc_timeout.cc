// Fuzzes the grpc-timeout parser and formatter against an independent reading of the spec,
// and the grpc-message percent coding for a lossless round trip.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "core/grpc_timeout.h"
#include "core/percent.h"

namespace {

using std::chrono::nanoseconds;

[[noreturn]] void violated(const char* what, std::string_view input) {
  std::fprintf(stderr, "fuzz_grpc_timeout: %s (input '%.*s')\n", what,
               static_cast<int>(input.size()), input.data());
  std::abort();
}

// Nanoseconds per grpc-timeout unit, or 0 for an unknown unit.
int64_t unit_ns(char unit) {
  switch (unit) {
    case 'n':
      return 1;
    case 'u':
      return 1'000;
    case 'm':
      return 1'000'000;
    case 'S':
      return 1'000'000'000;
    case 'M':
      return 60'000'000'000;
    case 'H':
      return 3'600'000'000'000;
  }
  return 0;
}

// The spec's grammar, 1-8 digits then a unit, evaluated without overflow and then clamped.
std::optional<int64_t> reference_parse(std::string_view text) {
  if (text.size() < 2 || text.size() > 9) return std::nullopt;
  int64_t unit = unit_ns(text.back());
  if (unit == 0) return std::nullopt;
  __int128 value = 0;
  for (char c : text.substr(0, text.size() - 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  __int128 ns = value * unit;
  const __int128 cap = grelay::max_grpc_timeout.count();
  return static_cast<int64_t>(ns > cap ? cap : ns);
}

// |formatted| came from format_grpc_timeout(|d|): it must be well-formed and parse back to
// no earlier deadline than |d| (clamped), and round up by less than one of its unit.
void check_formatted(nanoseconds d, const std::string& formatted) {
  auto parsed = grelay::parse_grpc_timeout(formatted);
  if (!parsed) violated("formatted value does not parse", formatted);
  if (reference_parse(formatted) != parsed->count()) violated("formatted value misread", formatted);
  const nanoseconds max = grelay::max_grpc_timeout;
  if (d.count() <= 0) {
    if (formatted != "1n") violated("non-positive timeout not formatted as 1n", formatted);
    return;
  }
  if (*parsed < std::min(d, max)) violated("formatted value is earlier", formatted);
  if (*parsed > max) violated("formatted value beyond the clamp", formatted);
  if (d <= max && (*parsed - d).count() >= unit_ns(formatted.back())) {
    violated("formatted value rounded up by a unit or more", formatted);
  }
}

void check_timeout(std::string_view text, const uint8_t* data, size_t size) {
  auto parsed = grelay::parse_grpc_timeout(text);
  auto expected = reference_parse(text);
  if (parsed.has_value() != expected.has_value()) violated("accepts differently", text);
  if (parsed) {
    if (parsed->count() != *expected) violated("parsed value differs", text);
    check_formatted(*parsed, grelay::format_grpc_timeout(*parsed));
  }
  if (size >= sizeof(int64_t)) {
    int64_t raw = 0;
    std::memcpy(&raw, data, sizeof(raw));
    check_formatted(nanoseconds(raw), grelay::format_grpc_timeout(nanoseconds(raw)));
  }
}

void check_percent(std::string_view text) {
  std::string encoded = grelay::percent_encode_grpc_message(text);
  for (char c : encoded) {
    if (c < 0x20 || c > 0x7e) violated("encoded byte outside 0x20-0x7E", encoded);
  }
  if (grelay::percent_decode_grpc_message(encoded) != text) violated("round trip", text);
  // Arbitrary header text decodes to at most as many bytes.
  if (grelay::percent_decode_grpc_message(text).size() > text.size()) violated("decode grew", text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  check_timeout(text, data, size);
  check_percent(text);
  return 0;
}
