#include "h2/session_allocator.h"

#include <cstdlib>
#include <cstring>

namespace grelay {
namespace {

void* mem_malloc(size_t size, void* user) {
  return static_cast<SessionAllocator*>(user)->allocate(size);
}
void mem_free(void* ptr, void* user) {
  static_cast<SessionAllocator*>(user)->release(ptr);
}
void* mem_calloc(size_t n, size_t size, void* user) {
  if (size != 0 && n > SIZE_MAX / size) return nullptr;
  void* p = static_cast<SessionAllocator*>(user)->allocate(n * size);
  if (p) std::memset(p, 0, n * size);
  return p;
}
void* mem_realloc(void* ptr, size_t size, void* user) {
  return static_cast<SessionAllocator*>(user)->reallocate(ptr, size);
}

}  // namespace

SessionAllocator::SessionAllocator() noexcept
    : mem_{this, mem_malloc, mem_free, mem_calloc, mem_realloc} {}

SessionAllocator::~SessionAllocator() {
  for (size_t c = 0; c < class_count; ++c) {
    while (FreeBlock* block = free_[c]) {
      free_[c] = block->next;
      std::free(reinterpret_cast<Header*>(block) - 1);
    }
  }
}

void* SessionAllocator::allocate(size_t size) noexcept {
  if (size == 0) size = 1;
  size_t c = class_of(size);
  if (c < class_count) {
    if (FreeBlock* block = free_[c]) {
      free_[c] = block->next;
      --cached_[c];
      return block;
    }
    auto* header = static_cast<Header*>(std::malloc(sizeof(Header) + class_size(c)));
    if (!header) return nullptr;
    header->size_class = static_cast<uint32_t>(c);
    header->size = class_size(c);
    return header + 1;
  }
  auto* header = static_cast<Header*>(std::malloc(sizeof(Header) + size));
  if (!header) return nullptr;
  header->size_class = large_class;
  header->size = size;
  return header + 1;
}

void SessionAllocator::release(void* ptr) noexcept {
  if (!ptr) return;
  Header* header = static_cast<Header*>(ptr) - 1;
  uint32_t c = header->size_class;
  if (c == large_class || cached_[c] >= max_cached_per_class) {
    std::free(header);
    return;
  }
  auto* block = static_cast<FreeBlock*>(ptr);
  block->next = free_[c];
  free_[c] = block;
  ++cached_[c];
}

void* SessionAllocator::reallocate(void* ptr, size_t size) noexcept {
  if (!ptr) return allocate(size);
  if (size == 0) {
    release(ptr);
    return nullptr;
  }
  Header* header = static_cast<Header*>(ptr) - 1;
  if (size <= header->size && header->size_class != large_class) return ptr;
  void* fresh = allocate(size);
  if (!fresh) return nullptr;
  std::memcpy(fresh, ptr, header->size < size ? header->size : size);
  release(ptr);
  return fresh;
}

size_t SessionAllocator::cached_blocks() const noexcept {
  size_t total = 0;
  for (size_t c = 0; c < class_count; ++c)
    total += cached_[c];
  return total;
}

}  // namespace grelay
