#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <utility>

namespace grelay {

inline constexpr size_t chunk_size = 16384;

// A fixed-size buffer; the bytes in use are data[begin, end).
struct Chunk {
  Chunk* next = nullptr;
  uint32_t begin = 0;
  uint32_t end = 0;
  uint8_t data[chunk_size];
};

// Per-worker free list of chunks. Not thread safe. Keeps at most |max_cached| free chunks;
// frees the rest. Destructor frees the cached ones; every chunk handed out must have been put
// back by then (chains die before their pool).
class ChunkPool {
 public:
  explicit ChunkPool(size_t max_cached = 1024);
  ~ChunkPool();
  ChunkPool(const ChunkPool&) = delete;
  ChunkPool& operator=(const ChunkPool&) = delete;

  // An empty chunk (begin == end == 0, next == nullptr); the caller owns it until put().
  // Throws std::bad_alloc when memory runs out.
  Chunk* get();
  // Takes back ownership of |chunk| (nullptr is ignored).
  void put(Chunk* chunk) noexcept;

  // Free chunks kept for reuse.
  size_t cached() const noexcept { return cached_; }
  // Chunks alive, cached ones included.
  size_t allocated() const noexcept { return allocated_; }

 private:
  Chunk* free_ = nullptr;
  size_t cached_ = 0;
  size_t allocated_ = 0;
  size_t max_cached_;
};

// A FIFO byte queue made of chunks. Move-only; returns chunks to its pool on
// drain/clear/destruction.
//
// Appending never moves or modifies bytes already in the chain, so the iovecs from peek()
// stay valid across append(), reserve() and commit() until drain() or clear() drops them.
class ChunkChain {
 public:
  explicit ChunkChain(ChunkPool& pool) noexcept : pool_(&pool) {}
  ~ChunkChain() { clear(); }
  ChunkChain(ChunkChain&& other) noexcept;
  // Returns this chain's chunks to its pool, then takes |other|'s chunks and pool.
  ChunkChain& operator=(ChunkChain&& other) noexcept;
  ChunkChain(const ChunkChain&) = delete;
  ChunkChain& operator=(const ChunkChain&) = delete;

  // Bytes held.
  size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  // Copies |len| bytes to the back: fills the tail chunk, then new chunks.
  void append(const void* data, size_t len);

  // Fills up to |max_iov| iovecs covering at most |limit| bytes from the front, without
  // consuming. Returns the count.
  int peek(struct iovec* iov, int max_iov, size_t limit = SIZE_MAX) const noexcept;

  // Copies up to |len| bytes from the front into |dst| without consuming; returns the bytes
  // copied.
  size_t copy_out(void* dst, size_t len) const noexcept;

  // Moves |len| bytes (at most size()) from the front to the back of |to|. Chunks whose bytes
  // all go are relinked rather than copied (when both chains share a pool); |to| then
  // appends after them, into their free space.
  void move_to(ChunkChain& to, size_t len);

  // Drops |len| bytes (all of them when |len| >= size()) from the front, returning emptied
  // chunks to the pool.
  void drain(size_t len) noexcept;
  void clear() noexcept;

  // Writable space at the tail for reading straight into the chain: returns a pointer and
  // size (allocating a chunk if the tail is full or absent); commit(n) then adds the |n| bytes
  // written there. Nothing else may change the chain between the two calls.
  std::pair<uint8_t*, size_t> reserve();
  void commit(size_t n) noexcept;

  ChunkPool& pool() const noexcept { return *pool_; }

 private:
  // Links a fresh chunk at the tail and returns it.
  Chunk* add_chunk();

  ChunkPool* pool_;
  Chunk* head_ = nullptr;
  Chunk* tail_ = nullptr;
  size_t size_ = 0;
};

}  // namespace grelay
