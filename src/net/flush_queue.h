#pragma once

#include <uv.h>

#include <vector>

namespace grelay {

// Something that writes out what it has queued, once per loop turn.
class Flushable {
 public:
  virtual void flush_now() noexcept = 0;
  // Input this item kept when its budget for a turn ran out (FlushQueue::defer_input): handle
  // it now, in the new turn.
  virtual void resume_kept_input() noexcept {}

 protected:
  ~Flushable() = default;

 private:
  friend class FlushQueue;
  Flushable* prev_ = nullptr;
  Flushable* next_ = nullptr;
  Flushable* deferred_prev_ = nullptr;
  Flushable* deferred_next_ = nullptr;
  bool queued_ = false;
  bool deferred_ = false;
};

// Collects connections that have output to produce and runs them once per loop turn: before
// the loop polls (work queued by timers) and after it polls (work queued by reads), so that
// many events on one connection end in one write. Also holds connections whose input waits
// for the next turn (their budget for this one is spent): they resume as the next turn starts,
// ahead of the flushes, and the loop does not sleep in its poll meanwhile.
class FlushQueue {
 public:
  explicit FlushQueue(uv_loop_t* loop) noexcept;
  FlushQueue(const FlushQueue&) = delete;
  FlushQueue& operator=(const FlushQueue&) = delete;

  // Loop turns so far: a new one starts as the loop prepares to poll.
  uint64_t turn() const noexcept { return turn_; }

  void add(Flushable& item) noexcept;
  // Takes |item| out of both lists (the flushes and the deferred input).
  void remove(Flushable& item) noexcept;
  void run() noexcept;
  // |item|'s resume_kept_input() runs as the next turn starts.
  void defer_input(Flushable& item) noexcept;

  // Closes the handles; |done| runs once both are released.
  void close(void (*done)(void*), void* ctx) noexcept;

 private:
  static void prepare_cb(uv_prepare_t* handle) noexcept;
  static void check_cb(uv_check_t* handle) noexcept;
  static void close_cb(uv_handle_t* handle) noexcept;
  void remove_deferred(Flushable& item) noexcept;
  // Takes |item| out of the flushes only.
  void unqueue(Flushable& item) noexcept;
  void resume_deferred() noexcept;

  uv_prepare_t prepare_;
  uv_check_t check_;
  // Active while input is deferred: a loop with an active idle handle polls without waiting.
  uv_idle_t idle_;
  Flushable* head_ = nullptr;
  Flushable* deferred_head_ = nullptr;
  // The items resume_deferred() runs, reused from turn to turn.
  std::vector<Flushable*> resuming_;
  uint64_t turn_ = 0;
  int open_handles_ = 3;
  void (*close_done_)(void*) = nullptr;
  void* close_ctx_ = nullptr;
};

}  // namespace grelay
