#include "config/upstream_keys.h"

#include <algorithm>
#include <limits>

#include "config/config_reader.h"
#include "config/config_rules.h"
#include "config/duration.h"
#include "config/host_port.h"

namespace grelay {
namespace {

// Reads the values of one table, naming each "<where> <key>" in messages.
class KeyReader {
 public:
  KeyReader(const std::string& path, std::string where) : reader_(path), where_(std::move(where)) {}

  [[noreturn]] void fail(int line, const std::string& message) const {
    reader_.fail(line, message);
  }

  const toml::table& table_of(const toml::node& node) const {
    const toml::table* table = node.as_table();
    if (table == nullptr) fail(line_of(node), where_ + " must be an inline table { ... }");
    return *table;
  }

  void check_keys(const toml::table& table, const std::vector<std::string_view>& allowed) const {
    reader_.check_keys(table, allowed, "in " + where_);
  }

  std::string name(std::string_view key) const { return where_ + " " + std::string(key); }

  std::string string(const toml::node& node, std::string_view key) const {
    return reader_.string_of(node, name(key));
  }

  int64_t integer(const toml::node& node, std::string_view key, int64_t min, int64_t max) const {
    return reader_.integer_of(node, name(key), min, max);
  }

  std::chrono::milliseconds duration(const toml::node& node, std::string_view key) const {
    return reader_.duration_of(node, name(key));
  }

  // A size: an integer of bytes, or a string with a unit ("64KiB", "1MiB").
  size_t size(const toml::node& node, std::string_view key, size_t max) const {
    if (node.is_integer()) return static_cast<size_t>(integer(node, key, 0, int64_t(max)));
    std::string text = string(node, key);
    size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')
      ++digits;
    std::string unit = text.substr(digits);
    size_t scale = unit == "" || unit == "B" ? 1
                   : unit == "KiB"           ? 1024
                   : unit == "MiB"           ? 1024 * 1024
                                             : 0;
    if (digits == 0 || digits > 9 || scale == 0) {
      fail(line_of(node), "bad " + name(key) + " '" + text +
                              "': expected a number of bytes with an optional unit B, KiB or MiB");
    }
    size_t v = std::stoul(text.substr(0, digits)) * scale;
    if (v > max) {
      fail(line_of(node), name(key) + " must be at most " + std::to_string(max) + " bytes");
    }
    return v;
  }

 private:
  ConfigReader reader_;
  std::string where_;
};

StatusCode status_of(const KeyReader& r, const toml::node& node) {
  std::string text = r.string(node, "on");
  for (int code = 1; code <= 16; ++code) {
    if (status_name(static_cast<StatusCode>(code)) == text) return static_cast<StatusCode>(code);
  }
  r.fail(line_of(node), "unknown status '" + text + "' in retry on (use names such as " +
                            "UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED)");
}

HealthCheckConfig parse_health_check(const toml::node& node, const std::string& path) {
  KeyReader r(path, "[[cluster]] health_check");
  const toml::table& table = r.table_of(node);
  r.check_keys(table,
               {"interval", "timeout", "healthy_threshold", "unhealthy_threshold", "service"});
  HealthCheckConfig hc;
  if (const toml::node* n = table.get("interval")) hc.interval = r.duration(*n, "interval");
  if (const toml::node* n = table.get("timeout")) hc.timeout = r.duration(*n, "timeout");
  if (const toml::node* n = table.get("healthy_threshold")) {
    hc.healthy_threshold = static_cast<uint32_t>(r.integer(*n, "healthy_threshold", 1, 100));
  }
  if (const toml::node* n = table.get("unhealthy_threshold")) {
    hc.unhealthy_threshold = static_cast<uint32_t>(r.integer(*n, "unhealthy_threshold", 1, 100));
  }
  if (const toml::node* n = table.get("service")) hc.service = r.string(*n, "service");
  if (hc.service.size() > 1024) r.fail(line_of(node), "health_check service is too long");
  return hc;
}

OutlierConfig parse_outlier(const toml::node& node, const std::string& path) {
  KeyReader r(path, "[[cluster]] outlier");
  const toml::table& table = r.table_of(node);
  r.check_keys(table,
               {"consecutive_failures", "base_ejection", "max_ejection", "max_ejection_percent"});
  OutlierConfig oc;
  if (const toml::node* n = table.get("consecutive_failures")) {
    oc.consecutive_failures =
        static_cast<uint32_t>(r.integer(*n, "consecutive_failures", 1, 1000000));
  }
  if (const toml::node* n = table.get("base_ejection")) {
    oc.base_ejection = r.duration(*n, "base_ejection");
  }
  if (const toml::node* n = table.get("max_ejection")) {
    oc.max_ejection = r.duration(*n, "max_ejection");
  }
  if (const toml::node* n = table.get("max_ejection_percent")) {
    oc.max_ejection_percent = static_cast<uint32_t>(r.integer(*n, "max_ejection_percent", 0, 100));
  }
  if (oc.max_ejection < oc.base_ejection) {
    r.fail(line_of(node), "outlier max_ejection must not be shorter than base_ejection");
  }
  return oc;
}

KeepaliveConfig parse_keepalive(const toml::node& node, const std::string& path) {
  KeyReader r(path, "[[cluster]] keepalive");
  const toml::table& table = r.table_of(node);
  r.check_keys(table, {"interval", "timeout", "without_calls"});
  KeepaliveConfig kc;
  if (const toml::node* n = table.get("interval")) kc.interval = r.duration(*n, "interval");
  if (const toml::node* n = table.get("timeout")) kc.timeout = r.duration(*n, "timeout");
  if (const toml::node* n = table.get("without_calls")) {
    const auto* b = n->as_boolean();
    if (b == nullptr) r.fail(line_of(*n), "keepalive without_calls must be true or false");
    kc.without_calls = b->get();
  }
  return kc;
}

}  // namespace

void parse_endpoint_entry(const toml::node& node, const std::string& path, ClusterConfig& cluster) {
  KeyReader r(path, "[[cluster]] endpoint");
  const toml::node* address = &node;
  uint32_t weight = 1;
  if (const toml::table* table = node.as_table()) {
    r.check_keys(*table, {"address", "weight"});
    address = table->get("address");
    if (address == nullptr) r.fail(line_of(node), "[[cluster]] endpoint table needs 'address'");
    if (const toml::node* n = table->get("weight")) {
      weight = static_cast<uint32_t>(r.integer(*n, "weight", 1, 1000));
    }
  } else if (!node.is_string()) {
    r.fail(line_of(node),
           "[[cluster]] endpoint must be a string \"host:port\" or "
           "a table { address = \"host:port\", weight = N }");
  }
  std::string text = r.string(*address, "address");
  std::string error;
  auto parsed = parse_host_port(text, HostRule::ip_or_dns, &error);
  if (!parsed) r.fail(line_of(*address), "bad [[cluster]] endpoint '" + text + "': " + error);
  cluster.endpoints.push_back(std::move(*parsed));
  cluster.weights.push_back(weight);
}

void parse_cluster_upstream_keys(const toml::table& table, const std::string& path,
                                 ClusterConfig& cluster) {
  KeyReader r(path, "[[cluster]]");
  if (const toml::node* n = table.get("hash_header")) {
    cluster.hash_header = r.string(*n, "hash_header");
    std::string& h = cluster.hash_header;
    std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) {
      return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    });
    if (std::string why = hash_header_error(h); !why.empty()) r.fail(line_of(*n), why);
  }
  if (const toml::node* n = table.get("dns_server")) {
    std::string text = r.string(*n, "dns_server");
    std::string error;
    auto parsed = parse_host_port(text, HostRule::ip_or_localhost, &error);
    if (!parsed || parsed->port == 0) {
      r.fail(line_of(*n), "bad [[cluster]] dns_server '" + text + "': " +
                              (parsed ? std::string("port 0") : error) + " (expected ip:port)");
    }
    cluster.dns_server = std::move(*parsed);
  }
  if (const toml::node* n = table.get("resolve_interval")) {
    cluster.resolve_interval = r.duration(*n, "resolve_interval");
  }
  if (const toml::node* n = table.get("health_check")) {
    cluster.health_check = parse_health_check(*n, path);
  }
  if (const toml::node* n = table.get("outlier")) cluster.outlier = parse_outlier(*n, path);
  if (const toml::node* n = table.get("keepalive")) cluster.keepalive = parse_keepalive(*n, path);
  constexpr int64_t u32 = std::numeric_limits<uint32_t>::max();
  if (const toml::node* n = table.get("max_pending")) {
    cluster.max_pending = static_cast<uint32_t>(r.integer(*n, "max_pending", 0, u32));
  }
  if (const toml::node* n = table.get("max_active")) {
    cluster.max_active = static_cast<uint32_t>(r.integer(*n, "max_active", 0, u32));
  }
  if (const toml::node* n = table.get("max_connection_age")) {
    cluster.max_connection_age = r.duration(*n, "max_connection_age");
  }
  if (const toml::node* n = table.get("max_streams_per_connection")) {
    cluster.max_streams_per_connection =
        static_cast<uint32_t>(r.integer(*n, "max_streams_per_connection", 0, 1 << 30));
  }
  if (const toml::node* n = table.get("max_client_share")) {
    const auto* f = n->as_floating_point();
    const auto* i = n->as_integer();
    double share = f ? f->get() : i ? static_cast<double>(i->get()) : -1;
    if ((!f && !i) || !(share > 0 && share <= 1)) {
      r.fail(line_of(*n), "[[cluster]] max_client_share must be a number in (0, 1], such as 0.25");
    }
    cluster.max_client_share = share;
  }
  if (cluster.lb == LbPolicy::ring_hash && cluster.hash_header.empty()) {
    r.fail(cluster.line, "[[cluster]] '" + cluster.name +
                             "' uses lb = \"ring_hash\" and needs "
                             "hash_header (the request header that picks the endpoint)");
  }
}

RetryConfig parse_retry(const toml::node& node, const std::string& path) {
  KeyReader r(path, "[[route]] retry");
  const toml::table& table = r.table_of(node);
  r.check_keys(table, {"attempts", "on", "backoff", "max_backoff", "buffer", "budget_tokens",
                       "budget_ratio"});
  RetryConfig rc;
  if (const toml::node* n = table.get("attempts")) {
    rc.attempts = static_cast<uint32_t>(r.integer(*n, "attempts", 2, 10));
  }
  if (const toml::node* n = table.get("on")) {
    const toml::array* array = n->as_array();
    if (array == nullptr || array->empty()) {
      r.fail(line_of(*n), "retry on must be a non-empty array of status names");
    }
    rc.on.clear();
    for (const toml::node& e : *array)
      rc.on.push_back(status_of(r, e));
  }
  if (const toml::node* n = table.get("backoff")) rc.backoff = r.duration(*n, "backoff");
  if (const toml::node* n = table.get("max_backoff")) {
    rc.max_backoff = r.duration(*n, "max_backoff");
  }
  if (rc.max_backoff < rc.backoff) {
    r.fail(line_of(node), "retry max_backoff must not be shorter than backoff");
  }
  if (const toml::node* n = table.get("buffer")) rc.buffer = r.size(*n, "buffer", 16 << 20);
  if (const toml::node* n = table.get("budget_tokens")) {
    rc.budget_tokens = static_cast<uint32_t>(r.integer(*n, "budget_tokens", 1, 1000));
  }
  if (const toml::node* n = table.get("budget_ratio")) {
    const auto* v = n->as_floating_point();
    double ratio = v ? v->get() : -1;
    if (!v || !(ratio > 0 && ratio <= 1)) {
      r.fail(line_of(*n), "retry budget_ratio must be a number in (0, 1], such as 0.1");
    }
    rc.budget_ratio = ratio;
  }
  return rc;
}

}  // namespace grelay
