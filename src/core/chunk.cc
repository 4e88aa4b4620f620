#include "core/chunk.h"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace grelay {

ChunkPool::ChunkPool(size_t max_cached) : max_cached_(max_cached) {}

ChunkPool::~ChunkPool() {
  while (free_ != nullptr) {
    Chunk* chunk = free_;
    free_ = static_cast<Chunk*>(chunk->next);
    delete chunk;
    --allocated_;
  }
  while (free_small_ != nullptr) {
    Segment* small = free_small_;
    free_small_ = small->next;
    delete static_cast<SmallSegment*>(small);
    --small_allocated_;
  }
  while (free_blocks_ != nullptr) {
    ReadBlock* block = free_blocks_;
    free_blocks_ = block->next_free;
    delete block;
  }
  // A node or block still out would be put back into a dead pool.
  assert(allocated_ == 0);
  assert(small_allocated_ == 0);
  assert(blocks_out_ == 0);
}

Chunk* ChunkPool::get() {
  Chunk* chunk = free_;
  if (chunk != nullptr) {
    free_ = static_cast<Chunk*>(chunk->next);
    --cached_;
  } else {
    // Default-initialized: the 16 KiB of data are left as they are, not zeroed.
    chunk = new Chunk;
    ++allocated_;
  }
  chunk->next = nullptr;
  chunk->begin = 0;
  chunk->end = 0;
  return chunk;
}

SmallSegment* ChunkPool::get_small() {
  auto* small = static_cast<SmallSegment*>(free_small_);
  if (small != nullptr) {
    free_small_ = small->next;
    --small_cached_;
  } else {
    small = new SmallSegment;
    ++small_allocated_;
  }
  small->next = nullptr;
  small->begin = 0;
  small->end = 0;
  small->capacity = small_capacity;
  small->base = small->data;
  small->block = nullptr;
  return small;
}

void ChunkPool::put(Segment* segment) noexcept {
  if (segment == nullptr) return;
  if (segment->capacity != chunk_size) {
    // A small node, owning bytes or viewing a block.
    if (segment->block != nullptr) {
      release(segment->block);
      segment->block = nullptr;
    }
    if (small_cached_ >= max_cached_) {
      delete static_cast<SmallSegment*>(segment);
      --small_allocated_;
      return;
    }
    segment->next = free_small_;
    free_small_ = segment;
    ++small_cached_;
    return;
  }
  if (cached_ >= max_cached_) {
    delete static_cast<Chunk*>(segment);
    --allocated_;
    return;
  }
  segment->next = free_;
  free_ = static_cast<Chunk*>(segment);
  ++cached_;
}

ReadBlock* ChunkPool::get_block() {
  ReadBlock* block = free_blocks_;
  if (block != nullptr) {
    free_blocks_ = block->next_free;
    --blocks_cached_;
  } else {
    block = new ReadBlock;
    block->pool = this;
  }
  block->refs = 1;
  ++blocks_out_;
  return block;
}

void ChunkPool::release(ReadBlock* block) noexcept {
  if (--block->refs == 0) block->pool->put_block(block);
}

void ChunkPool::put_block(ReadBlock* block) noexcept {
  --blocks_out_;
  // A few stay for the next reads; a worker reads into one at a time.
  constexpr size_t max_cached_blocks = 4;
  if (blocks_cached_ >= max_cached_blocks) {
    delete block;
    return;
  }
  block->next_free = free_blocks_;
  free_blocks_ = block;
  ++blocks_cached_;
}

ChunkChain::ChunkChain(ChunkChain&& other) noexcept
    : pool_(other.pool_),
      head_(std::exchange(other.head_, nullptr)),
      tail_(std::exchange(other.tail_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

ChunkChain& ChunkChain::operator=(ChunkChain&& other) noexcept {
  if (this != &other) {
    clear();
    // The segments belong to |other|'s pool, so they go back there.
    pool_ = other.pool_;
    head_ = std::exchange(other.head_, nullptr);
    tail_ = std::exchange(other.tail_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void ChunkChain::link(Segment* segment) noexcept {
  if (tail_ == nullptr) {
    head_ = segment;
  } else {
    tail_->next = segment;
  }
  tail_ = segment;
}

Segment* ChunkChain::writable_tail() {
  Segment* tail = tail_;
  if (tail != nullptr && tail->block == nullptr && tail->end < tail->capacity) return tail;
  Segment* fresh;
  if (tail != nullptr && tail->block != nullptr) {
    fresh = pool_->get_small();
  } else {
    fresh = pool_->get();
  }
  link(fresh);
  return fresh;
}

void ChunkChain::add_view(ReadBlock* block, uint32_t begin, uint32_t end) {
  SmallSegment* view = pool_->get_small();
  view->capacity = 0;
  view->base = block->data;
  view->block = block;
  view->begin = begin;
  view->end = end;
  pool_->hold(block);
  link(view);
  size_ += end - begin;
}

void ChunkChain::append(const void* data, size_t len) {
  const auto* src = static_cast<const uint8_t*>(data);
  while (len > 0) {
    Segment* segment = writable_tail();
    const size_t n = std::min<size_t>(len, segment->capacity - segment->end);
    std::memcpy(segment->base + segment->end, src, n);
    segment->end += static_cast<uint32_t>(n);
    size_ += n;
    src += n;
    len -= n;
  }
}

void ChunkChain::append_read(const void* data, size_t len) {
  ReadBlock* block = pool_->reading();
  const auto* src = static_cast<const uint8_t*>(data);
  if (len >= share_min && block != nullptr && src >= block->data &&
      src + len <= block->data + read_block_size && pool_->may_share()) {
    const auto begin = static_cast<uint32_t>(src - block->data);
    // The bytes right before may be the same block's, viewed by the tail already (a payload
    // handed over in pieces): the view grows instead.
    if (tail_ != nullptr && tail_->block == block && tail_->end == begin) {
      tail_->end += static_cast<uint32_t>(len);
      size_ += len;
      return;
    }
    add_view(block, begin, begin + static_cast<uint32_t>(len));
    return;
  }
  append(data, len);
}

void ChunkChain::append_range(const ChunkChain& from, size_t offset, size_t length) {
  for (Segment* segment = from.head_; segment != nullptr && length > 0; segment = segment->next) {
    const size_t n = segment->end - segment->begin;
    if (offset >= n) {
      offset -= n;
      continue;
    }
    const size_t m = std::min(n - offset, length);
    const uint32_t begin = segment->begin + static_cast<uint32_t>(offset);
    if (segment->block != nullptr && from.pool_ == pool_) {
      add_view(segment->block, begin, begin + static_cast<uint32_t>(m));
    } else {
      append(segment->base + begin, m);
    }
    offset = 0;
    length -= m;
  }
}

void ChunkChain::move_to(ChunkChain& to, size_t len) {
  len = std::min(len, size_);
  while (len > 0) {
    Segment* segment = head_;
    const size_t n = segment->end - segment->begin;
    if (n == 0) {
      // A chunk reserved and committed with nothing, then followed by a view or relinked
      // segments. Bytes remain after it, so it is not the tail: it goes back to the pool (moving
      // its nothing to another pool's chain would never advance).
      head_ = segment->next;
      pool_->put(segment);
      continue;
    }
    if (n <= len && to.pool_ == pool_) {
      head_ = segment->next;
      if (head_ == nullptr) tail_ = nullptr;
      segment->next = nullptr;
      size_ -= n;
      to.link(segment);
      to.size_ += n;
      len -= n;
      continue;
    }
    const size_t m = std::min(n, len);
    if (segment->block != nullptr && to.pool_ == pool_) {
      to.add_view(segment->block, segment->begin, segment->begin + static_cast<uint32_t>(m));
    } else {
      to.append(segment->base + segment->begin, m);
    }
    drain(m);
    len -= m;
  }
}

int ChunkChain::peek(struct iovec* iov, int max_iov, size_t limit) const noexcept {
  int count = 0;
  for (Segment* segment = head_; segment != nullptr && count < max_iov && limit > 0;
       segment = segment->next) {
    const size_t n = std::min<size_t>(segment->end - segment->begin, limit);
    // An empty segment (a chunk reserved and committed with nothing) yields no iovec.
    if (n == 0) continue;
    iov[count].iov_base = segment->base + segment->begin;
    iov[count].iov_len = n;
    ++count;
    limit -= n;
  }
  return count;
}

size_t ChunkChain::copy_out(void* dst, size_t len) const noexcept {
  auto* out = static_cast<uint8_t*>(dst);
  size_t copied = 0;
  for (Segment* segment = head_; segment != nullptr && copied < len; segment = segment->next) {
    const size_t n = std::min<size_t>(segment->end - segment->begin, len - copied);
    if (n == 0) continue;
    std::memcpy(out + copied, segment->base + segment->begin, n);
    copied += n;
  }
  return copied;
}

void ChunkChain::drain(size_t len) noexcept {
  if (len == 0) return;
  if (len >= size_) {
    clear();
    return;
  }
  size_ -= len;
  // Some byte remains, so the loop stops at a segment holding it and never empties the chain.
  while (len > 0) {
    Segment* segment = head_;
    const size_t n = segment->end - segment->begin;
    if (len < n) {
      segment->begin += static_cast<uint32_t>(len);
      return;
    }
    len -= n;
    head_ = segment->next;
    pool_->put(segment);
  }
}

void ChunkChain::clear() noexcept {
  while (head_ != nullptr) {
    Segment* segment = head_;
    head_ = segment->next;
    pool_->put(segment);
  }
  tail_ = nullptr;
  size_ = 0;
}

std::pair<uint8_t*, size_t> ChunkChain::reserve() {
  Segment* segment = tail_;
  // A view's bytes are not writable (its capacity is 0, whatever its end).
  if (segment == nullptr || segment->block != nullptr || segment->end == segment->capacity) {
    segment = pool_->get();
    link(segment);
  }
  return {segment->base + segment->end, segment->capacity - segment->end};
}

void ChunkChain::commit(size_t n) noexcept {
  if (n == 0) return;
  assert(tail_ != nullptr && n <= tail_->capacity - tail_->end);
  tail_->end += static_cast<uint32_t>(n);
  size_ += n;
}

}  // namespace grelay
