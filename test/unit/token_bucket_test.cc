#include "core/token_bucket.h"

#include <doctest/doctest.h>

namespace grelay {
namespace {

TEST_CASE("TokenBucket gives its burst at once, then its rate") {
  TokenBucket<10, 5> bucket;
  int taken = 0;
  while (bucket.take(1000))
    ++taken;
  CHECK(taken == 10);
  // 5 per second: one token every 200 ms, none before.
  CHECK_FALSE(bucket.take(1199));
  CHECK(bucket.take(1200));
  CHECK_FALSE(bucket.take(1300));
  CHECK(bucket.take(1400));
  // A long pause refills to the burst, never past it.
  taken = 0;
  while (bucket.take(100000))
    ++taken;
  CHECK(taken == 10);
}

TEST_CASE("TokenBucket keeps the part of a refill period already waited") {
  TokenBucket<2, 3> bucket;  // one token every 333.3 ms
  CHECK(bucket.take(0));
  CHECK(bucket.take(0));
  CHECK_FALSE(bucket.take(300));
  // 400 ms after the start: one token earned at 333 ms; the 67 ms since count towards the next.
  CHECK(bucket.take(400));
  CHECK_FALSE(bucket.take(600));
  CHECK(bucket.take(667));
}

TEST_CASE("TokenBucket takes tokens given back, up to its burst") {
  TokenBucket<3, 1> bucket;
  CHECK(bucket.take(0));
  CHECK(bucket.take(0));
  CHECK(bucket.take(0));
  CHECK_FALSE(bucket.take(0));
  bucket.give(2);
  CHECK(bucket.tokens() == 2);
  bucket.give(100);
  CHECK(bucket.tokens() == 3);
}

}  // namespace
}  // namespace grelay
