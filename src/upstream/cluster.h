#pragma once

#include <memory>
#include <vector>

#include "grelay/config.h"
#include "upstream/endpoint.h"

namespace grelay {

// The endpoints of one [[cluster]] on one worker, balanced round robin.
class Cluster {
 public:
  // |tls|: the cluster's TLS contexts, or nullptr for h2c backends.
  Cluster(UpstreamContext& ctx, const ClusterConfig& config, const ClientTls* tls = nullptr);
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Finds a connection for |handler| on the next endpoint that is not backing off after
  // connect failures; fails it with UNAVAILABLE when every endpoint is.
  void open_stream(UpstreamHandler& handler) noexcept;

  // Where the cluster and its endpoints count; set once before it serves.
  void set_stats(ClusterStats& stats) noexcept;
  ClusterStats* stats() noexcept { return stats_; }

  const ClusterConfig& config() const noexcept { return config_; }
  size_t endpoint_count() const noexcept { return endpoints_.size(); }
  void close_all() noexcept;

 private:
  const ClusterConfig& config_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  size_t next_ = 0;
  ClusterStats* stats_ = nullptr;
};

}  // namespace grelay
