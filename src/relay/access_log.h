#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "grelay/config.h"
#include "grelay/status.h"

namespace grelay {

// What the access log records of one finished call.
struct AccessLogEntry {
  std::string_view peer;
  std::string_view authority;
  std::string_view path;
  // What the client spoke: "grpc", "grpc-web", "grpc-web-text" or "connect".
  std::string_view protocol = "grpc";
  std::string_view route;
  std::string_view cluster;
  std::string_view endpoint;
  StatusCode status = StatusCode::ok;
  uint64_t duration_ns = 0;
  uint64_t request_bytes = 0;
  uint64_t response_bytes = 0;
  uint64_t request_messages = 0;
  uint64_t response_messages = 0;
  uint32_t retries = 0;
  std::string_view error;
  std::string_view message;
};

// The access log of one worker: one JSON line per finished call, kept in a buffer and
// written with one write(2) by a loop timer (or when the buffer grows large), so calls never
// wait on the disk. Each worker opens the file itself with O_APPEND; lines of different
// workers never interleave within a line.
class AccessLog {
 public:
  // Opens the file. Throws std::system_error when it cannot.
  AccessLog(uv_loop_t* loop, const AccessLogConfig& config);
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // Whether the call ending with |status| goes to the log: applies only_errors, then the
  // sample rate. Ask once per call.
  bool wants(StatusCode status) noexcept;
  void append(const AccessLogEntry& entry) noexcept;

  // Reopens the file at the next flush (after logrotate moved it). Any thread.
  void request_reopen() noexcept { reopen_.store(true, std::memory_order_relaxed); }

  // Writes what is buffered and closes the timer; |done| runs once it is released.
  void close(void (*done)(void*), void* ctx) noexcept;

  // Formats |entry| as one JSON line (newline included) at wall-clock time |unix_ns|.
  static void format(std::string& out, const AccessLogEntry& entry, uint64_t unix_ns);

 private:
  void flush() noexcept;
  void reopen() noexcept;
  static void timer_cb(uv_timer_t* timer) noexcept;
  static void close_cb(uv_handle_t* handle) noexcept;

  const AccessLogConfig& config_;
  uv_timer_t timer_;
  int fd_ = -1;
  bool owns_fd_ = false;
  std::string buffer_;
  // Error diffusion for sampling: a call is logged each time this passes 1.
  double sample_credit_ = 0;
  std::atomic<bool> reopen_{false};
  void (*close_done_)(void*) = nullptr;
  void* close_ctx_ = nullptr;
};

}  // namespace grelay
