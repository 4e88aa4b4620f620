#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "stats/labelled_family.h"

namespace grelay {

// Which side of the relay a peer is on.
enum class PeerSide : uint8_t { client, backend };
inline constexpr size_t peer_side_count = 2;

// Why the relay closed a peer's connection on its own (docs/config.md, "Budgets at the edge"),
// X(reason): the enum PeerError and its label values (the names) follow this list.
//   reset_flood          the client reset streams faster than its budget
//   made_reset_flood     the peer made the relay reset streams faster than its budget
//   empty_frame_flood    too many empty DATA frames in a row
//   control_frame_flood  SETTINGS/PING over budget, or their ACKs piling up unread
//   continuation_flood   a header block in too many CONTINUATION frames
//   preface_timeout      no connection preface in time
//   headers_timeout      a header block left unfinished too long
//   protocol_error       any other HTTP/2 connection error
//   bad_request          an HTTP/1.1 request the relay answered 400 (or 417, 505) and closed on
//   head_too_large       an HTTP/1.1 request line (414) or header section (431) over its budget
#define GRELAY_PEER_ERRORS(X) \
  X(reset_flood)              \
  X(made_reset_flood)         \
  X(empty_frame_flood)        \
  X(control_frame_flood)      \
  X(continuation_flood)       \
  X(preface_timeout)          \
  X(headers_timeout)          \
  X(protocol_error)           \
  X(bad_request)              \
  X(head_too_large)

#define GRELAY_ENUM_ENTRY(name) name,
enum class PeerError : uint8_t { GRELAY_PEER_ERRORS(GRELAY_ENUM_ENTRY) count_ };
#undef GRELAY_ENUM_ENTRY
inline constexpr size_t peer_error_count = static_cast<size_t>(PeerError::count_);

// grelay_peer_errors_total{peer, reason}: one sample per side and reason.
inline constexpr LabelledFamily<2> peer_errors_family{
    "grelay_peer_errors_total",
    "counter",
    "Connections the relay closed (with GOAWAY, or an HTTP/1.1 error answer) for a budget, a "
    "timeout or a protocol error of the peer, by side and reason.",
    {"peer", "reason"}};

// The label value of |why| ("reset_flood", ...) and of |side| ("client", "backend").
std::string_view peer_error_name(PeerError why) noexcept;
std::string_view peer_side_name(PeerSide side) noexcept;

// Counts a connection closed for |why| and logs it at warn level: at most one line per
// reason and side each second, the lines held back counted on the next one. |peer| names the
// peer ("ip:port" or an endpoint), |detail| says what happened. Any thread.
void report_peer_error(PeerSide side, PeerError why, const char* peer, const char* detail) noexcept;

// Connections closed for |why| on |side| since the process started, over every worker (and
// every relay in the process). Any thread.
uint64_t peer_error_total(PeerSide side, PeerError why) noexcept;

}  // namespace grelay
