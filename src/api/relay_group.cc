#include "grelay/relay_group.h"

#include <exception>
#include <utility>

#include "api/relay_group_impl.h"
#include "core/log.h"
#include "grelay/listen.h"

namespace grelay {

RelayGroup::Impl::Impl(std::shared_ptr<const Config> config) {
  Generation first;
  first.config = config;
  first.tls = std::make_shared<TlsContexts>(*config);
  for (size_t i = 0; i < config->listeners.size(); ++i)
    first.gauges.push_back(std::make_shared<ConnectionGauge>());
  generations_.push_back(std::move(first));
  config_ = std::move(config);
  metrics_.set_certificate_source([this] { return certificates(); });
}

RelayGroup::Impl::Shared RelayGroup::Impl::current() const {
  std::lock_guard<std::mutex> lock(mutex_);
  const Generation& g = generations_.back();
  return {config_, g.tls, g.gauges};
}

const RelayGroup::Impl::Generation* RelayGroup::Impl::find(
    const std::shared_ptr<const Config>& config) const noexcept {
  for (const Generation& g : generations_) {
    if (g.config.lock() == config) return &g;
  }
  return nullptr;
}

RelayGroup::Impl::Shared RelayGroup::Impl::shared_for(const std::shared_ptr<const Config>& config) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (const Generation* g = find(config)) return {config, g->tls, g->gauges};
  }
  reload(config);
  return current();
}

void RelayGroup::Impl::reload(std::shared_ptr<const Config> config) {
  std::lock_guard<std::mutex> reloading(reload_mutex_);
  Shared now = current();
  // Two Relays may meet a config new to the group at once: the second finds it made.
  if (now.config == config) return;
  {
    // Back to an earlier config still in use: its state is still shared.
    std::lock_guard<std::mutex> lock(mutex_);
    if (const Generation* g = find(config)) {
      Generation again = *g;
      std::erase_if(generations_, [g](const Generation& e) { return &e == g; });
      generations_.push_back(std::move(again));
      config_ = config;
      apply_config_log_level(config->log_level);
      process_->reloads_ok.add();
      return;
    }
  }
  Generation next;
  next.config = config;
  try {
    // Listeners at the same address keep their session ticket keys.
    next.tls = std::make_shared<TlsContexts>(*config, now.tls.get());
  } catch (...) {
    process_->reloads_failed.add();
    throw;
  }
  // A listener the new config keeps goes on counting its open connections.
  next.gauges.resize(config->listeners.size());
  const std::vector<std::ptrdiff_t> map = match_listeners(*now.config, *config);
  for (size_t i = 0; i < map.size(); ++i) {
    if (map[i] >= 0) next.gauges[static_cast<size_t>(map[i])] = now.gauges[i];
  }
  for (auto& gauge : next.gauges) {
    if (!gauge) gauge = std::make_shared<ConnectionGauge>();
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    prune();
    generations_.push_back(std::move(next));
    config_ = config;
  }
  apply_config_log_level(config->log_level);
  process_->reloads_ok.add();
}

void RelayGroup::Impl::prune() {
  // The config in force (last) is held by |config_|; earlier ones by the Relays' calls and
  // clusters, whose certificates are then still in use too.
  std::erase_if(generations_, [](const Generation& g) { return g.config.expired(); });
}

bool RelayGroup::Impl::reload_certificates() {
  std::vector<std::shared_ptr<TlsContexts>> all;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    prune();
    for (const Generation& g : generations_)
      all.push_back(g.tls);
  }
  // Each holds a reference, so a reload meanwhile frees none of them while they load.
  size_t failures = 0;
  for (const auto& tls : all) {
    if (!tls->files().empty()) failures += tls->reload();
  }
  return failures == 0;
}

std::vector<std::string> RelayGroup::Impl::certificate_files() const {
  return current().tls->files();
}

std::vector<CertificateExpiry> RelayGroup::Impl::certificates() const {
  std::vector<CertificateExpiry> out;
  for (TlsContexts::Certificate& c : current().tls->certificates())
    out.push_back({std::move(c.kind), std::move(c.name), std::move(c.file), c.not_after});
  return out;
}

RelayGroup::RelayGroup(std::shared_ptr<const Config> config)
    : impl_(std::make_unique<Impl>(config)) {
  apply_config_log_level(config->log_level);
}

RelayGroup::~RelayGroup() = default;

std::shared_ptr<const Config> RelayGroup::config() const {
  return impl_->current().config;
}

void RelayGroup::reload(std::shared_ptr<const Config> config) {
  impl_->reload(std::move(config));
}

bool RelayGroup::reload_certificates() {
  return impl_->reload_certificates();
}

std::vector<std::string> RelayGroup::certificate_files() const {
  return impl_->certificate_files();
}

RelayMetrics RelayGroup::metrics() const {
  return impl_->metrics().totals();
}

std::string RelayGroup::prometheus_text() const {
  return impl_->metrics().render_prometheus();
}

void RelayGroup::count_drain() noexcept {
  impl_->process()->drains.add();
}

void RelayGroup::count_failed_reload() noexcept {
  impl_->process()->reloads_failed.add();
}

}  // namespace grelay
