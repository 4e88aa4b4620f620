#include "net/listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <system_error>
#include <vector>

#include "grelay/config.h"
#include "grelay/listen.h"

namespace grelay {

bool make_sockaddr(const std::string& host, uint16_t port, sockaddr_storage& out) noexcept {
  out = {};
  auto* in4 = reinterpret_cast<sockaddr_in*>(&out);
  if (inet_pton(AF_INET, host.c_str(), &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons(port);
    return true;
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&out);
  if (inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    return true;
  }
  return false;
}

std::string sockaddr_to_string(const sockaddr* addr) {
  char ip[INET6_ADDRSTRLEN] = "?";
  char buf[INET6_ADDRSTRLEN + 16];
  if (addr->sa_family == AF_INET6) {
    auto* sa = reinterpret_cast<const sockaddr_in6*>(addr);
    inet_ntop(AF_INET6, &sa->sin6_addr, ip, sizeof(ip));
    std::snprintf(buf, sizeof(buf), "[%s]:%u", ip, ntohs(sa->sin6_port));
  } else {
    auto* sa = reinterpret_cast<const sockaddr_in*>(addr);
    inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof(ip));
    std::snprintf(buf, sizeof(buf), "%s:%u", ip, ntohs(sa->sin_port));
  }
  return buf;
}

int open_listen_socket(const sockaddr* addr, int backlog) noexcept {
  int fd = ::socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (addr->sa_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  socklen_t len = addr->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  if (::bind(fd, addr, len) != 0 || ::listen(fd, backlog) != 0) {
    int err = errno;
    ::close(fd);
    return -err;
  }
  return fd;
}

int open_listen_socket(const HostPort& address, int backlog, sockaddr_storage& bound) noexcept {
  sockaddr_storage addr{};
  if (!make_sockaddr(address.host, address.port, addr)) return -EINVAL;
  int fd = open_listen_socket(reinterpret_cast<sockaddr*>(&addr), backlog);
  if (fd < 0) return fd;
  if (!socket_local_address(fd, bound)) bound = addr;
  return fd;
}

bool socket_local_address(int fd, sockaddr_storage& out) noexcept {
  socklen_t len = sizeof(out);
  return ::getsockname(fd, reinterpret_cast<sockaddr*>(&out), &len) == 0;
}

std::vector<int> open_listen_sockets(const HostPort& address, size_t count, int backlog) {
  std::vector<int> fds;
  sockaddr_storage bound{};
  for (size_t i = 0; i < count; ++i) {
    // Port 0 lets the kernel pick for the first socket; the others then share the port it
    // picked.
    int fd = i == 0 ? open_listen_socket(address, backlog, bound)
                    : open_listen_socket(reinterpret_cast<sockaddr*>(&bound), backlog);
    if (fd < 0) {
      for (int opened : fds)
        ::close(opened);
      throw std::system_error(-fd, std::generic_category(), "cannot listen on " + address.text);
    }
    fds.push_back(fd);
  }
  return fds;
}

std::string bound_address(int fd) {
  sockaddr_storage addr{};
  if (!socket_local_address(fd, addr)) return "";
  return sockaddr_to_string(reinterpret_cast<sockaddr*>(&addr));
}

Listener* Listener::open(uv_loop_t* loop, int fd, AcceptFn on_accept, void* ctx,
                         int& err) noexcept {
  auto* self = new Listener(on_accept, ctx);
  uv_tcp_init(loop, &self->tcp_);
  self->tcp_.data = self;
  err = uv_tcp_open(&self->tcp_, fd);
  if (err != 0) ::close(fd);
  if (err == 0) err = uv_listen(reinterpret_cast<uv_stream_t*>(&self->tcp_), 1024, connection_cb);
  if (err != 0) {
    self->close();
    return nullptr;
  }
  return self;
}

void Listener::connection_cb(uv_stream_t* server, int status) noexcept {
  auto* self = static_cast<Listener*>(server->data);
  if (status < 0) return;
  self->on_accept_(self->ctx_, server);
}

void Listener::close() noexcept {
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), close_cb);
}

void Listener::close_cb(uv_handle_t* handle) noexcept {
  delete static_cast<Listener*>(handle->data);
}

}  // namespace grelay
