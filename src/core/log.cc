#include "core/log.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>

namespace grelay {

namespace {

std::atomic<LogLevel> level_in_force{LogLevel::info};
// Set by the host's set_log_level(): configs no longer change the level.
std::atomic<bool> level_pinned{false};

// The host's sink, if it set one. |has_sink| keeps the lock off the default path; the sink
// is copied out under the lock and called outside it, so set_log_sink() never waits for a
// line being written.
std::mutex sink_mutex;
std::shared_ptr<const LogSink> sink;
std::atomic<bool> has_sink{false};

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
  level_pinned.store(true, std::memory_order_relaxed);
  level_in_force.store(level, std::memory_order_relaxed);
}

void use_config_log_level() noexcept {
  level_pinned.store(false, std::memory_order_relaxed);
}

void apply_config_log_level(LogLevel level) noexcept {
  if (!level_pinned.load(std::memory_order_relaxed)) {
    level_in_force.store(level, std::memory_order_relaxed);
  }
}

LogLevel log_level() noexcept {
  return level_in_force.load(std::memory_order_relaxed);
}

bool log_enabled(LogLevel level) noexcept {
  return level >= level_in_force.load(std::memory_order_relaxed);
}

void set_log_sink(LogSink new_sink) {
  std::shared_ptr<const LogSink> next;
  if (new_sink) next = std::make_shared<const LogSink>(std::move(new_sink));
  std::lock_guard<std::mutex> lock(sink_mutex);
  sink = std::move(next);
  has_sink.store(sink != nullptr, std::memory_order_release);
}

namespace {

// Hands |message| to the host's sink, its control characters replaced. False when there is
// no sink (the line goes to stderr).
bool to_sink(LogLevel level, uint64_t suppressed, const char* message, size_t message_len) {
  if (!has_sink.load(std::memory_order_acquire)) return false;
  std::shared_ptr<const LogSink> target;
  {
    std::lock_guard<std::mutex> lock(sink_mutex);
    target = sink;
  }
  if (!target) return false;
  char text[max_line + 32];
  size_t len = 0;
  for (size_t i = 0; i < message_len && i < max_line; ++i) {
    const auto c = static_cast<unsigned char>(message[i]);
    text[len++] = c < 0x20 || c == 0x7f ? '?' : static_cast<char>(c);
  }
  if (suppressed > 0) {
    const int m = std::snprintf(text + len, sizeof(text) - len, " (%llu suppressed)",
                                static_cast<unsigned long long>(suppressed));
    if (m > 0) len = std::min(len + static_cast<size_t>(m), sizeof(text) - 1);
  }
  try {
    (*target)(level, std::string_view(text, len));
  } catch (...) {
    // A sink that throws loses its line; the relay goes on.
  }
  return true;
}

// Writes one line for |message| to the sink, or to stderr.
void deliver(LogLevel level, uint64_t suppressed, const char* message,
             size_t message_len) noexcept {
  const int saved_errno = errno;
  if (to_sink(level, suppressed, message, message_len)) {
    errno = saved_errno;
    return;
  }

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

void write_line(LogLevel level, uint64_t suppressed, const char* fmt, va_list args) noexcept {
  const int saved_errno = errno;
  char message[max_line];
  const int n = std::vsnprintf(message, sizeof(message), fmt, args);
  const size_t message_len = n < 0 ? 0 : std::min(static_cast<size_t>(n), sizeof(message) - 1);
  errno = saved_errno;
  deliver(level, suppressed, message, message_len);
}

}  // namespace

void log_line(LogLevel level, std::string_view message) noexcept {
  if (!log_enabled(level)) return;
  deliver(level, 0, message.data(), std::min(message.size(), max_line - 1));
}

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
