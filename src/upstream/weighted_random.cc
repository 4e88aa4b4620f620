#include "upstream/weighted_random.h"

namespace grelay {

size_t pick_weighted(std::span<const LbCandidate> candidates, std::minstd_rand& rng) noexcept {
  uint64_t total = 0;
  for (const LbCandidate& c : candidates)
    total += c.weight;
  uint64_t r = std::uniform_int_distribution<uint64_t>(0, total - 1)(rng);
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (r < candidates[i].weight) return i;
    r -= candidates[i].weight;
  }
  return candidates.size() - 1;
}

size_t WeightedRandom::pick(std::span<const LbCandidate> candidates, std::string_view) noexcept {
  return pick_weighted(candidates, rng_);
}

}  // namespace grelay
