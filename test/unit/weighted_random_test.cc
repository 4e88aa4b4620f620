#include "upstream/weighted_random.h"

#include <doctest/doctest.h>

#include <vector>

#include "lb_candidates.h"

using grelay::WeightedRandom;
using grelay_test::LbSet;

TEST_CASE("random shares follow the weights") {
  LbSet set({1, 9});
  WeightedRandom lb(7);
  lb.rebuild(set.members);
  std::vector<int> counts(2);
  for (int i = 0; i < 10000; ++i)
    ++counts[lb.pick(set.candidates, "")];
  // 9000 expected for e1; the standard deviation is 30.
  CHECK(counts[1] > 8800);
  CHECK(counts[1] < 9200);
}

TEST_CASE("random ignores load and never picks outside the candidates") {
  LbSet set({1, 1, 1}, {0, 50, 100});
  WeightedRandom lb(7);
  std::vector<int> counts(3);
  for (int i = 0; i < 3000; ++i) {
    size_t picked = lb.pick(set.candidates, "");
    REQUIRE(picked < 3);
    ++counts[picked];
  }
  for (int n : counts) {
    CHECK(n > 850);
    CHECK(n < 1150);
  }
}

TEST_CASE("pick_weighted gives nothing to a candidate of weight 0") {
  LbSet set({0, 3, 0});
  std::minstd_rand rng(7);
  for (int i = 0; i < 200; ++i)
    CHECK(grelay::pick_weighted(set.candidates, rng) == 1);
}
