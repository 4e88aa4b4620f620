#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <utility>

namespace grelay {

inline constexpr size_t chunk_size = 16384;
// What one socket read takes at most: a stream of large DATA frames then costs few syscalls
// (a handler may ask for less, Connection::read_size()).
inline constexpr size_t read_block_size = 256 * 1024;
// Payloads this large or larger, appended with ChunkChain::append_read(), are kept as views of
// the read block they arrived in rather than copied. Smaller ones are copied: a view costs a
// node and an iovec, and pins its whole block.
inline constexpr size_t share_min = 4096;
// Read blocks a pool lets out at once; beyond them append_read() copies. A view pins the whole
// 256 KiB block it is in, so this bounds what views can make a worker hold beyond the bytes
// they cover: 16 MiB, however the peers cut and stall their streams.
inline constexpr size_t max_blocks_out = 64;

class ChunkPool;

// The buffer of one socket read. The connection holds it while the bytes are handled; chains
// holding views of it hold it too. It goes back to its pool when the last holder lets go, and
// its bytes never change meanwhile.
struct ReadBlock {
  ReadBlock* next_free = nullptr;
  ChunkPool* pool = nullptr;
  uint32_t refs = 0;
  uint8_t data[read_block_size];
};

// A node of a ChunkChain: bytes base[begin, end). Either it owns |capacity| writable bytes at
// |base| (a Chunk, or a small node for the bytes that follow a view), or it is a view of part
// of a read block (|block| set, capacity 0): its bytes are read-only and shared.
struct Segment {
  Segment* next = nullptr;
  uint32_t begin = 0;
  uint32_t end = 0;
  uint32_t capacity = 0;
  uint8_t* base = nullptr;
  ReadBlock* block = nullptr;
};

// A node owning chunk_size bytes.
struct Chunk : Segment {
  Chunk() noexcept {
    capacity = chunk_size;
    base = data;
  }
  uint8_t data[chunk_size];
};

// A node owning a few bytes, or viewing a read block: frame headers between views take these
// rather than a whole chunk.
inline constexpr size_t small_capacity = 256 - sizeof(Segment);
struct SmallSegment : Segment {
  uint8_t data[small_capacity];
};

// Per-worker free lists of chunks, small nodes and read blocks. Not thread safe. Keeps at
// most |max_cached| free chunks; frees the rest. Destructor frees the cached ones; every
// node and block handed out must have been put back by then (chains die before their pool).
class ChunkPool {
 public:
  explicit ChunkPool(size_t max_cached = 1024);
  ~ChunkPool();
  ChunkPool(const ChunkPool&) = delete;
  ChunkPool& operator=(const ChunkPool&) = delete;

  // An empty chunk (begin == end == 0, next == nullptr); the caller owns it until put().
  // Throws std::bad_alloc when memory runs out.
  Chunk* get();
  // An empty small node, owning small_capacity bytes.
  SmallSegment* get_small();
  // Takes back ownership of |segment| (nullptr is ignored); a view lets go of its block.
  void put(Segment* segment) noexcept;

  // A read block with one holder (the caller), for a socket read.
  ReadBlock* get_block();
  void hold(ReadBlock* block) noexcept { ++block->refs; }
  // One holder lets go; the last one returns the block.
  static void release(ReadBlock* block) noexcept;

  // The block whose bytes are being handled (a connection sets it around its read callback),
  // for append_read(); nullptr outside reads.
  ReadBlock* reading() const noexcept { return reading_; }
  void set_reading(ReadBlock* block) noexcept { reading_ = block; }
  // Whether append_read() may make one more view of the block being read.
  bool may_share() const noexcept { return blocks_out_ <= max_blocks_out; }

  // Free chunks kept for reuse.
  size_t cached() const noexcept { return cached_; }
  // Chunks alive, cached ones included.
  size_t allocated() const noexcept { return allocated_; }
  // Small nodes alive, cached ones included.
  size_t small_allocated() const noexcept { return small_allocated_; }
  // Read blocks out (held by a read or a view).
  size_t blocks_out() const noexcept { return blocks_out_; }

 private:
  void put_block(ReadBlock* block) noexcept;

  Chunk* free_ = nullptr;
  Segment* free_small_ = nullptr;
  ReadBlock* free_blocks_ = nullptr;
  ReadBlock* reading_ = nullptr;
  size_t cached_ = 0;
  size_t allocated_ = 0;
  size_t small_cached_ = 0;
  size_t small_allocated_ = 0;
  size_t blocks_cached_ = 0;
  size_t blocks_out_ = 0;
  size_t max_cached_;
};

// A FIFO byte queue made of segments. Move-only; returns segments to its pool on
// drain/clear/destruction.
//
// Appending never moves or modifies bytes already in the chain, so the iovecs from peek()
// stay valid across append(), reserve() and commit() until drain() or clear() drops them.
class ChunkChain {
 public:
  explicit ChunkChain(ChunkPool& pool) noexcept : pool_(&pool) {}
  ~ChunkChain() { clear(); }
  ChunkChain(ChunkChain&& other) noexcept;
  // Returns this chain's segments to its pool, then takes |other|'s segments and pool.
  ChunkChain& operator=(ChunkChain&& other) noexcept;
  ChunkChain(const ChunkChain&) = delete;
  ChunkChain& operator=(const ChunkChain&) = delete;

  // Bytes held.
  size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  // Copies |len| bytes to the back: fills the tail segment, then new ones.
  void append(const void* data, size_t len);
  // As append(), but bytes of the read being handled (pool().reading()), share_min or more
  // of them, are kept as a view of its block instead of copied, while the pool may_share().
  void append_read(const void* data, size_t len);
  // Appends |length| bytes of |from| starting |offset| bytes in (at most what it holds): views
  // are shared, owned bytes copied. |from| is unchanged.
  void append_range(const ChunkChain& from, size_t offset, size_t length);

  // Fills up to |max_iov| iovecs covering at most |limit| bytes from the front, without
  // consuming. Returns the count.
  int peek(struct iovec* iov, int max_iov, size_t limit = SIZE_MAX) const noexcept;

  // Copies up to |len| bytes from the front into |dst| without consuming; returns the bytes
  // copied.
  size_t copy_out(void* dst, size_t len) const noexcept;

  // Moves |len| bytes (at most size()) from the front to the back of |to|. Segments whose
  // bytes all go are relinked rather than copied, and part of a view becomes a view in |to|
  // (when both chains share a pool); |to| then appends after them, into owned free space.
  void move_to(ChunkChain& to, size_t len);

  // Drops |len| bytes (all of them when |len| >= size()) from the front, returning emptied
  // segments to the pool.
  void drain(size_t len) noexcept;
  void clear() noexcept;

  // Writable space at the tail for reading straight into the chain: returns a pointer and
  // size (allocating a chunk if the tail is full, a view or absent); commit(n) then adds the
  // |n| bytes written there. Nothing else may change the chain between the two calls.
  std::pair<uint8_t*, size_t> reserve();
  void commit(size_t n) noexcept;

  ChunkPool& pool() const noexcept { return *pool_; }

 private:
  // Links |segment| at the tail.
  void link(Segment* segment) noexcept;
  // Links a view of |block|'s bytes [begin, end) at the tail.
  void add_view(ReadBlock* block, uint32_t begin, uint32_t end);
  // The tail if it owns free space, else a fresh owned segment linked at the tail: a small one
  // after a view (frame headers between views), a chunk otherwise.
  Segment* writable_tail();

  ChunkPool* pool_;
  Segment* head_ = nullptr;
  Segment* tail_ = nullptr;
  size_t size_ = 0;
};

}  // namespace grelay
