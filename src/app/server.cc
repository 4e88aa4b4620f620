#include "app/server.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <mutex>
#include <stdexcept>
#include <system_error>

#include "core/log.h"
#include "net/listener.h"
#include "net/tls_contexts.h"

namespace grelay {
namespace {

// How long open calls may run after SIGTERM before connections are closed.
constexpr uint64_t drain_timeout_ms = 30000;

}  // namespace

// A thread with its own loop and Relay. Stop requests arrive through |stop_async|.
struct Server::WorkerThread {
  Server* server = nullptr;
  uv_loop_t loop;
  uv_async_t stop_async;
  // 0 running, 1 drain, 2 close now.
  std::atomic<int> stop_mode{0};
  std::unique_ptr<Relay> relay;
  std::thread thread;
  // Guards |stop_async| against a send from the main thread after the worker closed it.
  std::mutex mutex;
  bool stopped = false;

  void reopen_logs() {
    std::lock_guard<std::mutex> lock(mutex);
    if (!stopped) relay->reopen_logs();
  }

  void request_stop(int mode) {
    std::lock_guard<std::mutex> lock(mutex);
    if (stopped) return;
    stop_mode.store(mode);
    uv_async_send(&stop_async);
  }

  static void stop_cb(uv_async_t* handle) noexcept {
    auto* self = static_cast<WorkerThread*>(handle->data);
    bool graceful = self->stop_mode.load() == 1;
    self->relay->shutdown(graceful, [self] {
      std::lock_guard<std::mutex> lock(self->mutex);
      self->stopped = true;
      uv_close(reinterpret_cast<uv_handle_t*>(&self->stop_async), nullptr);
    });
  }
};

Server::Server(std::shared_ptr<const Config> config) : config_(std::move(config)) {
  uv_loop_init(&loop_);
}

Server::~Server() {
  for (auto& fds : listen_fds_) {
    for (int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  }
  uv_loop_close(&loop_);
}

void Server::open_listeners() {
  unsigned workers = config_->workers;
  if (workers == 0) workers = uv_available_parallelism();
  listen_fds_.assign(workers, std::vector<int>(config_->listeners.size(), -1));
  for (size_t i = 0; i < config_->listeners.size(); ++i) {
    const HostPort& hp = config_->listeners[i].address;
    sockaddr_storage addr{};
    if (!make_sockaddr(hp.host, hp.port, addr)) {
      throw std::runtime_error(config_->path + ": listener address " + hp.text +
                               " is not an IP address");
    }
    for (unsigned w = 0; w < workers; ++w) {
      int fd = open_listen_socket(reinterpret_cast<sockaddr*>(&addr), 1024);
      if (fd < 0) {
        throw std::system_error(-fd, std::generic_category(), "cannot listen on " + hp.text);
      }
      listen_fds_[w][i] = fd;
      // Port 0 lets the kernel pick; the other workers then share the port it picked.
      if (w == 0) socket_local_address(fd, addr);
    }
    GRELAY_LOG_INFO("listening on %s",
                    sockaddr_to_string(reinterpret_cast<sockaddr*>(&addr)).c_str());
  }
}

int Server::run() {
  std::signal(SIGPIPE, SIG_IGN);
  // Each worker opens the access log itself; a path that cannot be opened stops the start
  // here, before anything listens.
  if (config_->access_log && config_->access_log->path != "-") {
    const std::string& path = config_->access_log->path;
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      throw std::system_error(errno, std::generic_category(), "cannot open access log " + path);
    }
    ::close(fd);
  }
  open_listeners();

  uv_async_init(&loop_, &all_stopped_, [](uv_async_t* handle) {
    auto* self = static_cast<Server*>(handle->data);
    if (self->running_workers_.load() > 0) return;
    uv_close(reinterpret_cast<uv_handle_t*>(&self->all_stopped_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&self->sigterm_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&self->sigint_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&self->sighup_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&self->sigusr1_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&self->drain_timer_), nullptr);
    if (self->admin_) self->admin_->close();
    if (self->cert_watcher_) self->cert_watcher_->close();
  });
  all_stopped_.data = this;
  for (uv_signal_t* sig : {&sigterm_, &sigint_, &sighup_, &sigusr1_}) {
    uv_signal_init(&loop_, sig);
    sig->data = this;
  }
  uv_signal_start(&sigterm_, signal_cb, SIGTERM);
  uv_signal_start(&sigint_, signal_cb, SIGINT);
  uv_signal_start(&sighup_, signal_cb, SIGHUP);
  uv_signal_start(&sigusr1_, signal_cb, SIGUSR1);
  uv_timer_init(&loop_, &drain_timer_);
  drain_timer_.data = this;
  if (config_->admin) {
    admin_ = std::make_unique<AdminServer>(&loop_, *config_->admin, metrics_, config_);
    GRELAY_LOG_INFO("admin endpoint at http://%s/", admin_->start().c_str());
  }

  tls_ = std::make_shared<TlsContexts>(*config_);
  if (std::vector<std::string> files = tls_->files(); !files.empty()) {
    cert_watcher_ = std::make_unique<CertWatcher>(&loop_, files, [this] { reload_certificates(); });
  }

  for (size_t w = 0; w < listen_fds_.size(); ++w) {
    auto worker = std::make_unique<WorkerThread>();
    WorkerThread* t = worker.get();
    t->server = this;
    uv_loop_init(&t->loop);
    uv_async_init(&t->loop, &t->stop_async, WorkerThread::stop_cb);
    t->stop_async.data = t;
    t->relay = std::make_unique<Relay>(&t->loop, config_, tls_);
    metrics_.add_worker(t->relay->stats());
    for (size_t i = 0; i < listen_fds_[w].size(); ++i) {
      t->relay->listen_fd(i, listen_fds_[w][i]);
      listen_fds_[w][i] = -1;
    }
    ++running_workers_;
    t->thread = std::thread([this, t] {
      uv_run(&t->loop, UV_RUN_DEFAULT);
      t->relay.reset();
      uv_loop_close(&t->loop);
      --running_workers_;
      uv_async_send(&all_stopped_);
    });
    workers_.push_back(std::move(worker));
  }
  GRELAY_LOG_INFO("grelay started with %zu worker%s", workers_.size(),
                  workers_.size() == 1 ? "" : "s");

  uv_run(&loop_, UV_RUN_DEFAULT);
  for (auto& worker : workers_)
    worker->thread.join();
  GRELAY_LOG_INFO("grelay stopped");
  return 0;
}

void Server::signal_cb(uv_signal_t* handle, int signum) noexcept {
  auto* self = static_cast<Server*>(handle->data);
  if (signum == SIGHUP || signum == SIGUSR1) self->reopen_logs();
  if (signum == SIGUSR1) return;
  if (signum == SIGHUP) {
    self->reload_certificates();
    GRELAY_LOG_WARN(
        "SIGHUP: this version does not reload its config; restart grelay to apply "
        "changes to %s",
        self->config_->path.c_str());
    return;
  }
  if (self->draining_) {
    GRELAY_LOG_INFO("second stop signal: closing every connection now");
    self->force_stop();
    return;
  }
  self->start_drain();
}

void Server::reopen_logs() {
  if (!config_->access_log) return;
  GRELAY_LOG_INFO("reopening the access log %s", config_->access_log->path.c_str());
  for (auto& worker : workers_)
    worker->reopen_logs();
}

void Server::reload_certificates() {
  if (tls_ && !tls_->files().empty()) tls_->reload();
}

void Server::start_drain() {
  draining_ = true;
  metrics_.process().drains.add();
  if (admin_) admin_->set_draining();
  GRELAY_LOG_INFO("draining: no new connections; open calls may run for %llu ms",
                  static_cast<unsigned long long>(drain_timeout_ms));
  for (auto& worker : workers_)
    worker->request_stop(1);
  uv_timer_start(&drain_timer_, drain_timer_cb, drain_timeout_ms, 0);
  uv_unref(reinterpret_cast<uv_handle_t*>(&drain_timer_));
}

void Server::force_stop() {
  for (auto& worker : workers_)
    worker->request_stop(2);
}

void Server::drain_timer_cb(uv_timer_t* handle) noexcept {
  auto* self = static_cast<Server*>(handle->data);
  GRELAY_LOG_WARN("drain timeout reached: closing the remaining connections");
  self->force_stop();
}

}  // namespace grelay
