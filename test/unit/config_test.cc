#include "grelay/config.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "config/cluster_compare.h"
#include "config/duration.h"
#include "config/host_port.h"
#include "config/listener_match.h"
#include "test_certs.h"

using namespace std::chrono_literals;
using grelay::ConfigError;
using grelay::HostRule;
using grelay::parse_config;

namespace {

// Joins |lines| into a document; the first line is line 1.
std::string doc(std::initializer_list<std::string_view> lines) {
  std::string out;
  for (std::string_view line : lines) {
    out += line;
    out += '\n';
  }
  return out;
}

// what() of the ConfigError parsing |text| throws, or "(no error)".
std::string error_of(const std::string& text) {
  try {
    (void)parse_config(text, "t.toml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

std::string location(int line) {
  return line > 0 ? "t.toml:" + std::to_string(line) + ": " : "t.toml: ";
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// Valid listener and cluster lines to build documents around.
constexpr std::string_view listener = "[[listener]]";
constexpr std::string_view listener_address = "address = \"127.0.0.1:50050\"";
constexpr std::string_view cluster = "[[cluster]]";
constexpr std::string_view cluster_name = "name = \"c\"";
constexpr std::string_view cluster_endpoints = "endpoints = [\"127.0.0.1:50051\"]";

std::string duration_error(std::string_view text) {
  std::string error;
  auto d = grelay::parse_duration(text, &error);
  return d ? "(no error)" : error;
}

std::string address_error(std::string_view text, HostRule rule) {
  std::string error;
  auto a = grelay::parse_host_port(text, rule, &error);
  return a ? "(no error)" : error;
}

std::filesystem::path source_root() {
  const char* root = std::getenv("GRELAY_SOURCE_ROOT");
  if (root != nullptr && *root != '\0') return root;
  // Run by hand: this file is test/unit/config_test.cc under the root (relative to the
  // build directory when the compiler was given a relative path).
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
}

}  // namespace

// Checks that parsing |text| fails at |line| (0: no line) with a message containing |message|.
#define CHECK_CONFIG_ERROR(text, line, message) \
  do {                                          \
    std::string what_ = error_of(text);         \
    INFO("what(): ", what_);                    \
    CHECK(what_.rfind(location(line), 0) == 0); \
    CHECK(contains(what_, message));            \
  } while (false)

TEST_CASE("ConfigError formats file:line: message") {
  ConfigError with_line("a.toml", 7, "bad thing");
  CHECK(std::string(with_line.what()) == "a.toml:7: bad thing");
  CHECK(with_line.file() == "a.toml");
  CHECK(with_line.line() == 7);
  CHECK(with_line.message() == "bad thing");
  ConfigError without_line("a.toml", 0, "bad thing");
  CHECK(std::string(without_line.what()) == "a.toml: bad thing");
}

TEST_CASE("a minimal config gets the defaults") {
  auto config = parse_config(doc({listener, listener_address}), "min.toml");
  CHECK(config->path == "min.toml");
  CHECK(config->workers == 1);
  CHECK(config->log_level == grelay::LogLevel::info);
  CHECK_FALSE(config->admin.has_value());
  REQUIRE(config->listeners.size() == 1);
  CHECK(config->listeners[0].address.host == "127.0.0.1");
  CHECK(config->listeners[0].address.port == 50050);
  CHECK(config->listeners[0].address.text == "127.0.0.1:50050");
  CHECK(config->listeners[0].max_concurrent_streams == 1000);
  CHECK(config->listeners[0].line == 1);
  CHECK(config->routes.empty());
  CHECK(config->clusters.empty());

  config = parse_config(doc({listener, listener_address, cluster, cluster_name, cluster_endpoints,
                             "[[route]]", "none = true", "cluster = \"c\""}),
                        "t.toml");
  REQUIRE(config->clusters.size() == 1);
  CHECK(config->clusters[0].lb == grelay::LbPolicy::round_robin);
  CHECK(config->clusters[0].max_connections_per_endpoint == 8);
  CHECK(config->clusters[0].connect_timeout == 5s);
  REQUIRE(config->routes.size() == 1);
  CHECK(config->routes[0].kind == grelay::RouteMatch::any);
  CHECK_FALSE(config->routes[0].authority.has_value());
  CHECK_FALSE(config->routes[0].timeout.has_value());
}

TEST_CASE("a full config round-trips into every field") {
  std::string text = doc({
      "workers = 4",                                                  // 1
      "log_level = \"debug\"",                                        // 2
      "[admin]",                                                      // 3
      "address = \"localhost:9901\"",                                 // 4
      "[[listener]]",                                                 // 5
      "address = \"0.0.0.0:50050\"",                                  // 6
      "max_concurrent_streams = 200",                                 // 7
      "[[listener]]",                                                 // 8
      "address = \"[::1]:50050\"",                                    // 9
      "[[route]]",                                                    // 10
      "path = \"/pkg.Svc/Method\"",                                   // 11
      "authority = \"API.example.com\"",                              // 12
      "cluster = \"second\"",                                         // 13
      "timeout = \"1.5s\"",                                           // 14
      "[[route]]",                                                    // 15
      "service = \"helloworld.Greeter\"",                             // 16
      "cluster = \"first\"",                                          // 17
      "[[route]]",                                                    // 18
      "prefix = \"/pkg.\"",                                           // 19
      "cluster = \"second\"",                                         // 20
      "[[route]]",                                                    // 21
      "none = true",                                                  // 22
      "cluster = \"first\"",                                          // 23
      "timeout = \"2m\"",                                             // 24
      "[[cluster]]",                                                  // 25
      "name = \"first\"",                                             // 26
      "endpoints = [\"127.0.0.1:50051\", \"[::1]:50052\"]",           // 27
      "lb = \"round_robin\"",                                         // 28
      "max_connections_per_endpoint = 2",                             // 29
      "connect_timeout = \"250ms\"",                                  // 30
      "[[cluster]]",                                                  // 31
      "name = \"second\"",                                            // 32
      "endpoints = [\"backend.internal:443\", \"localhost:50053\"]",  // 33
  });
  auto config = parse_config(text, "full.toml");
  CHECK(config->workers == 4);
  CHECK(config->log_level == grelay::LogLevel::debug);
  REQUIRE(config->admin.has_value());
  CHECK(config->admin->address.host == "127.0.0.1");
  CHECK(config->admin->address.port == 9901);
  CHECK(config->admin->address.text == "localhost:9901");
  CHECK(config->admin->line == 3);

  REQUIRE(config->listeners.size() == 2);
  CHECK(config->listeners[0].address.host == "0.0.0.0");
  CHECK(config->listeners[0].max_concurrent_streams == 200);
  CHECK(config->listeners[0].line == 5);
  CHECK(config->listeners[1].address.host == "::1");
  CHECK(config->listeners[1].address.port == 50050);
  CHECK(config->listeners[1].address.text == "[::1]:50050");
  CHECK(config->listeners[1].line == 8);

  REQUIRE(config->routes.size() == 4);
  const auto& r = config->routes;
  CHECK(r[0].kind == grelay::RouteMatch::path);
  CHECK(r[0].match == "/pkg.Svc/Method");
  CHECK(r[0].authority == "API.example.com");
  CHECK(r[0].cluster == "second");
  CHECK(r[0].cluster_index == 1);
  CHECK(r[0].timeout == 1500ms);
  CHECK(r[0].line == 10);
  CHECK(r[1].kind == grelay::RouteMatch::service);
  CHECK(r[1].match == "helloworld.Greeter");
  CHECK(r[1].cluster_index == 0);
  CHECK(r[2].kind == grelay::RouteMatch::prefix);
  CHECK(r[2].match == "/pkg.");
  CHECK(r[2].cluster_index == 1);
  CHECK(r[3].kind == grelay::RouteMatch::any);
  CHECK(r[3].match.empty());
  CHECK(r[3].cluster_index == 0);
  CHECK(r[3].timeout == 2min);
  CHECK(r[3].line == 21);

  REQUIRE(config->clusters.size() == 2);
  const auto& c = config->clusters;
  CHECK(c[0].name == "first");
  CHECK(c[0].line == 25);
  REQUIRE(c[0].endpoints.size() == 2);
  CHECK(c[0].endpoints[0].host == "127.0.0.1");
  CHECK(c[0].endpoints[0].port == 50051);
  CHECK(c[0].endpoints[1].host == "::1");
  CHECK(c[0].endpoints[1].port == 50052);
  CHECK(c[0].max_connections_per_endpoint == 2);
  CHECK(c[0].connect_timeout == 250ms);
  CHECK(c[1].name == "second");
  REQUIRE(c[1].endpoints.size() == 2);
  CHECK(c[1].endpoints[0].host == "backend.internal");
  CHECK(c[1].endpoints[0].port == 443);
  // Endpoints are resolved later, so localhost stays a name there.
  CHECK(c[1].endpoints[1].host == "localhost");
}

TEST_CASE("TOML syntax errors carry the line") {
  CHECK_CONFIG_ERROR(doc({listener, listener_address, "workers = "}), 3, "TOML syntax error");
  CHECK_CONFIG_ERROR(doc({"workers = 1", "workers = 2"}), 2, "TOML syntax error");
}

TEST_CASE("unknown keys are reported with where they are and a suggestion") {
  CHECK_CONFIG_ERROR(doc({"worker = 2", listener, listener_address}), 1,
                     "unknown key 'worker' at top level (did you mean 'workers'?)");
  CHECK_CONFIG_ERROR(
      doc({listener, listener_address, cluster, cluster_name, "endpoint = [\"127.0.0.1:1\"]"}), 5,
      "unknown key 'endpoint' in [[cluster]] (did you mean 'endpoints'?)");
  CHECK_CONFIG_ERROR(doc({listener, "adress = \"127.0.0.1:1\""}), 2,
                     "unknown key 'adress' in [[listener]] (did you mean 'address'?)");
  CHECK_CONFIG_ERROR(doc({listener, listener_address, "[[route]]", "none = true", "cluster = \"c\"",
                          "timout = \"1s\""}),
                     6, "unknown key 'timout' in [[route]] (did you mean 'timeout'?)");
  CHECK_CONFIG_ERROR(doc({"[admin]", "address = \"127.0.0.1:9901\"", "port = 1"}), 3,
                     "unknown key 'port' in [admin]");
  // Nothing close: no suggestion.
  std::string what = error_of(doc({listener, listener_address, "zzzzzz = 1"}));
  CHECK(what == "t.toml:3: unknown key 'zzzzzz' in [[listener]]");
  // The first unknown key in the file is the one reported.
  CHECK_CONFIG_ERROR(doc({listener, listener_address, "b_unknown = 1", "a_unknown = 1"}), 3,
                     "'b_unknown'");
  // Sections the config does not know yet are unknown keys too.
  CHECK_CONFIG_ERROR(doc({listener, listener_address, "[tls]", "cert = \"x\""}), 3,
                     "unknown key 'tls' at top level");
}

TEST_CASE("wrong types are reported") {
  CHECK_CONFIG_ERROR(doc({"workers = \"2\""}), 1, "workers must be an integer");
  CHECK_CONFIG_ERROR(doc({"workers = 1.5"}), 1, "workers must be an integer");
  CHECK_CONFIG_ERROR(doc({"log_level = 1"}), 1, "log_level must be a string");
  CHECK_CONFIG_ERROR(doc({"admin = \"127.0.0.1:9901\""}), 1, "admin must be a table ([admin])");
  CHECK_CONFIG_ERROR(doc({"[listener]", listener_address}), 1,
                     "listener must be an array of tables ([[listener]])");
  CHECK_CONFIG_ERROR(doc({"cluster = [1, 2]"}), 1,
                     "cluster must be an array of tables ([[cluster]])");
  CHECK_CONFIG_ERROR(doc({listener, "address = 50050"}), 2,
                     "[[listener]] address must be a string");
  CHECK_CONFIG_ERROR(doc({listener, listener_address, "max_concurrent_streams = \"10\""}), 3,
                     "[[listener]] max_concurrent_streams must be an integer");
  CHECK_CONFIG_ERROR(doc({listener, listener_address, cluster, "name = 3", cluster_endpoints}), 4,
                     "[[cluster]] name must be a string");
  CHECK_CONFIG_ERROR(
      doc({listener, listener_address, cluster, cluster_name, "endpoints = \"127.0.0.1:1\""}), 5,
      "[[cluster]] endpoints must be an array of strings");
  CHECK_CONFIG_ERROR(doc({listener, listener_address, cluster, cluster_name, "endpoints = [1]"}), 5,
                     "[[cluster]] endpoint must be a string");
  CHECK_CONFIG_ERROR(doc({listener, listener_address, "[[route]]", "none = true", "cluster = 1"}),
                     5, "[[route]] cluster must be a string");
  CHECK_CONFIG_ERROR(
      doc({listener, listener_address, "[[route]]", "service = 1", "cluster = \"c\""}), 4,
      "[[route]] service must be a string");
  CHECK_CONFIG_ERROR(
      doc({listener, listener_address, "[[route]]", "none = \"yes\"", "cluster = \"c\""}), 4,
      "[[route]] none must be true");
  CHECK_CONFIG_ERROR(doc({listener, listener_address, "[[route]]", "none = true", "cluster = \"c\"",
                          "timeout = 30"}),
                     6, "[[route]] timeout must be a duration string such as \"30s\"");
  CHECK_CONFIG_ERROR(
      doc({listener, listener_address, cluster, cluster_name, cluster_endpoints, "lb = 1"}), 6,
      "[[cluster]] lb must be a string");
}

TEST_CASE("missing required keys are reported at their section") {
  CHECK_CONFIG_ERROR(doc({"workers = 1", listener, "max_concurrent_streams = 5"}), 2,
                     "[[listener]] is missing 'address'");
  // ([admin] address is optional: it defaults to loopback.)
  CHECK_CONFIG_ERROR(doc({listener, listener_address, "[access_log]"}), 3,
                     "[access_log] is missing 'path' (a file, or \"-\" for stdout)");
  CHECK_CONFIG_ERROR(doc({listener, listener_address, "[[route]]", "prefix = \"/\""}), 3,
                     "[[route]] is missing 'cluster'");
  CHECK_CONFIG_ERROR(doc({listener, listener_address, cluster, cluster_endpoints}), 3,
                     "[[cluster]] is missing 'name'");
  CHECK_CONFIG_ERROR(doc({listener, listener_address, cluster, cluster_name}), 3,
                     "[[cluster]] is missing 'endpoints'");
  CHECK_CONFIG_ERROR(doc({listener, listener_address, cluster, cluster_name, "endpoints = []"}), 5,
                     "[[cluster]] 'c' has an empty endpoints list");
}

TEST_CASE("a config needs a listener") {
  CHECK(error_of("") == "t.toml: no [[listener]] defined");
  CHECK(error_of(doc({"workers = 2", cluster, cluster_name, cluster_endpoints})) ==
        "t.toml: no [[listener]] defined");
}

TEST_CASE("routes must name a defined cluster") {
  CHECK_CONFIG_ERROR(
      doc({listener, listener_address, "[[route]]", "none = true", "cluster = \"gretter\"", cluster,
           "name = \"greeter\"", cluster_endpoints}),
      5, "route names unknown cluster 'gretter' (did you mean 'greeter'?)");
  CHECK_CONFIG_ERROR(
      doc({listener, listener_address, "[[route]]", "none = true", "cluster = \"nowhere\""}), 5,
      "route names unknown cluster 'nowhere' (no [[cluster]] defined)");
  // A route may come before the cluster it names.
  auto config = parse_config(doc({listener, listener_address, "[[route]]", "none = true",
                                  "cluster = \"c\"", cluster, cluster_name, cluster_endpoints}),
                             "t.toml");
  CHECK(config->routes.at(0).cluster_index == 0);
}

TEST_CASE("cluster names are unique and plain") {
  CHECK_CONFIG_ERROR(doc({listener, listener_address, cluster, cluster_name, cluster_endpoints,
                          cluster, cluster_name, cluster_endpoints}),
                     7, "duplicate cluster name 'c' (first defined at line 3)");
  CHECK_CONFIG_ERROR(doc({listener, listener_address, cluster, "name = \"\"", cluster_endpoints}),
                     4, "[[cluster]] name must not be empty");
  CHECK_CONFIG_ERROR(
      doc({listener, listener_address, cluster, "name = \"a b\"", cluster_endpoints}), 4,
      "bad [[cluster]] name 'a b': use only letters, digits, '.', '_' and '-'");
}

TEST_CASE("a route has exactly one of path, service, prefix, none") {
  CHECK_CONFIG_ERROR(doc({listener, listener_address, "[[route]]", "path = \"/a.B/C\"",
                          "prefix = \"/a.\"", "cluster = \"c\""}),
                     3, "[[route]] has both 'path' and 'prefix'; use exactly one of");
  CHECK_CONFIG_ERROR(doc({listener, listener_address, "[[route]]", "service = \"a.B\"",
                          "none = true", "cluster = \"c\""}),
                     3, "[[route]] has both 'service' and 'none'");
  CHECK_CONFIG_ERROR(doc({listener, listener_address, "[[route]]", "cluster = \"c\""}), 3,
                     "[[route]] needs one of path, service, prefix, or none = true");
  CHECK_CONFIG_ERROR(
      doc({listener, listener_address, "[[route]]", "none = false", "cluster = \"c\""}), 4,
      "[[route]] none must be true (it marks a catch-all route)");
}

TEST_CASE("route path, service and prefix are checked") {
  auto route_with = [](std::string_view match) {
    return doc({listener, listener_address, "[[route]]", match, "cluster = \"c\"", cluster,
                cluster_name, cluster_endpoints});
  };
  for (std::string_view bad :
       {"pkg.Svc/Method", "/pkg.Svc", "/pkg.Svc/", "//Method", "/a/b/c", "/", ""}) {
    CAPTURE(bad);
    CHECK_CONFIG_ERROR(
        route_with("path = \"" + std::string(bad) + "\""), 4,
        "bad [[route]] path '" + std::string(bad) + "': must look like /package.Service/Method");
  }
  CHECK(error_of(route_with("path = \"/a.B/C\"")) == "(no error)");
  CHECK_CONFIG_ERROR(route_with("service = \"\""), 4, "[[route]] service must not be empty");
  CHECK_CONFIG_ERROR(route_with("service = \"/a.B\""), 4,
                     "bad [[route]] service '/a.B': must not contain '/'");
  CHECK(error_of(route_with("service = \"a.B\"")) == "(no error)");
  CHECK_CONFIG_ERROR(route_with("prefix = \"pkg.\""), 4,
                     "bad [[route]] prefix 'pkg.': must start with '/'");
  CHECK_CONFIG_ERROR(route_with("prefix = \"\""), 4,
                     "bad [[route]] prefix '': must start with '/'");
  CHECK(error_of(route_with("prefix = \"/\"")) == "(no error)");
}

TEST_CASE("route authority must be a host or host:port") {
  auto with_authority = [](std::string_view authority) {
    return doc({listener, listener_address, "[[route]]", "none = true", "cluster = \"c\"",
                authority, cluster, cluster_name, cluster_endpoints});
  };
  CHECK_CONFIG_ERROR(with_authority("authority = \"\""), 6, "bad [[route]] authority ''");
  CHECK_CONFIG_ERROR(with_authority("authority = \"a b\""), 6, "expected host or host:port");
  CHECK_CONFIG_ERROR(with_authority("authority = 1"), 6, "[[route]] authority must be a string");
  CHECK(error_of(with_authority("authority = \"api.example.com:443\"")) == "(no error)");
}

TEST_CASE("addresses are checked") {
  auto listen_on = [](std::string_view address) {
    return doc({listener, "address = \"" + std::string(address) + "\""});
  };
  CHECK_CONFIG_ERROR(listen_on("127.0.0.1"), 2,
                     "bad [[listener]] address '127.0.0.1': missing port (expected host:port)");
  CHECK(error_of(listen_on("127.0.0.1:0")) == "(no error)");
  CHECK_CONFIG_ERROR(listen_on("127.0.0.1:65536"), 2, "port must be between 0 and 65535");
  CHECK_CONFIG_ERROR(listen_on("127.0.0.1:http"), 2, "port 'http' is not a number");
  CHECK_CONFIG_ERROR(listen_on("example.com:80"), 2,
                     "bad [[listener]] address 'example.com:80': host must be an IP address or "
                     "localhost");
  CHECK_CONFIG_ERROR(listen_on("::1:50050"), 2, "IPv6 addresses must be in brackets");
  CHECK_CONFIG_ERROR(listen_on("[::1:50050"), 2, "missing ']'");
  CHECK_CONFIG_ERROR(listen_on("[::1]50050"), 2, "unexpected text after ']'");
  CHECK_CONFIG_ERROR(listen_on("[1.2.3.4]:1"), 2, "'1.2.3.4' is not an IPv6 address");
  CHECK_CONFIG_ERROR(listen_on(":50050"), 2, "missing host");
  CHECK_CONFIG_ERROR(listen_on("300.1.1.1:1"), 2, "'300.1.1.1' is not an IPv4 address");
  // TOML escapes must not smuggle a NUL past inet_pton ("[::\0]" would listen on "::").
  CHECK_CONFIG_ERROR(
      listen_on("[::\\u0000]:2"), 2,
      "bad [[listener]] address '[::\\x00]:2': address contains a control character");
  CHECK_CONFIG_ERROR(listen_on("127.0.0.1\\u0000junk:50050"), 2,
                     "address contains a control character");
  CHECK(error_of(listen_on("[::]:50050")) == "(no error)");
  CHECK(error_of(listen_on("LocalHost:50050")) == "(no error)");
  CHECK(error_of(listen_on("127.0.0.1:65535")) == "(no error)");

  CHECK_CONFIG_ERROR(doc({listener, listener_address, "[admin]", "address = \"admin.local:1\""}), 4,
                     "bad [admin] address 'admin.local:1': host must be an IP address or "
                     "localhost");
  CHECK_CONFIG_ERROR(doc({listener, listener_address, cluster, cluster_name,
                          "endpoints = [\"127.0.0.1:1\", \"bad_host!:1\"]"}),
                     5,
                     "bad [[cluster]] endpoint 'bad_host!:1': 'bad_host!' is not a valid host "
                     "name");
  CHECK_CONFIG_ERROR(
      doc({listener, listener_address, cluster, cluster_name, "endpoints = [\"backend\"]"}), 5,
      "bad [[cluster]] endpoint 'backend': missing port");
}

TEST_CASE("parse_host_port") {
  std::string error;
  auto v6 = grelay::parse_host_port("[0:0::1]:8080", HostRule::ip_or_localhost, &error);
  REQUIRE(v6.has_value());
  CHECK(v6->host == "::1");
  CHECK(v6->port == 8080);
  CHECK(v6->text == "[0:0::1]:8080");
  auto name = grelay::parse_host_port("svc-1.ns_x.example.:53", HostRule::ip_or_dns, &error);
  REQUIRE(name.has_value());
  CHECK(name->host == "svc-1.ns_x.example.");
  CHECK(address_error("localhost:1", HostRule::ip_or_dns) == "(no error)");
  CHECK(address_error("-bad.example:1", HostRule::ip_or_dns) ==
        "'-bad.example' is not a valid host name");
  CHECK(address_error("a..b:1", HostRule::ip_or_dns) == "'a..b' is not a valid host name");
  CHECK(address_error(std::string(64, 'a') + ".b:1", HostRule::ip_or_dns) ==
        "'" + std::string(64, 'a') + ".b' is not a valid host name");
  CHECK(address_error("", HostRule::ip_or_dns) == "empty address (expected host:port)");
  CHECK(address_error("h:99999999999", HostRule::ip_or_dns) == "port must be between 1 and 65535");
  CHECK(address_error("h:0", HostRule::ip_or_dns) == "port must be between 1 and 65535");
}

TEST_CASE("listener addresses are unique") {
  CHECK_CONFIG_ERROR(doc({listener, listener_address, listener, listener_address}), 4,
                     "duplicate listener address '127.0.0.1:50050' (first at line 1)");
  CHECK_CONFIG_ERROR(doc({listener, listener_address, listener, "address = \"localhost:50050\""}),
                     4, "duplicate listener address 'localhost:50050'");
  CHECK_CONFIG_ERROR(doc({listener, "address = \"[::1]:1\"", listener, "address = \"[0::1]:1\""}),
                     4, "duplicate listener address '[0::1]:1'");
  CHECK(error_of(doc({listener, listener_address, listener, "address = \"127.0.0.1:50051\""})) ==
        "(no error)");
}

TEST_CASE("durations") {
  auto ms = [](std::string_view text) {
    std::string error;
    auto d = grelay::parse_duration(text, &error);
    REQUIRE_MESSAGE(d.has_value(), error);
    return d->count();
  };
  CHECK(ms("250ms") == 250);
  CHECK(ms("30s") == 30000);
  CHECK(ms("5m") == 300000);
  CHECK(ms("1h") == 3600000);
  CHECK(ms("1.5s") == 1500);
  CHECK(ms("0.25m") == 15000);
  CHECK(ms("1.0ms") == 1);
  CHECK(ms("8760h") == 8760LL * 3600 * 1000);
  CHECK(duration_error("") == "empty duration");
  CHECK(duration_error("30") == "missing unit (use ms, s, m or h)");
  CHECK(duration_error("100us") == "unknown unit 'us' (use ms, s, m or h)");
  CHECK(duration_error("30 s") == "unknown unit ' s' (use ms, s, m or h)");
  CHECK(duration_error(".5s") == "must start with a number, e.g. \"30s\"");
  CHECK(duration_error("-1s") == "must start with a number, e.g. \"30s\"");
  CHECK(duration_error("1.s") == "expected digits after '.'");
  CHECK(duration_error("0s") == "must be greater than 0");
  CHECK(duration_error("0.0h") == "must be greater than 0");
  CHECK(duration_error("1.5ms") == "must be a whole number of milliseconds");
  CHECK(duration_error("0.0001s") == "must be a whole number of milliseconds");
  CHECK(duration_error("8761h") == "must be at most 8760h (365 days)");
  CHECK(duration_error("99999999999999999999999h") == "must be at most 8760h (365 days)");

  CHECK_CONFIG_ERROR(doc({listener, listener_address, "[[route]]", "none = true", "cluster = \"c\"",
                          "timeout = \"30\""}),
                     6, "bad [[route]] timeout '30': missing unit (use ms, s, m or h)");
  CHECK_CONFIG_ERROR(doc({listener, listener_address, cluster, cluster_name, cluster_endpoints,
                          "connect_timeout = \"0s\""}),
                     6, "bad [[cluster]] connect_timeout '0s': must be greater than 0");
}

TEST_CASE("numeric ranges and enumerations") {
  CHECK_CONFIG_ERROR(doc({"workers = 1025"}), 1, "workers must be between 0 and 1024, got 1025");
  CHECK_CONFIG_ERROR(doc({"workers = -1"}), 1, "workers must be between 0 and 1024, got -1");
  CHECK(parse_config(doc({"workers = 0", listener, listener_address}), "t.toml")->workers == 0);
  CHECK_CONFIG_ERROR(doc({"log_level = \"verbose\""}), 1,
                     "unknown log_level 'verbose' (supported: debug, info, warn, error)");
  for (auto [text, level] :
       {std::pair{"debug", grelay::LogLevel::debug}, std::pair{"info", grelay::LogLevel::info},
        std::pair{"warn", grelay::LogLevel::warn}, std::pair{"error", grelay::LogLevel::error}}) {
    auto config = parse_config(
        doc({"log_level = \"" + std::string(text) + "\"", listener, listener_address}), "t.toml");
    CHECK(config->log_level == level);
  }
  auto cluster_with = [](std::string_view line) {
    return doc({listener, listener_address, cluster, cluster_name, cluster_endpoints, line});
  };
  CHECK_CONFIG_ERROR(cluster_with("lb = \"fastest\""), 6,
                     "unknown lb policy 'fastest' (supported: round_robin, least_request, "
                     "random, ring_hash)");
  CHECK_CONFIG_ERROR(cluster_with("max_connections_per_endpoint = 0"), 6,
                     "[[cluster]] max_connections_per_endpoint must be between 1 and 1024, got 0");
  CHECK_CONFIG_ERROR(cluster_with("max_connections_per_endpoint = 1025"), 6, "got 1025");
  CHECK(error_of(cluster_with("max_connections_per_endpoint = 1024")) == "(no error)");
  auto listener_with = [](std::string_view line) {
    return doc({listener, listener_address, line});
  };
  CHECK_CONFIG_ERROR(listener_with("max_concurrent_streams = 0"), 3,
                     "[[listener]] max_concurrent_streams must be between 1 and 2147483647, got 0");
  CHECK_CONFIG_ERROR(listener_with("max_concurrent_streams = 2147483648"), 3, "got 2147483648");
  auto config = parse_config(listener_with("max_concurrent_streams = 2147483647"), "t.toml");
  CHECK(config->listeners[0].max_concurrent_streams == 2147483647u);
}

TEST_CASE("the first error in the file is reported") {
  CHECK_CONFIG_ERROR(doc({"workers = \"x\"", listener, listener_address, "[tls]"}), 1,
                     "workers must be an integer");
  CHECK_CONFIG_ERROR(doc({"[tls]", "workers = \"x\""}), 1, "unknown key 'tls' at top level");
  CHECK_CONFIG_ERROR(doc({"log_level = \"x\"", "listener = 1"}), 1, "unknown log_level");
  CHECK_CONFIG_ERROR(doc({"listener = 1", "log_level = \"x\""}), 1,
                     "listener must be an array of tables");
  // The route's bad timeout (line 5) comes before the cluster's bad lb (line 10), even though
  // clusters are what routes refer to.
  CHECK_CONFIG_ERROR(
      doc({listener, listener_address, "[[route]]", "none = true", "timeout = \"x\"",
           "cluster = \"c\"", cluster, cluster_name, cluster_endpoints, "lb = \"x\""}),
      5, "bad [[route]] timeout");
}

TEST_CASE("load_config reads files and reports unreadable ones") {
  auto path = std::filesystem::temp_directory_path() / "grelay_config_test.toml";
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    REQUIRE(f != nullptr);
    std::string text = doc({listener, "address = \"127.0.0.1:7\"", "[admin]", "address = 1"});
    std::fputs(text.c_str(), f);
    std::fclose(f);
  }
  try {
    (void)grelay::load_config(path.string());
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()) == path.string() + ":4: [admin] address must be a string");
  }
  std::filesystem::remove(path);

  try {
    (void)grelay::load_config("/nonexistent/grelay.toml");
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()) ==
          "/nonexistent/grelay.toml: cannot read: No such file or directory");
    CHECK(e.line() == 0);
  }
  try {
    (void)grelay::load_config(std::filesystem::temp_directory_path().string());
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    CHECK(contains(e.what(), ": cannot read: Is a directory"));
  }
}

TEST_CASE("the shipped configs load") {
  std::filesystem::path root = source_root();
  INFO("source root: ", root.string());

  auto config = grelay::load_config((root / "conf/grelay.toml").string());
  REQUIRE(config->listeners.size() == 1);
  CHECK(config->listeners[0].address.text == "127.0.0.1:50050");
  REQUIRE(config->admin.has_value());
  CHECK(config->admin->address.text == "127.0.0.1:9901");
  REQUIRE(config->routes.size() == 2);
  CHECK(config->routes[0].kind == grelay::RouteMatch::service);
  CHECK(config->routes[0].match == "helloworld.Greeter");
  CHECK(config->clusters.at(config->routes[0].cluster_index).name == "greeter");
  CHECK(config->routes[1].kind == grelay::RouteMatch::any);
  CHECK(config->clusters.at(config->routes[1].cluster_index).name == "echo");
  for (const auto& c : config->clusters) {
    REQUIRE(c.endpoints.size() == 1);
    CHECK(c.endpoints[0].text == "127.0.0.1:50051");
  }

  auto full = grelay::load_config((root / "conf/examples/full.toml").string());
  CHECK(full->admin.has_value());
  CHECK(full->access_log.has_value());
  CHECK_FALSE(full->listeners.empty());
  CHECK_FALSE(full->routes.empty());
  CHECK_FALSE(full->clusters.empty());

  // The container image's and the Kubernetes ConfigMap's.
  auto image = grelay::load_config((root / "deploy/container/grelay.toml").string());
  CHECK(image->listeners.at(0).address.text == "0.0.0.0:50050");
  CHECK(image->admin->address.text == "0.0.0.0:9901");
  auto k8s = grelay::load_config((root / "deploy/kubernetes/grelay.toml").string());
  CHECK(k8s->watch_config);
  CHECK(k8s->listeners.at(0).max_connection_age.has_value());
  CHECK(k8s->clusters.at(0).resolve_interval <= std::chrono::seconds(30));
}

TEST_CASE("watch_config is a boolean, off by default") {
  CHECK_FALSE(parse_config(doc({listener, listener_address}), "t.toml")->watch_config);
  CHECK(parse_config(doc({"watch_config = true", listener, listener_address}), "t.toml")
            ->watch_config);
  CHECK(error_of(doc({"watch_config = 1", listener, listener_address})) ==
        "t.toml:1: watch_config must be true or false");
}

TEST_CASE("[access_log] and route names") {
  auto base = [](std::initializer_list<std::string_view> extra) {
    std::string text = doc({listener, listener_address, cluster, cluster_name, cluster_endpoints});
    for (std::string_view line : extra) {
      text += line;
      text += '\n';
    }
    return text;
  };
  auto config =
      parse_config(base({"[access_log]", "path = \"-\"", "sample_rate = 0.5", "only_errors = true",
                         "[[route]]", "name = \"api/v1\"", "none = true", "cluster = \"c\""}),
                   "t.toml");
  REQUIRE(config->access_log);
  CHECK(config->access_log->path == "-");
  CHECK(config->access_log->sample_rate == 0.5);
  CHECK(config->access_log->only_errors);
  CHECK(config->access_log->line == 6);
  CHECK(config->routes[0].name == "api/v1");
  CHECK(contains(config->source, "sample_rate = 0.5"));

  auto defaults = parse_config(base({"[access_log]", "path = \"/var/log/grelay.log\""}), "t.toml");
  CHECK(defaults->access_log->sample_rate == 1.0);
  CHECK_FALSE(defaults->access_log->only_errors);
  CHECK(parse_config(base({}), "t.toml")->access_log == std::nullopt);

  CHECK(error_of(base({"[access_log]"})) ==
        location(6) + "[access_log] is missing 'path' (a file, or \"-\" for stdout)");
  CHECK(error_of(base({"[access_log]", "path = \"-\"", "sample_rate = 1.5"})) ==
        location(8) + "[access_log] sample_rate must be a number from 0 to 1");
  CHECK(error_of(base({"[access_log]", "path = \"-\"", "sample_rate = \"all\""})) ==
        location(8) + "[access_log] sample_rate must be a number from 0 to 1");
  CHECK(error_of(base({"[access_log]", "path = \"-\"", "only_errors = 1"})) ==
        location(8) + "[access_log] only_errors must be true or false");
  CHECK(error_of(base({"[access_log]", "path = \"-\"", "format = 1"})) ==
        location(8) + "unknown key 'format' in [access_log]");
  CHECK(error_of("access_log = \"x\"\n" + base({})) ==
        location(1) + "access_log must be a table ([access_log])");
  CHECK(error_of(base({"[[route]]", "name = \"a b\"", "none = true", "cluster = \"c\""})) ==
        location(7) + "bad [[route]] name 'a b': use only letters, digits, '.', '_', '-' and '/'");
  CHECK(error_of(base({"[[route]]", "name = \"r\"", "none = true", "cluster = \"c\"", "[[route]]",
                       "name = \"r\"", "none = true", "cluster = \"c\""})) ==
        location(11) + "duplicate route name 'r' (first defined at line 6)");
}

TEST_CASE("[admin] listens on loopback by default") {
  auto config = parse_config(doc({"[admin]", listener, listener_address}), "t.toml");
  REQUIRE(config->admin);
  CHECK(config->admin->address.host == "127.0.0.1");
  CHECK(config->admin->address.port == 9901);
  CHECK(config->admin->line == 1);
}

TEST_CASE("tls tables on listeners, clusters and client_san on routes") {
  auto dir =
      std::filesystem::temp_directory_path() / ("grelay-config-tls-" + std::to_string(::getpid()));
  grelay::test::TestPki pki(dir);
  auto relay = pki.issue("relay", "DNS:relay.test", 1);
  auto a = pki.issue("a", "DNS:a.test", 2);
  auto q = [](const std::string& s) { return "\"" + s + "\""; };

  auto config = parse_config(
      doc({listener, listener_address, "handshake_timeout = \"2s\"",
           "tls = { cert = " + q(relay.cert) + ", key = " + q(relay.key) +
               ", client_ca = " + q(pki.ca()) +
               ", verify = \"optional\", certs = [{ names = "
               "[\"A.test\", \"*.b.test\"], cert = " +
               q(a.cert) + ", key = " + q(a.key) + " }] }",
           "[[route]]", "none = true", "client_san = \"client.test\"", "cluster = \"c\"", cluster,
           cluster_name, cluster_endpoints,
           "tls = { ca = " + q(pki.ca()) + ", cert = " + q(a.cert) + ", key = " + q(a.key) +
               ", server_name = \"backend.test\", verify = false }"}),
      "t.toml");
  const grelay::ListenerConfig& l = config->listeners.at(0);
  CHECK(l.handshake_timeout == 2000ms);
  REQUIRE(l.tls.has_value());
  REQUIRE(l.tls->certificates.size() == 2);
  CHECK(l.tls->certificates[0].cert == relay.cert);
  CHECK(l.tls->certificates[0].names.empty());
  CHECK(l.tls->certificates[1].names == std::vector<std::string>{"a.test", "*.b.test"});
  CHECK(l.tls->client_ca == pki.ca());
  CHECK(l.tls->client_verify == grelay::ClientCertMode::optional);
  CHECK(config->routes.at(0).client_san == "client.test");
  const grelay::ClusterConfig& c = config->clusters.at(0);
  REQUIRE(c.tls.has_value());
  CHECK(c.tls->ca == pki.ca());
  CHECK(c.tls->cert == a.cert);
  CHECK(c.tls->key == a.key);
  CHECK(c.tls->server_name == "backend.test");
  CHECK_FALSE(c.tls->verify);

  // Defaults: no TLS, 10 s handshake timeout; client_ca alone means verify = "require".
  auto plain = parse_config(doc({listener, listener_address}), "t.toml");
  CHECK_FALSE(plain->listeners[0].tls.has_value());
  CHECK(plain->listeners[0].handshake_timeout == 10000ms);
  auto required = parse_config(doc({listener, listener_address,
                                    "tls = { cert = " + q(relay.cert) + ", key = " + q(relay.key) +
                                        ", client_ca = " + q(pki.ca()) + " }"}),
                               "t.toml");
  CHECK(required->listeners[0].tls->client_verify == grelay::ClientCertMode::require);

  // Relative names are relative to the config file's directory.
  auto relative = parse_config(
      doc({listener, listener_address, "tls = { cert = \"relay.pem\", key = \"relay.key\" }"}),
      (dir / "t.toml").string());
  CHECK(relative->listeners[0].tls->certificates[0].cert == relay.cert);

  std::string pair = "cert = " + q(relay.cert) + ", key = " + q(relay.key);
  struct Case {
    std::string line;
    std::string message;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"tls = { cert = " + q(relay.cert) + ", key = " + q(a.key) + " }",
            "private key '" + a.key + "' does not match certificate '" + relay.cert + "'"},
           {"tls = { cert = \"/nonexistent/x.pem\", key = " + q(relay.key) + " }",
            "cannot read certificate '/nonexistent/x.pem': No such file or directory"},
           {"tls = { cert = " + q(relay.key) + ", key = " + q(relay.key) + " }",
            "is not a usable PEM certificate chain"},
           {"tls = { " + pair + ", client_ca = " + q(relay.key) + " }", "holds no usable PEM"},
           {"tls = { " + pair + ", verify = \"require\" }", "verify needs client_ca"},
           {"tls = { " + pair + ", verify = \"sometimes\" }",
            "unknown [[listener]] tls verify 'sometimes' (supported: require, optional)"},
           {"tls = { cert = " + q(relay.cert) + " }", "[[listener]] tls is missing 'key'"},
           {"tls = { }", "[[listener]] tls needs cert and key"},
           {"tls = \"yes\"", "[[listener]] tls must be a table"},
           {"tls = { certs = [] }", "certs must be a non-empty array"},
           {"tls = { certs = [{ cert = " + q(relay.cert) + ", key = " + q(relay.key) + " }] }",
            "tls certs entry is missing 'names'"},
           {"tls = { certs = [{ names = [\"a.*.test\"], " + pair + " }] }",
            "bad [[listener]] tls certs name 'a.*.test'"},
           {"tls = { " + pair + ", server_name = \"x\" }",
            "unknown key 'server_name' in [[listener]] tls"},
       }) {
    INFO(c.line);
    std::string error = error_of(doc({listener, listener_address, c.line}));
    CHECK(error.rfind(location(3), 0) == 0);
    CHECK(contains(error, c.message));
  }
  for (const Case& c : std::initializer_list<Case>{
           {"tls = { verify = \"no\" }", "[[cluster]] tls verify must be true or false"},
           {"tls = { server_name = \"bad name\" }", "bad [[cluster]] tls server_name 'bad name'"},
           {"tls = { cert = " + q(a.cert) + " }", "[[cluster]] tls is missing 'key'"},
           {"tls = { ca = \"/nonexistent/ca.pem\" }", "cannot read CA file '/nonexistent/ca.pem'"},
           {"tls = { client_ca = \"x\" }", "unknown key 'client_ca' in [[cluster]] tls"},
       }) {
    INFO(c.line);
    std::string error = error_of(
        doc({listener, listener_address, cluster, cluster_name, cluster_endpoints, c.line}));
    CHECK(error.rfind(location(6), 0) == 0);
    CHECK(contains(error, c.message));
  }
  CHECK(error_of(doc({listener, listener_address, "[[route]]", "none = true", "client_san = \"\"",
                      "cluster = \"c\"", cluster, cluster_name, cluster_endpoints})) ==
        location(5) + "[[route]] client_san must not be empty");
  CHECK(error_of(doc({listener, listener_address, "handshake_timeout = 5"})) ==
        location(3) + "[[listener]] handshake_timeout must be a duration string such as \"30s\"");

  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

TEST_CASE("workers, accept, drain_timeout and listener limits") {
  auto config = parse_config(
      doc({"workers = 0", "accept = \"reuseport\"", "drain_timeout = \"5s\"", listener,
           listener_address, "max_connections = 100", "idle_timeout = \"1m\"",
           "max_connection_age = \"30m\"", "max_connection_age_grace = \"10s\"",
           "stream_idle_timeout = \"2m\"", "[[route]]", "none = true", "cluster = \"c\"",
           "stream_idle_timeout = \"off\"", cluster, cluster_name, cluster_endpoints}),
      "t.toml");
  CHECK(config->workers == 0);
  CHECK(config->accept == grelay::AcceptMode::reuseport);
  CHECK(config->drain_timeout == 5s);
  const grelay::ListenerConfig& l = config->listeners[0];
  CHECK(l.max_connections == 100);
  CHECK(l.idle_timeout == 1min);
  CHECK(l.max_connection_age == 30min);
  CHECK(l.max_connection_age_grace == 10s);
  CHECK(l.stream_idle_timeout == 2min);
  CHECK(config->routes[0].stream_idle_timeout == 0ms);

  auto defaults = parse_config(doc({listener, listener_address}), "t.toml");
  CHECK(defaults->accept == grelay::AcceptMode::handoff);
  CHECK(defaults->drain_timeout == 30s);
  CHECK(defaults->listeners[0].max_connections == 0);
  CHECK(defaults->listeners[0].idle_timeout == 5min);
  CHECK(defaults->listeners[0].preface_timeout == 10s);
  CHECK(defaults->listeners[0].request_headers_timeout == 10s);
  CHECK(defaults->listeners[0].max_request_metadata == 65536);
  CHECK(defaults->listeners[0].max_response_metadata == 65536);
  CHECK(!parse_config(doc({listener, listener_address, "idle_timeout = \"off\""}), "t.toml")
             ->listeners[0]
             .idle_timeout);
  CHECK(!defaults->listeners[0].max_connection_age);
  CHECK(!defaults->listeners[0].stream_idle_timeout);

  CHECK(error_of(doc({"accept = \"fork\"", listener, listener_address})) ==
        location(1) + "unknown accept mode 'fork' (supported: handoff, reuseport)");
  CHECK(error_of(doc({"drain_timeout = 30", listener, listener_address})) ==
        location(1) + "drain_timeout must be a duration string such as \"30s\"");
  CHECK(error_of(doc({listener, listener_address, "idle_timeout = \"0s\""}))
            .starts_with(location(3) + "bad [[listener]] idle_timeout '0s'"));
  CHECK(error_of(doc({listener, listener_address, "max_connections = -1"})) ==
        location(3) + "[[listener]] max_connections must be between 0 and 2147483647, got -1");
  CHECK(error_of(doc({listener, listener_address, "max_connection_age_grace = \"1s\""})) ==
        location(3) + "[[listener]] max_connection_age_grace needs max_connection_age");
  CHECK(error_of(doc({listener, listener_address, "[[route]]", "none = true", "cluster = \"c\"",
                      "stream_idle_timeout = \"never\"", cluster, cluster_name, cluster_endpoints}))
            .starts_with(location(6) + "bad [[route]] stream_idle_timeout 'never'"));
  CHECK(error_of(doc({listener, listener_address, "idle_timeot = \"1s\""})) ==
        location(3) + "unknown key 'idle_timeot' in [[listener]] (did you mean 'idle_timeout'?)");
}

TEST_CASE("same_settings ignores where a cluster is written") {
  auto a = parse_config(doc({listener, listener_address, cluster, cluster_name, cluster_endpoints}),
                        "t.toml");
  auto b = parse_config(
      doc({listener, listener_address, "", "", cluster, cluster_name, cluster_endpoints}),
      "t.toml");
  auto c = parse_config(doc({listener, listener_address, cluster, cluster_name, cluster_endpoints,
                             "connect_timeout = \"1s\""}),
                        "t.toml");
  CHECK(a->clusters[0].line != b->clusters[0].line);
  CHECK(grelay::same_settings(a->clusters[0], b->clusters[0]));
  CHECK(!grelay::same_settings(a->clusters[0], c->clusters[0]));
}

TEST_CASE("same_settings compares the settings inside a cluster's tables and lists") {
  auto with = [](std::string_view setting) {
    return parse_config(doc({listener, listener_address, cluster, cluster_name, setting}), "t.toml")
        ->clusters[0];
  };
  const std::string_view settings[] = {
      "endpoints = [\"127.0.0.1:50051\"]",
      "endpoints = [\"127.0.0.1:50051\", \"127.0.0.1:50052\"]",
      "endpoints = [\"localhost:50051\"]",
      "endpoints = [\"127.0.0.1:50051\"]\ndns_server = \"127.0.0.1:53\"",
      "endpoints = [\"127.0.0.1:50051\"]\nhealth_check = { interval = \"1s\" }",
      "endpoints = [\"127.0.0.1:50051\"]\nhealth_check = { service = \"s\" }",
      "endpoints = [\"127.0.0.1:50051\"]\noutlier = { consecutive_failures = 3 }",
      "endpoints = [\"127.0.0.1:50051\"]\nkeepalive = { without_calls = true }",
  };
  for (size_t i = 0; i < std::size(settings); ++i) {
    for (size_t j = 0; j < std::size(settings); ++j) {
      CAPTURE(settings[i]);
      CAPTURE(settings[j]);
      CHECK(grelay::same_settings(with(settings[i]), with(settings[j])) == (i == j));
    }
  }
}

TEST_CASE("reloaded listeners continue the ones at the same address, n-th as n-th") {
  auto listeners = [](std::initializer_list<std::string_view> addresses) {
    std::string text;
    for (std::string_view a : addresses) {
      text += "[[listener]]\naddress = \"";
      text += a;
      text += "\"\n";
    }
    return parse_config(text, "l.toml");
  };
  auto old = listeners({"127.0.0.1:1", "127.0.0.1:0", "127.0.0.1:2", "127.0.0.1:0"});
  auto next = listeners({"127.0.0.1:0", "127.0.0.1:3", "127.0.0.1:2", "127.0.0.1:0"});
  CHECK(grelay::match_listeners(*old, *next) == std::vector<ptrdiff_t>{-1, 0, 2, 3});
  CHECK(grelay::match_listeners(*next, *old) == std::vector<ptrdiff_t>{1, -1, 2, 3});
}

TEST_CASE("web listeners and cors, on listeners and routes") {
  auto config = parse_config(
      doc({listener, listener_address, "web = true", "max_web_unary_body = 65536",
           "cors = { allow_origins = [\"https://app.example.com\", \"https://*.example.org\"], "
           "allow_headers = [\"X-Custom\"], expose_headers = [\"x-echo\"], max_age = \"90s\", "
           "allow_credentials = true }",
           "[[route]]", "none = true", "cluster = \"c\"", "cors = { allow_origins = [\"*\"] }",
           cluster, cluster_name, cluster_endpoints}),
      "t.toml");
  const grelay::ListenerConfig& l = config->listeners[0];
  CHECK(l.web);
  CHECK(l.max_web_unary_body == 65536);
  REQUIRE(l.cors);
  CHECK(l.cors->allow_origins ==
        std::vector<std::string>{"https://app.example.com", "https://*.example.org"});
  CHECK(l.cors->allow_headers == std::vector<std::string>{"x-custom"});
  CHECK(l.cors->expose_headers == std::vector<std::string>{"x-echo"});
  CHECK(l.cors->max_age == 90s);
  CHECK(l.cors->allow_credentials);
  CHECK(l.cors->line == 5);
  REQUIRE(config->routes[0].cors);
  CHECK(config->routes[0].cors->allow_origins == std::vector<std::string>{"*"});
  CHECK(config->routes[0].cors->max_age == 10min);

  auto defaults = parse_config(doc({listener, listener_address}), "t.toml");
  CHECK(!defaults->listeners[0].web);
  CHECK(!defaults->listeners[0].cors);
  CHECK(defaults->listeners[0].max_web_unary_body == 4 * 1024 * 1024);
}

TEST_CASE("web and cors mistakes name their line") {
  CHECK(error_of(doc({listener, listener_address, "web = 1"})) ==
        "t.toml:3: [[listener]] web must be true or false");
  CHECK(error_of(doc({listener, listener_address, "cors = { allow_origins = [\"*\"] }"})) ==
        "t.toml:3: [[listener]] cors needs web = true (CORS applies to web calls only)");
  CHECK(error_of(doc({listener, listener_address, "web = true", "cors = { max_age = \"1m\" }"})) ==
        "t.toml:4: [[listener]] cors is missing 'allow_origins'");
  CHECK(error_of(doc({listener, listener_address, "web = true",
                      "cors = { allow_origins = [\"example.com\"] }"})) ==
        "t.toml:4: bad cors origin 'example.com': use \"*\", \"https://host[:port]\" or "
        "\"https://*.domain\"");
  CHECK(error_of(doc({listener, listener_address, "web = true",
                      "cors = { allow_origins = [\"*\"], allow_credentials = true }"})) ==
        "t.toml:4: [[listener]] cors allow_credentials cannot be used with allow_origins \"*\"");
  CHECK(error_of(doc({listener, listener_address, "web = true",
                      "cors = { allow_origins = [\"*\"], expose_headers = [\"a b\"] }"})) ==
        "t.toml:4: [[listener]] cors expose_headers: bad header name 'a b'");
  CHECK(error_of(doc({listener, listener_address, "web = true",
                      "cors = { allow_origins = [\"*\"], max_ages = \"1m\" }"}))
            .find("t.toml:4: unknown key 'max_ages' in [[listener]] cors") == 0);
  CHECK(error_of(doc({listener, listener_address, "max_web_unary_body = 10"})) ==
        "t.toml:3: [[listener]] max_web_unary_body must be between 1024 and 1073741824, got 10");
}
