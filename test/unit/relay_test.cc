#include "grelay/relay.h"

#include <doctest/doctest.h>
#include <uv.h>

#include <atomic>
#include <string>
#include <thread>

#include "relay_support.h"

namespace {

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
