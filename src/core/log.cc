#include "core/log.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <ctime>

namespace grelay {

namespace {

std::atomic<LogLevel> log_level{LogLevel::info};

// One line, newline included; longer messages are cut to fit.
constexpr size_t max_line = 4096;

const char* level_word(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warn";
    case LogLevel::error:
      return "error";
  }
  return "?";
}

// Writes "YYYY-MM-DDTHH:MM:SS.mmmZ " into |out|; returns the length.
size_t format_timestamp(char* out, size_t size) noexcept {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  tm utc{};
  gmtime_r(&now.tv_sec, &utc);
  const int n = std::snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ",
                              utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour,
                              utc.tm_min, utc.tm_sec, now.tv_nsec / 1000000);
  return n < 0 ? 0 : std::min(static_cast<size_t>(n), size - 1);
}

}  // namespace

void set_log_level(LogLevel level) noexcept {
  log_level.store(level, std::memory_order_relaxed);
}

bool log_enabled(LogLevel level) noexcept {
  return level >= log_level.load(std::memory_order_relaxed);
}

void log_message(LogLevel level, const char* fmt, ...) noexcept {
  if (!log_enabled(level)) return;
  const int saved_errno = errno;

  char line[max_line];
  // Leave one byte for the newline.
  const size_t room = sizeof(line) - 1;
  size_t len = format_timestamp(line, room);
  const int word = std::snprintf(line + len, room - len, "%s ", level_word(level));
  if (word > 0) len = std::min(len + static_cast<size_t>(word), room - 1);

  const size_t message_start = len;
  va_list args;
  va_start(args, fmt);
  const int n = std::vsnprintf(line + len, room - len, fmt, args);
  va_end(args);
  if (n > 0) len = std::min(len + static_cast<size_t>(n), room - 1);
  for (size_t i = message_start; i < len; ++i) {
    const auto c = static_cast<unsigned char>(line[i]);
    if (c < 0x20 || c == 0x7f) line[i] = '?';
  }
  line[len++] = '\n';

  // A short write to stderr is not worth a second syscall that could split the line.
  while (::write(STDERR_FILENO, line, len) < 0 && errno == EINTR) {
  }
  errno = saved_errno;
}

}  // namespace grelay
