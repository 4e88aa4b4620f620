#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "grelay/status.h"

namespace grelay {

// How many gRPC status codes there are (OK to UNAUTHENTICATED).
inline constexpr size_t grpc_status_count = 17;

// One listener's counters, summed over the Relays and configs that served it (by address).
struct ListenerMetrics {
  // The address as configured ("127.0.0.1:0" for a port the kernel picked).
  std::string address;
  uint64_t connections_accepted = 0;
  int64_t active_connections = 0;
  // Client streams (calls) open.
  int64_t active_calls = 0;
};

// One cluster's counters.
struct ClusterMetrics {
  std::string name;
  // Calls routed to the cluster and not ended.
  int64_t active_calls = 0;
  int64_t active_connections = 0;
  // Call attempts after the first (retries and transparent replays).
  uint64_t retries = 0;
  uint64_t connect_failures = 0;
  // Times one of its endpoints was ejected from balancing.
  uint64_t ejections = 0;
};

// A count by reason, as the `reason` label of grelay_relay_errors_total or
// grelay_peer_errors_total names it.
struct ReasonCount {
  std::string reason;
  uint64_t count = 0;
};

// A Relay's (or a RelayGroup's) counters at one moment, summed over every config it served,
// so that no counter goes back at a reload. Counters only grow; gauges (active_*) go up and
// down. Each value is read on its own while the loops run, so two values may be a few
// updates apart. The same numbers as the Prometheus text, without labels by route or method.
struct RelayMetrics {
  // Calls whose request headers arrived.
  uint64_t calls_started = 0;
  // Calls finished, by the gRPC status the client got (relay-made ones included), indexed by
  // the status code: calls_ended[static_cast<size_t>(StatusCode::ok)].
  std::array<uint64_t, grpc_status_count> calls_ended{};
  // Client streams open.
  int64_t active_calls = 0;
  // gRPC messages and DATA bytes from clients (requests) and to them (responses).
  uint64_t request_messages = 0;
  uint64_t response_messages = 0;
  uint64_t request_bytes = 0;
  uint64_t response_bytes = 0;

  // Client connections accepted, and open now.
  uint64_t client_connections = 0;
  int64_t active_client_connections = 0;
  // Backend connections open now, and those that could not be established.
  int64_t active_backend_connections = 0;
  uint64_t backend_connect_failures = 0;
  uint64_t retries = 0;

  // Calls the relay ended with an error status of its own, by reason: every reason, in the
  // order docs/config.md lists them, zeros included.
  std::vector<ReasonCount> relay_errors;
  // Connections closed for a peer's misbehaviour (budgets, timeouts, protocol errors), by
  // reason, for clients and for backends. These count for the whole process, not per relay.
  std::vector<ReasonCount> client_errors;
  std::vector<ReasonCount> backend_errors;

  // Config reloads applied and refused, and graceful drains begun.
  uint64_t reloads = 0;
  uint64_t failed_reloads = 0;
  uint64_t drains = 0;

  // Per listener (by address) and per cluster (by name), in config order.
  std::vector<ListenerMetrics> listeners;
  std::vector<ClusterMetrics> clusters;

  // The calls that ended with |code|.
  uint64_t ended(StatusCode code) const noexcept {
    const auto index = static_cast<size_t>(code);
    return index < calls_ended.size() ? calls_ended[index] : 0;
  }
  // Every call ended, whatever its status.
  uint64_t calls_ended_total() const noexcept {
    uint64_t total = 0;
    for (uint64_t n : calls_ended)
      total += n;
    return total;
  }
};

}  // namespace grelay
