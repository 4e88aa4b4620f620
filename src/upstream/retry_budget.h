#pragma once

#include <cstdint>

#include "grelay/config.h"

namespace grelay {

// A retry budget: a token bucket that failed attempts drain and other answers refill, so that
// retries stop while a cluster mostly fails instead of multiplying its load. It has one set of
// parameters, fixed at its creation; its Cluster keeps one per set its routes give.
class RetryBudget {
 public:
  // |tokens|: the bucket's size, and its fill at the start. |ratio|: what an answer that is
  // not a failure gives back.
  RetryBudget(uint32_t tokens, double ratio) noexcept
      : tokens_(tokens), ratio_(ratio), left_(tokens) {}

  // True while more than half of the tokens are left.
  bool allows_retry() const noexcept { return left_ > tokens_ / 2.0; }
  // An attempt ended: |failure| when with a status its policy retries on (a token is taken),
  // else |ratio| of a token is given back.
  void record(bool failure) noexcept;

  // True if this is the budget of |policy|'s parameters.
  bool serves(const RetryConfig& policy) const noexcept {
    return policy.budget_tokens == tokens_ && policy.budget_ratio == ratio_;
  }
  double tokens_left() const noexcept { return left_; }

 private:
  uint32_t tokens_;
  double ratio_;
  double left_;
};

}  // namespace grelay
