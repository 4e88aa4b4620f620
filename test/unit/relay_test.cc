#include "grelay/relay.h"

#include <doctest/doctest.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "grelay/log.h"
#include "test_client.h"

#include "relay_support.h"

namespace {

// Routes a.S to a cluster whose endpoint refuses connections; every other path has no route.
constexpr const char* dead_end = R"(
[[listener]]
address = "127.0.0.1:0"
[[route]]
service = "a.S"
cluster = "dead"
[[cluster]]
name = "dead"
endpoints = ["127.0.0.1:1"]
)";

std::vector<int> calls_through(uv_loop_t& loop, grelay::Relay& relay,
                               const std::vector<std::string>& paths) {
  return unary_calls(relay, paths, [&loop] { uv_run(&loop, UV_RUN_NOWAIT); });
}

// Runs |loop| until |relay| counts no open client connection (the client's hang-up seen).
void until_closed(uv_loop_t& loop, const grelay::Relay& relay) {
  for (int i = 0; i < 5000 && relay.load().open_connections > 0; ++i) {
    uv_run(&loop, UV_RUN_NOWAIT);
    ::usleep(1000);
  }
}

std::string listeners(int count) {
  std::string text;
  for (int i = 0; i < count; ++i)
    text += "[[listener]]\naddress = \"127.0.0.1:0\"\n\n";
  return text;
}

}  // namespace

TEST_CASE("Relay::reload opens the listeners a config adds, port 0 ones included") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    grelay::Relay relay(&loop, grelay::parse_config(listeners(1), "one.toml"));
    relay.listen();
    const std::vector<std::string> before = relay.addresses();
    REQUIRE(before.size() == 1);
    // The first port-0 listener continues the one open; the second is new and gets a port.
    relay.reload(grelay::parse_config(listeners(2), "two.toml"));
    const std::vector<std::string> after = relay.addresses();
    REQUIRE(after.size() == 2);
    CHECK(after[0] == before[0]);
    CHECK(after[1] != before[0]);
    // Back to one: the listener kept is the first.
    relay.reload(grelay::parse_config(listeners(1), "one-again.toml"));
    CHECK(relay.addresses() == before);
    shut_down(loop, relay);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("Relay::reload_certificates from another thread while the loop reloads") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    grelay::Relay relay(&loop, grelay::parse_config(listeners(1), "one.toml"));
    std::atomic<bool> stop{false};
    std::atomic<int> reloads{0};
    std::atomic<int> failures{0};
    std::thread other([&] {
      while (!stop.load()) {
        if (!relay.reload_certificates()) failures.fetch_add(1);
        reloads.fetch_add(1);
      }
    });
    // Each reload frees the snapshot the previous one made once the loop turns.
    for (int i = 0; i < 300 || reloads.load() < 100; ++i) {
      relay.reload(grelay::parse_config(listeners(1), "again.toml"));
      uv_run(&loop, UV_RUN_NOWAIT);
    }
    stop = true;
    other.join();
    CHECK(failures.load() == 0);
    shut_down(loop, relay);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("Relay::metrics counts calls by status, connections and the relay's own errors") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    grelay::Relay relay(&loop, grelay::parse_config(dead_end, "dead.toml"));
    const std::vector<int> statuses =
        calls_through(loop, relay, {"/b.S/Get", "/b.S/Put", "/a.S/Get"});
    CHECK(statuses == std::vector<int>{12, 12, 14});
    until_closed(loop, relay);

    const grelay::RelayMetrics m = relay.metrics();
    CHECK(m.calls_started == 3);
    CHECK(m.ended(grelay::StatusCode::unimplemented) == 2);
    CHECK(m.ended(grelay::StatusCode::unavailable) == 1);
    CHECK(m.ended(grelay::StatusCode::ok) == 0);
    CHECK(m.calls_ended_total() == 3);
    CHECK(m.active_calls == 0);
    CHECK(m.client_connections == 1);
    CHECK(m.active_client_connections == 0);
    CHECK(m.active_backend_connections == 0);
    REQUIRE(m.listeners.size() == 1);
    CHECK(m.listeners[0].address == "127.0.0.1:0");
    CHECK(m.listeners[0].connections_accepted == 1);
    REQUIRE(m.clusters.size() == 1);
    CHECK(m.clusters[0].name == "dead");
    CHECK(m.clusters[0].active_calls == 0);
    REQUIRE(m.relay_errors.size() > 1);
    CHECK(m.relay_errors[0].reason == "no_route");
    CHECK(m.relay_errors[0].count == 2);
    uint64_t relay_made = 0;
    for (const grelay::ReasonCount& r : m.relay_errors)
      relay_made += r.count;
    CHECK(relay_made == 3);
    CHECK(m.reloads == 0);
    CHECK(m.drains == 0);
    CHECK(relay.load().accepted == 1);

    const std::string text = relay.prometheus_text();
    CHECK(text.find("grelay_calls_total{route=\"\",cluster=\"\",grpc_service=\"\","
                    "grpc_method=\"\",grpc_code=\"UNIMPLEMENTED\"} 2\n") != std::string::npos);
    CHECK(text.find("grelay_relay_errors_total{reason=\"no_route\"} 2\n") != std::string::npos);
    CHECK(text.find("grelay_listener_connections_total{listener=\"127.0.0.1:0\"} 1\n") !=
          std::string::npos);

    // A reload counts afresh without losing what was counted.
    relay.reload(grelay::parse_config(dead_end, "again.toml"));
    CHECK(calls_through(loop, relay, {"/b.S/Get"}) == std::vector<int>{12});
    until_closed(loop, relay);
    const grelay::RelayMetrics after = relay.metrics();
    CHECK(after.calls_started == 4);
    CHECK(after.ended(grelay::StatusCode::unimplemented) == 3);
    CHECK(after.client_connections == 2);
    REQUIRE(after.listeners.size() == 1);
    CHECK(after.listeners[0].connections_accepted == 2);
    CHECK(after.reloads == 1);
    shut_down(loop, relay);
    CHECK(relay.metrics().calls_started == 4);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("a Relay applies its config's log_level unless the host set one") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  grelay::use_config_log_level();
  {
    grelay::Relay relay(&loop, grelay::parse_config(
                                   std::string("log_level = \"warn\"\n") + listeners(1), "w.toml"));
    CHECK(grelay::log_level() == grelay::LogLevel::warn);
    relay.reload(
        grelay::parse_config(std::string("log_level = \"error\"\n") + listeners(1), "e.toml"));
    CHECK(grelay::log_level() == grelay::LogLevel::error);
    // The host's own choice holds over the config's.
    grelay::set_log_level(grelay::LogLevel::info);
    relay.reload(
        grelay::parse_config(std::string("log_level = \"debug\"\n") + listeners(1), "d.toml"));
    CHECK(grelay::log_level() == grelay::LogLevel::info);
    shut_down(loop, relay);
  }
  grelay::set_log_level(grelay::LogLevel::info);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}
