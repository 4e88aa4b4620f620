#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "grelay/config.h"

namespace grelay {

// What a host in a `host:port` may be.
enum class HostRule {
  // An IP literal, or "localhost" (which becomes 127.0.0.1): addresses we bind to. Port 0
  // lets the kernel pick a free port (grelay logs the one it got).
  ip_or_localhost,
  // An IP literal or a DNS name: addresses we connect to.
  ip_or_dns,
};

// Parses `host:port` (IPv6 as `[addr]:port`; port 1-65535, or 0-65535 for addresses we bind
// to) under |rule|. IP literals are
// stored in their canonical form, IPv6 without brackets; HostPort::text keeps |text|.
// On failure returns nullopt and sets |*error| to a message such as "missing port".
std::optional<HostPort> parse_host_port(std::string_view text, HostRule rule, std::string* error);

}  // namespace grelay
