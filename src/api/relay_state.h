#pragma once

#include <memory>

#include "admin/metrics.h"
#include "api/relay_group_impl.h"
#include "grelay/relay.h"
#include "grelay/relay_group.h"
#include "relay/worker.h"

namespace grelay {

// What a Relay holds (relay.cc), and what StreamRelay reaches through it: the worker.
struct Relay::State {
  explicit State(std::shared_ptr<RelayGroup> g, const RelayGroup::Impl& impl)
      : group(std::move(g)), metrics(impl.process()) {}

  std::shared_ptr<RelayGroup> group;
  // The group was made for this relay alone: the relay counts its own drains in it.
  bool own_group = false;
  bool drain_counted = false;
  // This relay's counters of every config it served, with the group's process events.
  Metrics metrics;
  std::unique_ptr<Worker> worker;
};

}  // namespace grelay
