#include "upstream/load_balancer.h"

#include "upstream/least_request.h"
#include "upstream/ring_hash.h"
#include "upstream/smooth_round_robin.h"
#include "upstream/weighted_random.h"

namespace grelay {

std::unique_ptr<LoadBalancer> LoadBalancer::create(LbPolicy policy, uint32_t seed) {
  switch (policy) {
    case LbPolicy::round_robin:
      return std::make_unique<SmoothRoundRobin>();
    case LbPolicy::least_request:
      return std::make_unique<LeastRequest>(seed);
    case LbPolicy::random:
      return std::make_unique<WeightedRandom>(seed);
    case LbPolicy::ring_hash:
      return std::make_unique<RingHash>(seed);
  }
  return std::make_unique<SmoothRoundRobin>();
}

}  // namespace grelay
