#pragma once

#include <random>
#include <utility>
#include <vector>

#include "upstream/load_balancer.h"

namespace grelay {

// lb = "ring_hash": consistent hashing of the call's affinity key onto a ring of points, each
// member holding points in proportion to its weight. A key goes to the first usable member
// clockwise from its hash, so a membership change moves only the keys of the members that
// came or went. Calls without a key are drawn by weight.
class RingHash final : public LoadBalancer {
 public:
  explicit RingHash(uint32_t seed) noexcept : rng_(seed) {}

  void rebuild(std::span<const LbMember> members) override;
  size_t pick(std::span<const LbCandidate> candidates, std::string_view key) noexcept override;

  // FNV-1a, then a final mix so that near keys land far apart on the ring.
  static uint64_t hash(std::string_view key) noexcept;

 private:
  std::minstd_rand rng_;
  // (point, member id), sorted by point.
  std::vector<std::pair<uint64_t, uint32_t>> ring_;
};

}  // namespace grelay
