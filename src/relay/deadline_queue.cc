#include "relay/deadline_queue.h"

namespace grelay {

DeadlineQueue::DeadlineQueue(uv_loop_t* loop) noexcept {
  uv_timer_init(loop, &timer_);
  timer_.data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(&timer_));
}

void DeadlineQueue::add(Entry& entry, uint64_t deadline_ms) {
  remove(entry);
  entry.it_ = entries_.emplace(deadline_ms, &entry);
  entry.armed_ = true;
  if (entry.it_ == entries_.begin()) rearm();
}

void DeadlineQueue::remove(Entry& entry) noexcept {
  if (!entry.armed_) return;
  entries_.erase(entry.it_);
  entry.armed_ = false;
}

void DeadlineQueue::rearm() noexcept {
  if (entries_.empty()) {
    uv_timer_stop(&timer_);
    return;
  }
  uint64_t now = uv_now(timer_.loop);
  uint64_t first = entries_.begin()->first;
  uv_timer_start(&timer_, timer_cb, first > now ? first - now : 0, 0);
}

void DeadlineQueue::timer_cb(uv_timer_t* timer) noexcept {
  auto* self = static_cast<DeadlineQueue*>(timer->data);
  uint64_t now = uv_now(timer->loop);
  while (!self->entries_.empty() && self->entries_.begin()->first <= now) {
    Entry* entry = self->entries_.begin()->second;
    self->remove(*entry);
    // The entry may delete itself here.
    entry->on_deadline();
  }
  self->rearm();
}

void DeadlineQueue::close(void (*done)(void*), void* ctx) noexcept {
  close_done_ = done;
  close_ctx_ = ctx;
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), close_cb);
}

void DeadlineQueue::close_cb(uv_handle_t* handle) noexcept {
  auto* self = static_cast<DeadlineQueue*>(handle->data);
  if (self->close_done_) self->close_done_(self->close_ctx_);
}

}  // namespace grelay
