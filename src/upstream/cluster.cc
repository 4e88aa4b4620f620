#include "upstream/cluster.h"

namespace grelay {

Cluster::Cluster(UpstreamContext& ctx, const ClusterConfig& config, const ClientTls* tls)
    : config_(config) {
  endpoints_.reserve(config.endpoints.size());
  for (const HostPort& address : config.endpoints) {
    endpoints_.push_back(std::make_unique<Endpoint>(ctx, address, config, tls));
  }
}

void Cluster::open_stream(UpstreamHandler& handler) noexcept {
  const size_t n = endpoints_.size();
  if (n == 0) {
    handler.on_upstream_failed(StatusCode::unavailable,
                               "cluster '" + config_.name + "' has no endpoints");
    return;
  }
  uint64_t now = uv_now(endpoints_[0]->context().loop);
  for (size_t i = 0; i < n; ++i) {
    Endpoint& endpoint = *endpoints_[next_ % n];
    next_ = (next_ + 1) % n;
    if (!endpoint.backing_off(now)) {
      endpoint.open_stream(handler);
      return;
    }
  }
  const Endpoint& last = *endpoints_[(next_ + n - 1) % n];
  handler.on_upstream_failed(StatusCode::unavailable,
                             "no reachable endpoint in cluster '" + config_.name +
                                 "' (last error: " + last.last_error() + ")");
}

void Cluster::set_stats(ClusterStats& stats) noexcept {
  stats_ = &stats;
  for (size_t i = 0; i < endpoints_.size() && i < stats.endpoints.size(); ++i)
    endpoints_[i]->set_stats(&stats, &stats.endpoints[i]);
}

void Cluster::close_all() noexcept {
  for (auto& endpoint : endpoints_)
    endpoint->close_all();
}

}  // namespace grelay
