#pragma once

#include <doctest/doctest.h>
#include <uv.h>

#include <string>

#include "grelay/config.h"
#include "grelay/relay.h"

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
