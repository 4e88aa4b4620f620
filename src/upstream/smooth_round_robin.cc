#include "upstream/smooth_round_robin.h"

namespace grelay {

void SmoothRoundRobin::rebuild(std::span<const LbMember> members) {
  current_.assign(members.size(), 0);
}

size_t SmoothRoundRobin::pick(std::span<const LbCandidate> candidates, std::string_view) noexcept {
  // Every pick raises each candidate by its weight and lowers the winner by the total.
  int64_t total = 0;
  size_t best = 0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    int64_t& current = current_[candidates[i].id];
    current += candidates[i].weight;
    total += candidates[i].weight;
    if (current > current_[candidates[best].id]) best = i;
  }
  current_[candidates[best].id] -= total;
  return best;
}

}  // namespace grelay
