#pragma once

#include "grelay/config.h"

namespace grelay {

// Messages below |level| are dropped. The default is LogLevel::info. Safe to call from any
// thread at any time.
void set_log_level(LogLevel level) noexcept;
bool log_enabled(LogLevel level) noexcept;

// Writes one line to stderr: "2026-11-21T07:50:00.123Z info message". The time is UTC with
// milliseconds. Control characters in the message become '?', so text from the network
// cannot forge lines. Each line is a single write(2), so threads do not interleave. Lines
// longer than about 4 KiB are cut. Leaves errno as it was.
void log_message(LogLevel level, const char* fmt, ...) noexcept
    __attribute__((format(printf, 2, 3)));

}  // namespace grelay

// Logging macros: the arguments are not evaluated when the level is disabled.
#define GRELAY_LOG_AT(level, ...)                \
  do {                                           \
    if (::grelay::log_enabled(level)) {          \
      ::grelay::log_message(level, __VA_ARGS__); \
    }                                            \
  } while (0)
#define GRELAY_LOG_DEBUG(...) GRELAY_LOG_AT(::grelay::LogLevel::debug, __VA_ARGS__)
#define GRELAY_LOG_INFO(...) GRELAY_LOG_AT(::grelay::LogLevel::info, __VA_ARGS__)
#define GRELAY_LOG_WARN(...) GRELAY_LOG_AT(::grelay::LogLevel::warn, __VA_ARGS__)
#define GRELAY_LOG_ERROR(...) GRELAY_LOG_AT(::grelay::LogLevel::error, __VA_ARGS__)
