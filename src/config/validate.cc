#include "grelay/validate.h"

#include <algorithm>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config_reader.h"
#include "config/config_rules.h"
#include "config/host_port.h"
#include "config/tls_files.h"

namespace grelay {
namespace {

// Checks a Config made in code, element by element, in the order a file's would be read.
class Validator {
 public:
  explicit Validator(Config& config) : config_(config) {}

  void run();

 private:
  // Where an element is, for messages: its line in the file it came from, or else its place
  // in the Config ("routes[2]"; "" for the top level).
  struct Where {
    int line = 0;
    std::string place;
  };

  [[noreturn]] void fail(const Where& where, const std::string& message) const {
    if (where.line > 0) throw ConfigError(config_.path, where.line, message);
    throw ConfigError(config_.path, 0,
                      where.place.empty() ? message : where.place + ": " + message);
  }
  void check(const Where& where, const std::string& why) const {
    if (!why.empty()) fail(where, why);
  }
  void range(const Where& where, std::string_view name, int64_t value, int64_t min,
             int64_t max) const {
    check(where, range_error(name, value, min, max));
  }
  void duration(const Where& where, std::string_view name, std::chrono::milliseconds d) const {
    if (std::string why = duration_error(d); !why.empty()) {
      fail(where, "bad " + std::string(name) + " " + quoted(std::to_string(d.count()) + "ms") +
                      ": " + why);
    }
  }
  void file(const Where& where, std::string_view name, const std::string& path) const {
    if (path.empty()) fail(where, std::string(name) + " must not be empty");
  }
  // An address: canonical host, and its text filled in when empty.
  void address(const Where& where, std::string_view name, HostPort& address, HostRule rule) const;
  // "at line N", or "at routes[i]".
  static std::string first_at(int line, const std::string& place) {
    return "at " + (line > 0 ? "line " + std::to_string(line) : place);
  }

  void listener(size_t index);
  void listener_tls(const Where& where, ListenerTlsConfig& tls);
  void cors(const Where& where, CorsConfig& cors);
  void route(size_t index);
  void retry(const Where& where, const RetryConfig& retry);
  void cluster(size_t index);
  void cluster_tls(const Where& where, const ClusterTlsConfig& tls);
  void cluster_upstream(const Where& where, ClusterConfig& cluster);
  void link_routes();

  Config& config_;
};

void Validator::address(const Where& where, std::string_view name, HostPort& address,
                        HostRule rule) const {
  std::string text = address.text;
  if (!address.host.empty() || text.empty()) {
    const bool v6 = address.host.find(':') != std::string::npos;
    text = (v6 ? "[" + address.host + "]" : address.host) + ":" + std::to_string(address.port);
  }
  std::string error;
  std::optional<HostPort> parsed = parse_host_port(text, rule, &error);
  if (!parsed) {
    fail(where, "bad " + std::string(name) + " " +
                    quoted(address.text.empty() ? text : address.text) + ": " + error);
  }
  address.host = std::move(parsed->host);
  address.port = parsed->port;
  if (address.text.empty()) address.text = std::move(text);
}

void Validator::run() {
  const Where top;
  range(top, "workers", config_.workers, 0, 1024);
  duration(top, "drain_timeout", config_.drain_timeout);
  if (config_.admin) {
    address({config_.admin->line, "admin"}, "[admin] address", config_.admin->address,
            HostRule::ip_or_localhost);
  }
  if (config_.access_log) {
    const Where where{config_.access_log->line, "access_log"};
    if (config_.access_log->path.empty()) fail(where, "[access_log] path must not be empty");
    const double rate = config_.access_log->sample_rate;
    if (!(rate >= 0.0 && rate <= 1.0)) {
      fail(where, "[access_log] sample_rate must be a number from 0 to 1");
    }
  }
  for (size_t i = 0; i < config_.listeners.size(); ++i)
    listener(i);
  for (size_t i = 0; i < config_.routes.size(); ++i)
    route(i);
  for (size_t i = 0; i < config_.clusters.size(); ++i)
    cluster(i);
  if (config_.listeners.empty()) fail(top, "no [[listener]] defined");
  link_routes();
}

void Validator::listener(size_t index) {
  ListenerConfig& l = config_.listeners[index];
  const Where where{l.line, "listeners[" + std::to_string(index) + "]"};
  address(where, "[[listener]] address", l.address, HostRule::ip_or_localhost);
  // Port 0 gets a fresh port per listener, so only fixed ports can clash.
  for (size_t j = 0; j < index; ++j) {
    const ListenerConfig& other = config_.listeners[j];
    if (l.address.port != 0 && other.address.host == l.address.host &&
        other.address.port == l.address.port) {
      fail(where, duplicate_error("listener address", l.address.text,
                                  first_at(other.line, "listeners[" + std::to_string(j) + "]")));
    }
  }
  constexpr int64_t i32 = std::numeric_limits<int32_t>::max();
  range(where, "[[listener]] max_concurrent_streams", l.max_concurrent_streams, 1, i32);
  if (l.tls) listener_tls({l.tls->line, where.place + " tls"}, *l.tls);
  duration(where, "[[listener]] handshake_timeout", l.handshake_timeout);
  range(where, "[[listener]] max_connections", l.max_connections, 0, i32);
  duration(where, "[[listener]] preface_timeout", l.preface_timeout);
  duration(where, "[[listener]] request_headers_timeout", l.request_headers_timeout);
  if (l.idle_timeout) duration(where, "[[listener]] idle_timeout", *l.idle_timeout);
  range(where, "[[listener]] max_request_metadata", l.max_request_metadata, 1024, 1024 * 1024);
  range(where, "[[listener]] max_response_metadata", l.max_response_metadata, 1024, 1024 * 1024);
  if (l.max_connection_age)
    duration(where, "[[listener]] max_connection_age", *l.max_connection_age);
  if (l.max_connection_age_grace) {
    if (!l.max_connection_age) {
      fail(where, "[[listener]] max_connection_age_grace needs max_connection_age");
    }
    duration(where, "[[listener]] max_connection_age_grace", *l.max_connection_age_grace);
  }
  if (l.stream_idle_timeout) {
    duration(where, "[[listener]] stream_idle_timeout", *l.stream_idle_timeout);
  }
  if (l.cors) {
    if (!l.web) fail(where, "[[listener]] cors needs web = true (CORS applies to web calls only)");
    cors({l.cors->line, where.place + " cors"}, *l.cors);
  }
  range(where, "[[listener]] max_web_unary_body", l.max_web_unary_body, 1024, 1024 * 1024 * 1024);
}

void Validator::cors(const Where& where, CorsConfig& c) {
  if (c.allow_origins.empty()) fail(where, "cors allow_origins must not be empty");
  for (const std::string& origin : c.allow_origins) {
    check(where, cors_origin_error(origin));
    if (c.allow_credentials && origin == "*") {
      fail(where, "cors allow_credentials cannot be used with allow_origins \"*\"");
    }
  }
  for (std::vector<std::string>* list : {&c.allow_headers, &c.expose_headers}) {
    for (std::string& name : *list) {
      for (char& ch : name)
        ch = (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch + 32) : ch;
      check(where, cors_header_error(name));
    }
  }
  duration(where, "cors max_age", c.max_age);
}

void Validator::listener_tls(const Where& where, ListenerTlsConfig& tls) {
  if (tls.certificates.empty()) {
    fail(where, "[[listener]] tls needs cert and key, or certs = [{ names, cert, key }]");
  }
  for (size_t k = 0; k < tls.certificates.size(); ++k) {
    TlsCertificate& pair = tls.certificates[k];
    const Where at{pair.line, where.place + " certificates[" + std::to_string(k) + "]"};
    // Only the first certificate, the default, may go without names.
    if (k > 0 && pair.names.empty()) fail(at, "[[listener]] tls certs names must not be empty");
    for (std::string& name : pair.names) {
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) {
        return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
      });
      check(at, certificate_name_error(name));
    }
    file(at, "[[listener]] tls cert", pair.cert);
    file(at, "[[listener]] tls key", pair.key);
    check(at, check_cert_pair(pair.cert, pair.key));
  }
  if (!tls.client_ca.empty()) check(where, check_ca(tls.client_ca));
  if (tls.client_verify != ClientCertMode::none && tls.client_ca.empty()) {
    fail(where,
         "[[listener]] tls verify needs client_ca (the CA client certificates must chain to)");
  }
}

void Validator::route(size_t index) {
  RouteConfig& r = config_.routes[index];
  const Where where{r.line, "routes[" + std::to_string(index) + "]"};
  if (!r.name.empty()) {
    check(where, route_name_error(r.name));
    for (size_t j = 0; j < index; ++j) {
      const RouteConfig& other = config_.routes[j];
      if (other.name == r.name) {
        fail(where, duplicate_error(
                        "route name", r.name,
                        "defined " + first_at(other.line, "routes[" + std::to_string(j) + "]")));
      }
    }
  }
  check(where, route_match_error(r.kind, r.match));
  if (r.authority) check(where, authority_error(*r.authority));
  if (r.timeout) duration(where, "[[route]] timeout", *r.timeout);
  if (r.client_san && r.client_san->empty()) {
    fail(where, "[[route]] client_san must not be empty");
  }
  if (r.retry) retry(where, *r.retry);
  // 0 turns the listener's timeout off for the route.
  if (r.stream_idle_timeout && r.stream_idle_timeout->count() != 0) {
    duration(where, "[[route]] stream_idle_timeout", *r.stream_idle_timeout);
  }
  if (r.cors) cors({r.cors->line, where.place + " cors"}, *r.cors);
}

void Validator::retry(const Where& where, const RetryConfig& retry) {
  range(where, "[[route]] retry attempts", retry.attempts, 2, 10);
  if (retry.on.empty()) fail(where, "retry on must be a non-empty array of status names");
  for (StatusCode code : retry.on) {
    const auto n = static_cast<int>(code);
    if (n < 1 || n > 16) {
      fail(where, "unknown status '" + std::to_string(n) +
                      "' in retry on (use names such as UNAVAILABLE, RESOURCE_EXHAUSTED, "
                      "DEADLINE_EXCEEDED)");
    }
  }
  duration(where, "[[route]] retry backoff", retry.backoff);
  duration(where, "[[route]] retry max_backoff", retry.max_backoff);
  if (retry.max_backoff < retry.backoff) {
    fail(where, "retry max_backoff must not be shorter than backoff");
  }
  constexpr size_t max_buffer = 16 << 20;
  if (retry.buffer > max_buffer) {
    fail(where, "[[route]] retry buffer must be at most " + std::to_string(max_buffer) + " bytes");
  }
  range(where, "[[route]] retry budget_tokens", retry.budget_tokens, 1, 1000);
  if (!(retry.budget_ratio > 0 && retry.budget_ratio <= 1)) {
    fail(where, "retry budget_ratio must be a number in (0, 1], such as 0.1");
  }
}

void Validator::cluster(size_t index) {
  ClusterConfig& c = config_.clusters[index];
  const Where where{c.line, "clusters[" + std::to_string(index) + "]"};
  check(where, cluster_name_error(c.name));
  for (size_t j = 0; j < index; ++j) {
    const ClusterConfig& other = config_.clusters[j];
    if (other.name == c.name) {
      fail(where, duplicate_error(
                      "cluster name", c.name,
                      "defined " + first_at(other.line, "clusters[" + std::to_string(j) + "]")));
    }
  }
  if (c.endpoints.empty())
    fail(where, "[[cluster]] " + quoted(c.name) + " has an empty endpoints list");
  for (HostPort& endpoint : c.endpoints)
    address(where, "[[cluster]] endpoint", endpoint, HostRule::ip_or_dns);
  if (c.weights.empty()) c.weights.assign(c.endpoints.size(), 1);
  if (c.weights.size() != c.endpoints.size()) {
    fail(where, "[[cluster]] " + quoted(c.name) + " has " + std::to_string(c.weights.size()) +
                    " weights for " + std::to_string(c.endpoints.size()) +
                    " endpoints (one each, or none for 1 each)");
  }
  for (uint32_t weight : c.weights)
    range(where, "[[cluster]] endpoint weight", weight, 1, 1000);
  range(where, "[[cluster]] max_connections_per_endpoint", c.max_connections_per_endpoint, 1, 1024);
  duration(where, "[[cluster]] connect_timeout", c.connect_timeout);
  if (c.tls) cluster_tls({c.tls->line, where.place + " tls"}, *c.tls);
  cluster_upstream(where, c);
}

void Validator::cluster_tls(const Where& where, const ClusterTlsConfig& tls) {
  if (!tls.ca.empty()) check(where, check_ca(tls.ca));
  if (!tls.cert.empty() || !tls.key.empty()) {
    if (tls.cert.empty()) fail(where, "[[cluster]] tls is missing 'cert'");
    if (tls.key.empty()) fail(where, "[[cluster]] tls is missing 'key'");
    check(where, check_cert_pair(tls.cert, tls.key));
  }
  if (!tls.server_name.empty()) check(where, server_name_error(tls.server_name));
}

void Validator::cluster_upstream(const Where& where, ClusterConfig& c) {
  if (!c.hash_header.empty()) {
    std::transform(
        c.hash_header.begin(), c.hash_header.end(), c.hash_header.begin(),
        [](unsigned char ch) { return static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch); });
    check(where, hash_header_error(c.hash_header));
  }
  if (c.dns_server) {
    address(where, "[[cluster]] dns_server", *c.dns_server, HostRule::ip_or_localhost);
    if (c.dns_server->port == 0) {
      fail(where, "bad [[cluster]] dns_server " + quoted(c.dns_server->text) +
                      ": port 0 (expected ip:port)");
    }
  }
  duration(where, "[[cluster]] resolve_interval", c.resolve_interval);
  if (const auto& hc = c.health_check) {
    duration(where, "[[cluster]] health_check interval", hc->interval);
    duration(where, "[[cluster]] health_check timeout", hc->timeout);
    range(where, "[[cluster]] health_check healthy_threshold", hc->healthy_threshold, 1, 100);
    range(where, "[[cluster]] health_check unhealthy_threshold", hc->unhealthy_threshold, 1, 100);
    if (hc->service.size() > 1024) fail(where, "health_check service is too long");
  }
  if (const auto& oc = c.outlier) {
    range(where, "[[cluster]] outlier consecutive_failures", oc->consecutive_failures, 1, 1000000);
    duration(where, "[[cluster]] outlier base_ejection", oc->base_ejection);
    duration(where, "[[cluster]] outlier max_ejection", oc->max_ejection);
    range(where, "[[cluster]] outlier max_ejection_percent", oc->max_ejection_percent, 0, 100);
    if (oc->max_ejection < oc->base_ejection) {
      fail(where, "outlier max_ejection must not be shorter than base_ejection");
    }
  }
  if (const auto& kc = c.keepalive) {
    duration(where, "[[cluster]] keepalive interval", kc->interval);
    duration(where, "[[cluster]] keepalive timeout", kc->timeout);
  }
  // 0: no limit.
  if (c.max_connection_age.count() != 0) {
    duration(where, "[[cluster]] max_connection_age", c.max_connection_age);
  }
  range(where, "[[cluster]] max_streams_per_connection", c.max_streams_per_connection, 0, 1 << 30);
  if (!(c.max_client_share > 0 && c.max_client_share <= 1)) {
    fail(where, "[[cluster]] max_client_share must be a number in (0, 1], such as 0.25");
  }
  if (c.lb == LbPolicy::ring_hash && c.hash_header.empty()) {
    fail(where, "[[cluster]] " + quoted(c.name) +
                    " uses lb = \"ring_hash\" and needs hash_header (the request header that "
                    "picks the endpoint)");
  }
}

void Validator::link_routes() {
  std::vector<std::string_view> names;
  for (const ClusterConfig& cluster : config_.clusters)
    names.push_back(cluster.name);
  for (size_t i = 0; i < config_.routes.size(); ++i) {
    RouteConfig& route = config_.routes[i];
    auto it = std::find(names.begin(), names.end(), route.cluster);
    if (it == names.end()) {
      fail({route.line, "routes[" + std::to_string(i) + "]"},
           unknown_cluster_error(route.cluster, names));
    }
    route.cluster_index = static_cast<size_t>(it - names.begin());
  }
}

}  // namespace

std::shared_ptr<const Config> validate_config(Config config) {
  Validator(config).run();
  return std::make_shared<const Config>(std::move(config));
}

}  // namespace grelay
