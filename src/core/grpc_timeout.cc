#include "core/grpc_timeout.h"

#include <cstdint>
#include <iterator>

namespace grelay {

namespace {

struct TimeoutUnit {
  char symbol;
  int64_t nanoseconds;
};

// Finest first.
constexpr TimeoutUnit timeout_units[] = {
    {'n', 1},
    {'u', 1'000},
    {'m', 1'000'000},
    {'S', 1'000'000'000},
    {'M', 60 * int64_t{1'000'000'000}},
    {'H', 3600 * int64_t{1'000'000'000}},
};

constexpr int max_timeout_digits = 8;
constexpr int64_t max_timeout_value = 99'999'999;

const TimeoutUnit* find_unit(char symbol) noexcept {
  for (const auto& unit : timeout_units) {
    if (unit.symbol == symbol) return &unit;
  }
  return nullptr;
}

std::string format_value(int64_t value, char symbol) {
  std::string text = std::to_string(value);
  text.push_back(symbol);
  return text;
}

}  // namespace

std::optional<std::chrono::nanoseconds> parse_grpc_timeout(std::string_view text) noexcept {
  if (text.size() < 2 || text.size() > max_timeout_digits + 1) return std::nullopt;
  const TimeoutUnit* unit = find_unit(text.back());
  if (unit == nullptr) return std::nullopt;
  int64_t value = 0;
  for (char c : text.substr(0, text.size() - 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  // Division, not multiplication, so that the check itself cannot overflow.
  const int64_t cap = max_grpc_timeout.count();
  if (value > cap / unit->nanoseconds) return max_grpc_timeout;
  return std::chrono::nanoseconds(value * unit->nanoseconds);
}

std::string format_grpc_timeout(std::chrono::nanoseconds d) {
  const int64_t ns = d.count();
  if (ns <= 0) return "1n";
  // Exact: the coarsest unit gives the shortest text.
  for (auto it = std::rbegin(timeout_units); it != std::rend(timeout_units); ++it) {
    if (ns % it->nanoseconds == 0 && ns / it->nanoseconds <= max_timeout_value) {
      return format_value(ns / it->nanoseconds, it->symbol);
    }
  }
  // Inexact: the finest unit that fits loses the least, rounding up.
  for (const auto& unit : timeout_units) {
    const int64_t value = ns / unit.nanoseconds + (ns % unit.nanoseconds != 0 ? 1 : 0);
    if (value <= max_timeout_value) return format_value(value, unit.symbol);
  }
  return format_value(max_timeout_value, 'H');
}

}  // namespace grelay
