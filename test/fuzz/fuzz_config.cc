// Fuzzes the config loader: any text must either give a valid Config or throw ConfigError.
// Another exception escaping ends in std::terminate, which libFuzzer reports as a crash.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "grelay/config.h"

namespace {

constexpr char fuzz_path[] = "fuzz.toml";

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "fuzz_config: invariant violated: %s\n", what);
  std::abort();
}

// An address is host:port with an IP literal or a DNS name: never a control character.
void check_address(const grelay::HostPort& address) {
  for (unsigned char c : address.text) {
    if (c < 0x20 || c == 0x7f) violated("control character in an accepted address");
  }
  if (address.host.empty()) violated("address host empty");
}

// What validation promises about a Config it returns.
void check_config(const grelay::Config& config) {
  if (config.path != fuzz_path) violated("path");
  if (config.listeners.empty()) violated("no listener");
  if (config.workers > 1024) violated("workers out of range");
  if (config.admin) check_address(config.admin->address);
  for (const grelay::ListenerConfig& listener : config.listeners) {
    check_address(listener.address);
    if (listener.max_concurrent_streams < 1) violated("max_concurrent_streams < 1");
  }
  for (const grelay::RouteConfig& route : config.routes) {
    if (route.cluster_index >= config.clusters.size()) violated("route cluster_index");
    if (config.clusters[route.cluster_index].name != route.cluster) violated("route cluster");
    if (route.kind != grelay::RouteMatch::any && route.match.empty()) violated("empty match");
    if (route.kind == grelay::RouteMatch::prefix && route.match[0] != '/') violated("prefix");
    if (route.timeout && route.timeout->count() <= 0) violated("route timeout <= 0");
  }
  for (const grelay::ClusterConfig& cluster : config.clusters) {
    if (cluster.name.empty()) violated("cluster name empty");
    if (cluster.endpoints.empty()) violated("cluster without endpoints");
    for (const grelay::HostPort& endpoint : cluster.endpoints) {
      check_address(endpoint);
      if (endpoint.port == 0) violated("endpoint port 0");
    }
    if (cluster.max_connections_per_endpoint < 1) violated("max_connections_per_endpoint");
    if (cluster.connect_timeout.count() <= 0) violated("connect_timeout <= 0");
    if (cluster.weights.size() != cluster.endpoints.size()) violated("one weight per endpoint");
    for (uint32_t weight : cluster.weights) {
      if (weight < 1 || weight > 1000) violated("endpoint weight");
    }
    if (cluster.lb == grelay::LbPolicy::ring_hash && cluster.hash_header.empty()) {
      violated("ring_hash without hash_header");
    }
    if (cluster.outlier && cluster.outlier->max_ejection < cluster.outlier->base_ejection) {
      violated("max_ejection < base_ejection");
    }
  }
  for (const grelay::RouteConfig& route : config.routes) {
    if (!route.retry) continue;
    if (route.retry->attempts < 2 || route.retry->on.empty()) violated("retry policy");
    if (route.retry->max_backoff < route.retry->backoff) violated("retry backoff");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    check_config(*grelay::parse_config(text, fuzz_path));
  } catch (const grelay::ConfigError& e) {
    // Messages are "file:line: message" or "file: message".
    if (e.file() != fuzz_path || e.line() < 0) violated("ConfigError file or line");
    if (std::string_view(e.what()).substr(0, sizeof(fuzz_path) - 1) != fuzz_path) {
      violated("ConfigError what() prefix");
    }
  }
  return 0;
}
