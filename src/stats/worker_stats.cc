#include "stats/worker_stats.h"

namespace grelay {
namespace {

bool is_name_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.';
}

bool is_name(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_name_char(c)) return false;
  }
  return true;
}

}  // namespace

std::string_view error_reason_name(ErrorReason reason) noexcept {
#define GRELAY_REASON_CASE(name) \
  case ErrorReason::name:        \
    return #name;
  switch (reason) {
    GRELAY_ERROR_REASONS(GRELAY_REASON_CASE)
    case ErrorReason::none:
    case ErrorReason::count_:
      break;
  }
#undef GRELAY_REASON_CASE
  return "";
}

void CallSeries::finish(StatusCode code, uint64_t duration_ns, uint64_t req_messages,
                        uint64_t resp_messages, uint64_t req_bytes, uint64_t resp_bytes) noexcept {
  finished.add(code);
  duration.observe(duration_ns);
  request_messages.add(req_messages);
  response_messages.add(resp_messages);
  request_bytes.add(req_bytes);
  response_bytes.add(resp_bytes);
}

std::string route_label(const RouteConfig& route) {
  if (!route.name.empty()) return route.name;
  std::string label;
  switch (route.kind) {
    case RouteMatch::path:
    case RouteMatch::service:
    case RouteMatch::prefix:
      label = route.match;
      break;
    case RouteMatch::any:
      label = "*";
      break;
  }
  if (route.authority) label += "@" + *route.authority;
  return label;
}

bool split_grpc_path(std::string_view path, std::string_view& service, std::string_view& method) {
  if (path.size() < 4 || path[0] != '/') return false;
  size_t slash = path.find('/', 1);
  if (slash == std::string_view::npos) return false;
  service = path.substr(1, slash - 1);
  method = path.substr(slash + 1);
  return is_name(service) && is_name(method);
}

WorkerStats::WorkerStats(const Config& config) {
  for (const ClusterConfig& c : config.clusters) {
    ClusterStats& cluster = clusters_.emplace_back();
    cluster.name = c.name;
    for (const HostPort& endpoint : c.endpoints)
      cluster.endpoints.emplace_back().address = endpoint.text;
  }
  for (const ListenerConfig& l : config.listeners)
    listeners_.emplace_back().address = l.address.text;
  unrouted_ = &add_series("", "", "", "");
  routes_.resize(config.routes.size());
  for (size_t i = 0; i < config.routes.size(); ++i) {
    const RouteConfig& route = config.routes[i];
    std::string_view service, method;
    RouteSlot& slot = routes_[i];
    if (route.kind == RouteMatch::path && split_grpc_path(route.match, service, method)) {
      slot.exact = true;
      slot.fixed =
          &add_series(route_label(route), route.cluster, std::string(service), std::string(method));
    } else {
      slot.fixed = &add_series(route_label(route), route.cluster, "other", "other");
    }
  }
}

CallSeries& WorkerStats::add_series(std::string route, std::string cluster, std::string service,
                                    std::string method) {
  std::lock_guard<std::mutex> lock(series_mutex_);
  CallSeries& s = series_.emplace_back();
  s.route = std::move(route);
  s.cluster = std::move(cluster);
  s.service = std::move(service);
  s.method = std::move(method);
  return s;
}

CallSeries& WorkerStats::routed(size_t route_index, std::string_view path) {
  RouteSlot& slot = routes_[route_index];
  if (slot.exact) return *slot.fixed;
  if (slot.last && path == slot.last_path) return *slot.last;
  auto it = slot.methods.find(path);
  if (it != slot.methods.end()) {
    slot.last_path.assign(path);
    slot.last = it->second;
    return *it->second;
  }
  std::string_view service, method;
  if (slot.methods.size() >= max_methods_per_route || !split_grpc_path(path, service, method)) {
    return *slot.fixed;
  }
  CallSeries& s =
      add_series(slot.fixed->route, slot.fixed->cluster, std::string(service), std::string(method));
  slot.methods.emplace(std::string(path), &s);
  return s;
}

std::shared_ptr<AddressState> EndpointStats::add_address(std::string resolved) {
  auto state = std::make_shared<AddressState>(std::move(resolved));
  std::lock_guard<std::mutex> lock(addresses_mutex_);
  addresses_.push_back(state);
  return state;
}

void EndpointStats::remove_address(const AddressState* state) {
  std::lock_guard<std::mutex> lock(addresses_mutex_);
  std::erase_if(addresses_, [state](const auto& s) { return s.get() == state; });
}

std::vector<std::shared_ptr<const AddressState>> EndpointStats::addresses() const {
  std::lock_guard<std::mutex> lock(addresses_mutex_);
  return {addresses_.begin(), addresses_.end()};
}

}  // namespace grelay
