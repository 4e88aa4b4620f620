#include "grelay/relay.h"

#include <cerrno>
#include <system_error>

#include "config/listener_match.h"
#include "net/listener.h"
#include "net/tls_contexts.h"
#include "relay/worker.h"

namespace grelay {

Relay::Relay(uv_loop_t* loop, std::shared_ptr<const Config> config,
             std::shared_ptr<TlsContexts> tls) {
  if (!tls) tls = std::make_shared<TlsContexts>(*config);
  tls_ = tls;
  worker_ = std::make_unique<Worker>(loop, std::move(config), std::move(tls));
}

Relay::~Relay() = default;

namespace {

// Opens listener |index| of |config|. Throws std::system_error.
int open_listener(const Config& config, size_t index) {
  const HostPort& address = config.listeners[index].address;
  sockaddr_storage bound{};
  int fd = open_listen_socket(address, 1024, bound);
  if (fd == -EINVAL) {
    throw std::system_error(EINVAL, std::generic_category(), "listener address " + address.text);
  }
  if (fd < 0) throw std::system_error(-fd, std::generic_category(), "listen on " + address.text);
  return fd;
}

}  // namespace

void Relay::listen() {
  const Config& config = worker_->config();
  for (size_t i = 0; i < config.listeners.size(); ++i)
    listen_fd(i, open_listener(config, i));
}

void Relay::listen_fd(size_t listener_index, int fd) {
  int rc = worker_->listen(listener_index, fd);
  if (rc != 0) {
    throw std::system_error(-rc, std::generic_category(),
                            "listener " + worker_->config().listeners[listener_index].address.text);
  }
}

void Relay::reload(std::shared_ptr<const Config> config) {
  // Listener j of the new config continues listener i of the old one when map[i] == j, as the
  // worker matches them; the new config's others are opened after the switch.
  const std::vector<ptrdiff_t> map = match_listeners(worker_->config(), *config);
  std::vector<bool> kept(config->listeners.size(), false);
  for (ptrdiff_t j : map) {
    if (j >= 0) kept[static_cast<size_t>(j)] = true;
  }
  // Loads the new config's certificates first: a file that fails leaves the old config.
  auto tls = std::make_shared<TlsContexts>(*config, worker_->tls_contexts().get());
  if (!worker_->reconfigure(config, {}, tls, nullptr)) return;
  {
    std::lock_guard<std::mutex> lock(tls_mutex_);
    tls_ = std::move(tls);
  }
  for (size_t j = 0; j < config->listeners.size(); ++j) {
    if (!kept[j]) listen_fd(j, open_listener(*config, j));
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
  // Any thread: the contexts are taken under the lock, never through the loop's snapshot,
  // and the reference keeps them alive while they reload, whatever reload() does meanwhile.
  std::shared_ptr<TlsContexts> tls;
  {
    std::lock_guard<std::mutex> lock(tls_mutex_);
    tls = tls_;
  }
  return tls->reload() == 0;
}

void Relay::shutdown(bool graceful, std::function<void()> done) {
  worker_->shutdown(graceful, std::move(done));
}

}  // namespace grelay
