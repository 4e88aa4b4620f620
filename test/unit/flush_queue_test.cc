#include "net/flush_queue.h"

#include <doctest/doctest.h>
#include <uv.h>

#include <vector>

using grelay::Flushable;
using grelay::FlushQueue;

namespace {

// Records what the queue made it do, with the turn it happened in.
struct Recorder final : Flushable {
  explicit Recorder(FlushQueue& q) : queue(q) {}
  void flush_now() noexcept override { flushes.push_back(queue.turn()); }
  void resume_kept_input() noexcept override {
    resumes.push_back(queue.turn());
    if (defer_again > 0) {
      --defer_again;
      queue.defer_input(*this);
    }
  }
  FlushQueue& queue;
  std::vector<uint64_t> flushes;
  std::vector<uint64_t> resumes;
  int defer_again = 0;
};

struct Loop {
  Loop() { uv_loop_init(&loop); }
  ~Loop() {
    queue->close([](void*) {}, nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }
  // Runs one loop turn and says whether its poll returned at once: a 300 ms timer keeps the
  // loop alive, and the poll does not wait for it only if something (deferred input) says
  // not to sleep.
  bool turn_without_waiting() {
    uv_timer_t timer;
    uv_timer_init(&loop, &timer);
    uv_timer_start(
        &timer, [](uv_timer_t*) {}, 300, 0);
    const uint64_t before = uv_hrtime();
    uv_run(&loop, UV_RUN_ONCE);
    const uint64_t waited = uv_hrtime() - before;
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
    uv_run(&loop, UV_RUN_NOWAIT);
    return waited < 200'000'000;
  }
  uv_loop_t loop;
  FlushQueue* queue = nullptr;
};

}  // namespace

TEST_CASE("FlushQueue resumes deferred input as the next turn starts, ahead of the flushes") {
  Loop l;
  FlushQueue queue(&l.loop);
  l.queue = &queue;
  Recorder r(queue);
  const uint64_t now = queue.turn();
  queue.defer_input(r);
  queue.add(r);
  // The flush of this turn (as after a read) does not take the deferred input with it.
  queue.run();
  CHECK(r.flushes == std::vector<uint64_t>{now});
  CHECK(r.resumes.empty());
  REQUIRE(l.turn_without_waiting());
  CHECK(r.resumes == std::vector<uint64_t>{now + 1});
}

TEST_CASE("FlushQueue input deferred while resuming waits for the turn after") {
  Loop l;
  FlushQueue queue(&l.loop);
  l.queue = &queue;
  Recorder r(queue);
  r.defer_again = 2;
  const uint64_t now = queue.turn();
  queue.defer_input(r);
  queue.defer_input(r);  // Once is enough: a second call changes nothing.
  // Two turns resume and defer again, so their polls do not wait; the third resumes and defers
  // nothing, so its poll sleeps until the timer.
  CHECK(l.turn_without_waiting());
  CHECK(l.turn_without_waiting());
  CHECK_FALSE(l.turn_without_waiting());
  CHECK(r.resumes == std::vector<uint64_t>{now + 1, now + 2, now + 3});
}

TEST_CASE("FlushQueue remove drops deferred input") {
  Loop l;
  FlushQueue queue(&l.loop);
  l.queue = &queue;
  Recorder a(queue);
  Recorder b(queue);
  queue.defer_input(a);
  queue.defer_input(b);
  queue.remove(a);
  REQUIRE(l.turn_without_waiting());
  CHECK(a.resumes.empty());
  CHECK(b.resumes.size() == 1);
}
