#pragma once

#include <ares.h>
#include <uv.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "grelay/config.h"

namespace grelay {

// Asynchronous A/AAAA lookups on a libuv loop (c-ares). Owned by itself: close() cancels
// every lookup (their callbacks are not called) and the object deletes itself once its
// handles are released.
class DnsResolver {
 public:
  // Every address of the name (port filled in), or a c-ares error with its text.
  using Done = std::function<void(int status, const std::string& error,
                                  std::vector<sockaddr_storage> addresses)>;

  // Returns nullptr and sets |*error| when c-ares cannot start. |server|, if set, is the
  // only DNS server asked (and the hosts file is not read).
  static DnsResolver* create(uv_loop_t* loop, const std::optional<HostPort>& server,
                             std::chrono::milliseconds timeout, std::string* error);

  void resolve(const std::string& host, uint16_t port, Done done);
  void close() noexcept;

 private:
  struct Poll;
  struct Query;

  explicit DnsResolver(uv_loop_t* loop) noexcept;
  ~DnsResolver();

  static void sock_state_cb(void* data, ares_socket_t fd, int readable, int writable) noexcept;
  static void poll_cb(uv_poll_t* handle, int status, int events) noexcept;
  static void timer_cb(uv_timer_t* timer) noexcept;
  static void close_cb(uv_handle_t* handle) noexcept;
  static void answer_cb(void* arg, int status, int timeouts, ares_addrinfo* result) noexcept;
  void rearm_timer() noexcept;
  void release_handle() noexcept;

  uv_loop_t* loop_;
  ares_channel channel_ = nullptr;
  uv_timer_t* timer_ = nullptr;
  std::vector<Poll*> polls_;
  int open_handles_ = 0;
  bool closing_ = false;
};

}  // namespace grelay
