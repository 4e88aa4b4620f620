#pragma once

#include <cstddef>
#include <vector>

#include "grelay/config.h"

namespace grelay {

// How the listeners of a reloaded config continue those of the config in force: for each
// listener of |old|, the index of the listener of |next| at the same address, or -1. The n-th
// listener at an address continues as the n-th. The server (which keeps the sockets open) and
// every worker (which keeps the connections) match them through this one function, so they
// never disagree.
inline std::vector<ptrdiff_t> match_listeners(const Config& old, const Config& next) {
  std::vector<ptrdiff_t> map(old.listeners.size(), -1);
  std::vector<bool> taken(next.listeners.size(), false);
  for (size_t i = 0; i < old.listeners.size(); ++i) {
    for (size_t j = 0; j < next.listeners.size(); ++j) {
      if (!taken[j] && old.listeners[i].address.same_address(next.listeners[j].address)) {
        taken[j] = true;
        map[i] = static_cast<ptrdiff_t>(j);
        break;
      }
    }
  }
  return map;
}

}  // namespace grelay
