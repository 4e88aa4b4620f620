#include "config/upstream_keys.h"

#include <doctest/doctest.h>

#include <string>
#include <string_view>

using namespace std::chrono_literals;
using grelay::ConfigError;
using grelay::parse_config;

namespace {

constexpr std::string_view head =
    "[[listener]]\n"
    "address = \"127.0.0.1:50050\"\n"
    "[[route]]\n"
    "prefix = \"/\"\n"
    "cluster = \"c\"\n";  // lines 1-5

// A config whose route (at line 3) gets |route_extra| and whose cluster (from line 6) gets
// |cluster_lines| after its endpoints (line 8 on).
std::string config_with(std::string_view cluster_lines, std::string_view route_extra = "") {
  std::string text(head);
  text += route_extra;
  if (!route_extra.empty()) text += "\n";
  text += "[[cluster]]\nname = \"c\"\nendpoints = [\"127.0.0.1:50051\"]\n";
  text += cluster_lines;
  text += "\n";
  return text;
}

std::string error_of(const std::string& text) {
  try {
    (void)parse_config(text, "t.toml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

}  // namespace

TEST_CASE("cluster upstream keys parse with their defaults") {
  auto config = parse_config(config_with(""), "t.toml");
  const auto& c = config->clusters.at(0);
  CHECK(c.lb == grelay::LbPolicy::round_robin);
  CHECK(c.weights == std::vector<uint32_t>{1});
  CHECK(!c.dns_server);
  CHECK(c.resolve_interval == 30s);
  CHECK(!c.health_check);
  CHECK(!c.outlier);
  CHECK(!c.keepalive);
  CHECK(c.max_pending == 0);
  CHECK(c.max_active == 0);
  CHECK(c.max_connection_age == 0ms);
  CHECK(c.max_streams_per_connection == 0);
  CHECK(!config->routes.at(0).retry);
}

TEST_CASE("every cluster upstream key") {
  auto config = parse_config(
      "[[listener]]\n"
      "address = \"127.0.0.1:50050\"\n"
      "[[route]]\n"
      "prefix = \"/\"\n"
      "cluster = \"c\"\n"
      "retry = { attempts = 4, on = [\"UNAVAILABLE\", \"RESOURCE_EXHAUSTED\"], backoff = "
      "\"20ms\", max_backoff = \"1s\", buffer = \"128KiB\", budget_tokens = 20, "
      "budget_ratio = 0.5 }\n"
      "[[cluster]]\n"
      "name = \"c\"\n"
      "endpoints = [\"a.example:1\", { address = \"10.0.0.1:2\", weight = 3 }]\n"
      "lb = \"ring_hash\"\n"
      "hash_header = \"X-User\"\n"
      "dns_server = \"127.0.0.1:5353\"\n"
      "resolve_interval = \"5s\"\n"
      "health_check = { interval = \"2s\", timeout = \"500ms\", healthy_threshold = 2, "
      "unhealthy_threshold = 3, service = \"svc\" }\n"
      "outlier = { consecutive_failures = 7, base_ejection = \"2s\", max_ejection = \"1m\", "
      "max_ejection_percent = 30 }\n"
      "keepalive = { interval = \"10s\", timeout = \"3s\", without_calls = true }\n"
      "max_pending = 100\n"
      "max_active = 1000\n"
      "max_connection_age = \"10m\"\n"
      "max_streams_per_connection = 5000\n",
      "t.toml");
  const auto& c = config->clusters.at(0);
  REQUIRE(c.endpoints.size() == 2);
  CHECK(c.endpoints[1].host == "10.0.0.1");
  CHECK(c.weights == std::vector<uint32_t>{1, 3});
  CHECK(c.lb == grelay::LbPolicy::ring_hash);
  CHECK(c.hash_header == "x-user");
  REQUIRE(c.dns_server);
  CHECK(c.dns_server->port == 5353);
  CHECK(c.resolve_interval == 5s);
  REQUIRE(c.health_check);
  CHECK(c.health_check->interval == 2s);
  CHECK(c.health_check->timeout == 500ms);
  CHECK(c.health_check->healthy_threshold == 2);
  CHECK(c.health_check->unhealthy_threshold == 3);
  CHECK(c.health_check->service == "svc");
  REQUIRE(c.outlier);
  CHECK(c.outlier->consecutive_failures == 7);
  CHECK(c.outlier->base_ejection == 2s);
  CHECK(c.outlier->max_ejection == 60s);
  CHECK(c.outlier->max_ejection_percent == 30);
  REQUIRE(c.keepalive);
  CHECK(c.keepalive->interval == 10s);
  CHECK(c.keepalive->timeout == 3s);
  CHECK(c.keepalive->without_calls);
  CHECK(c.max_pending == 100);
  CHECK(c.max_active == 1000);
  CHECK(c.max_connection_age == 600s);
  CHECK(c.max_streams_per_connection == 5000);
  const auto& retry = config->routes.at(0).retry;
  REQUIRE(retry);
  CHECK(retry->attempts == 4);
  CHECK(retry->on == std::vector<grelay::StatusCode>{grelay::StatusCode::unavailable,
                                                     grelay::StatusCode::resource_exhausted});
  CHECK(retry->backoff == 20ms);
  CHECK(retry->max_backoff == 1s);
  CHECK(retry->buffer == 128 * 1024);
  CHECK(retry->budget_tokens == 20);
  CHECK(retry->budget_ratio == doctest::Approx(0.5));
}

TEST_CASE("cluster upstream key errors name the file and line") {
  struct Case {
    std::string text;
    int line;
    std::string_view message;
  };
  const Case cases[] = {
      {config_with("lb = \"ring_hash\""), 6, "needs hash_header"},
      {config_with("hash_header = \":path\""), 9, "bad [[cluster]] hash_header"},
      {config_with("dns_server = \"ns.example:53\""), 9, "bad [[cluster]] dns_server"},
      {config_with("dns_server = \"127.0.0.1:0\""), 9, "port 0"},
      {config_with("resolve_interval = \"soon\""), 9, "bad [[cluster]] resolve_interval"},
      {config_with("health_check = { interval = 5 }"), 9, "must be a duration string"},
      {config_with("health_check = { every = \"1s\" }"), 9,
       "unknown key 'every' in [[cluster]] health_check"},
      {config_with("health_check = { intervall = \"1s\" }"), 9,
       "unknown key 'intervall' in [[cluster]] health_check (did you mean 'interval'?)"},
      {config_with("health_check = \"yes\""), 9, "must be an inline table"},
      {config_with("outlier = { consecutive_failures = 0 }"), 9, "between 1 and"},
      {config_with("outlier = { base_ejection = \"10s\", max_ejection = \"1s\" }"), 9,
       "max_ejection must not be shorter than base_ejection"},
      {config_with("outlier = { max_ejection_percent = 101 }"), 9, "between 0 and 100"},
      {config_with("keepalive = { without_calls = 1 }"), 9, "must be true or false"},
      {config_with("max_active = -1"), 9, "[[cluster]] max_active must be between 0"},
      {config_with("max_connection_age = 10"), 9, "must be a duration string"},
      {config_with("max_streams = 10"), 9, "unknown key 'max_streams' in [[cluster]]"},
      {config_with("", "retry = { attempts = 1 }"), 6, "attempts must be between 2 and 10"},
      {config_with("", "retry = { on = [\"NOPE\"] }"), 6, "unknown status 'NOPE'"},
      {config_with("", "retry = { on = [] }"), 6, "non-empty array"},
      {config_with("", "retry = { backoff = \"1s\", max_backoff = \"10ms\" }"), 6,
       "max_backoff must not be shorter than backoff"},
      {config_with("", "retry = { buffer = \"64KB\" }"), 6, "bad [[route]] retry buffer"},
      {config_with("", "retry = { buffer = \"32MiB\" }"), 6, "must be at most"},
      {config_with("", "retry = { budget_ratio = 2.0 }"), 6, "budget_ratio must be a number"},
      {config_with("", "retry = { tries = 3 }"), 6, "unknown key 'tries' in [[route]] retry"},
      {config_with("", "retry = 3"), 6, "must be an inline table"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    std::string what = error_of(c.text);
    CHECK(what.rfind("t.toml:" + std::to_string(c.line) + ": ", 0) == 0);
    CHECK(contains(what, c.message));
  }
}

TEST_CASE("endpoint entries: strings or tables with a weight") {
  std::string text(head);
  text += "[[cluster]]\nname = \"c\"\nendpoints = [{ address = \"127.0.0.1:1\", weight = 0 }]\n";
  CHECK(contains(error_of(text), "t.toml:8: [[cluster]] endpoint weight must be between 1"));
  text = std::string(head) + "[[cluster]]\nname = \"c\"\nendpoints = [{ weight = 2 }]\n";
  CHECK(contains(error_of(text), "t.toml:8: [[cluster]] endpoint table needs 'address'"));
  text = std::string(head) + "[[cluster]]\nname = \"c\"\nendpoints = [{ address = \"x\" }]\n";
  CHECK(contains(error_of(text), "t.toml:8: bad [[cluster]] endpoint 'x'"));
  text = std::string(head) +
         "[[cluster]]\nname = \"c\"\nendpoints = [{ address = \"127.0.0.1:1\", port = 2 }]\n";
  CHECK(contains(error_of(text), "t.toml:8: unknown key 'port' in [[cluster]] endpoint"));
}
