#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>

#include "core/chunk.h"
#include "core/intrusive_list.h"
#include "grelay/config.h"
#include "net/flush_queue.h"
#include "net/tls_context.h"
#include "stats/worker_stats.h"
#include "upstream/backend_session.h"
#include "upstream/upstream_context.h"

namespace grelay {

class Cluster;
class HealthCheck;

// One backend address of a cluster (an IP literal of the config, or one record of a name)
// and its pooled connections.
class Endpoint {
 public:
  Endpoint(Cluster& owner, UpstreamContext& ctx, const sockaddr* addr, std::string name,
           uint32_t weight, size_t target) noexcept;
  // Destroy only once no session is left (idle()): sessions report to their endpoint.
  ~Endpoint();
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  // Puts |handler| on a connection: one with a free stream slot, else a new one while under
  // the per-endpoint cap, else the least loaded (its stream limit queues the request).
  void open_stream(UpstreamHandler& handler) noexcept;

  // True when the balancer may give it a call now.
  bool usable(uint64_t now_ms) const noexcept {
    return !retired_ && healthy_ && now_ms >= ejected_until_ms_ && !backing_off(now_ms);
  }
  // True while recent connect failures hold new dials back.
  bool backing_off(uint64_t now_ms) const noexcept;
  bool ejected(uint64_t now_ms) const noexcept { return now_ms < ejected_until_ms_; }
  bool healthy() const noexcept { return healthy_; }
  bool retired() const noexcept { return retired_; }
  // No connection is left: a retired endpoint may be freed.
  bool idle() const noexcept { return sessions_.empty(); }

  const std::string& last_error() const noexcept { return last_error_; }
  const std::string& name() const noexcept { return name_; }
  const sockaddr_storage& address() const noexcept { return addr_; }
  uint32_t weight() const noexcept { return weight_; }
  size_t target() const noexcept { return target_; }
  // Calls on its connections (open or waiting for a stream), kept as its sessions change.
  size_t load() const noexcept { return load_; }
  // Calls on its connections waiting for the connection or for a stream slot on it.
  size_t queued() const noexcept { return queued_; }
  // Streams one connection to it may carry: the backend's SETTINGS_MAX_CONCURRENT_STREAMS
  // as its connections last said, 100 (nghttp2's assumption) until one did.
  uint64_t stream_limit() const noexcept;

  // How a call's attempt here ended: UNAVAILABLE counts towards ejection, anything else
  // clears the count.
  void on_call_result(StatusCode status) noexcept;
  // A health check probe ended (grelay_health_checks_total counts each one).
  void count_health_check(bool serving) noexcept;
  // The health checks settled |serving| (the thresholds were reached, or confirmed again).
  void on_health_result(bool serving, const std::string& why) noexcept;
  void on_keepalive_timeout(const std::string& why) noexcept;

  // Removed from discovery: takes no new calls; open ones finish, then the connections close.
  void retire() noexcept;
  // Periodic upkeep (cluster timer): connections, health checks.
  void maintain(uint64_t now_ms) noexcept;
  // Closes every connection and stops health checks (shutdown).
  void close_all() noexcept;

  UpstreamContext& context() noexcept { return ctx_; }
  const ClusterConfig& cluster() const noexcept;
  Cluster& owner() noexcept { return owner_; }
  // The cluster's TLS contexts (nullptr: h2c), and the configured host this address came
  // from, the name TLS checks (unless the cluster sets server_name).
  const ClientTls* tls() const noexcept;
  const std::string& host() const noexcept;

  // Where this endpoint counts connections, failures, ejections and health checks; set once
  // before it serves (the endpoints of one configured address share one set). Registers
  // this address's state gauges there.
  void set_stats(ClusterStats* cluster, EndpointStats* endpoint) noexcept;
  EndpointStats* stats() noexcept { return stats_; }

 private:
  friend class BackendSession;

  BackendSession* dial() noexcept;
  void on_connected() noexcept;
  void on_connect_failed(const std::string& why) noexcept;
  void on_session_gone(BackendSession& session) noexcept;
  // A session's load() and queued() changed by |load| and |queued|; passed on to the cluster.
  void add_counts(ptrdiff_t load, ptrdiff_t queued) noexcept;
  void count_failure(const std::string& why) noexcept;

  Cluster& owner_;
  UpstreamContext& ctx_;
  std::string name_;
  sockaddr_storage addr_{};
  uint32_t weight_;
  size_t target_;
  IntrusiveList<BackendSession> sessions_;
  // The sums of load() and queued() over |sessions_|.
  size_t load_ = 0;
  size_t queued_ = 0;
  std::unique_ptr<HealthCheck> health_;
  uint32_t failures_ = 0;
  uint64_t retry_at_ms_ = 0;
  std::string last_error_;
  bool retired_ = false;
  bool healthy_ = true;
  // Passive outlier detection.
  uint32_t consecutive_failures_ = 0;
  uint32_t ejections_ = 0;
  uint64_t ejected_until_ms_ = 0;
  ClusterStats* cluster_stats_ = nullptr;
  EndpointStats* stats_ = nullptr;
  // This address's healthy/ejected/draining state, registered in |stats_|.
  std::shared_ptr<AddressState> state_;
  // The failure last logged at warning level; the same one again is logged at debug level
  // only, until a connection succeeds.
  std::string logged_error_;
};

}  // namespace grelay
