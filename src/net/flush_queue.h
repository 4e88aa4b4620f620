#pragma once

#include <uv.h>

namespace grelay {

// Something that writes out what it has queued, once per loop turn.
class Flushable {
 public:
  virtual void flush_now() noexcept = 0;

 protected:
  ~Flushable() = default;

 private:
  friend class FlushQueue;
  Flushable* prev_ = nullptr;
  Flushable* next_ = nullptr;
  bool queued_ = false;
};

// Collects connections that have output to produce and runs them once per loop turn: before
// the loop polls (work queued by timers) and after it polls (work queued by reads), so that
// many events on one connection end in one write.
class FlushQueue {
 public:
  explicit FlushQueue(uv_loop_t* loop) noexcept;
  FlushQueue(const FlushQueue&) = delete;
  FlushQueue& operator=(const FlushQueue&) = delete;

  // Loop turns so far: a new one starts as the loop prepares to poll.
  uint64_t turn() const noexcept { return turn_; }

  void add(Flushable& item) noexcept;
  void remove(Flushable& item) noexcept;
  void run() noexcept;

  // Closes the handles; |done| runs once both are released.
  void close(void (*done)(void*), void* ctx) noexcept;

 private:
  static void prepare_cb(uv_prepare_t* handle) noexcept;
  static void check_cb(uv_check_t* handle) noexcept;
  static void close_cb(uv_handle_t* handle) noexcept;

  uv_prepare_t prepare_;
  uv_check_t check_;
  Flushable* head_ = nullptr;
  uint64_t turn_ = 0;
  int open_handles_ = 2;
  void (*close_done_)(void*) = nullptr;
  void* close_ctx_ = nullptr;
};

}  // namespace grelay
