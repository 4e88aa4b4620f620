#pragma once

#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <cstdint>

namespace grelay {

// The allocator every nghttp2 session of one worker uses: free lists per size class, so the
// many small, short-lived blocks nghttp2 makes per stream (stream objects, frames, header
// copies, rcbufs) are reused without going through malloc. Not thread safe: one per worker,
// used only on its loop's thread. Blocks above the largest class go to malloc.
class SessionAllocator {
 public:
  SessionAllocator() noexcept;
  ~SessionAllocator();
  SessionAllocator(const SessionAllocator&) = delete;
  SessionAllocator& operator=(const SessionAllocator&) = delete;

  // The nghttp2_mem to pass to nghttp2_session_*_new3; valid while this allocator lives.
  nghttp2_mem* mem() noexcept { return &mem_; }

  void* allocate(size_t size) noexcept;
  void release(void* ptr) noexcept;
  void* reallocate(void* ptr, size_t size) noexcept;

  // Blocks kept on the free lists, for tests.
  size_t cached_blocks() const noexcept;

 private:
  // Each block is preceded by this header: its class (or large_class) and, for large
  // blocks, its size.
  struct Header {
    uint32_t size_class;
    uint32_t unused;
    uint64_t size;
  };
  struct FreeBlock {
    FreeBlock* next;
  };

  static constexpr size_t class_count = 16;  // 32, 64, 96, ... 512 bytes
  static constexpr size_t class_step = 32;
  static constexpr uint32_t large_class = UINT32_MAX;
  // Free blocks kept per class; the rest go back to malloc.
  static constexpr size_t max_cached_per_class = 4096;

  static size_t class_of(size_t size) noexcept { return (size + class_step - 1) / class_step - 1; }
  static size_t class_size(size_t size_class) noexcept { return (size_class + 1) * class_step; }

  nghttp2_mem mem_;
  FreeBlock* free_[class_count] = {};
  size_t cached_[class_count] = {};
};

}  // namespace grelay
