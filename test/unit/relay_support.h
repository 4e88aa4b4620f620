#pragma once

#include <doctest/doctest.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "grelay/config.h"
#include "grelay/relay.h"
#include "test_client.h"

// Runs |loop| until |relay| has shut down and released every handle.
inline void shut_down(uv_loop_t& loop, grelay::Relay& relay) {
  bool done = false;
  relay.shutdown(false, [&done] { done = true; });
  while (!done)
    uv_run(&loop, UV_RUN_ONCE);
}

// Runs |body|(loop, relay) with a Relay of |config_text| on a loop of its own, then shuts the
// relay down and checks that the loop closes with nothing left on it.
template <typename Body>
void with_relay(const std::string& config_text, Body body) {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    grelay::Relay relay(&loop, grelay::parse_config(config_text, "test.toml"));
    body(loop, relay);
    shut_down(loop, relay);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}

// Hands a fresh connection to |relay| and makes unary calls to |paths| on it from another
// thread while |turn|() runs the loop (or loops) meanwhile. Returns each call's grpc-status
// once the calls ended and the client hung up.
template <typename Turn>
std::vector<int> unary_calls(grelay::Relay& relay, const std::vector<std::string>& paths,
                             Turn turn) {
  grelay::test::SocketPair pair = grelay::test::tcp_pair();
  REQUIRE(relay.serve(pair.server) == 0);
  std::atomic<bool> done{false};
  std::vector<int> statuses;
  std::thread client([&] {
    grelay::test::TestClient c(pair.client);
    statuses = c.unary(paths);
    done = true;
  });
  while (!done.load()) {
    turn();
    ::usleep(1000);
  }
  client.join();
  return statuses;
}
