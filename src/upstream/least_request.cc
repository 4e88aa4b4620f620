#include "upstream/least_request.h"

#include "upstream/weighted_random.h"

namespace grelay {

size_t LeastRequest::pick(std::span<const LbCandidate> candidates, std::string_view) noexcept {
  size_t a = pick_weighted(candidates, rng_);
  size_t b = pick_weighted(candidates, rng_);
  for (int i = 0; b == a && i < 4; ++i)
    b = pick_weighted(candidates, rng_);
  if (b == a) {
    // |a| carries most of the weight: the second one is drawn evenly from the others.
    b = std::uniform_int_distribution<size_t>(0, candidates.size() - 2)(rng_);
    if (b >= a) ++b;
  }
  const uint64_t load_a = candidates[a].load * candidates[b].weight;
  const uint64_t load_b = candidates[b].load * candidates[a].weight;
  return load_b < load_a ? b : a;
}

}  // namespace grelay
