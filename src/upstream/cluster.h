#pragma once

#include <uv.h>

#include <memory>
#include <string_view>
#include <vector>

#include "grelay/config.h"
#include "upstream/endpoint.h"
#include "upstream/load_balancer.h"
#include "upstream/retry_budget.h"

namespace grelay {

class DnsResolver;

// The endpoints of one [[cluster]] on one worker: discovery (DNS names re-resolved), load
// balancing, health, circuit breakers and the retry budget.
class Cluster {
 public:
  // |tls|: the cluster's TLS contexts, or nullptr for h2c backends.
  Cluster(UpstreamContext& ctx, const ClusterConfig& config, const ClientTls* tls = nullptr);
  // Only once shutdown() was called and every backend session is gone.
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Finds a connection for |handler| on an endpoint picked by the cluster's policy
  // (|affinity_key| feeds ring_hash). Fails it at once with UNAVAILABLE when no endpoint is
  // usable, or RESOURCE_EXHAUSTED over a circuit breaker. Before the first answer for a DNS
  // name the handler waits for it.
  void open_stream(UpstreamHandler& handler, std::string_view affinity_key = {}) noexcept;

  // How a call's attempt on |endpoint| ended (passive outlier detection).
  void report(Endpoint& endpoint, StatusCode status) noexcept;

  // The retry budget of the routes to this cluster whose |policy| gives these budget_tokens
  // and budget_ratio, made at the first call for them. Routes that give the same ones share
  // it; it lives as long as the cluster, across reloads that keep the cluster.
  RetryBudget& retry_budget(const RetryConfig& policy);

  // Stops timers and resolvers and closes every connection (drain, or a retired cluster).
  void shutdown() noexcept;
  // No backend connection is left: after shutdown(), the cluster may be destroyed.
  bool idle() const noexcept;

  const ClusterConfig& config() const noexcept { return config_; }
  const ClientTls* tls() const noexcept { return tls_; }
  // The host (name or IP literal) of configured endpoint |target|.
  const std::string& target_host(size_t target) const noexcept {
    return targets_[target].address.host;
  }

  // Where the cluster and its endpoints count for metrics; set once before it serves.
  void set_stats(ClusterStats& stats) noexcept;
  ClusterStats* stats() noexcept { return stats_; }
  size_t endpoint_count() const noexcept { return endpoints_.size(); }
  // Endpoint |i| (< endpoint_count()) of those in service, in the order they were found.
  Endpoint& endpoint(size_t i) noexcept { return *endpoints_[i]; }
  // Calls on the cluster's connections, open or waiting for one (circuit breaker max_active),
  // and those of them waiting for a connection or a stream slot (max_pending); calls waiting
  // for a name's first answer count in both.
  size_t active() const noexcept { return active_ + waiting_.size(); }
  size_t pending() const noexcept { return pending_ + waiting_.size(); }
  // Backend streams the cluster can carry at once: for each endpoint, its connection cap
  // times its backends' stream limit, capped by max_active. Worked out at most once per
  // loop millisecond.
  uint64_t stream_capacity() noexcept;

  // For endpoints and their sessions.
  uint64_t keepalive_interval_ms() const noexcept { return keepalive_interval_ms_; }
  void on_too_many_pings(Endpoint& endpoint) noexcept;
  void on_endpoint_failed(Endpoint& endpoint) noexcept;
  bool may_eject() const noexcept;
  // An endpoint's load() and queued() changed by |load| and |queued|.
  void add_counts(ptrdiff_t load, ptrdiff_t queued) noexcept {
    active_ += static_cast<size_t>(load);
    pending_ += static_cast<size_t>(queued);
  }

 private:
  struct Target {
    HostPort address;
    uint32_t weight = 1;
    bool dns = false;
    bool resolving = false;
    bool answered = false;
    uint64_t next_resolve_ms = 0;
  };

  static void tick_cb(uv_timer_t* timer) noexcept;
  static void timer_closed_cb(uv_handle_t* handle) noexcept;
  void tick() noexcept;
  void resolve(size_t target) noexcept;
  void on_resolved(size_t target, int status, const std::string& error,
                   std::vector<sockaddr_storage> addresses) noexcept;
  void add_endpoint(size_t target, const sockaddr* addr) noexcept;
  void membership_changed() noexcept;
  bool first_answer_pending() const noexcept;
  void serve_waiting() noexcept;
  Endpoint* pick(std::string_view key, const Endpoint* avoid, uint64_t now) noexcept;

  UpstreamContext& ctx_;
  const ClusterConfig& config_;
  std::vector<Target> targets_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  // Removed from discovery, draining until their last connection closes.
  std::vector<std::unique_ptr<Endpoint>> retired_;
  std::unique_ptr<LoadBalancer> balancer_;
  // Calls waiting for the first answer about a DNS name.
  WaitList waiting_;
  // The sums of Endpoint::load() and Endpoint::queued() over every endpoint, retired ones
  // included: kept as their sessions change, not recounted per call.
  size_t active_ = 0;
  size_t pending_ = 0;
  DnsResolver* resolver_ = nullptr;
  uv_timer_t* timer_ = nullptr;
  uint64_t keepalive_interval_ms_ = 0;
  const ClientTls* tls_;
  ClusterStats* stats_ = nullptr;
  // One per set of budget parameters; few, so found by a walk.
  std::vector<std::unique_ptr<RetryBudget>> retry_budgets_;
  bool shut_down_ = false;
  // The usable endpoints of one pick; ids are places in |endpoints_|. Kept to reuse its memory.
  std::vector<LbCandidate> candidates_;
  uint64_t capacity_ = 0;
  uint64_t capacity_ms_ = UINT64_MAX;
};

}  // namespace grelay
