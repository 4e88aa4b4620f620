#pragma once

#include <uv.h>

#include <cstdint>

namespace grelay {

// The monotonic clock (uv_hrtime(), ns) read at most once per phase of a loop turn. A loop
// turn reads its sockets in one phase and writes in another; every call that starts in a
// batch of reads, or ends in a batch of writes, takes that phase's one reading instead of
// a clock read of its own. The bytes of a batch were all waiting when the loop woke, so the
// reading is their arrival time; it is at most one phase old when a call ends.
//
// Per thread: each worker loop has its own. FlushQueue::run() starts a new phase as it
// begins and as it ends, so the first reading after a poll is taken after the poll.
class TurnClock {
 public:
  static uint64_t now_ns() noexcept {
    if (!fresh_) {
      now_ = uv_hrtime();
      fresh_ = true;
    }
    return now_;
  }
  // The next now_ns() reads the clock again.
  static void next_phase() noexcept { fresh_ = false; }

 private:
  static inline thread_local uint64_t now_ = 0;
  static inline thread_local bool fresh_ = false;
};

}  // namespace grelay
