#include "grelay/relay.h"

#include <cerrno>
#include <system_error>

#include "admin/metrics.h"
#include "api/relay_group_impl.h"
#include "api/relay_state.h"
#include "core/log.h"
#include "grelay/listen.h"
#include "grelay/relay_group.h"
#include "relay/worker.h"

namespace grelay {

Relay::Relay(uv_loop_t* loop, std::shared_ptr<const Config> config)
    : Relay(loop, std::make_shared<RelayGroup>(std::move(config))) {
  state_->own_group = true;
}

Relay::Relay(uv_loop_t* loop, std::shared_ptr<RelayGroup> group) {
  RelayGroup::Impl& impl = *group->impl_;
  state_ = std::make_unique<State>(std::move(group), impl);
  state_->metrics.set_certificate_source([&impl] { return impl.certificates(); });
  RelayGroup::Impl::Shared shared = impl.current();
  auto stats = std::make_shared<WorkerStats>(*shared.config);
  state_->metrics.add_worker(stats);
  impl.metrics().add_worker(stats);
  const LogLevel level = shared.config->log_level;
  state_->worker =
      std::make_unique<Worker>(loop, std::move(shared.config), shared.tls, std::move(stats));
  state_->worker->share_gauges(std::move(shared.gauges));
  apply_config_log_level(level);
}

Relay::~Relay() = default;

namespace {

// Opens listener |index| of |config|. Throws std::system_error.
int open_listener(const Config& config, size_t index) {
  return open_listen_sockets(config.listeners[index].address).front();
}

}  // namespace

void Relay::listen() {
  const Config& config = state_->worker->config();
  for (size_t i = 0; i < config.listeners.size(); ++i)
    listen_fd(i, open_listener(config, i));
}

void Relay::listen_fd(size_t listener_index, int fd) {
  Worker& worker = *state_->worker;
  int rc = worker.listen(listener_index, fd);
  if (rc != 0) {
    const auto& listeners = worker.config().listeners;
    throw std::system_error(
        -rc, std::generic_category(),
        "listener " + (listener_index < listeners.size() ? listeners[listener_index].address.text
                                                         : std::to_string(listener_index)));
  }
}

void Relay::reload(std::shared_ptr<const Config> config, NewListeners added) {
  Worker& worker = *state_->worker;
  // Listener j of the new config continues listener i of the old one when map[i] == j, as the
  // worker matches them; the new config's others are opened after the switch.
  const std::vector<std::ptrdiff_t> map = match_listeners(worker.config(), *config);
  std::vector<bool> kept(config->listeners.size(), false);
  for (std::ptrdiff_t j : map) {
    if (j >= 0) kept[static_cast<size_t>(j)] = true;
  }
  // The group's certificates for the new config, loaded first: a file that fails leaves the
  // old config.
  RelayGroup::Impl& group = *state_->group->impl_;
  RelayGroup::Impl::Shared shared = group.shared_for(config);
  auto stats = std::make_shared<WorkerStats>(*config);
  if (!worker.reconfigure(config, std::move(shared.gauges), std::move(shared.tls), stats)) return;
  state_->metrics.add_worker(stats);
  group.metrics().add_worker(std::move(stats));
  apply_config_log_level(config->log_level);
  if (added != NewListeners::open) return;
  for (size_t j = 0; j < config->listeners.size(); ++j) {
    if (!kept[j]) listen_fd(j, open_listener(*config, j));
  }
}

int Relay::serve(uv_os_sock_t fd, size_t listener_index) {
  return state_->worker->serve(fd, listener_index);
}

std::vector<std::string> Relay::addresses() const {
  return state_->worker->addresses();
}

RelayMetrics Relay::metrics() const {
  return state_->metrics.totals();
}

std::string Relay::prometheus_text() const {
  return state_->metrics.render_prometheus();
}

RelayLoad Relay::load() const noexcept {
  const std::shared_ptr<const WorkerLoad> load = state_->worker->load();
  return {load->accepted.load(std::memory_order_relaxed),
          load->open_connections.load(std::memory_order_relaxed)};
}

void Relay::reopen_logs() {
  if (AccessLog* log = state_->worker->access_log()) log->request_reopen();
}

bool Relay::reload_certificates() {
  // Any thread: the group hands out the contexts under its lock, never through the loop's
  // snapshot, and holds a reference while they reload, whatever reload() does meanwhile.
  return state_->group->reload_certificates();
}

void Relay::shutdown(bool graceful, std::function<void()> done) {
  if (graceful && state_->own_group && !state_->drain_counted) {
    state_->drain_counted = true;
    state_->group->count_drain();
  }
  state_->worker->shutdown(graceful, std::move(done));
}

void Relay::expire_calls() noexcept {
  state_->worker->expire_calls();
}

}  // namespace grelay
