#include "upstream/retry_budget.h"

#include <doctest/doctest.h>

using grelay::RetryBudget;

TEST_CASE("a retry budget allows retries while more than half of its tokens are left") {
  RetryBudget budget(10, 0.1);
  CHECK(budget.tokens_left() == 10);
  for (int i = 0; i < 4; ++i)
    budget.record(true);
  // 6 of 10 left.
  CHECK(budget.allows_retry());
  budget.record(true);
  // 5 of 10: exactly half is not more than half.
  CHECK(!budget.allows_retry());
  for (int i = 0; i < 10; ++i)
    budget.record(true);
  CHECK(budget.tokens_left() == 0);
}

TEST_CASE("a retry budget refills by its ratio per answer that is not a failure, up to its size") {
  RetryBudget budget(4, 0.5);
  budget.record(true);
  budget.record(true);
  CHECK(!budget.allows_retry());
  budget.record(false);
  // 2.5 of 4.
  CHECK(budget.allows_retry());
  for (int i = 0; i < 10; ++i)
    budget.record(false);
  CHECK(budget.tokens_left() == 4);
}

TEST_CASE("a retry budget serves the policies that give its parameters") {
  RetryBudget budget(10, 0.1);
  grelay::RetryConfig policy;
  CHECK(budget.serves(policy));
  policy.attempts = 5;
  CHECK(budget.serves(policy));
  policy.budget_tokens = 20;
  CHECK(!budget.serves(policy));
  policy.budget_tokens = 10;
  policy.budget_ratio = 0.2;
  CHECK(!budget.serves(policy));
}
