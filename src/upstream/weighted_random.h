#pragma once

#include <random>

#include "upstream/load_balancer.h"

namespace grelay {

// The index in |candidates| (not empty) of one drawn at random, each in proportion to its
// weight. Also the draw of least_request, and of ring_hash for calls without a key.
size_t pick_weighted(std::span<const LbCandidate> candidates, std::minstd_rand& rng) noexcept;

// lb = "random": each call to a candidate drawn in proportion to its weight.
class WeightedRandom final : public LoadBalancer {
 public:
  explicit WeightedRandom(uint32_t seed) noexcept : rng_(seed) {}

  void rebuild(std::span<const LbMember>) override {}
  size_t pick(std::span<const LbCandidate> candidates, std::string_view key) noexcept override;

 private:
  std::minstd_rand rng_;
};

}  // namespace grelay
