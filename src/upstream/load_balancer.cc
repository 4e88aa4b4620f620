#include "upstream/load_balancer.h"

#include <algorithm>
#include <string>

#include "upstream/endpoint.h"

namespace grelay {
namespace {

// Ring points per unit of weight, fewer when the ring would grow past |max_ring_points|.
constexpr uint64_t points_per_weight = 100;
constexpr uint64_t max_ring_points = 100000;

}  // namespace

LoadBalancer::LoadBalancer(LbPolicy policy) noexcept
    : policy_(policy), rng_(static_cast<uint32_t>(std::random_device{}())) {}

uint64_t LoadBalancer::hash(std::string_view key) noexcept {
  // FNV-1a, then a final mix so that near keys land far apart on the ring.
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

Endpoint* LoadBalancer::pick(const std::vector<Endpoint*>& candidates,
                             std::string_view key) noexcept {
  if (candidates.size() == 1) return candidates[0];
  switch (policy_) {
    case LbPolicy::round_robin:
      return smooth_round_robin(candidates);
    case LbPolicy::least_request:
      return least_request(candidates);
    case LbPolicy::random:
      return weighted_random(candidates);
    case LbPolicy::ring_hash:
      return key.empty() ? weighted_random(candidates) : ring_lookup(candidates, key);
  }
  return candidates[0];
}

Endpoint* LoadBalancer::weighted_random(const std::vector<Endpoint*>& candidates) noexcept {
  uint64_t total = 0;
  for (const Endpoint* e : candidates)
    total += e->weight();
  uint64_t r = std::uniform_int_distribution<uint64_t>(0, total - 1)(rng_);
  for (Endpoint* e : candidates) {
    if (r < e->weight()) return e;
    r -= e->weight();
  }
  return candidates.back();
}

Endpoint* LoadBalancer::smooth_round_robin(const std::vector<Endpoint*>& candidates) noexcept {
  // Every pick raises each candidate by its weight and lowers the winner by the total: over
  // a cycle each endpoint wins in proportion to its weight, spread out, not in bursts.
  int64_t total = 0;
  Endpoint* best = nullptr;
  for (Endpoint* e : candidates) {
    e->rr_current += e->weight();
    total += e->weight();
    if (!best || e->rr_current > best->rr_current) best = e;
  }
  best->rr_current -= total;
  return best;
}

Endpoint* LoadBalancer::least_request(const std::vector<Endpoint*>& candidates) noexcept {
  // Power of two choices: the less loaded (per unit of weight) of two random endpoints.
  Endpoint* a = weighted_random(candidates);
  Endpoint* b = weighted_random(candidates);
  for (int i = 0; b == a && i < 4; ++i)
    b = weighted_random(candidates);
  if (b == a) {
    b = candidates[std::uniform_int_distribution<size_t>(0, candidates.size() - 1)(rng_)];
  }
  uint64_t la = a->load() * b->weight();
  uint64_t lb = b->load() * a->weight();
  return lb < la ? b : a;
}

void LoadBalancer::rebuild(const std::vector<Endpoint*>& endpoints) {
  ring_.clear();
  if (policy_ != LbPolicy::ring_hash) return;
  uint64_t total_weight = 0;
  for (const Endpoint* e : endpoints)
    total_weight += e->weight();
  uint64_t per_weight = std::clamp<uint64_t>(max_ring_points / std::max<uint64_t>(total_weight, 1),
                                             1, points_per_weight);
  for (Endpoint* e : endpoints) {
    std::string base = e->name() + "#";
    for (uint64_t i = 0; i < e->weight() * per_weight; ++i) {
      ring_.emplace_back(hash(base + std::to_string(i)), e);
    }
  }
  std::sort(ring_.begin(), ring_.end(),
            [](const auto& x, const auto& y) { return x.first < y.first; });
}

Endpoint* LoadBalancer::ring_lookup(const std::vector<Endpoint*>& candidates,
                                    std::string_view key) noexcept {
  if (ring_.empty()) return weighted_random(candidates);
  uint64_t h = hash(key);
  auto it = std::lower_bound(ring_.begin(), ring_.end(), h,
                             [](const auto& point, uint64_t v) { return point.first < v; });
  size_t start = static_cast<size_t>(it - ring_.begin());
  // The first point clockwise whose endpoint may take the call.
  for (size_t i = 0; i < ring_.size(); ++i) {
    Endpoint* e = ring_[(start + i) % ring_.size()].second;
    if (std::find(candidates.begin(), candidates.end(), e) != candidates.end()) return e;
  }
  return weighted_random(candidates);
}

}  // namespace grelay
