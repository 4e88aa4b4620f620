#include "stats/peer_error.h"

#include <array>

#include "core/log.h"
#include "stats/worker_stats.h"

namespace grelay {
namespace {

// Connections closed for abuse are rare next to calls: one shared counter per kind is cheap.
std::array<std::array<SharedCounter, peer_error_count>, peer_side_count> totals;
// An attacker repeats what gets it closed: one line per reason and side each second.
struct OnePerSecond : LogRateLimit {
  constexpr OnePerSecond() noexcept : LogRateLimit(1) {}
};
std::array<std::array<OnePerSecond, peer_error_count>, peer_side_count> log_limits;

}  // namespace

std::string_view peer_error_name(PeerError why) noexcept {
#define GRELAY_PEER_ERROR_CASE(name) \
  case PeerError::name:              \
    return #name;
  switch (why) {
    GRELAY_PEER_ERRORS(GRELAY_PEER_ERROR_CASE)
    case PeerError::count_:
      break;
  }
#undef GRELAY_PEER_ERROR_CASE
  return "protocol_error";
}

std::string_view peer_side_name(PeerSide side) noexcept {
  return side == PeerSide::client ? "client" : "backend";
}

void report_peer_error(PeerSide side, PeerError why, const char* peer,
                       const char* detail) noexcept {
  const auto s = static_cast<size_t>(side);
  const auto w = static_cast<size_t>(why);
  totals[s][w].add();
  if (!log_enabled(LogLevel::warn)) return;
  uint64_t suppressed = 0;
  if (!log_limits[s][w].allow(&suppressed)) return;
  const std::string_view name = peer_error_name(why);
  log_message_suppressed(LogLevel::warn, suppressed, "%s %s: %s; closing the connection (%.*s)",
                         side == PeerSide::client ? "client" : "backend", peer, detail,
                         static_cast<int>(name.size()), name.data());
}

uint64_t peer_error_total(PeerSide side, PeerError why) noexcept {
  return totals[static_cast<size_t>(side)][static_cast<size_t>(why)].get();
}

}  // namespace grelay
