#pragma once

#include <nghttp2/nghttp2.h>
#include <uv.h>

#include <cstddef>

#include "core/chunk.h"
#include "net/flush_queue.h"

namespace grelay {

// What the sessions of a worker share: the loop, buffers and the send queue.
struct UpstreamContext {
  uv_loop_t* loop;
  ChunkPool& pool;
  FlushQueue& flush_queue;
  nghttp2_mem* mem;
  // Backend sessions alive (so shutdown knows when the last socket is released).
  size_t live_sessions = 0;
  // Called when |live_sessions| drops to zero, if set.
  void (*on_all_closed)(void* ctx) noexcept = nullptr;
  void* on_all_closed_ctx = nullptr;
};

}  // namespace grelay
