#include "net/flush_queue.h"

#include "core/turn_clock.h"

namespace grelay {

FlushQueue::FlushQueue(uv_loop_t* loop) noexcept {
  uv_prepare_init(loop, &prepare_);
  uv_check_init(loop, &check_);
  uv_idle_init(loop, &idle_);
  prepare_.data = this;
  check_.data = this;
  idle_.data = this;
  uv_prepare_start(&prepare_, prepare_cb);
  uv_check_start(&check_, check_cb);
  // Neither handle keeps the loop alive on its own.
  uv_unref(reinterpret_cast<uv_handle_t*>(&prepare_));
  uv_unref(reinterpret_cast<uv_handle_t*>(&check_));
  uv_unref(reinterpret_cast<uv_handle_t*>(&idle_));
}

void FlushQueue::add(Flushable& item) noexcept {
  if (item.queued_) return;
  item.queued_ = true;
  item.prev_ = nullptr;
  item.next_ = head_;
  if (head_) head_->prev_ = &item;
  head_ = &item;
}

void FlushQueue::remove(Flushable& item) noexcept {
  remove_deferred(item);
  unqueue(item);
}

void FlushQueue::unqueue(Flushable& item) noexcept {
  if (!item.queued_) return;
  if (item.prev_)
    item.prev_->next_ = item.next_;
  else
    head_ = item.next_;
  if (item.next_) item.next_->prev_ = item.prev_;
  item.prev_ = item.next_ = nullptr;
  item.queued_ = false;
}

void FlushQueue::defer_input(Flushable& item) noexcept {
  if (item.deferred_) return;
  item.deferred_ = true;
  item.deferred_prev_ = nullptr;
  item.deferred_next_ = deferred_head_;
  if (deferred_head_) deferred_head_->deferred_prev_ = &item;
  deferred_head_ = &item;
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&idle_))) {
    uv_idle_start(&idle_, [](uv_idle_t*) {});
  }
}

void FlushQueue::remove_deferred(Flushable& item) noexcept {
  if (!item.deferred_) return;
  if (item.deferred_prev_)
    item.deferred_prev_->deferred_next_ = item.deferred_next_;
  else
    deferred_head_ = item.deferred_next_;
  if (item.deferred_next_) item.deferred_next_->deferred_prev_ = item.deferred_prev_;
  item.deferred_prev_ = item.deferred_next_ = nullptr;
  item.deferred_ = false;
  if (deferred_head_ == nullptr) uv_idle_stop(&idle_);
}

void FlushQueue::resume_deferred() noexcept {
  // Those deferred again while resuming wait for the turn after: take the list as it is now.
  resuming_.clear();
  while (deferred_head_ != nullptr) {
    resuming_.push_back(deferred_head_);
    remove_deferred(*deferred_head_);
  }
  // Items are freed only from libuv close callbacks, never while this runs.
  for (Flushable* item : resuming_)
    item->resume_kept_input();
  resuming_.clear();
}

void FlushQueue::run() noexcept {
  // Calls that end in this flush share one clock reading; the reads after the next poll take
  // a new one.
  TurnClock::next_phase();
  // An item may queue itself or others while flushing; those run in this same pass.
  while (head_) {
    Flushable* item = head_;
    // Out of the flushes only: input it deferred still resumes next turn.
    unqueue(*item);
    item->flush_now();
  }
  TurnClock::next_phase();
}

void FlushQueue::prepare_cb(uv_prepare_t* handle) noexcept {
  auto* self = static_cast<FlushQueue*>(handle->data);
  ++self->turn_;
  if (self->deferred_head_) self->resume_deferred();
  self->run();
}

void FlushQueue::check_cb(uv_check_t* handle) noexcept {
  static_cast<FlushQueue*>(handle->data)->run();
}

void FlushQueue::close(void (*done)(void*), void* ctx) noexcept {
  close_done_ = done;
  close_ctx_ = ctx;
  uv_close(reinterpret_cast<uv_handle_t*>(&prepare_), close_cb);
  uv_close(reinterpret_cast<uv_handle_t*>(&check_), close_cb);
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_), close_cb);
}

void FlushQueue::close_cb(uv_handle_t* handle) noexcept {
  auto* self = static_cast<FlushQueue*>(handle->data);
  if (--self->open_handles_ == 0 && self->close_done_) self->close_done_(self->close_ctx_);
}

}  // namespace grelay
