#pragma once

#include <string_view>
#include <vector>

#include "grelay/config.h"

namespace grelay {

// Picks the route for a call from its :path and :authority. Immutable after construction,
// so one Router may be shared by threads that share its Config.
class Router {
 public:
  // Keeps a reference to |config|, which must outlive the Router.
  explicit Router(const Config& config);

  // The first route (in file order) matching |path|, |authority| and the subjectAltName
  // values of the client's verified certificate (|client_sans|; nullptr when it has none),
  // or nullptr.
  const RouteConfig* match(std::string_view path, std::string_view authority,
                           const std::vector<std::string>* client_sans = nullptr) const noexcept;

 private:
  // A route with its authority split once, so matching never allocates.
  struct Entry {
    const RouteConfig* route;
    // The route's authority; empty when the route matches any authority.
    std::string_view authority;
    // True when |authority| has no port, so that "host" also matches "host:<port>".
    bool any_port;
  };

  static bool path_matches(const RouteConfig& route, std::string_view path) noexcept;
  static bool authority_matches(const Entry& entry, std::string_view authority) noexcept;
  static bool client_matches(const RouteConfig& route,
                             const std::vector<std::string>* client_sans) noexcept;

  const Config& config_;
  std::vector<Entry> entries_;
};

}  // namespace grelay
