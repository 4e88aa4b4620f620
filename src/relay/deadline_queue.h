#pragma once

#include <uv.h>

#include <cstdint>
#include <map>

namespace grelay {

// Deadlines of many calls on one timer: the earliest arms it.
class DeadlineQueue {
 public:
  class Entry {
   public:
    virtual void on_deadline() noexcept = 0;

   protected:
    ~Entry() = default;

   private:
    friend class DeadlineQueue;
    std::multimap<uint64_t, Entry*>::iterator it_;
    bool armed_ = false;
  };

  explicit DeadlineQueue(uv_loop_t* loop) noexcept;
  DeadlineQueue(const DeadlineQueue&) = delete;
  DeadlineQueue& operator=(const DeadlineQueue&) = delete;

  // Fires |entry| at loop time |deadline_ms| (uv_now() clock).
  void add(Entry& entry, uint64_t deadline_ms);
  void remove(Entry& entry) noexcept;

  // Closes the timer; |done| runs once it is released.
  void close(void (*done)(void*), void* ctx) noexcept;

 private:
  void rearm() noexcept;
  static void timer_cb(uv_timer_t* timer) noexcept;
  static void close_cb(uv_handle_t* handle) noexcept;

  uv_timer_t timer_;
  std::multimap<uint64_t, Entry*> entries_;
  void (*close_done_)(void*) = nullptr;
  void* close_ctx_ = nullptr;
};

}  // namespace grelay
