#pragma once

#include <memory>
#include <string>
#include <vector>

#include "grelay/config.h"
#include "grelay/export.h"
#include "grelay/metrics.h"

namespace grelay {

// What Relays on several loops (one per thread, for more cores) share when they serve one
// config together, as the grelay binary's workers do:
//   - the config's certificates and keys, loaded once, so every loop serves the same ones and
//     resumes the others' TLS sessions;
//   - each listener's count of open connections, so max_connections bounds them together;
//   - their metrics, read as one (AdminEndpoint serves them);
//   - the reloads: the group loads a new config's certificates once, and each Relay takes
//     them when its reload() runs on its loop.
// Make the group, then a Relay per loop with Relay(loop, group). Thread safe.
class GRELAY_API RelayGroup {
 public:
  // Loads |config|'s certificates (throws std::runtime_error when one fails) and applies its
  // log_level (grelay/log.h).
  explicit RelayGroup(std::shared_ptr<const Config> config);
  ~RelayGroup();
  RelayGroup(const RelayGroup&) = delete;
  RelayGroup& operator=(const RelayGroup&) = delete;

  // The config the group follows: the first one, or the one reloaded last.
  std::shared_ptr<const Config> config() const;

  // Makes what the group's Relays will share under |config|: its certificates load first
  // (throws std::runtime_error, changing nothing, when one fails; counted as a failed
  // reload), each listener at an address |config| keeps keeps its connection count. Applies
  // the config's log_level and counts the reload. The Relays switch when each one's
  // reload(|config|) runs on its loop; until then they serve the config they have.
  void reload(std::shared_ptr<const Config> config);

  // Reads every certificate, key and CA file again, of the config in force and of earlier
  // ones still in use (by clusters a reload kept); new TLS handshakes on every Relay of the
  // group use them, open connections keep theirs. A listener or cluster whose new files fail
  // to load keeps what it had, and the failure is logged. Returns false if any failed.
  bool reload_certificates();
  // The certificate, key and CA files of the config in force (to watch them for changes).
  std::vector<std::string> certificate_files() const;

  // The counters of every Relay of the group, over every config they served, summed; and
  // in the Prometheus text exposition format (version 0.0.4), with the expiry of the
  // config's certificates and the process_* families: what AdminEndpoint's /metrics serves.
  RelayMetrics metrics() const;
  std::string prometheus_text() const;

  // Events the host sees rather than its Relays, for the metrics: a graceful drain it began
  // (grelay_drains_total), and a reload it gave up before calling reload(), such as a file
  // that does not parse (grelay_reloads_total{result="failure"}; reload() counts its own).
  void count_drain() noexcept;
  void count_failed_reload() noexcept;

 private:
  friend class Relay;
  friend class AdminEndpoint;
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace grelay
