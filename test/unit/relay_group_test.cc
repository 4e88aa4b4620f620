#include "grelay/relay_group.h"

#include <doctest/doctest.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "grelay/relay.h"
#include "test_certs.h"
#include "test_client.h"

#include "relay_support.h"

namespace {

using grelay::Relay;
using grelay::RelayGroup;

std::shared_ptr<const grelay::Config> config(const std::string& listener_keys = "") {
  return grelay::parse_config("[[listener]]\naddress = \"127.0.0.1:0\"\n" + listener_keys,
                              "group.toml");
}

// Two loops on the test thread, each with a Relay of one group (or of its own).
struct TwoLoops {
  uv_loop_t a;
  uv_loop_t b;
  TwoLoops() {
    REQUIRE(uv_loop_init(&a) == 0);
    REQUIRE(uv_loop_init(&b) == 0);
  }
  ~TwoLoops() {
    uv_run(&a, UV_RUN_DEFAULT);
    uv_run(&b, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&a) == 0);
    CHECK(uv_loop_close(&b) == 0);
  }
  void turn() {
    uv_run(&a, UV_RUN_NOWAIT);
    uv_run(&b, UV_RUN_NOWAIT);
  }
};

// Makes unary calls to |paths| over a fresh connection served by |relay|, running both loops
// meanwhile; returns once the calls ended and the relay saw the client hang up.
std::vector<int> calls_through(TwoLoops& loops, Relay& relay,
                               const std::vector<std::string>& paths) {
  std::vector<int> statuses = unary_calls(relay, paths, [&loops] { loops.turn(); });
  for (int i = 0; i < 5000 && relay.load().open_connections > 0; ++i) {
    loops.turn();
    ::usleep(1000);
  }
  return statuses;
}

void shut_down(TwoLoops& loops, Relay& a, Relay& b) {
  int left = 2;
  a.shutdown(false, [&left] { --left; });
  b.shutdown(false, [&left] { --left; });
  while (left > 0)
    loops.turn();
}

}  // namespace

TEST_CASE("the Relays of a group share each listener's max_connections") {
  TwoLoops loops;
  auto group = std::make_shared<RelayGroup>(config("max_connections = 1\n"));
  Relay a(&loops.a, group);
  Relay b(&loops.b, group);
  grelay::test::SocketPair first = grelay::test::tcp_pair();
  grelay::test::SocketPair second = grelay::test::tcp_pair();
  CHECK(a.serve(first.server) == 0);
  // The listener's one connection is open on the other loop.
  CHECK(b.serve(second.server) == UV_ECONNREFUSED);
  CHECK(a.load().open_connections == 1);
  CHECK(b.load().accepted == 0);

  // Relays of their own count alone.
  Relay c(&loops.a, config("max_connections = 1\n"));
  grelay::test::SocketPair third = grelay::test::tcp_pair();
  CHECK(c.serve(third.server) == 0);
  for (int fd : {first.client, second.client, third.client})
    ::close(fd);
  int left = 1;
  c.shutdown(false, [&left] { --left; });
  while (left > 0)
    loops.turn();
  shut_down(loops, a, b);
}

TEST_CASE("a group's metrics sum its Relays', and each Relay keeps its own") {
  TwoLoops loops;
  auto group = std::make_shared<RelayGroup>(config());
  Relay a(&loops.a, group);
  Relay b(&loops.b, group);
  CHECK(calls_through(loops, a, {"/x.S/Get"}) == std::vector<int>{12});
  CHECK(calls_through(loops, b, {"/x.S/Get", "/y.S/Get"}) == std::vector<int>{12, 12});

  CHECK(a.metrics().calls_started == 1);
  CHECK(b.metrics().calls_started == 2);
  const grelay::RelayMetrics m = group->metrics();
  CHECK(m.calls_started == 3);
  CHECK(m.ended(grelay::StatusCode::unimplemented) == 3);
  CHECK(m.client_connections == 2);
  REQUIRE(m.listeners.size() == 1);
  CHECK(m.listeners[0].connections_accepted == 2);
  CHECK(m.listeners[0].active_connections == 0);
  CHECK(group->prometheus_text().find("grpc_code=\"UNIMPLEMENTED\"} 3\n") != std::string::npos);
  CHECK(a.prometheus_text().find("grpc_code=\"UNIMPLEMENTED\"} 1\n") != std::string::npos);

  group->count_drain();
  group->count_failed_reload();
  CHECK(group->metrics().drains == 1);
  CHECK(group->metrics().failed_reloads == 1);
  // The process events are the group's, whichever Relay's metrics show them.
  CHECK(a.metrics().drains == 1);
  shut_down(loops, a, b);
}

TEST_CASE("a group reloads once for all its Relays, and a Relay ahead of it reloads it") {
  TwoLoops loops;
  auto first = config();
  auto group = std::make_shared<RelayGroup>(first);
  Relay a(&loops.a, group);
  Relay b(&loops.b, group);
  CHECK(group->config() == first);

  auto second = config("max_connections = 5\n");
  group->reload(second);
  a.reload(second);
  b.reload(second);
  CHECK(group->config() == second);
  CHECK(group->metrics().reloads == 1);

  // A Relay given a config the group has not seen makes it the group's.
  auto third = config("max_connections = 6\n");
  a.reload(third);
  CHECK(group->config() == third);
  b.reload(third);
  CHECK(group->metrics().reloads == 2);
  CHECK(group->metrics().failed_reloads == 0);
  shut_down(loops, a, b);
}

TEST_CASE("a group whose new certificates fail to load changes nothing and counts a failure") {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("grelay-group-test-" + std::to_string(::getpid()));
  {
    grelay::test::TestPki pki(dir);
    auto pair = pki.issue("relay", "DNS:relay.test", 7);
    auto group = std::make_shared<RelayGroup>(config());
    auto next = config("tls = { cert = \"" + pair.cert + "\", key = \"" + pair.key + "\" }\n");
    CHECK(group->reload_certificates());
    // The files were there when the config was checked, and are gone when it is applied.
    std::filesystem::remove(pair.key);
    CHECK_THROWS_AS(group->reload(next), std::runtime_error);
    CHECK(group->config() != next);
    CHECK(group->metrics().failed_reloads == 1);
    CHECK(group->metrics().reloads == 0);
    CHECK(group->certificate_files().empty());
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}
