#pragma once

#include <atomic>
#include <cstdarg>
#include <cstdint>

#include "grelay/config.h"
#include "grelay/log.h"

namespace grelay {

// The level, the sink and log_line() are public (grelay/log.h); this is the relay's own side.

// Applies a config's log_level, unless the host set a level (set_log_level()). Relays and
// relay groups call it when they are made and at each reload.
void apply_config_log_level(LogLevel level) noexcept;

// Formats one line and hands it to the sink; without one, writes it to stderr as key=value
// pairs:
//   ts=2026-11-21T07:50:00.123Z level=info msg="listening on 127.0.0.1:50050"
// The time is UTC with milliseconds. In the message, '"' and '\' are escaped with '\' and
// control characters become '?', so text from the network cannot forge lines or fields.
// Each line is a single write(2), so threads do not interleave. Lines longer than about
// 4 KiB are cut. Leaves errno as it was.
void log_message(LogLevel level, const char* fmt, ...) noexcept
    __attribute__((format(printf, 2, 3)));
// The same, ending the line with " suppressed=N" when |suppressed| is not 0.
void log_message_suppressed(LogLevel level, uint64_t suppressed, const char* fmt, ...) noexcept
    __attribute__((format(printf, 3, 4)));

// Lets one log site write at most |max_per_second| lines per second; the lines it holds
// back are counted and reported on the next line it lets through. Thread-safe; the count is
// approximate when threads race.
class LogRateLimit {
 public:
  static constexpr uint32_t default_per_second = 10;

  constexpr LogRateLimit() noexcept = default;
  explicit constexpr LogRateLimit(uint32_t max_per_second) noexcept
      : max_per_second_(max_per_second) {}

  // True when a line may be written at monotonic time |now_ms|; then |*suppressed| is the
  // number of lines held back since the last one written.
  bool allow(uint64_t now_ms, uint64_t* suppressed) noexcept;
  // allow() at the current monotonic time.
  bool allow(uint64_t* suppressed) noexcept;

 private:
  std::atomic<uint64_t> second_{UINT64_MAX};
  std::atomic<uint32_t> count_{0};
  std::atomic<uint64_t> suppressed_{0};
  uint32_t max_per_second_ = default_per_second;
};

}  // namespace grelay

// Logging macros: the arguments are not evaluated when the level is disabled. Warnings and
// errors are rate-limited per call site (LogRateLimit), as a failing peer can repeat them at
// the rate of calls.
#define GRELAY_LOG_AT(level, ...)                \
  do {                                           \
    if (::grelay::log_enabled(level)) {          \
      ::grelay::log_message(level, __VA_ARGS__); \
    }                                            \
  } while (0)
#define GRELAY_LOG_LIMITED(level, ...)                                                \
  do {                                                                                \
    if (::grelay::log_enabled(level)) {                                               \
      static ::grelay::LogRateLimit grelay_log_limit_;                                \
      uint64_t grelay_log_suppressed_ = 0;                                            \
      if (grelay_log_limit_.allow(&grelay_log_suppressed_)) {                         \
        ::grelay::log_message_suppressed(level, grelay_log_suppressed_, __VA_ARGS__); \
      }                                                                               \
    }                                                                                 \
  } while (0)
#define GRELAY_LOG_DEBUG(...) GRELAY_LOG_AT(::grelay::LogLevel::debug, __VA_ARGS__)
#define GRELAY_LOG_INFO(...) GRELAY_LOG_AT(::grelay::LogLevel::info, __VA_ARGS__)
#define GRELAY_LOG_WARN(...) GRELAY_LOG_LIMITED(::grelay::LogLevel::warn, __VA_ARGS__)
#define GRELAY_LOG_ERROR(...) GRELAY_LOG_LIMITED(::grelay::LogLevel::error, __VA_ARGS__)
