#pragma once

#include <random>

#include "upstream/load_balancer.h"

namespace grelay {

// lb = "least_request": the power of two choices. Of two different candidates drawn by
// weight, the one with fewer calls per unit of weight; so the most loaded one never wins.
class LeastRequest final : public LoadBalancer {
 public:
  explicit LeastRequest(uint32_t seed) noexcept : rng_(seed) {}

  void rebuild(std::span<const LbMember>) override {}
  size_t pick(std::span<const LbCandidate> candidates, std::string_view key) noexcept override;

 private:
  std::minstd_rand rng_;
};

}  // namespace grelay
