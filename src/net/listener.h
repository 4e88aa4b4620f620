#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <string>

namespace grelay {

struct HostPort;

// Fills |out| from an IP literal host and a port. Returns false if |host| is not an IP literal.
bool make_sockaddr(const std::string& host, uint16_t port, sockaddr_storage& out) noexcept;

// Formats |addr| as "ip:port" ("[ip]:port" for IPv6).
std::string sockaddr_to_string(const sockaddr* addr);

// Opens a listening TCP socket on |addr| with SO_REUSEADDR and SO_REUSEPORT set, so several
// workers can each hold one on the same port. Returns the fd, or a negative errno.
int open_listen_socket(const sockaddr* addr, int backlog) noexcept;

// Opens a listening socket at the [[listener]] address |address|, as above, and writes the
// address it is bound to (with the port the kernel picked for port 0) to |bound|. The one way
// a listener's address becomes a socket, for the Relay API and the grelay binary alike.
// Returns the fd, -EINVAL when the host is not an IP literal, or another negative errno.
int open_listen_socket(const HostPort& address, int backlog, sockaddr_storage& bound) noexcept;

// The address a socket is bound to (to learn the port the kernel picked for port 0).
bool socket_local_address(int fd, sockaddr_storage& out) noexcept;

// Open client connections of one listener, counted over every worker sharing it.
struct ConnectionGauge {
  std::atomic<uint32_t> open{0};
};

// Accepts connections on one listening socket and hands each to |on_accept|.
class Listener {
 public:
  using AcceptFn = void (*)(void* ctx, uv_stream_t* server) noexcept;

  // Takes ownership of |fd|. Returns nullptr (and closes |fd|) on failure, with |err| set.
  static Listener* open(uv_loop_t* loop, int fd, AcceptFn on_accept, void* ctx, int& err) noexcept;

  // Stops accepting; the Listener deletes itself once libuv has released the handle.
  void close() noexcept;

 private:
  Listener(AcceptFn on_accept, void* ctx) noexcept : on_accept_(on_accept), ctx_(ctx) {}
  static void connection_cb(uv_stream_t* server, int status) noexcept;
  static void close_cb(uv_handle_t* handle) noexcept;

  uv_tcp_t tcp_;
  AcceptFn on_accept_;
  void* ctx_;
};

}  // namespace grelay
