#include "core/log.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
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

// Writes "YYYY-MM-DDTHH:MM:SS.mmmZ" into |out|; returns the length.
size_t format_timestamp(char* out, size_t size) noexcept {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  tm utc{};
  gmtime_r(&now.tv_sec, &utc);
  const int n = std::snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", utc.tm_year + 1900,
                              utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                              now.tv_nsec / 1000000);
  return n < 0 ? 0 : std::min(static_cast<size_t>(n), size - 1);
}

}  // namespace

void set_log_level(LogLevel level) noexcept {
  log_level.store(level, std::memory_order_relaxed);
}

bool log_enabled(LogLevel level) noexcept {
  return level >= log_level.load(std::memory_order_relaxed);
}

namespace {

void write_line(LogLevel level, uint64_t suppressed, const char* fmt, va_list args) noexcept {
  const int saved_errno = errno;

  char message[max_line];
  const int n = std::vsnprintf(message, sizeof(message), fmt, args);
  const size_t message_len = n < 0 ? 0 : std::min(static_cast<size_t>(n), sizeof(message) - 1);

  char line[max_line];
  // Room for the closing quote, the suppressed count and the newline.
  const size_t room = sizeof(line) - 40;
  size_t len = 0;
  auto put = [&](const char* s, size_t slen) {
    slen = std::min(slen, room - len);
    std::memcpy(line + len, s, slen);
    len += slen;
  };
  put("ts=", 3);
  char stamp[40];
  put(stamp, format_timestamp(stamp, sizeof(stamp)));
  put(" level=", 7);
  const char* word = level_word(level);
  put(word, std::strlen(word));
  put(" msg=\"", 6);
  for (size_t i = 0; i < message_len && len + 2 <= room; ++i) {
    const auto c = static_cast<unsigned char>(message[i]);
    if (c == '"' || c == '\\') {
      line[len++] = '\\';
      line[len++] = static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      line[len++] = '?';
    } else {
      line[len++] = static_cast<char>(c);
    }
  }
  line[len++] = '"';
  if (suppressed > 0) {
    const int m = std::snprintf(line + len, sizeof(line) - len - 1, " suppressed=%llu",
                                static_cast<unsigned long long>(suppressed));
    if (m > 0) len += static_cast<size_t>(m);
  }
  line[len++] = '\n';

  // A short write to stderr is not worth a second syscall that could split the line.
  while (::write(STDERR_FILENO, line, len) < 0 && errno == EINTR) {
  }
  errno = saved_errno;
}

}  // namespace

void log_message(LogLevel level, const char* fmt, ...) noexcept {
  if (!log_enabled(level)) return;
  va_list args;
  va_start(args, fmt);
  write_line(level, 0, fmt, args);
  va_end(args);
}

void log_message_suppressed(LogLevel level, uint64_t suppressed, const char* fmt, ...) noexcept {
  if (!log_enabled(level)) return;
  va_list args;
  va_start(args, fmt);
  write_line(level, suppressed, fmt, args);
  va_end(args);
}

bool LogRateLimit::allow(uint64_t now_ms, uint64_t* suppressed) noexcept {
  const uint64_t second = now_ms / 1000;
  if (second_.load(std::memory_order_relaxed) != second &&
      second_.exchange(second, std::memory_order_relaxed) != second) {
    count_.store(0, std::memory_order_relaxed);
  }
  if (count_.fetch_add(1, std::memory_order_relaxed) >= max_per_second_) {
    suppressed_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  *suppressed = suppressed_.exchange(0, std::memory_order_relaxed);
  return true;
}

bool LogRateLimit::allow(uint64_t* suppressed) noexcept {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return allow(
      static_cast<uint64_t>(now.tv_sec) * 1000 + static_cast<uint64_t>(now.tv_nsec) / 1000000,
      suppressed);
}

}  // namespace grelay
