#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "h2/session_allocator.h"

using grelay::SessionAllocator;

TEST_CASE("SessionAllocator reuses freed blocks of a size class") {
  SessionAllocator a;
  void* p = a.allocate(40);
  REQUIRE(p != nullptr);
  a.release(p);
  CHECK(a.cached_blocks() == 1);
  // 33..64 bytes share a class: the same block comes back.
  CHECK(a.allocate(64) == p);
  CHECK(a.cached_blocks() == 0);
  a.release(p);
}

TEST_CASE("SessionAllocator blocks are usable to their full size and do not overlap") {
  SessionAllocator a;
  std::vector<std::pair<unsigned char*, size_t>> blocks;
  for (size_t size : {1u, 31u, 32u, 33u, 500u, 512u, 513u, 4096u, 70000u}) {
    auto* p = static_cast<unsigned char*>(a.allocate(size));
    REQUIRE(p != nullptr);
    std::memset(p, static_cast<int>(size & 0xff), size);
    blocks.push_back({p, size});
  }
  for (auto& [p, size] : blocks) {
    for (size_t i = 0; i < size; ++i)
      REQUIRE(p[i] == static_cast<unsigned char>(size & 0xff));
    a.release(p);
  }
  // Large blocks (over 512 bytes) are not cached.
  CHECK(a.cached_blocks() == 6);
}

TEST_CASE("SessionAllocator nghttp2_mem calloc zeroes and realloc keeps the bytes") {
  SessionAllocator a;
  nghttp2_mem* mem = a.mem();
  auto* z = static_cast<unsigned char*>(mem->calloc(10, 10, mem->mem_user_data));
  REQUIRE(z != nullptr);
  for (int i = 0; i < 100; ++i)
    CHECK(z[i] == 0);
  std::memcpy(z, "grelay", 6);
  auto* bigger = static_cast<unsigned char*>(mem->realloc(z, 10000, mem->mem_user_data));
  REQUIRE(bigger != nullptr);
  CHECK(std::memcmp(bigger, "grelay", 6) == 0);
  auto* smaller = static_cast<unsigned char*>(mem->realloc(bigger, 3, mem->mem_user_data));
  REQUIRE(smaller != nullptr);
  CHECK(std::memcmp(smaller, "gre", 3) == 0);
  mem->free(smaller, mem->mem_user_data);
  CHECK(mem->calloc(SIZE_MAX / 2, 4, mem->mem_user_data) == nullptr);
  mem->free(nullptr, mem->mem_user_data);
}
