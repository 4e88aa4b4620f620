#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "grelay/config.h"

namespace grelay {

// What a balancer sees of an endpoint that may take a call.
struct LbCandidate {
  // The endpoint's place among the members last given to LoadBalancer::rebuild().
  uint32_t id;
  uint32_t weight;
  // Calls on the endpoint's connections, open or waiting for a stream.
  uint64_t load;
};

// An endpoint in service, as LoadBalancer::rebuild() is given it.
struct LbMember {
  // Unique in its cluster and the same across rebuilds: ring_hash places the endpoint on its
  // ring by it, so that a key keeps its endpoint while the endpoint stays.
  std::string_view name;
  uint32_t weight;
};

// Picks the endpoint for each call by one policy; each policy is a class in a file named
// after it. A balancer sees candidates, never endpoints or connections, and keeps the state
// its policy needs per member, so that it is tested without a loop.
class LoadBalancer {
 public:
  // |seed| seeds the policy's random choices.
  static std::unique_ptr<LoadBalancer> create(LbPolicy policy, uint32_t seed);

  virtual ~LoadBalancer() = default;

  // The endpoints in service changed: from now on, candidates with id i are |members|[i].
  // State kept per member starts over.
  virtual void rebuild(std::span<const LbMember> members) = 0;

  // Returns the index in |candidates| of the endpoint the call goes to. |candidates| holds
  // at least two endpoints, each once, in ascending id order. |key| is the call's affinity
  // key ("" = none).
  virtual size_t pick(std::span<const LbCandidate> candidates, std::string_view key) noexcept = 0;
};

}  // namespace grelay
