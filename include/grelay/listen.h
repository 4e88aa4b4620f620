#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "grelay/config.h"
#include "grelay/export.h"

namespace grelay {

// Listening sockets, for a host that opens them itself: to hand them to Relay::listen_fd(),
// or to accept on one and hand each connection to a Relay's serve().

// Opens |count| non-blocking TCP sockets listening on |address| (as a [[listener]] address:
// an IP literal; port 0 lets the kernel pick), with SO_REUSEADDR and SO_REUSEPORT, all on one
// port: for port 0 the kernel picks it for the first and the others share it. Relays on
// several loops may each take one, and the kernel spreads connections over them. Throws
// std::system_error (EINVAL when the host is not an IP literal), after closing any it opened.
GRELAY_API std::vector<int> open_listen_sockets(const HostPort& address, size_t count = 1,
                                                int backlog = 1024);

// The address socket |fd| is bound to, as "ip:port" ("[ip]:port" for IPv6), the port the
// kernel picked included; "" when it cannot be read.
GRELAY_API std::string bound_address(int fd);

// How the listeners of |next| continue those of |current| at a reload: for listener i of
// |current|, the index of the listener of |next| at the same address, or -1 when |next| drops
// it; the n-th listener at an address continues as the n-th. Relay::reload() matches them so;
// a host that keeps its listening sockets across reloads matches them the same way, so the
// two never disagree.
GRELAY_API std::vector<std::ptrdiff_t> match_listeners(const Config& current, const Config& next);

}  // namespace grelay
