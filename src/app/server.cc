#include "app/server.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <exception>
#include <stdexcept>
#include <system_error>

#include "app/log_format.h"
#include "grelay/listen.h"

namespace grelay {
namespace {

// How often watch_config looks at the file. Kubernetes takes up to a minute to update a
// ConfigMap volume anyway; a stat every 2 s costs nothing.
constexpr unsigned config_poll_ms = 2000;

// After the drain timeout, calls are ended with UNAVAILABLE; this long after, connections
// still open (a client that does not read its statuses) are closed.
constexpr uint64_t expire_grace_ms = 2000;
// Longest wait for the workers to apply a reload before it is reported anyway.
constexpr std::chrono::milliseconds reload_wait{2000};

}  // namespace

Server::Server(std::shared_ptr<const Config> config) : config_(std::move(config)) {
  uv_loop_init(&loop_);
  worker_count_ = config_->workers == 0 ? uv_available_parallelism() : config_->workers;
  if (worker_count_ == 0) worker_count_ = 1;
  // With one worker there is nothing to spread: it listens itself.
  handoff_ = config_->accept == AcceptMode::handoff && worker_count_ > 1;
}

Server::~Server() {
  workers_.clear();
  uv_loop_close(&loop_);
}

Server::ListenerState Server::open_listener(
    const Config& config, size_t index,
    std::vector<std::vector<std::pair<size_t, int>>>& worker_fds) {
  const ListenerConfig& listener = config.listeners[index];
  ListenerState state;
  state.open = true;
  size_t sockets = handoff_ ? 1 : worker_count_;
  std::vector<int> fds;
  try {
    // With port 0 the kernel picks one for the first socket, and the others share it.
    fds = open_listen_sockets(listener.address, sockets);
  } catch (const std::system_error& e) {
    if (e.code() == std::errc::invalid_argument) {
      throw ConfigError(config.path, listener.line,
                        "listener address " + listener.address.text + " is not an IP address");
    }
    throw ConfigError(config.path, listener.line,
                      "cannot listen on " + listener.address.text + ": " + e.code().message());
  }
  state.bound = bound_address(fds[0]);
  if (handoff_) {
    int err = 0;
    state.acceptor = Acceptor::open(
        &loop_, fds[0], index, [this](int fd, size_t i) { hand_out(fd, i); }, err);
    if (!state.acceptor) {
      throw ConfigError(config.path, listener.line,
                        "cannot listen on " + listener.address.text + ": " + uv_strerror(err));
    }
  } else {
    for (size_t w = 0; w < sockets; ++w)
      worker_fds[w].emplace_back(index, fds[w]);
  }
  return state;
}

void Server::hand_out(int fd, size_t listener_index) noexcept {
  // Round robin gives every worker the same number of connections; gRPC connections are
  // long-lived, so the count is what decides how evenly the load spreads.
  WorkerThread& worker = *workers_[next_worker_];
  next_worker_ = (next_worker_ + 1) % workers_.size();
  worker.post_connection(fd, listener_index);
}

int Server::run() {
  std::signal(SIGPIPE, SIG_IGN);
  // Certificates load first (throws std::runtime_error), before anything listens; the group
  // applies the config's log_level.
  group_ = std::make_shared<RelayGroup>(config_);
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
  // Signals are caught before "listening on" is logged: whoever waits for that line may
  // send SIGHUP at once, and SIGHUP's default action ends the process.
  for (uv_signal_t* sig : {&sigterm_, &sigint_, &sighup_, &sigusr1_}) {
    uv_signal_init(&loop_, sig);
    sig->data = this;
  }
  uv_signal_start(&sigterm_, signal_cb, SIGTERM);
  uv_signal_start(&sigint_, signal_cb, SIGINT);
  uv_signal_start(&sighup_, signal_cb, SIGHUP);
  uv_signal_start(&sigusr1_, signal_cb, SIGUSR1);
  std::vector<std::vector<std::pair<size_t, int>>> worker_fds(worker_count_);
  try {
    for (size_t i = 0; i < config_->listeners.size(); ++i) {
      listeners_.push_back(open_listener(*config_, i, worker_fds));
      log_format(LogLevel::info, "listening on %s", listeners_.back().bound.c_str());
    }
  } catch (...) {
    for (auto& fds : worker_fds) {
      for (auto& [index, fd] : fds)
        ::close(fd);
    }
    for (ListenerState& state : listeners_) {
      if (state.acceptor) state.acceptor->close();
    }
    for (uv_signal_t* sig : {&sigterm_, &sigint_, &sighup_, &sigusr1_})
      uv_close(reinterpret_cast<uv_handle_t*>(sig), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    throw;
  }

  uv_async_init(&loop_, &all_stopped_, [](uv_async_t* handle) {
    auto* self = static_cast<Server*>(handle->data);
    if (self->running_workers_.load() > 0) return;
    self->close_main_handles();
  });
  all_stopped_.data = this;
  uv_timer_init(&loop_, &drain_timer_);
  drain_timer_.data = this;
  if (config_->admin) {
    // [admin] is read at the start only: a reload warns that changes wait for a restart.
    admin_ = std::make_unique<AdminEndpoint>(&loop_, group_, *config_->admin);
    admin_->set_reload_handler([this] {
      ReloadResult result = reload();
      if (result.ok) return AdminEndpoint::Answer{200, "reloaded\n"};
      return AdminEndpoint::Answer{result.config_error ? 400 : 500, result.error + "\n"};
    });
    log_format(LogLevel::info, "admin endpoint at http://%s/", admin_->start().c_str());
  }
  watch_certificates();
  if (config_->watch_config) {
    uv_fs_poll_init(&loop_, &config_poll_);
    config_poll_.data = this;
    uv_fs_poll_start(&config_poll_, config_poll_cb, config_->path.c_str(), config_poll_ms);
    polling_config_ = true;
  }

  for (size_t w = 0; w < worker_count_; ++w) {
    // Each worker's Relay joins the group: its certificates, listener counts and metrics.
    auto worker = std::make_unique<WorkerThread>(w, group_);
    for (auto& [index, fd] : worker_fds[w])
      worker->listen(index, fd);
    workers_.push_back(std::move(worker));
  }
  for (auto& worker : workers_) {
    ++running_workers_;
    worker->start([this] {
      --running_workers_;
      uv_async_send(&all_stopped_);
    });
  }
  log_format(LogLevel::info, "grelay started with %zu worker%s (accept: %s)", workers_.size(),
             workers_.size() == 1 ? "" : "s", handoff_ ? "handoff" : "reuseport");
  notifier_.ready();

  uv_run(&loop_, UV_RUN_DEFAULT);
  for (auto& worker : workers_) {
    worker->join();
    log_format(LogLevel::info, "worker %zu accepted %llu connections", worker->id(),
               static_cast<unsigned long long>(worker->load().accepted));
  }
  log_format(LogLevel::info, "grelay stopped");
  return 0;
}

void Server::reopen_logs() {
  if (!config_->access_log) return;
  log_format(LogLevel::info, "reopening the access log %s", config_->access_log->path.c_str());
  for (auto& worker : workers_)
    worker->post_reopen_logs();
}

void Server::reload_certificates() {
  // Failures are logged, and each listener or cluster whose files fail keeps what it had.
  group_->reload_certificates();
}

void Server::watch_certificates() {
  if (cert_watcher_) {
    cert_watcher_->close();
    closed_watchers_.push_back(std::move(cert_watcher_));
  }
  if (std::vector<std::string> files = group_->certificate_files(); !files.empty()) {
    cert_watcher_ = std::make_unique<CertWatcher>(&loop_, files, [this] { reload_certificates(); });
  }
}

void Server::close_main_handles() {
  uv_close(reinterpret_cast<uv_handle_t*>(&all_stopped_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sigterm_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sigint_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sighup_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sigusr1_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&drain_timer_), nullptr);
  if (polling_config_) uv_close(reinterpret_cast<uv_handle_t*>(&config_poll_), nullptr);
  polling_config_ = false;
  if (cert_watcher_) cert_watcher_->close();
  for (ListenerState& state : listeners_) {
    if (state.acceptor) state.acceptor->close();
    state.acceptor = nullptr;
  }
  if (admin_) admin_->close();
}

Server::ReloadResult Server::reload() {
  if (draining_) return apply_reload();
  notifier_.reloading();
  ReloadResult result = apply_reload();
  notifier_.ready();
  if (!result.ok) notifier_.status("serving the previous config; reload failed: " + result.error);
  return result;
}

Server::ReloadResult Server::apply_reload() {
  ReloadResult result;
  // |counted|: the group counted the failure itself.
  auto fail = [this, &result](const std::string& error, bool config_error, bool counted = false) {
    ++reload_failures_;
    if (!counted) group_->count_failed_reload();
    result.error = error;
    result.config_error = config_error;
    log_format(LogLevel::error, "reload failed, still serving the previous config: %s",
               error.c_str());
    return result;
  };
  if (draining_) return fail(config_->path + ": draining; reload refused", false);
  std::shared_ptr<const Config> next;
  try {
    next = load_config(config_->path);
  } catch (const ConfigError& e) {
    return fail(e.what(), true);
  }

  // Listeners: those at an address kept stay open (no connection is dropped); new ones
  // are opened before anything changes, so a taken port fails the reload cleanly.
  std::vector<std::vector<std::pair<size_t, int>>> worker_fds(worker_count_);
  const std::vector<ptrdiff_t> map = match_listeners(*config_, *next);
  std::vector<ListenerState> next_listeners(next->listeners.size());
  for (size_t j = 0; j < listeners_.size(); ++j) {
    if (map[j] < 0) continue;
    const auto i = static_cast<size_t>(map[j]);
    next_listeners[i] = listeners_[j];
    if (next_listeners[i].acceptor) next_listeners[i].acceptor->set_index(i);
  }
  std::vector<size_t> added;
  // Closes what was opened for |next| and puts the acceptors kept back as they were.
  auto undo_listeners = [&] {
    for (auto& fds : worker_fds) {
      for (auto& [index, fd] : fds)
        ::close(fd);
    }
    for (size_t i : added) {
      if (next_listeners[i].acceptor) next_listeners[i].acceptor->close();
    }
    // Kept acceptors go back to the index they have in the config still in force.
    for (size_t j = 0; j < listeners_.size(); ++j) {
      if (map[j] >= 0 && listeners_[j].acceptor) listeners_[j].acceptor->set_index(j);
    }
  };
  try {
    for (size_t i = 0; i < next->listeners.size(); ++i) {
      if (next_listeners[i].open) continue;
      next_listeners[i] = open_listener(*next, i, worker_fds);
      added.push_back(i);
    }
  } catch (const ConfigError& e) {
    undo_listeners();
    return fail(e.what(), false);
  }
  // The new config's certificates load before anything changes; the group counts the
  // reload, or its failure.
  try {
    group_->reload(next);
  } catch (const std::exception& e) {
    undo_listeners();
    return fail(next->path + ": " + e.what(), false, true);
  }
  if (next->workers != config_->workers || next->accept != config_->accept) {
    log_format(LogLevel::warn, "reload: 'workers' and 'accept' take effect only at a restart");
  }
  if (next->admin.has_value() != config_->admin.has_value() ||
      (next->admin && !next->admin->address.same_address(config_->admin->address))) {
    log_format(LogLevel::warn, "reload: [admin] changes take effect only at a restart");
  }
  for (size_t j = 0; j < listeners_.size(); ++j) {
    if (map[j] < 0) {
      if (listeners_[j].acceptor) listeners_[j].acceptor->close();
      log_format(LogLevel::info, "no longer listening on %s", listeners_[j].bound.c_str());
    }
  }
  for (size_t i : added)
    log_format(LogLevel::info, "listening on %s", next_listeners[i].bound.c_str());

  // Each worker's Relay takes the group's certificates and listener counts for |next|, and
  // counts its calls afresh (the old counters stay in the metrics, so none goes back).
  auto countdown = std::make_shared<Countdown>(workers_.size());
  for (size_t w = 0; w < workers_.size(); ++w)
    workers_[w]->post_config(next, std::move(worker_fds[w]), countdown);
  // Workers swap at their next loop turn; waiting for them (well under a millisecond when
  // they are not swamped) makes "reloaded" mean that every new call follows the new config.
  if (!countdown->wait_for(reload_wait)) {
    log_format(LogLevel::warn,
               "reload: a worker has not applied the new config yet; it will shortly");
  }
  listeners_ = std::move(next_listeners);
  config_ = std::move(next);
  watch_certificates();
  ++reloads_;
  log_format(LogLevel::info, "reloaded %s: %zu listener%s, %zu route%s, %zu cluster%s",
             config_->path.c_str(), config_->listeners.size(),
             config_->listeners.size() == 1 ? "" : "s", config_->routes.size(),
             config_->routes.size() == 1 ? "" : "s", config_->clusters.size(),
             config_->clusters.size() == 1 ? "" : "s");
  result.ok = true;
  return result;
}

void Server::signal_cb(uv_signal_t* handle, int signum) noexcept {
  auto* self = static_cast<Server*>(handle->data);
  if (signum == SIGUSR1) {
    self->reopen_logs();
    return;
  }
  if (signum == SIGHUP) {
    log_format(LogLevel::info, "SIGHUP: reloading %s", self->config_->path.c_str());
    self->reopen_logs();
    // Certificate files first, for the clusters a config reload keeps as they are.
    self->reload_certificates();
    self->reload();
    return;
  }
  if (self->draining_) {
    log_format(LogLevel::info, "second stop signal: closing every connection now");
    self->force_stop();
    return;
  }
  self->start_drain();
}

void Server::config_poll_cb(uv_fs_poll_t* handle, int status, const uv_stat_t*,
                            const uv_stat_t*) noexcept {
  auto* self = static_cast<Server*>(handle->data);
  // A file that went away (status < 0) is left alone: the next version of it reloads.
  if (status < 0 || self->draining_) return;
  log_format(LogLevel::info, "%s changed: reloading", self->config_->path.c_str());
  self->reload_certificates();
  self->reload();
}

void Server::start_drain() {
  draining_ = true;
  group_->count_drain();
  if (admin_) admin_->set_draining();
  uint64_t timeout = static_cast<uint64_t>(config_->drain_timeout.count());
  notifier_.stopping(timeout + expire_grace_ms);
  log_format(LogLevel::info, "draining: no new connections; open calls may run for %llu ms",
             static_cast<unsigned long long>(timeout));
  for (ListenerState& state : listeners_) {
    if (state.acceptor) state.acceptor->close();
    state.acceptor = nullptr;
  }
  for (auto& worker : workers_)
    worker->post_stop(WorkerThread::Stop::drain);
  uv_timer_start(&drain_timer_, drain_timer_cb, timeout, 0);
  uv_unref(reinterpret_cast<uv_handle_t*>(&drain_timer_));
}

void Server::force_stop() {
  for (auto& worker : workers_)
    worker->post_stop(WorkerThread::Stop::close_now);
}

void Server::drain_timer_cb(uv_timer_t* handle) noexcept {
  auto* self = static_cast<Server*>(handle->data);
  if (self->expired_) {
    log_format(LogLevel::warn, "closing the connections still open");
    self->force_stop();
    return;
  }
  self->expired_ = true;
  log_format(LogLevel::warn, "drain timeout reached: ending the open calls with UNAVAILABLE");
  for (auto& worker : self->workers_)
    worker->post_stop(WorkerThread::Stop::expire);
  uv_timer_start(&self->drain_timer_, drain_timer_cb, expire_grace_ms, 0);
}

}  // namespace grelay
