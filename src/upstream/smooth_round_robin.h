#pragma once

#include <vector>

#include "upstream/load_balancer.h"

namespace grelay {

// lb = "round_robin": smooth weighted round robin. Over a cycle of picks each candidate wins
// in proportion to its weight, spread out, not in bursts.
class SmoothRoundRobin final : public LoadBalancer {
 public:
  void rebuild(std::span<const LbMember> members) override;
  size_t pick(std::span<const LbCandidate> candidates, std::string_view key) noexcept override;

 private:
  // Per member: its current weight.
  std::vector<int64_t> current_;
};

}  // namespace grelay
