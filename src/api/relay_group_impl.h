#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "admin/metrics.h"
#include "grelay/relay_group.h"
#include "net/listener.h"
#include "net/tls_contexts.h"

namespace grelay {

// The state behind a RelayGroup, which its Relays and AdminEndpoint reach.
class RelayGroup::Impl {
 public:
  // What the Relays of the group share under one config.
  struct Shared {
    std::shared_ptr<const Config> config;
    std::shared_ptr<TlsContexts> tls;
    // One per listener of |config|.
    std::vector<std::shared_ptr<ConnectionGauge>> gauges;
  };

  // Loads |config|'s certificates (throws std::runtime_error).
  explicit Impl(std::shared_ptr<const Config> config);

  // What the Relays share under the config in force.
  Shared current() const;
  // What the Relays share under |config|: the config in force, or an earlier one whose
  // Relays have not all switched yet. A config the group has not seen reloads the group first
  // (throws as reload() does).
  Shared shared_for(const std::shared_ptr<const Config>& config);
  void reload(std::shared_ptr<const Config> config);
  bool reload_certificates();
  std::vector<std::string> certificate_files() const;

  // Every Relay's counters (each Relay adds those of each config it serves) and the
  // process-wide events, which each Relay's own registry reports too.
  Metrics& metrics() noexcept { return metrics_; }
  const std::shared_ptr<ProcessStats>& process() const noexcept { return process_; }
  // The certificates of the config in force, for the expiry gauges.
  std::vector<CertificateExpiry> certificates() const;

 private:
  // The shared state of one config, kept while the config is in use.
  struct Generation {
    std::weak_ptr<const Config> config;
    std::shared_ptr<TlsContexts> tls;
    std::vector<std::shared_ptr<ConnectionGauge>> gauges;
  };

  // |mutex_| held. The generation of |config|, or nullptr.
  const Generation* find(const std::shared_ptr<const Config>& config) const noexcept;
  // |mutex_| held. Forgets the generations whose config nothing uses any more.
  void prune();

  // One reload at a time (certificates load outside |mutex_|, which guards the state).
  std::mutex reload_mutex_;
  mutable std::mutex mutex_;
  std::shared_ptr<const Config> config_;
  // The config in force last.
  std::vector<Generation> generations_;
  std::shared_ptr<ProcessStats> process_ = std::make_shared<ProcessStats>();
  Metrics metrics_{process_};
};

}  // namespace grelay
