#include "upstream/load_balancer.h"

#include <doctest/doctest.h>

#include "upstream/least_request.h"
#include "upstream/ring_hash.h"
#include "upstream/smooth_round_robin.h"
#include "upstream/weighted_random.h"

using grelay::LbPolicy;
using grelay::LoadBalancer;

TEST_CASE("each lb policy gets the balancer of its name") {
  CHECK(dynamic_cast<grelay::SmoothRoundRobin*>(
            LoadBalancer::create(LbPolicy::round_robin, 1).get()) != nullptr);
  CHECK(dynamic_cast<grelay::LeastRequest*>(
            LoadBalancer::create(LbPolicy::least_request, 1).get()) != nullptr);
  CHECK(dynamic_cast<grelay::WeightedRandom*>(LoadBalancer::create(LbPolicy::random, 1).get()) !=
        nullptr);
  CHECK(dynamic_cast<grelay::RingHash*>(LoadBalancer::create(LbPolicy::ring_hash, 1).get()) !=
        nullptr);
}
