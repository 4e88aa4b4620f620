#pragma once

#include <cstdint>

namespace grelay {

// A budget of |burst| actions that refills |per_second| actions each second, on a
// millisecond clock (the loop's). 16 bytes: connections keep several.
template <uint32_t burst, uint32_t per_second>
class TokenBucket {
  static_assert(per_second > 0 && per_second <= 1000, "refills at most one token per ms");

 public:
  // Takes one action's token at |now_ms|; false when none is left.
  bool take(uint64_t now_ms) noexcept {
    if (tokens_ < burst) refill(now_ms);
    if (tokens_ == 0) return false;
    if (tokens_ == burst) last_ms_ = now_ms;
    --tokens_;
    return true;
  }
  // Gives back |n| tokens (up to |burst|), for work that vouches for the peer.
  void give(uint32_t n) noexcept { tokens_ = tokens_ + n > burst ? burst : tokens_ + n; }
  uint32_t tokens() const noexcept { return tokens_; }

 private:
  void refill(uint64_t now_ms) noexcept {
    if (now_ms <= last_ms_) return;
    const uint64_t earned = (now_ms - last_ms_) * per_second / 1000;
    if (earned == 0) return;
    // Only the time that earned whole tokens is spent, so slow refills are not lost.
    last_ms_ += earned * 1000 / per_second;
    tokens_ = earned >= burst - tokens_ ? burst : tokens_ + static_cast<uint32_t>(earned);
  }

  uint64_t last_ms_ = 0;
  uint32_t tokens_ = burst;
};

}  // namespace grelay
