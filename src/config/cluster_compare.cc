#include "config/cluster_compare.h"

#include <cstddef>
#include <utility>

namespace grelay {

namespace {

// The number of fields of aggregate |T|: the most initializers T{...} takes. Each comparison
// below asserts it, so a field added to a struct fails the build here until it is compared
// (as a defaulted operator== would have compared it).
struct AnyField {
  // Only named in unevaluated initializers; defined so that clang does not warn of a function
  // with internal linkage left undefined.
  template <typename T>
  operator T() const {
    return T();
  }
};

template <typename T, size_t... I>
constexpr bool takes_initializers(std::index_sequence<I...>) {
  return requires {
    T{(static_cast<void>(I), AnyField{})...};
  };
}

template <typename T, size_t N = 0>
constexpr size_t field_count() {
  if constexpr (takes_initializers<T>(std::make_index_sequence<N + 1>{})) {
    return field_count<T, N + 1>();
  } else {
    return N;
  }
}

template <typename T, typename Equal>
bool same_optional(const std::optional<T>& a, const std::optional<T>& b, Equal equal) {
  if (a.has_value() != b.has_value()) return false;
  return !a || equal(*a, *b);
}

bool same_host_port(const HostPort& a, const HostPort& b) {
  static_assert(field_count<HostPort>() == 3, "compare the new field of HostPort");
  return a.host == b.host && a.port == b.port && a.text == b.text;
}

bool same_tls(const ClusterTlsConfig& a, const ClusterTlsConfig& b) {
  static_assert(field_count<ClusterTlsConfig>() == 6, "compare the new field of ClusterTlsConfig");
  return a.ca == b.ca && a.cert == b.cert && a.key == b.key && a.server_name == b.server_name &&
         a.verify == b.verify && a.line == b.line;
}

bool same_health_check(const HealthCheckConfig& a, const HealthCheckConfig& b) {
  static_assert(field_count<HealthCheckConfig>() == 5,
                "compare the new field of HealthCheckConfig");
  return a.interval == b.interval && a.timeout == b.timeout &&
         a.healthy_threshold == b.healthy_threshold &&
         a.unhealthy_threshold == b.unhealthy_threshold && a.service == b.service;
}

bool same_outlier(const OutlierConfig& a, const OutlierConfig& b) {
  static_assert(field_count<OutlierConfig>() == 4, "compare the new field of OutlierConfig");
  return a.consecutive_failures == b.consecutive_failures && a.base_ejection == b.base_ejection &&
         a.max_ejection == b.max_ejection && a.max_ejection_percent == b.max_ejection_percent;
}

bool same_keepalive(const KeepaliveConfig& a, const KeepaliveConfig& b) {
  static_assert(field_count<KeepaliveConfig>() == 3, "compare the new field of KeepaliveConfig");
  return a.interval == b.interval && a.timeout == b.timeout && a.without_calls == b.without_calls;
}

bool same_endpoints(const std::vector<HostPort>& a, const std::vector<HostPort>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!same_host_port(a[i], b[i])) return false;
  }
  return true;
}

}  // namespace

bool same_settings(const ClusterConfig& a, const ClusterConfig& b) {
  static_assert(field_count<ClusterConfig>() == 19, "compare the new field of ClusterConfig");
  // Only the cluster's own |line| is left out; its tls table's |line| compares, as it did when
  // this was the defaulted operator== with the line copied over.
  return a.name == b.name && same_endpoints(a.endpoints, b.endpoints) && a.lb == b.lb &&
         a.max_connections_per_endpoint == b.max_connections_per_endpoint &&
         a.connect_timeout == b.connect_timeout && same_optional(a.tls, b.tls, same_tls) &&
         a.weights == b.weights && a.hash_header == b.hash_header &&
         same_optional(a.dns_server, b.dns_server, same_host_port) &&
         a.resolve_interval == b.resolve_interval &&
         same_optional(a.health_check, b.health_check, same_health_check) &&
         same_optional(a.outlier, b.outlier, same_outlier) &&
         same_optional(a.keepalive, b.keepalive, same_keepalive) &&
         a.max_pending == b.max_pending && a.max_active == b.max_active &&
         a.max_connection_age == b.max_connection_age &&
         a.max_streams_per_connection == b.max_streams_per_connection &&
         a.max_client_share == b.max_client_share;
}

}  // namespace grelay
