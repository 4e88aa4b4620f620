#include "grelay/validate.h"

#include <doctest/doctest.h>
#include <uv.h>

#include <functional>
#include <string>

#include "config/cluster_compare.h"
#include "grelay/relay.h"

using grelay::Config;
using grelay::ConfigError;

namespace {

// A config built in code: one listener, a route to one cluster.
Config base() {
  Config config;
  grelay::ListenerConfig listener;
  listener.address.host = "localhost";
  listener.address.port = 0;
  config.listeners.push_back(listener);
  grelay::RouteConfig route;
  route.kind = grelay::RouteMatch::service;
  route.match = "helloworld.Greeter";
  route.cluster = "greeter";
  config.routes.push_back(route);
  grelay::ClusterConfig cluster;
  cluster.name = "greeter";
  cluster.endpoints.push_back({"backend.internal", 50051, ""});
  config.clusters.push_back(cluster);
  return config;
}

// The TOML of base(), with |route| and |cluster| lines added to its sections.
std::string base_toml(const std::string& top = "", const std::string& listener = "",
                      const std::string& route = "", const std::string& cluster = "") {
  return top + "[[listener]]\naddress = \"localhost:0\"\n" + listener +
         "[[route]]\nservice = \"helloworld.Greeter\"\ncluster = \"greeter\"\n" + route +
         "[[cluster]]\nname = \"greeter\"\nendpoints = [\"backend.internal:50051\"]\n" + cluster;
}

// The message of the ConfigError validate_config() throws for |config|, or "(no error)".
std::string code_error(Config config, std::string* what = nullptr) {
  try {
    (void)grelay::validate_config(std::move(config));
  } catch (const ConfigError& e) {
    if (what) *what = e.what();
    return e.message();
  }
  return "(no error)";
}

// |text| with its first |from| replaced by |to|.
std::string replaced(std::string text, const std::string& from, const std::string& to) {
  return text.replace(text.find(from), from.size(), to);
}

std::string toml_error(const std::string& text) {
  try {
    (void)grelay::parse_config(text, "t.toml");
  } catch (const ConfigError& e) {
    return e.message();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("validate_config completes a config built in code as the loader would") {
  Config config = base();
  config.clusters[0].lb = grelay::LbPolicy::ring_hash;
  config.clusters[0].hash_header = "X-User";
  grelay::ClusterConfig other;
  other.name = "other";
  other.endpoints.push_back({"", 0, "[::1]:7000"});
  config.clusters.insert(config.clusters.begin(), other);
  auto valid = grelay::validate_config(config);
  REQUIRE(valid);
  CHECK(valid->routes[0].cluster_index == 1);
  CHECK(valid->listeners[0].address.host == "127.0.0.1");
  CHECK(valid->listeners[0].address.text == "localhost:0");
  CHECK(valid->clusters[1].endpoints[0].text == "backend.internal:50051");
  CHECK(valid->clusters[1].weights == std::vector<uint32_t>{1});
  CHECK(valid->clusters[1].hash_header == "x-user");
  // An address given only as text is read from it.
  CHECK(valid->clusters[0].endpoints[0].host == "::1");
  CHECK(valid->clusters[0].endpoints[0].port == 7000);
  // What the loader makes of the same text passes again, unchanged.
  auto loaded = grelay::parse_config(base_toml(), "t.toml");
  auto again = grelay::validate_config(*loaded);
  CHECK(again->listeners[0].address.same_address(loaded->listeners[0].address));
  CHECK(again->listeners[0].address.text == loaded->listeners[0].address.text);
  CHECK(grelay::same_settings(again->clusters[0], loaded->clusters[0]));
}

TEST_CASE("validate_config says what load_config says about the same mistake") {
  struct Case {
    const char* what;
    std::string toml;
    std::function<void(Config&)> change;
    const char* place;
  };
  const Case cases[] = {
      {"unknown cluster", replaced(base_toml(), "cluster = \"greeter\"", "cluster = \"greter\""),
       [](Config& c) { c.routes[0].cluster = "greter"; }, "routes[0]"},
      {"bad cluster name",
       base_toml("", "", "", "[[cluster]]\nname = \"a b\"\nendpoints = [\"x:1\"]\n"),
       [](Config& c) {
         c.clusters.push_back(c.clusters[0]);
         c.clusters[1].name = "a b";
       },
       "clusters[1]"},
      {"bad path", base_toml("", "", "[[route]]\npath = \"/nope\"\ncluster = \"greeter\"\n"),
       [](Config& c) {
         c.routes.push_back(c.routes[0]);
         c.routes[1].kind = grelay::RouteMatch::path;
         c.routes[1].match = "/nope";
       },
       "routes[1]"},
      {"bad authority", base_toml("", "", "authority = \"a b\"\n"),
       [](Config& c) { c.routes[0].authority = "a b"; }, "routes[0]"},
      {"streams", base_toml("", "max_concurrent_streams = 0\n"),
       [](Config& c) { c.listeners[0].max_concurrent_streams = 0; }, "listeners[0]"},
      {"grace", base_toml("", "max_connection_age_grace = \"1s\"\n"),
       [](Config& c) { c.listeners[0].max_connection_age_grace = std::chrono::seconds(1); },
       "listeners[0]"},
      {"listener host", replaced(base_toml(), "localhost:0", "example.com:1"),
       [](Config& c) {
         c.listeners[0].address = {"example.com", 1, "example.com:1"};
       },
       "listeners[0]"},
      {"ring hash", base_toml("", "", "", "lb = \"ring_hash\"\n"),
       [](Config& c) { c.clusters[0].lb = grelay::LbPolicy::ring_hash; }, "clusters[0]"},
      {"backoff", base_toml("", "", "retry = { backoff = \"2s\", max_backoff = \"1s\" }\n"),
       [](Config& c) {
         grelay::RetryConfig retry;
         retry.backoff = std::chrono::seconds(2);
         retry.max_backoff = std::chrono::seconds(1);
         c.routes[0].retry = retry;
       },
       "routes[0]"},
      {"client share", base_toml("", "", "", "max_client_share = 2\n"),
       [](Config& c) { c.clusters[0].max_client_share = 2; }, "clusters[0]"},
      {"endpoint", replaced(base_toml(), "backend.internal:50051", "backend.internal:0"),
       [](Config& c) { c.clusters[0].endpoints[0].port = 0; }, "clusters[0]"},
      {"workers", base_toml("workers = 5000\n"), [](Config& c) { c.workers = 5000; }, ""},
      {"tls without certificates", base_toml("", "tls = {}\n"),
       [](Config& c) { c.listeners[0].tls.emplace(); }, "listeners[0] tls"},
      {"certificate files",
       base_toml("", "tls = { cert = \"/nonexistent.pem\", key = \"/nonexistent.key\" }\n"),
       [](Config& c) {
         c.listeners[0].tls.emplace();
         c.listeners[0].tls->certificates.push_back({{}, "/nonexistent.pem", "/nonexistent.key"});
       },
       "listeners[0] tls certificates[0]"},
  };
  for (const Case& test : cases) {
    CAPTURE(test.what);
    Config config = base();
    test.change(config);
    std::string what;
    const std::string from_code = code_error(config, &what);
    const std::string from_file = toml_error(test.toml);
    CHECK(from_file != "(no error)");
    // The same message, the element named by its place in the Config (which has no file).
    const std::string place = test.place;
    CHECK(from_code == (place.empty() ? from_file : place + ": " + from_file));
    CHECK(what == from_code);
  }
}

TEST_CASE("validate_config names the first of two duplicates by its place, or its line") {
  Config config = base();
  config.clusters.push_back(config.clusters[0]);
  CHECK(code_error(config) ==
        "clusters[1]: duplicate cluster name 'greeter' (first defined at clusters[0])");
  CHECK(toml_error(
            base_toml("", "", "", "[[cluster]]\nname = \"greeter\"\nendpoints = [\"x:1\"]\n")) ==
        "duplicate cluster name 'greeter' (first defined at line 6)");

  config = base();
  config.routes[0].name = "hello";
  config.routes.push_back(config.routes[0]);
  CHECK(code_error(config) ==
        "routes[1]: duplicate route name 'hello' (first defined at routes[0])");

  config = base();
  config.listeners[0].address.port = 50050;
  config.listeners.push_back(config.listeners[0]);
  CHECK(code_error(config) ==
        "listeners[1]: duplicate listener address 'localhost:50050' (first at listeners[0])");

  CHECK(code_error(Config{}) == "no [[listener]] defined");
}

TEST_CASE("validate_config gives the file and section line of an element loaded from a file") {
  auto loaded = grelay::parse_config(base_toml(), "relay.toml");
  Config changed = *loaded;
  changed.routes[0].cluster = "greter";
  std::string what;
  CHECK(code_error(changed, &what) ==
        "route names unknown cluster 'greter' (did you mean 'greeter'?)");
  CHECK(what == "relay.toml:3: route names unknown cluster 'greter' (did you mean 'greeter'?)");
}

TEST_CASE("a Relay serves a config built in code and validated") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    grelay::Relay relay(&loop, grelay::validate_config(base()));
    relay.listen();
    REQUIRE(relay.addresses().size() == 1);
    CHECK(relay.addresses()[0].rfind("127.0.0.1:", 0) == 0);
    bool done = false;
    relay.shutdown(false, [&done] { done = true; });
    while (!done)
      uv_run(&loop, UV_RUN_ONCE);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}
