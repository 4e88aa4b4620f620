#include "core/block_cache.h"

#include <doctest/doctest.h>

#include <thread>

namespace grelay {
namespace {

TEST_CASE("BlockCache hands a freed block out again, and keeps no more than its limit") {
  using Cache = BlockCache<64, 2>;
  // Each thread has its own free list: this test runs on a thread of its own to start empty.
  std::thread([] {
    REQUIRE(Cache::cached() == 0);
    void* a = Cache::take();
    void* b = Cache::take();
    void* c = Cache::take();
    Cache::give(a);
    CHECK(Cache::cached() == 1);
    CHECK(Cache::take() == a);
    Cache::give(a);
    Cache::give(b);
    Cache::give(c);  // Past the limit of 2: back to malloc.
    CHECK(Cache::cached() == 2);
    void* d = Cache::take();
    CHECK((d == a || d == b));
    Cache::give(d);
    Cache::give(nullptr);
    CHECK(Cache::cached() == 2);
  }).join();
}

}  // namespace
}  // namespace grelay
