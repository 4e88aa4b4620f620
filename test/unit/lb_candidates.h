#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "upstream/load_balancer.h"

namespace grelay_test {

// Members e0, e1, ... with |weights|, and one candidate per member with |loads| (0 unless
// given): what a cluster hands its balancer, without a cluster.
struct LbSet {
  explicit LbSet(std::vector<uint32_t> weights, std::vector<uint64_t> loads = {}) {
    for (size_t i = 0; i < weights.size(); ++i)
      names.push_back("e" + std::to_string(i));
    for (size_t i = 0; i < weights.size(); ++i) {
      members.push_back({names[i], weights[i]});
      candidates.push_back({static_cast<uint32_t>(i), weights[i], i < loads.size() ? loads[i] : 0});
    }
  }

  std::vector<std::string> names;
  std::vector<grelay::LbMember> members;
  std::vector<grelay::LbCandidate> candidates;
};

}  // namespace grelay_test
