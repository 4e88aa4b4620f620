#pragma once

#include <uv.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "h2/session_allocator.h"
#include "unique_fd.h"

namespace grelay::bench {

// Owns a uv loop. Destroying it first closes every handle still open on the loop, so an
// owner that embeds handles declares its UvLoop first: it is destroyed last, while the
// storage of those handles is still alive.
class UvLoop {
 public:
  UvLoop();  // Throws std::runtime_error if the loop cannot be created.
  ~UvLoop();
  UvLoop(const UvLoop&) = delete;
  UvLoop& operator=(const UvLoop&) = delete;

  uv_loop_t* get() noexcept { return &loop_; }

 private:
  uv_loop_t loop_{};
};

// One event loop on one thread, accepting on its own SO_REUSEPORT listening socket and
// serving the accepted connections until stop().
class EchoWorker {
 public:
  // Serves |listen_fd|, an already listening TCP socket, and takes it over once its
  // listener handle has adopted it. Throws std::runtime_error on failure (start-up).
  explicit EchoWorker(UniqueFd& listen_fd);
  EchoWorker(const EchoWorker&) = delete;
  EchoWorker& operator=(const EchoWorker&) = delete;

  // Runs the loop on the calling thread until stop() has closed every handle.
  void run() noexcept;
  // Asks the loop to close its listener and connections; safe from any thread.
  void stop() noexcept;

  uv_loop_t* loop() noexcept { return loop_.get(); }
  // One read buffer per loop: each read is fully processed before its callback returns.
  uv_buf_t read_buffer() noexcept { return uv_buf_init(read_buffer_.get(), read_buffer_size); }
  // The allocator of this loop's nghttp2 sessions: the many small blocks nghttp2 makes per
  // stream are reused instead of going through malloc, as in grelay's own workers.
  nghttp2_mem* mem() noexcept { return allocator_.mem(); }

  // Requests begun (HEADERS received) and RST_STREAM frames received on this loop, for
  // bench.py's underattack workload: how much of an attack a relay passed on. Written by
  // the loop's thread only (a relaxed load and store, no locked instruction per call);
  // read from any thread.
  void count_stream() noexcept { bump(streams_); }
  void count_reset() noexcept { bump(resets_); }
  uint64_t streams() const noexcept { return streams_.load(std::memory_order_relaxed); }
  uint64_t resets() const noexcept { return resets_.load(std::memory_order_relaxed); }

  // DATA frames and their payload bytes received from the client (a relay's request
  // framing) and sent back, for bench.py's counting pass: how many frames a relay cuts a
  // MiB into. Written and read as the counters above.
  void count_data_in(size_t length) noexcept {
    bump(data_frames_in_);
    bump(data_bytes_in_, length);
  }
  void count_data_out(size_t length) noexcept {
    bump(data_frames_out_);
    bump(data_bytes_out_, length);
  }
  struct DataCounts {
    uint64_t frames_in = 0;
    uint64_t bytes_in = 0;
    uint64_t frames_out = 0;
    uint64_t bytes_out = 0;
  };
  DataCounts data_counts() const noexcept {
    return {data_frames_in_.load(std::memory_order_relaxed),
            data_bytes_in_.load(std::memory_order_relaxed),
            data_frames_out_.load(std::memory_order_relaxed),
            data_bytes_out_.load(std::memory_order_relaxed)};
  }

 private:
  static constexpr size_t read_buffer_size = 64 * 1024;

  static void bump(std::atomic<uint64_t>& counter, uint64_t by = 1) noexcept {
    counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  }
  static void on_connection_cb(uv_stream_t* listener, int status) noexcept;
  static void on_stop_cb(uv_async_t* async) noexcept;
  void on_stop() noexcept;

  // Before the loop: sessions, deleted when the loop closes their connections, use it.
  grelay::SessionAllocator allocator_;
  UvLoop loop_;  // First among the handles: see UvLoop.
  uv_tcp_t listener_{};
  uv_async_t stop_{};
  std::unique_ptr<char[]> read_buffer_;
  std::atomic<uint64_t> streams_{0};
  std::atomic<uint64_t> resets_{0};
  std::atomic<uint64_t> data_frames_in_{0};
  std::atomic<uint64_t> data_bytes_in_{0};
  std::atomic<uint64_t> data_frames_out_{0};
  std::atomic<uint64_t> data_bytes_out_{0};
};

}  // namespace grelay::bench
