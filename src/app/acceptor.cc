#include "app/acceptor.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "app/log_format.h"

namespace grelay {
namespace {

// Connections taken per wakeup, so one busy listener cannot hold the main loop.
constexpr int max_accepts_per_wakeup = 256;
constexpr uint64_t accept_retry_ms = 100;

}  // namespace

Acceptor* Acceptor::open(uv_loop_t* loop, int fd, size_t listener_index, HandOut hand_out,
                         int& err) noexcept {
  auto* self = new Acceptor(fd, listener_index, std::move(hand_out));
  err = uv_poll_init(loop, &self->poll_, fd);
  if (err != 0) {
    ::close(fd);
    delete self;
    return nullptr;
  }
  uv_timer_init(loop, &self->retry_);
  self->open_handles_ = 2;
  self->poll_.data = self;
  self->retry_.data = self;
  err = uv_poll_start(&self->poll_, UV_READABLE, poll_cb);
  if (err != 0) {
    self->close();
    return nullptr;
  }
  return self;
}

void Acceptor::poll_cb(uv_poll_t* handle, int status, int) noexcept {
  auto* self = static_cast<Acceptor*>(handle->data);
  if (status < 0) return;
  for (int i = 0; i < max_accepts_per_wakeup; ++i) {
    int fd = ::accept4(self->fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      self->hand_out_(fd, self->index_);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      log_format(LogLevel::warn, "accept failed: %s; pausing accepts for %llu ms",
                 uv_strerror(-errno), static_cast<unsigned long long>(accept_retry_ms));
      uv_poll_stop(&self->poll_);
      uv_timer_start(&self->retry_, retry_cb, accept_retry_ms, 0);
    }
    return;
  }
}

void Acceptor::retry_cb(uv_timer_t* handle) noexcept {
  auto* self = static_cast<Acceptor*>(handle->data);
  uv_poll_start(&self->poll_, UV_READABLE, poll_cb);
}

void Acceptor::close() noexcept {
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), close_cb);
  uv_close(reinterpret_cast<uv_handle_t*>(&retry_), close_cb);
}

void Acceptor::close_cb(uv_handle_t* handle) noexcept {
  auto* self = static_cast<Acceptor*>(handle->data);
  if (--self->open_handles_ > 0) return;
  ::close(self->fd_);
  delete self;
}

}  // namespace grelay
