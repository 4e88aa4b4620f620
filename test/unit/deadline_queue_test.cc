#include "relay/deadline_queue.h"

#include <doctest/doctest.h>
#include <uv.h>

#include <functional>
#include <string>

namespace {

struct Probe final : grelay::DeadlineQueue::Entry {
  Probe(std::string& log, char name) : log(log), name(name) {}
  void on_deadline() noexcept override {
    log += name;
    if (then) then();
  }
  std::string& log;
  char name;
  std::function<void()> then;
};

// Runs |loop| until |done| or about two seconds. The queue's timer is unreferenced (it does not
// keep a loop alive), so a referenced ticking timer does.
void run_until(uv_loop_t& loop, const std::function<bool()>& done) {
  uv_timer_t tick;
  uv_timer_init(&loop, &tick);
  uv_timer_start(
      &tick, [](uv_timer_t*) {}, 1, 1);
  const uint64_t give_up = uv_now(&loop) + 2000;
  while (!done() && uv_now(&loop) < give_up)
    uv_run(&loop, UV_RUN_ONCE);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
  uv_run(&loop, UV_RUN_NOWAIT);
}

void close_queue(uv_loop_t& loop, grelay::DeadlineQueue& queue) {
  bool closed = false;
  queue.close([](void* ctx) { *static_cast<bool*>(ctx) = true; }, &closed);
  while (!closed)
    uv_run(&loop, UV_RUN_ONCE);
}

}  // namespace

TEST_CASE("DeadlineQueue fires entries in deadline order; removed ones never") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    grelay::DeadlineQueue queue(&loop);
    std::string log;
    Probe a(log, 'a'), b(log, 'b'), c(log, 'c'), d(log, 'd');
    const uint64_t now = uv_now(&loop);
    queue.add(c, now + 30);
    queue.add(a, now + 10);
    queue.add(d, now + 15);
    queue.add(b, now + 20);
    queue.remove(d);
    // Adding again moves an entry: |a| now comes last.
    queue.add(a, now + 40);
    run_until(loop, [&] { return log.size() >= 3; });
    CHECK(log == "bca");
    close_queue(loop, queue);
  }
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("DeadlineQueue: an entry that fires may remove another due at the same time") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    grelay::DeadlineQueue queue(&loop);
    std::string log;
    Probe a(log, 'a'), b(log, 'b'), c(log, 'c');
    const uint64_t at = uv_now(&loop) + 5;
    queue.add(a, at);
    queue.add(b, at);
    queue.add(c, at + 10);
    a.then = [&] { queue.remove(b); };
    run_until(loop, [&] { return log.find('c') != std::string::npos; });
    CHECK(log == "ac");
    close_queue(loop, queue);
  }
  CHECK(uv_loop_close(&loop) == 0);
}
