#include "core/chunk.h"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace grelay {

ChunkPool::ChunkPool(size_t max_cached) : max_cached_(max_cached) {}

ChunkPool::~ChunkPool() {
  while (free_ != nullptr) {
    Chunk* chunk = free_;
    free_ = chunk->next;
    delete chunk;
    --allocated_;
  }
  // A chunk still out would be put back into a dead pool.
  assert(allocated_ == 0);
}

Chunk* ChunkPool::get() {
  Chunk* chunk = free_;
  if (chunk != nullptr) {
    free_ = chunk->next;
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

void ChunkPool::put(Chunk* chunk) noexcept {
  if (chunk == nullptr) return;
  if (cached_ >= max_cached_) {
    delete chunk;
    --allocated_;
    return;
  }
  chunk->next = free_;
  free_ = chunk;
  ++cached_;
}

ChunkChain::ChunkChain(ChunkChain&& other) noexcept
    : pool_(other.pool_),
      head_(std::exchange(other.head_, nullptr)),
      tail_(std::exchange(other.tail_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

ChunkChain& ChunkChain::operator=(ChunkChain&& other) noexcept {
  if (this != &other) {
    clear();
    // The chunks belong to |other|'s pool, so they go back there.
    pool_ = other.pool_;
    head_ = std::exchange(other.head_, nullptr);
    tail_ = std::exchange(other.tail_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

Chunk* ChunkChain::add_chunk() {
  Chunk* chunk = pool_->get();
  if (tail_ == nullptr) {
    head_ = chunk;
  } else {
    tail_->next = chunk;
  }
  tail_ = chunk;
  return chunk;
}

void ChunkChain::append(const void* data, size_t len) {
  const auto* src = static_cast<const uint8_t*>(data);
  while (len > 0) {
    Chunk* chunk = tail_;
    if (chunk == nullptr || chunk->end == chunk_size) chunk = add_chunk();
    const size_t n = std::min(len, chunk_size - chunk->end);
    std::memcpy(chunk->data + chunk->end, src, n);
    chunk->end += static_cast<uint32_t>(n);
    size_ += n;
    src += n;
    len -= n;
  }
}

void ChunkChain::move_to(ChunkChain& to, size_t len) {
  len = std::min(len, size_);
  while (len > 0) {
    // Only a reserved tail chunk can be empty, and bytes remain, so the head holds some.
    Chunk* chunk = head_;
    const size_t n = chunk->end - chunk->begin;
    if (n <= len && to.pool_ == pool_) {
      head_ = chunk->next;
      if (head_ == nullptr) tail_ = nullptr;
      chunk->next = nullptr;
      size_ -= n;
      if (to.tail_ == nullptr) {
        to.head_ = chunk;
      } else {
        to.tail_->next = chunk;
      }
      to.tail_ = chunk;
      to.size_ += n;
      len -= n;
      continue;
    }
    const size_t m = std::min(n, len);
    to.append(chunk->data + chunk->begin, m);
    drain(m);
    len -= m;
  }
}

int ChunkChain::peek(struct iovec* iov, int max_iov, size_t limit) const noexcept {
  int count = 0;
  for (Chunk* chunk = head_; chunk != nullptr && count < max_iov && limit > 0;
       chunk = chunk->next) {
    const size_t n = std::min<size_t>(chunk->end - chunk->begin, limit);
    // Only a reserved, uncommitted tail chunk can be empty; it yields no iovec.
    if (n == 0) continue;
    iov[count].iov_base = chunk->data + chunk->begin;
    iov[count].iov_len = n;
    ++count;
    limit -= n;
  }
  return count;
}

size_t ChunkChain::copy_out(void* dst, size_t len) const noexcept {
  auto* out = static_cast<uint8_t*>(dst);
  size_t copied = 0;
  for (Chunk* chunk = head_; chunk != nullptr && copied < len; chunk = chunk->next) {
    const size_t n = std::min<size_t>(chunk->end - chunk->begin, len - copied);
    if (n == 0) continue;
    std::memcpy(out + copied, chunk->data + chunk->begin, n);
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
  // Some byte remains, so the loop stops at a chunk holding it and never empties the chain.
  while (len > 0) {
    Chunk* chunk = head_;
    const size_t n = chunk->end - chunk->begin;
    if (len < n) {
      chunk->begin += static_cast<uint32_t>(len);
      return;
    }
    len -= n;
    head_ = chunk->next;
    pool_->put(chunk);
  }
}

void ChunkChain::clear() noexcept {
  while (head_ != nullptr) {
    Chunk* chunk = head_;
    head_ = chunk->next;
    pool_->put(chunk);
  }
  tail_ = nullptr;
  size_ = 0;
}

std::pair<uint8_t*, size_t> ChunkChain::reserve() {
  Chunk* chunk = tail_;
  if (chunk == nullptr || chunk->end == chunk_size) chunk = add_chunk();
  return {chunk->data + chunk->end, chunk_size - chunk->end};
}

void ChunkChain::commit(size_t n) noexcept {
  if (n == 0) return;
  assert(tail_ != nullptr && n <= chunk_size - tail_->end);
  tail_->end += static_cast<uint32_t>(n);
  size_ += n;
}

}  // namespace grelay
