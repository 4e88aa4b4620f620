#include "upstream/retry_budget.h"

#include <algorithm>

namespace grelay {

void RetryBudget::record(bool failure) noexcept {
  if (failure) {
    left_ = std::max(0.0, left_ - 1);
  } else {
    left_ = std::min<double>(tokens_, left_ + ratio_);
  }
}

}  // namespace grelay
