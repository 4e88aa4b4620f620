#include "grelay/config.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <limits>
#include <system_error>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "config/config_reader.h"
#include "config/config_rules.h"
#include "config/cors_keys.h"
#include "config/duration.h"
#include "config/host_port.h"
#include "config/tls_files.h"
#include "config/tls_keys.h"
#include "config/upstream_keys.h"

namespace grelay {

namespace {

std::string format_what(const std::string& file, int line, const std::string& message) {
  // A config built in code has no file: its messages name the element instead.
  if (file.empty()) return line > 0 ? "line " + std::to_string(line) + ": " + message : message;
  if (line > 0) return file + ":" + std::to_string(line) + ": " + message;
  return file + ": " + message;
}

// Turns a parsed TOML document into a Config, throwing ConfigError at the first problem.
class ConfigParser : ConfigReader {
 public:
  ConfigParser(const std::string& path, Config& config)
      : ConfigReader(path), path_(path), config_(config) {}

  void parse(const toml::table& root);

 private:
  // One top-level item, visited in file order so the first error reported is the first
  // one in the file.
  struct Item {
    int line;
    std::string_view key;
    const toml::node* node;
    // True for one table of a [[listener]], [[route]] or [[cluster]] array.
    bool section;
  };

  void parse_workers(const toml::node& node);
  void parse_log_level(const toml::node& node);
  void parse_accept(const toml::node& node);
  void parse_admin(const toml::node& node);
  void parse_access_log(const toml::node& node);
  void parse_listener(const toml::table& table);
  // A duration that must be more than 0.
  std::chrono::milliseconds positive_duration(const toml::node& node, std::string_view name) const {
    auto d = duration_of(node, name);
    if (d.count() <= 0) fail(line_of(node), std::string(name) + " must be more than 0");
    return d;
  }
  void parse_route(const toml::table& table);
  void parse_route_match(const toml::table& table, RouteConfig& route);
  void parse_cluster(const toml::table& table);
  void link_routes();

  const std::string& path_;
  Config& config_;
  // Line of each route's `cluster` value, for errors found once all clusters are known.
  std::vector<int> route_cluster_lines_;
};

void ConfigParser::parse(const toml::table& root) {
  static constexpr std::string_view top_level[] = {
      "workers",  "accept", "drain_timeout", "log_level",  "admin",
      "listener", "route",  "cluster",       "access_log", "watch_config"};
  std::vector<Item> items;
  for (auto&& [key, value] : root) {
    std::string_view k = key.str();
    const toml::array* array = value.as_array();
    bool sections =
        (k == "listener" || k == "route" || k == "cluster") && array != nullptr &&
        std::all_of(array->begin(), array->end(), [](const toml::node& e) { return e.is_table(); });
    if (sections) {
      for (const toml::node& element : *array) {
        items.push_back({line_of(element), k, &element, true});
      }
    } else {
      items.push_back({static_cast<int>(key.source().begin.line), k, &value, false});
    }
  }
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& a, const Item& b) { return a.line < b.line; });
  for (const Item& item : items) {
    std::string_view k = item.key;
    if (item.section) {
      const toml::table& table = *item.node->as_table();
      if (k == "listener") {
        parse_listener(table);
      } else if (k == "route") {
        parse_route(table);
      } else {
        parse_cluster(table);
      }
    } else if (k == "workers") {
      parse_workers(*item.node);
    } else if (k == "log_level") {
      parse_log_level(*item.node);
    } else if (k == "accept") {
      parse_accept(*item.node);
    } else if (k == "drain_timeout") {
      config_.drain_timeout = duration_of(*item.node, "drain_timeout");
    } else if (k == "admin") {
      parse_admin(*item.node);
    } else if (k == "access_log") {
      parse_access_log(*item.node);
    } else if (k == "watch_config") {
      const auto* value = item.node->as_boolean();
      if (value == nullptr) fail(item.line, "watch_config must be true or false");
      config_.watch_config = value->get();
    } else if (k == "listener" || k == "route" || k == "cluster") {
      fail(item.line, std::string(k) + " must be an array of tables ([[" + std::string(k) + "]])");
    } else {
      fail(item.line, "unknown key " + quoted(k) + " at top level" +
                          suggestion(k, {std::begin(top_level), std::end(top_level)}));
    }
  }
  if (config_.listeners.empty()) fail(0, "no [[listener]] defined");
  link_routes();
}

void ConfigParser::parse_workers(const toml::node& node) {
  config_.workers = static_cast<uint32_t>(integer_of(node, "workers", 0, 1024));
}

void ConfigParser::parse_log_level(const toml::node& node) {
  std::string level = string_of(node, "log_level");
  if (level == "debug") {
    config_.log_level = LogLevel::debug;
  } else if (level == "info") {
    config_.log_level = LogLevel::info;
  } else if (level == "warn") {
    config_.log_level = LogLevel::warn;
  } else if (level == "error") {
    config_.log_level = LogLevel::error;
  } else {
    fail(line_of(node),
         "unknown log_level " + quoted(level) + " (supported: debug, info, warn, error)");
  }
}

void ConfigParser::parse_accept(const toml::node& node) {
  std::string mode = string_of(node, "accept");
  if (mode == "reuseport") {
    config_.accept = AcceptMode::reuseport;
  } else if (mode == "handoff") {
    config_.accept = AcceptMode::handoff;
  } else {
    fail(line_of(node), "unknown accept mode " + quoted(mode) + " (supported: handoff, reuseport)");
  }
}

void ConfigParser::parse_admin(const toml::node& node) {
  const toml::table* table = node.as_table();
  if (table == nullptr) fail(line_of(node), "admin must be a table ([admin])");
  check_keys(*table, {"address"}, "in [admin]");
  AdminConfig admin;
  admin.line = line_of(node);
  const toml::node* address = table->get("address");
  if (address != nullptr) {
    admin.address = address_of(*address, "[admin] address", HostRule::ip_or_localhost);
  } else {
    // Loopback unless told otherwise: the endpoint asks for no credentials.
    std::string unused;
    admin.address = *parse_host_port("127.0.0.1:9901", HostRule::ip_or_localhost, &unused);
  }
  config_.admin = std::move(admin);
}

void ConfigParser::parse_access_log(const toml::node& node) {
  const toml::table* table = node.as_table();
  if (table == nullptr) fail(line_of(node), "access_log must be a table ([access_log])");
  check_keys(*table, {"path", "sample_rate", "only_errors"}, "in [access_log]");
  AccessLogConfig log;
  log.line = line_of(node);
  const toml::node* path = table->get("path");
  if (path == nullptr)
    fail(log.line, "[access_log] is missing 'path' (a file, or \"-\" for stdout)");
  log.path = string_of(*path, "[access_log] path");
  if (log.path.empty()) fail(line_of(*path), "[access_log] path must not be empty");
  if (const toml::node* n = table->get("sample_rate")) {
    std::optional<double> rate;
    if (const auto* f = n->as_floating_point()) rate = f->get();
    if (const auto* i = n->as_integer()) rate = static_cast<double>(i->get());
    if (!rate || !(*rate >= 0.0 && *rate <= 1.0)) {
      fail(line_of(*n), "[access_log] sample_rate must be a number from 0 to 1");
    }
    log.sample_rate = *rate;
  }
  if (const toml::node* n = table->get("only_errors")) {
    const auto* value = n->as_boolean();
    if (value == nullptr) fail(line_of(*n), "[access_log] only_errors must be true or false");
    log.only_errors = value->get();
  }
  config_.access_log = std::move(log);
}

void ConfigParser::parse_listener(const toml::table& table) {
  check_keys(table,
             {"address", "max_concurrent_streams", "tls", "handshake_timeout", "preface_timeout",
              "request_headers_timeout", "max_connections", "idle_timeout", "max_connection_age",
              "max_connection_age_grace", "stream_idle_timeout", "max_request_metadata",
              "max_response_metadata", "web", "cors", "max_web_unary_body"},
             "in [[listener]]");
  ListenerConfig listener;
  listener.line = line_of(table);
  const toml::node* address = table.get("address");
  if (address == nullptr) fail(listener.line, "[[listener]] is missing 'address'");
  listener.address = address_of(*address, "[[listener]] address", HostRule::ip_or_localhost);
  // Port 0 gets a fresh port per listener, so only fixed ports can clash.
  for (const ListenerConfig& other : config_.listeners) {
    if (listener.address.port != 0 && other.address.host == listener.address.host &&
        other.address.port == listener.address.port) {
      fail(line_of(*address), duplicate_error("listener address", listener.address.text,
                                              "at line " + std::to_string(other.line)));
    }
  }
  if (const toml::node* n = table.get("max_concurrent_streams")) {
    listener.max_concurrent_streams = static_cast<uint32_t>(integer_of(
        *n, "[[listener]] max_concurrent_streams", 1, std::numeric_limits<int32_t>::max()));
  }
  if (const toml::node* n = table.get("tls")) listener.tls = parse_listener_tls(*this, *n);
  if (const toml::node* n = table.get("handshake_timeout")) {
    listener.handshake_timeout = duration_of(*n, "[[listener]] handshake_timeout");
  }
  if (const toml::node* n = table.get("max_connections")) {
    listener.max_connections = static_cast<uint32_t>(
        integer_of(*n, "[[listener]] max_connections", 0, std::numeric_limits<int32_t>::max()));
  }
  if (const toml::node* n = table.get("preface_timeout")) {
    listener.preface_timeout = positive_duration(*n, "[[listener]] preface_timeout");
  }
  if (const toml::node* n = table.get("request_headers_timeout")) {
    listener.request_headers_timeout =
        positive_duration(*n, "[[listener]] request_headers_timeout");
  }
  if (const toml::node* n = table.get("idle_timeout")) {
    const auto* text = n->as_string();
    listener.idle_timeout = text && text->get() == "off"
                                ? std::nullopt
                                : std::optional(duration_of(*n, "[[listener]] idle_timeout"));
  }
  if (const toml::node* n = table.get("max_request_metadata")) {
    listener.max_request_metadata = static_cast<uint32_t>(
        integer_of(*n, "[[listener]] max_request_metadata", 1024, 1024 * 1024));
  }
  if (const toml::node* n = table.get("max_response_metadata")) {
    listener.max_response_metadata = static_cast<uint32_t>(
        integer_of(*n, "[[listener]] max_response_metadata", 1024, 1024 * 1024));
  }
  if (const toml::node* n = table.get("max_connection_age")) {
    listener.max_connection_age = duration_of(*n, "[[listener]] max_connection_age");
  }
  if (const toml::node* n = table.get("max_connection_age_grace")) {
    if (!listener.max_connection_age) {
      fail(line_of(*n), "[[listener]] max_connection_age_grace needs max_connection_age");
    }
    listener.max_connection_age_grace = duration_of(*n, "[[listener]] max_connection_age_grace");
  }
  if (const toml::node* n = table.get("stream_idle_timeout")) {
    listener.stream_idle_timeout = duration_of(*n, "[[listener]] stream_idle_timeout");
  }
  if (const toml::node* n = table.get("web")) {
    const auto* value = n->as_boolean();
    if (value == nullptr) fail(line_of(*n), "[[listener]] web must be true or false");
    listener.web = value->get();
  }
  if (const toml::node* n = table.get("cors")) {
    if (!listener.web) {
      fail(line_of(*n), "[[listener]] cors needs web = true (CORS applies to web calls only)");
    }
    listener.cors = parse_cors(*this, *n, "[[listener]]");
  }
  if (const toml::node* n = table.get("max_web_unary_body")) {
    listener.max_web_unary_body = static_cast<uint32_t>(
        integer_of(*n, "[[listener]] max_web_unary_body", 1024, 1024 * 1024 * 1024));
  }
  config_.listeners.push_back(std::move(listener));
}

void ConfigParser::parse_route_match(const toml::table& table, RouteConfig& route) {
  constexpr std::string_view kinds[] = {"path", "service", "prefix", "none"};
  const toml::node* found = nullptr;
  std::string_view found_kind;
  for (std::string_view kind : kinds) {
    const toml::node* node = table.get(kind);
    if (node == nullptr) continue;
    if (found != nullptr) {
      fail(route.line, "[[route]] has both " + quoted(found_kind) + " and " + quoted(kind) +
                           "; use exactly one of path, service, prefix, none");
    }
    found = node;
    found_kind = kind;
  }
  if (found == nullptr) {
    fail(route.line,
         "[[route]] needs one of path, service, prefix, or none = true for a catch-all");
  }
  int line = line_of(*found);
  if (found_kind == "none") {
    const auto* value = found->as_boolean();
    if (value == nullptr || !value->get()) {
      fail(line, "[[route]] none must be true (it marks a catch-all route)");
    }
    route.kind = RouteMatch::any;
    return;
  }
  std::string text = string_of(*found, "[[route]] " + std::string(found_kind));
  route.kind = found_kind == "path"      ? RouteMatch::path
               : found_kind == "service" ? RouteMatch::service
                                         : RouteMatch::prefix;
  if (std::string why = route_match_error(route.kind, text); !why.empty()) fail(line, why);
  route.match = std::move(text);
}

void ConfigParser::parse_route(const toml::table& table) {
  check_keys(table,
             {"path", "service", "prefix", "none", "authority", "cluster", "timeout", "name",
              "client_san", "retry", "stream_idle_timeout", "cors"},
             "in [[route]]");
  RouteConfig route;
  route.line = line_of(table);
  if (const toml::node* n = table.get("name")) {
    route.name = string_of(*n, "[[route]] name");
    if (std::string why = route_name_error(route.name); !why.empty()) fail(line_of(*n), why);
    for (const RouteConfig& other : config_.routes) {
      if (other.name == route.name) {
        fail(line_of(*n), duplicate_error("route name", route.name,
                                          "defined at line " + std::to_string(other.line)));
      }
    }
  }
  parse_route_match(table, route);
  if (const toml::node* n = table.get("authority")) {
    std::string authority = string_of(*n, "[[route]] authority");
    if (std::string why = authority_error(authority); !why.empty()) fail(line_of(*n), why);
    route.authority = std::move(authority);
  }
  const toml::node* cluster = table.get("cluster");
  if (cluster == nullptr) fail(route.line, "[[route]] is missing 'cluster'");
  route.cluster = string_of(*cluster, "[[route]] cluster");
  route_cluster_lines_.push_back(line_of(*cluster));
  if (const toml::node* n = table.get("timeout")) {
    route.timeout = duration_of(*n, "[[route]] timeout");
  }
  if (const toml::node* n = table.get("client_san")) {
    route.client_san = string_of(*n, "[[route]] client_san");
    if (route.client_san->empty()) fail(line_of(*n), "[[route]] client_san must not be empty");
  }
  if (const toml::node* n = table.get("retry")) route.retry = parse_retry(*n, path_);
  if (const toml::node* n = table.get("stream_idle_timeout")) {
    // "off" exempts the route's calls (long streams) from a listener-wide timeout.
    const auto* text = n->as_string();
    route.stream_idle_timeout = text && text->get() == "off"
                                    ? std::chrono::milliseconds(0)
                                    : duration_of(*n, "[[route]] stream_idle_timeout");
  }
  if (const toml::node* n = table.get("cors")) route.cors = parse_cors(*this, *n, "[[route]]");
  config_.routes.push_back(std::move(route));
}

void ConfigParser::parse_cluster(const toml::table& table) {
  std::vector<std::string_view> keys = {
      "name", "endpoints", "lb", "max_connections_per_endpoint", "connect_timeout", "tls"};
  keys.insert(keys.end(), std::begin(cluster_upstream_keys), std::end(cluster_upstream_keys));
  check_keys(table, keys, "in [[cluster]]");
  ClusterConfig cluster;
  cluster.line = line_of(table);
  const toml::node* name = table.get("name");
  if (name == nullptr) fail(cluster.line, "[[cluster]] is missing 'name'");
  cluster.name = string_of(*name, "[[cluster]] name");
  // Names end up in metric labels and log lines; keep them plain.
  if (std::string why = cluster_name_error(cluster.name); !why.empty()) fail(line_of(*name), why);
  for (const ClusterConfig& other : config_.clusters) {
    if (other.name == cluster.name) {
      fail(line_of(*name), duplicate_error("cluster name", cluster.name,
                                           "defined at line " + std::to_string(other.line)));
    }
  }

  const toml::node* endpoints = table.get("endpoints");
  if (endpoints == nullptr) fail(cluster.line, "[[cluster]] is missing 'endpoints'");
  const toml::array* array = endpoints->as_array();
  if (array == nullptr) {
    fail(line_of(*endpoints), "[[cluster]] endpoints must be an array of strings");
  }
  if (array->empty()) {
    fail(line_of(*endpoints),
         "[[cluster]] " + quoted(cluster.name) + " has an empty endpoints list");
  }
  for (const toml::node& endpoint : *array) {
    parse_endpoint_entry(endpoint, path_, cluster);
  }

  if (const toml::node* n = table.get("lb")) {
    std::string lb = string_of(*n, "[[cluster]] lb");
    if (lb == "round_robin") {
      cluster.lb = LbPolicy::round_robin;
    } else if (lb == "least_request") {
      cluster.lb = LbPolicy::least_request;
    } else if (lb == "random") {
      cluster.lb = LbPolicy::random;
    } else if (lb == "ring_hash") {
      cluster.lb = LbPolicy::ring_hash;
    } else {
      fail(line_of(*n), "unknown lb policy " + quoted(lb) +
                            " (supported: round_robin, least_request, random, ring_hash)");
    }
  }
  if (const toml::node* n = table.get("max_connections_per_endpoint")) {
    cluster.max_connections_per_endpoint =
        static_cast<uint32_t>(integer_of(*n, "[[cluster]] max_connections_per_endpoint", 1, 1024));
  }
  if (const toml::node* n = table.get("connect_timeout")) {
    cluster.connect_timeout = duration_of(*n, "[[cluster]] connect_timeout");
  }
  if (const toml::node* n = table.get("tls")) cluster.tls = parse_cluster_tls(*this, *n);
  parse_cluster_upstream_keys(table, path_, cluster);
  config_.clusters.push_back(std::move(cluster));
}

void ConfigParser::link_routes() {
  std::vector<std::string_view> names;
  for (const ClusterConfig& cluster : config_.clusters) {
    names.push_back(cluster.name);
  }
  for (size_t i = 0; i < config_.routes.size(); ++i) {
    RouteConfig& route = config_.routes[i];
    auto it = std::find(names.begin(), names.end(), route.cluster);
    if (it == names.end())
      fail(route_cluster_lines_[i], unknown_cluster_error(route.cluster, names));
    route.cluster_index = static_cast<size_t>(it - names.begin());
  }
}

}  // namespace

ConfigError::ConfigError(std::string file, int line, const std::string& message)
    : std::runtime_error(format_what(file, line, message)),
      file_(std::move(file)),
      line_(line),
      message_(message) {}

std::shared_ptr<const Config> parse_config(std::string_view text, const std::string& path) {
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(path));
  } catch (const toml::parse_error& e) {
    throw ConfigError(path, static_cast<int>(e.source().begin.line),
                      "TOML syntax error: " + std::string(e.description()));
  }
  auto config = std::make_shared<Config>();
  config->path = path;
  config->source = std::string(text);
  ConfigParser(path, *config).parse(root);
  return config;
}

std::shared_ptr<const Config> load_config(const std::string& path) {
  auto cannot_read = [&path](int error) {
    return ConfigError(path, 0,
                       "cannot read: " + std::error_code(error, std::generic_category()).message());
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw cannot_read(errno);
  std::string text;
  char buffer[16384];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      ::close(fd);
      throw cannot_read(error);
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return parse_config(text, path);
}

}  // namespace grelay
