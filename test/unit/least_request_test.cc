#include "upstream/least_request.h"

#include <doctest/doctest.h>

#include <vector>

#include "lb_candidates.h"

using grelay::LeastRequest;
using grelay_test::LbSet;

TEST_CASE("least_request between two endpoints always picks the less loaded") {
  for (uint32_t seed : {1u, 2u, 3u}) {
    LeastRequest lb(seed);
    LbSet busy_first({1, 1}, {5, 0});
    LbSet busy_second({1, 1}, {0, 5});
    for (int i = 0; i < 500; ++i) {
      CHECK(lb.pick(busy_first.candidates, "") == 1);
      CHECK(lb.pick(busy_second.candidates, "") == 0);
    }
  }
}

TEST_CASE("least_request under unequal load favours the least loaded, never the most") {
  // Loads 3, 7, 0, 9: of the six pairs two candidates can form, e2 wins the three it is in,
  // e0 two, e1 one, e3 none.
  LbSet set({1, 1, 1, 1}, {3, 7, 0, 9});
  LeastRequest lb(11);
  std::vector<int> counts(4);
  for (int i = 0; i < 6000; ++i)
    ++counts[lb.pick(set.candidates, "")];
  CHECK(counts[3] == 0);
  CHECK(counts[2] > 2700);
  CHECK(counts[2] < 3300);
  CHECK(counts[0] > 1700);
  CHECK(counts[0] < 2300);
  CHECK(counts[1] > 800);
  CHECK(counts[1] < 1200);
}

TEST_CASE("least_request compares load per unit of weight") {
  // e0 carries 2 calls for weight 1, e1 3 calls for weight 3: e1 is the less loaded.
  LbSet set({1, 3}, {2, 3});
  LeastRequest lb(5);
  for (int i = 0; i < 200; ++i)
    CHECK(lb.pick(set.candidates, "") == 1);
}

TEST_CASE("least_request compares two different endpoints even when one has most weight") {
  // e0 holds nearly all the weight, so weighted draws give it twice almost always; the second
  // one is then drawn from the others, and e0, the busiest per unit of weight (5 calls to
  // their 1), still never wins.
  LbSet set({1000, 1, 1}, {5000, 1, 1});
  LeastRequest lb(3);
  for (int i = 0; i < 500; ++i)
    CHECK(lb.pick(set.candidates, "") != 0);
}
