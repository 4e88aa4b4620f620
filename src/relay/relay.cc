#include "grelay/relay.h"

#include <system_error>

#include "net/listener.h"
#include "relay/worker.h"

namespace grelay {

Relay::Relay(uv_loop_t* loop, std::shared_ptr<const Config> config)
    : worker_(std::make_unique<Worker>(loop, std::move(config))) {}

Relay::~Relay() = default;

void Relay::listen() {
  const Config& config = worker_->config();
  for (size_t i = 0; i < config.listeners.size(); ++i) {
    const HostPort& hp = config.listeners[i].address;
    sockaddr_storage addr{};
    if (!make_sockaddr(hp.host, hp.port, addr)) {
      throw std::system_error(EINVAL, std::generic_category(), "listener address " + hp.text);
    }
    int fd = open_listen_socket(reinterpret_cast<sockaddr*>(&addr), 1024);
    if (fd < 0) throw std::system_error(-fd, std::generic_category(), "listen on " + hp.text);
    listen_fd(i, fd);
  }
}

void Relay::listen_fd(size_t listener_index, int fd) {
  int rc = worker_->listen(listener_index, fd);
  if (rc != 0) {
    throw std::system_error(-rc, std::generic_category(),
                            "listener " + worker_->config().listeners[listener_index].address.text);
  }
}

void Relay::reload(std::shared_ptr<const Config> config) {
  std::vector<HostPort> before;
  for (const ListenerConfig& listener : worker_->config().listeners)
    before.push_back(listener.address);
  if (!worker_->reconfigure(config, {})) return;
  for (size_t i = 0; i < config->listeners.size(); ++i) {
    const HostPort& hp = config->listeners[i].address;
    bool known = false;
    for (const HostPort& old : before)
      known = known || (old.host == hp.host && old.port == hp.port);
    if (known) continue;
    sockaddr_storage addr{};
    if (!make_sockaddr(hp.host, hp.port, addr)) {
      throw std::system_error(EINVAL, std::generic_category(), "listener address " + hp.text);
    }
    int fd = open_listen_socket(reinterpret_cast<sockaddr*>(&addr), 1024);
    if (fd < 0) throw std::system_error(-fd, std::generic_category(), "listen on " + hp.text);
    listen_fd(i, fd);
  }
}

int Relay::serve(uv_os_sock_t fd, size_t listener_index) {
  return worker_->serve(fd, listener_index);
}

std::vector<std::string> Relay::addresses() const {
  return worker_->addresses();
}

void Relay::shutdown(bool graceful, std::function<void()> done) {
  worker_->shutdown(graceful, std::move(done));
}

}  // namespace grelay
