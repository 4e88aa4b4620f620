#include "upstream/ring_hash.h"

#include <algorithm>
#include <string>

#include "upstream/weighted_random.h"

namespace grelay {
namespace {

// Ring points per unit of weight, fewer when the ring would grow past |max_ring_points|.
constexpr uint64_t points_per_weight = 100;
constexpr uint64_t max_ring_points = 100000;

}  // namespace

uint64_t RingHash::hash(std::string_view key) noexcept {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ull;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

void RingHash::rebuild(std::span<const LbMember> members) {
  ring_.clear();
  uint64_t total_weight = 0;
  for (const LbMember& m : members)
    total_weight += m.weight;
  const uint64_t per_weight = std::clamp<uint64_t>(
      max_ring_points / std::max<uint64_t>(total_weight, 1), 1, points_per_weight);
  for (uint32_t id = 0; id < members.size(); ++id) {
    std::string base = std::string(members[id].name) + "#";
    for (uint64_t i = 0; i < members[id].weight * per_weight; ++i)
      ring_.emplace_back(hash(base + std::to_string(i)), id);
  }
  std::sort(ring_.begin(), ring_.end(),
            [](const auto& x, const auto& y) { return x.first < y.first; });
}

size_t RingHash::pick(std::span<const LbCandidate> candidates, std::string_view key) noexcept {
  if (key.empty() || ring_.empty()) return pick_weighted(candidates, rng_);
  const uint64_t h = hash(key);
  auto it = std::lower_bound(ring_.begin(), ring_.end(), h,
                             [](const auto& point, uint64_t v) { return point.first < v; });
  const size_t start = static_cast<size_t>(it - ring_.begin());
  // The first point clockwise whose member is a candidate.
  for (size_t i = 0; i < ring_.size(); ++i) {
    const uint32_t id = ring_[(start + i) % ring_.size()].second;
    auto found = std::lower_bound(candidates.begin(), candidates.end(), id,
                                  [](const LbCandidate& c, uint32_t v) { return c.id < v; });
    if (found != candidates.end() && found->id == id)
      return static_cast<size_t>(found - candidates.begin());
  }
  return pick_weighted(candidates, rng_);
}

}  // namespace grelay
