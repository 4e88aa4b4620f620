#include "route/router.h"

namespace grelay {

namespace {

char lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// Whether |authority| ("host", "host:port", "[v6]" or "[v6]:port") carries a port.
bool has_port(std::string_view authority) noexcept {
  size_t colon = authority.rfind(':');
  if (colon == std::string_view::npos) return false;
  size_t bracket = authority.rfind(']');
  return bracket == std::string_view::npos || bracket < colon;
}

}  // namespace

Router::Router(const Config& config) : config_(config) {
  entries_.reserve(config_.routes.size());
  for (const RouteConfig& route : config_.routes) {
    Entry entry{&route, {}, false};
    if (route.authority) {
      entry.authority = *route.authority;
      entry.any_port = !has_port(entry.authority);
    }
    entries_.push_back(entry);
  }
}

const RouteConfig* Router::match(std::string_view path, std::string_view authority,
                                 const std::vector<std::string>* client_sans) const noexcept {
  for (const Entry& entry : entries_) {
    if (path_matches(*entry.route, path) && authority_matches(entry, authority) &&
        client_matches(*entry.route, client_sans)) {
      return entry.route;
    }
  }
  return nullptr;
}

bool Router::path_matches(const RouteConfig& route, std::string_view path) noexcept {
  switch (route.kind) {
    case RouteMatch::path:
      return path == route.match;
    case RouteMatch::service: {
      // "/" + service + "/" + a non-empty method without a further '/'.
      const std::string& service = route.match;
      if (path.size() < service.size() + 3 || path[0] != '/' ||
          path.compare(1, service.size(), service) != 0 || path[service.size() + 1] != '/') {
        return false;
      }
      return path.find('/', service.size() + 2) == std::string_view::npos;
    }
    case RouteMatch::prefix:
      return path.substr(0, route.match.size()) == route.match;
    case RouteMatch::any:
      return true;
  }
  return false;
}

bool Router::client_matches(const RouteConfig& route,
                            const std::vector<std::string>* client_sans) noexcept {
  if (!route.client_san) return true;
  if (!client_sans) return false;
  for (const std::string& san : *client_sans) {
    if (san == *route.client_san) return true;
  }
  return false;
}

bool Router::authority_matches(const Entry& entry, std::string_view authority) noexcept {
  if (entry.route->authority == std::nullopt) return true;
  const std::string_view want = entry.authority;
  if (authority.size() == want.size()) return iequals(authority, want);
  if (!entry.any_port || authority.size() < want.size() + 2) return false;
  // The route names a host alone: accept that host with any port.
  if (!iequals(authority.substr(0, want.size()), want) || authority[want.size()] != ':') {
    return false;
  }
  for (char c : authority.substr(want.size() + 1)) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace grelay
