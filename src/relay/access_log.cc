#include "relay/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <system_error>

#include "core/json.h"
#include "core/log.h"

namespace grelay {
namespace {

// How often buffered lines are written, and how much is buffered before writing at once.
constexpr uint64_t flush_interval_ms = 100;
constexpr size_t flush_threshold = 64 * 1024;

int open_log(const std::string& path) noexcept {
  return ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

void append_field(std::string& out, const char* name, std::string_view value) {
  out += ",\"";
  out += name;
  out += "\":";
  append_json_string(out, value);
}

void append_field(std::string& out, const char* name, uint64_t value) {
  out += ",\"";
  out += name;
  out += "\":";
  out += std::to_string(value);
}

}  // namespace

AccessLog::AccessLog(uv_loop_t* loop, const AccessLogConfig& config) : config_(config) {
  if (config_.path == "-") {
    fd_ = STDOUT_FILENO;
  } else {
    fd_ = open_log(config_.path);
    if (fd_ < 0) {
      throw std::system_error(errno, std::generic_category(),
                              "cannot open access log " + config_.path);
    }
    owns_fd_ = true;
  }
  uv_timer_init(loop, &timer_);
  timer_.data = this;
  uv_timer_start(&timer_, timer_cb, flush_interval_ms, flush_interval_ms);
  // The log never keeps a loop alive on its own.
  uv_unref(reinterpret_cast<uv_handle_t*>(&timer_));
}

AccessLog::~AccessLog() {
  if (owns_fd_) ::close(fd_);
}

bool AccessLog::wants(StatusCode status) noexcept {
  if (config_.only_errors && status == StatusCode::ok) return false;
  if (config_.sample_rate >= 1.0) return true;
  sample_credit_ += config_.sample_rate;
  if (sample_credit_ < 1.0) return false;
  sample_credit_ -= 1.0;
  return true;
}

void AccessLog::format(std::string& out, const AccessLogEntry& e, uint64_t unix_ns) {
  time_t secs = static_cast<time_t>(unix_ns / 1000000000);
  tm utc{};
  gmtime_r(&secs, &utc);
  char time[80];
  std::snprintf(time, sizeof(time), "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<unsigned>(unix_ns / 1000000 % 1000));
  out += "{\"time\":\"";
  out += time;
  out += '"';
  append_field(out, "peer", e.peer);
  append_field(out, "authority", e.authority);
  append_field(out, "path", e.path);
  append_field(out, "protocol", e.protocol);
  append_field(out, "route", e.route);
  append_field(out, "cluster", e.cluster);
  append_field(out, "endpoint", e.endpoint);
  append_field(out, "status", status_name(e.status));
  append_field(out, "grpc_code", static_cast<uint64_t>(e.status));
  char duration[32];
  std::snprintf(duration, sizeof(duration), ",\"duration_ms\":%.3f",
                static_cast<double>(e.duration_ns) / 1e6);
  out += duration;
  append_field(out, "request_bytes", e.request_bytes);
  append_field(out, "response_bytes", e.response_bytes);
  append_field(out, "request_messages", e.request_messages);
  append_field(out, "response_messages", e.response_messages);
  append_field(out, "retries", uint64_t{e.retries});
  append_field(out, "error", e.error);
  append_field(out, "message", e.message);
  out += "}\n";
}

void AccessLog::append(const AccessLogEntry& entry) noexcept {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  format(buffer_, entry,
         static_cast<uint64_t>(now.tv_sec) * 1000000000 + static_cast<uint64_t>(now.tv_nsec));
  if (buffer_.size() >= flush_threshold) flush();
}

void AccessLog::reopen() noexcept {
  if (!owns_fd_) return;
  int fd = open_log(config_.path);
  if (fd < 0) {
    GRELAY_LOG_ERROR("cannot reopen access log %s: %s; still writing to the old file",
                     config_.path.c_str(), std::strerror(errno));
    return;
  }
  ::close(fd_);
  fd_ = fd;
}

void AccessLog::flush() noexcept {
  if (reopen_.exchange(false, std::memory_order_relaxed)) reopen();
  size_t done = 0;
  while (done < buffer_.size()) {
    ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      GRELAY_LOG_ERROR("cannot write the access log %s: %s; %zu bytes dropped",
                       config_.path.c_str(), n < 0 ? std::strerror(errno) : "short write",
                       buffer_.size() - done);
      break;
    }
    done += static_cast<size_t>(n);
  }
  buffer_.clear();
}

void AccessLog::timer_cb(uv_timer_t* timer) noexcept {
  static_cast<AccessLog*>(timer->data)->flush();
}

void AccessLog::close(void (*done)(void*), void* ctx) noexcept {
  flush();
  close_done_ = done;
  close_ctx_ = ctx;
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), close_cb);
}

void AccessLog::close_cb(uv_handle_t* handle) noexcept {
  auto* self = static_cast<AccessLog*>(handle->data);
  if (self->close_done_) self->close_done_(self->close_ctx_);
}

}  // namespace grelay
