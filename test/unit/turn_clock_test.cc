#include "core/turn_clock.h"

#include <doctest/doctest.h>

#include <chrono>
#include <thread>

namespace grelay {
namespace {

TEST_CASE("TurnClock reads the clock once per phase") {
  TurnClock::next_phase();
  const uint64_t first = TurnClock::now_ns();
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  CHECK(TurnClock::now_ns() == first);
  TurnClock::next_phase();
  CHECK(TurnClock::now_ns() >= first + 2'000'000);
}

}  // namespace
}  // namespace grelay
