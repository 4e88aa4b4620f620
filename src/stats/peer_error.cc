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
  switch (why) {
    case PeerError::reset_flood:
      return "reset_flood";
    case PeerError::made_reset_flood:
      return "made_reset_flood";
    case PeerError::empty_frame_flood:
      return "empty_frame_flood";
    case PeerError::control_frame_flood:
      return "control_frame_flood";
    case PeerError::continuation_flood:
      return "continuation_flood";
    case PeerError::preface_timeout:
      return "preface_timeout";
    case PeerError::headers_timeout:
      return "headers_timeout";
    case PeerError::protocol_error:
    case PeerError::count_:
      break;
  }
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
