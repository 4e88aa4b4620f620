#include "app/service_notifier.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace grelay {
namespace {

uint64_t monotonic_us() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

}  // namespace

ServiceNotifier::ServiceNotifier() {
  if (const char* path = std::getenv("NOTIFY_SOCKET")) socket_ = path;
}

bool ServiceNotifier::send(std::string_view state) noexcept {
  if (socket_.empty() || socket_.size() >= sizeof(sockaddr_un::sun_path)) return false;
  if (socket_[0] != '/' && socket_[0] != '@') return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_.data(), socket_.size());
  // An abstract name starts with a NUL byte in place of the '@'.
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';
  auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_.size());
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  ssize_t sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                          reinterpret_cast<const sockaddr*>(&addr), len);
  ::close(fd);
  return sent == static_cast<ssize_t>(state.size());
}

void ServiceNotifier::ready() noexcept {
  send("READY=1\nSTATUS=serving");
}

void ServiceNotifier::reloading() noexcept {
  // systemd 253+ matches RELOADING=1 with the monotonic time; older ones ignore the field.
  send("RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=" + std::to_string(monotonic_us()));
}

void ServiceNotifier::stopping(uint64_t drain_ms) noexcept {
  // A margin for the workers to close their last sockets after the drain: past it, the
  // service manager may kill the process.
  constexpr uint64_t margin_ms = 5000;
  send("STOPPING=1\nSTATUS=draining\nEXTEND_TIMEOUT_USEC=" +
       std::to_string((drain_ms + margin_ms) * 1000));
}

void ServiceNotifier::status(std::string_view text) noexcept {
  send("STATUS=" + std::string(text));
}

}  // namespace grelay
