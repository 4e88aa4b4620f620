#include "upstream/ring_hash.h"

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "lb_candidates.h"

using grelay::LbCandidate;
using grelay::RingHash;
using grelay_test::LbSet;

namespace {

// The member name each of |keys| goes to.
std::map<std::string, std::string> place(RingHash& lb, const LbSet& set,
                                         const std::vector<LbCandidate>& candidates,
                                         const std::vector<std::string>& keys) {
  std::map<std::string, std::string> placed;
  for (const std::string& key : keys)
    placed[key] = set.names[candidates[lb.pick(candidates, key)].id];
  return placed;
}

std::vector<std::string> make_keys(int n) {
  std::vector<std::string> keys;
  for (int k = 0; k < n; ++k)
    keys.push_back("user-" + std::to_string(k));
  return keys;
}

std::map<std::string, int> per_member(const std::map<std::string, std::string>& placed) {
  std::map<std::string, int> counts;
  for (const auto& [key, name] : placed)
    ++counts[name];
  return counts;
}

}  // namespace

TEST_CASE("ring_hash keeps a key on its endpoint and spreads keys over all") {
  LbSet set({1, 1, 1, 1});
  RingHash lb(1);
  lb.rebuild(set.members);
  const auto keys = make_keys(400);
  const auto placed = place(lb, set, set.candidates, keys);
  CHECK(place(lb, set, set.candidates, keys) == placed);
  const auto counts = per_member(placed);
  REQUIRE(counts.size() == 4);
  for (const auto& [name, n] : counts)
    CHECK(n > 50);
}

TEST_CASE("ring_hash moves only an unusable endpoint's keys") {
  LbSet set({1, 1, 1, 1});
  RingHash lb(1);
  lb.rebuild(set.members);
  const auto keys = make_keys(400);
  const auto placed = place(lb, set, set.candidates, keys);
  std::vector<LbCandidate> without_e0(set.candidates.begin() + 1, set.candidates.end());
  const auto now = place(lb, set, without_e0, keys);
  int moved = 0;
  for (const auto& [key, name] : placed) {
    CHECK(now.at(key) != "e0");
    if (name != "e0") CHECK(now.at(key) == name);
    moved += now.at(key) != name;
  }
  CHECK(moved == per_member(placed).at("e0"));
}

TEST_CASE("ring_hash keeps keys on their endpoints when one joins or leaves") {
  const auto keys = make_keys(1000);
  LbSet four({1, 1, 1, 1});
  RingHash lb(1);
  lb.rebuild(four.members);
  const auto before = place(lb, four, four.candidates, keys);

  // e4 joins: a key either stays where it was or moves to e4, and e4 gets its share.
  LbSet five({1, 1, 1, 1, 1});
  lb.rebuild(five.members);
  const auto joined = place(lb, five, five.candidates, keys);
  for (const auto& [key, name] : before) {
    if (joined.at(key) != name) CHECK(joined.at(key) == "e4");
  }
  CHECK(per_member(joined).at("e4") > 100);

  // e1 leaves (the members after it get new ids): only e1's keys move.
  LbSet without_e1({1, 1, 1});
  without_e1.names = {"e0", "e2", "e3"};
  without_e1.members = {{"e0", 1}, {"e2", 1}, {"e3", 1}};
  lb.rebuild(without_e1.members);
  const auto left = place(lb, without_e1, without_e1.candidates, keys);
  for (const auto& [key, name] : before) {
    if (name == "e1") {
      CHECK(left.at(key) != "e1");
    } else {
      CHECK(left.at(key) == name);
    }
  }
}

TEST_CASE("ring_hash gives a heavier endpoint more keys") {
  LbSet set({1, 3});
  RingHash lb(1);
  lb.rebuild(set.members);
  const auto counts = per_member(place(lb, set, set.candidates, make_keys(2000)));
  // 1500 expected on e1.
  CHECK(counts.at("e1") > 1300);
  CHECK(counts.at("e1") < 1700);
}

TEST_CASE("ring_hash without a key draws by weight") {
  LbSet set({1, 9});
  RingHash lb(1);
  lb.rebuild(set.members);
  int heavy = 0;
  for (int i = 0; i < 2000; ++i)
    heavy += lb.pick(set.candidates, "") == 1;
  // 1800 expected; the standard deviation is 13.
  CHECK(heavy > 1700);
  CHECK(heavy < 1900);
}
