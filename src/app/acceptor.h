#pragma once

#include <uv.h>

#include <cstddef>
#include <functional>

namespace grelay {

// The handoff accept mode: one listening socket watched on the main loop; every connection
// it accepts is passed, as a plain socket, to |hand_out| (which picks a worker round robin).
// Deletes itself after close().
class Acceptor {
 public:
  using HandOut = std::function<void(int fd, size_t listener_index)>;

  // Takes ownership of |fd| (a non-blocking listening socket). Returns nullptr and closes
  // |fd| on failure, with |err| set to a libuv error.
  static Acceptor* open(uv_loop_t* loop, int fd, size_t listener_index, HandOut hand_out,
                        int& err) noexcept;

  // The listener's index in the config now in force (it changes on reload).
  void set_index(size_t listener_index) noexcept { index_ = listener_index; }
  // Stops accepting and closes the socket.
  void close() noexcept;

 private:
  Acceptor(int fd, size_t listener_index, HandOut hand_out) noexcept
      : fd_(fd), index_(listener_index), hand_out_(std::move(hand_out)) {}
  static void poll_cb(uv_poll_t* handle, int status, int events) noexcept;
  static void retry_cb(uv_timer_t* handle) noexcept;
  static void close_cb(uv_handle_t* handle) noexcept;

  uv_poll_t poll_;
  // Out of file descriptors, accepting pauses a little instead of spinning.
  uv_timer_t retry_;
  int open_handles_ = 0;
  int fd_;
  size_t index_;
  HandOut hand_out_;
};

}  // namespace grelay
