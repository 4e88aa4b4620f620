#pragma once

#include <cstdint>
#include <random>
#include <string_view>
#include <utility>
#include <vector>

#include "grelay/config.h"

namespace grelay {

class Endpoint;

// Picks one endpoint out of the usable ones of a cluster, by the cluster's policy. Weights
// scale each endpoint's share.
class LoadBalancer {
 public:
  explicit LoadBalancer(LbPolicy policy) noexcept;

  // |candidates| is not empty. |key| is the affinity key for ring_hash ("" = none).
  Endpoint* pick(const std::vector<Endpoint*>& candidates, std::string_view key) noexcept;

  // ring_hash: rebuilds the ring from every endpoint in service (call on membership changes).
  void rebuild(const std::vector<Endpoint*>& endpoints);

  static uint64_t hash(std::string_view key) noexcept;

 private:
  Endpoint* weighted_random(const std::vector<Endpoint*>& candidates) noexcept;
  Endpoint* smooth_round_robin(const std::vector<Endpoint*>& candidates) noexcept;
  Endpoint* least_request(const std::vector<Endpoint*>& candidates) noexcept;
  Endpoint* ring_lookup(const std::vector<Endpoint*>& candidates, std::string_view key) noexcept;

  LbPolicy policy_;
  std::minstd_rand rng_;
  // (point, endpoint), sorted by point.
  std::vector<std::pair<uint64_t, Endpoint*>> ring_;
};

}  // namespace grelay
