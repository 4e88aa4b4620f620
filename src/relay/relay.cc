#include "grelay/relay.h"

#include <system_error>

#include "net/listener.h"
#include "net/tls_contexts.h"
#include "relay/worker.h"

namespace grelay {

Relay::Relay(uv_loop_t* loop, std::shared_ptr<const Config> config,
             std::shared_ptr<TlsContexts> tls) {
  if (!tls) tls = std::make_shared<TlsContexts>(*config);
  worker_ = std::make_unique<Worker>(loop, std::move(config), std::move(tls));
}

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
  // Loads the new config's certificates first: a file that fails leaves the old config.
  auto tls = std::make_shared<TlsContexts>(*config, worker_->tls_contexts().get());
  if (!worker_->reconfigure(config, {}, std::move(tls), nullptr)) return;
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

std::shared_ptr<const WorkerStats> Relay::stats() const {
  return worker_->shared_stats();
}

void Relay::reopen_logs() {
  if (AccessLog* log = worker_->access_log()) log->request_reopen();
}

std::shared_ptr<TlsContexts> Relay::tls_contexts() const {
  return worker_->tls_contexts();
}

bool Relay::reload_certificates() {
  return worker_->tls_contexts()->reload() == 0;
}

void Relay::shutdown(bool graceful, std::function<void()> done) {
  worker_->shutdown(graceful, std::move(done));
}

}  // namespace grelay
