#include "upstream/smooth_round_robin.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "lb_candidates.h"

using grelay::LbCandidate;
using grelay::SmoothRoundRobin;
using grelay_test::LbSet;

namespace {

// The ids picked in |n| picks, as one digit each.
std::string picks(SmoothRoundRobin& lb, const std::vector<LbCandidate>& candidates, int n) {
  std::string order;
  for (int i = 0; i < n; ++i)
    order += std::to_string(candidates[lb.pick(candidates, "")].id);
  return order;
}

}  // namespace

TEST_CASE("round robin follows the weights, interleaved") {
  LbSet set({3, 1});
  SmoothRoundRobin lb;
  lb.rebuild(set.members);
  // Each cycle of 4 gives e0 three picks and e1 one, not in a burst of three.
  CHECK(picks(lb, set.candidates, 8) == "00100010");
}

TEST_CASE("round robin with equal weights takes turns") {
  LbSet set({1, 1, 1});
  SmoothRoundRobin lb;
  lb.rebuild(set.members);
  CHECK(picks(lb, set.candidates, 9) == "012012012");
}

TEST_CASE("round robin shares follow the weights over many cycles") {
  LbSet set({5, 2, 1});
  SmoothRoundRobin lb;
  lb.rebuild(set.members);
  std::vector<int> counts(3);
  for (int i = 0; i < 800; ++i)
    ++counts[set.candidates[lb.pick(set.candidates, "")].id];
  CHECK(counts == std::vector<int>{500, 200, 100});
}

TEST_CASE("round robin keeps each member's state while others are left out") {
  LbSet set({1, 1, 1});
  SmoothRoundRobin lb;
  lb.rebuild(set.members);
  CHECK(picks(lb, set.candidates, 1) == "0");
  // e0 is not usable for a while: e1 and e2 take turns, by their own state.
  std::vector<LbCandidate> without_e0(set.candidates.begin() + 1, set.candidates.end());
  CHECK(picks(lb, without_e0, 4) == "1212");
  // e0 is back where it stood: e1 and e2, ahead of it, win first; then all take turns.
  CHECK(picks(lb, set.candidates, 6) == "120120");
}

TEST_CASE("round robin starts over when the membership changes") {
  LbSet set({2, 1});
  SmoothRoundRobin lb;
  lb.rebuild(set.members);
  CHECK(picks(lb, set.candidates, 2) == "01");
  lb.rebuild(set.members);
  CHECK(picks(lb, set.candidates, 3) == "010");
}
