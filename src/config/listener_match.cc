#include "grelay/listen.h"

namespace grelay {

std::vector<std::ptrdiff_t> match_listeners(const Config& current, const Config& next) {
  std::vector<std::ptrdiff_t> map(current.listeners.size(), -1);
  std::vector<bool> taken(next.listeners.size(), false);
  for (size_t i = 0; i < current.listeners.size(); ++i) {
    for (size_t j = 0; j < next.listeners.size(); ++j) {
      if (!taken[j] && current.listeners[i].address.same_address(next.listeners[j].address)) {
        taken[j] = true;
        map[i] = static_cast<std::ptrdiff_t>(j);
        break;
      }
    }
  }
  return map;
}

}  // namespace grelay
