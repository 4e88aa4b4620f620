#include "core/chunk.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using grelay::Chunk;
using grelay::chunk_size;
using grelay::ChunkChain;
using grelay::ChunkPool;
using grelay::max_blocks_out;
using grelay::read_block_size;
using grelay::ReadBlock;
using grelay::share_min;
using grelay::small_capacity;
using grelay::SmallSegment;

namespace {

// |n| bytes of a pattern that differs at every position within a chunk and across chunks.
std::string pattern(size_t n, size_t seed = 0) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i)
    out[i] = static_cast<char>((i + seed) * 131 + (i + seed) / 251);
  return out;
}

std::string contents(const ChunkChain& chain) {
  std::string out(chain.size(), '\0');
  REQUIRE(chain.copy_out(out.data(), out.size()) == chain.size());
  return out;
}

// The bytes the iovecs cover, concatenated.
std::string gather(const iovec* iov, int count) {
  std::string out;
  for (int i = 0; i < count; ++i) {
    out.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
  }
  return out;
}

// A read block of |pool| holding pattern(read_block_size, seed), with one holder (the caller).
ReadBlock* filled_block(ChunkPool& pool, size_t seed = 0) {
  ReadBlock* block = pool.get_block();
  const std::string bytes = pattern(read_block_size, seed);
  std::memcpy(block->data, bytes.data(), bytes.size());
  return block;
}

std::string block_bytes(const ReadBlock* block, size_t offset, size_t len) {
  return std::string(reinterpret_cast<const char*>(block->data) + offset, len);
}

// Whether |p| points into |block|'s bytes.
bool in_block(const ReadBlock* block, const void* p) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  const auto first = reinterpret_cast<uintptr_t>(block->data);
  return address >= first && address < first + read_block_size;
}

// All the iovecs of |chain|.
std::vector<iovec> iovecs(const ChunkChain& chain) {
  std::vector<iovec> iov(4096);
  const int n = chain.peek(iov.data(), static_cast<int>(iov.size()));
  REQUIRE(n < static_cast<int>(iov.size()));
  iov.resize(static_cast<size_t>(n));
  return iov;
}

// How many of |chain|'s iovecs point into |block|: its views of it.
size_t views_of(const ChunkChain& chain, const ReadBlock* block) {
  size_t n = 0;
  for (const iovec& v : iovecs(chain)) {
    if (in_block(block, v.iov_base)) ++n;
  }
  return n;
}

// Makes |block| the one being read for the scope, as a connection does around its read
// callback.
class Reading {
 public:
  Reading(ChunkPool& pool, ReadBlock* block) : pool_(pool) { pool.set_reading(block); }
  ~Reading() { pool_.set_reading(nullptr); }
  Reading(const Reading&) = delete;
  Reading& operator=(const Reading&) = delete;

 private:
  ChunkPool& pool_;
};

}  // namespace

TEST_CASE("ChunkPool hands out empty chunks and reuses returned ones") {
  ChunkPool pool;
  CHECK(pool.cached() == 0);
  CHECK(pool.allocated() == 0);
  Chunk* a = pool.get();
  REQUIRE(a != nullptr);
  CHECK(a->next == nullptr);
  CHECK(a->begin == 0);
  CHECK(a->end == 0);
  CHECK(pool.allocated() == 1);
  a->begin = 5;
  a->end = 100;
  a->next = a;
  pool.put(a);
  CHECK(pool.cached() == 1);
  CHECK(pool.allocated() == 1);
  Chunk* b = pool.get();
  CHECK(b == a);  // Last in, first out: the warmest chunk.
  CHECK(b->next == nullptr);
  CHECK(b->begin == 0);
  CHECK(b->end == 0);
  CHECK(pool.cached() == 0);
  CHECK(pool.allocated() == 1);
  pool.put(b);
  pool.put(nullptr);
  CHECK(pool.cached() == 1);
}

TEST_CASE("ChunkPool keeps at most max_cached free chunks") {
  ChunkPool pool(2);
  std::vector<Chunk*> chunks;
  for (int i = 0; i < 5; ++i)
    chunks.push_back(pool.get());
  CHECK(pool.allocated() == 5);
  for (Chunk* c : chunks)
    pool.put(c);
  CHECK(pool.cached() == 2);
  CHECK(pool.allocated() == 2);
  // Reuses the cached two, then allocates.
  for (int i = 0; i < 3; ++i)
    chunks[i] = pool.get();
  CHECK(pool.cached() == 0);
  CHECK(pool.allocated() == 3);
  for (int i = 0; i < 3; ++i)
    pool.put(chunks[i]);
  CHECK(pool.cached() == 2);
  CHECK(pool.allocated() == 2);
}

TEST_CASE("ChunkPool with max_cached 0 caches nothing") {
  ChunkPool pool(0);
  Chunk* c = pool.get();
  pool.put(c);
  CHECK(pool.cached() == 0);
  CHECK(pool.allocated() == 0);
}

TEST_CASE("ChunkChain starts empty") {
  ChunkPool pool;
  ChunkChain chain(pool);
  CHECK(chain.empty());
  CHECK(chain.size() == 0);
  CHECK(&chain.pool() == &pool);
  iovec iov[4];
  CHECK(chain.peek(iov, 4) == 0);
  char buf[4];
  CHECK(chain.copy_out(buf, sizeof(buf)) == 0);
  chain.drain(10);
  chain.append(nullptr, 0);
  CHECK(chain.empty());
  CHECK(pool.allocated() == 0);
}

TEST_CASE("ChunkChain append within one chunk and across chunk boundaries") {
  ChunkPool pool;
  ChunkChain chain(pool);
  const std::string a = pattern(10);
  chain.append(a.data(), a.size());
  CHECK(chain.size() == 10);
  CHECK_FALSE(chain.empty());
  CHECK(pool.allocated() == 1);
  CHECK(contents(chain) == a);

  // Fills the rest of the first chunk exactly.
  const std::string b = pattern(chunk_size - 10, 10);
  chain.append(b.data(), b.size());
  CHECK(chain.size() == chunk_size);
  CHECK(pool.allocated() == 1);

  // One more byte needs a second chunk; then a write spanning three chunks.
  chain.append("x", 1);
  CHECK(pool.allocated() == 2);
  const std::string c = pattern(2 * chunk_size + 7, 99);
  chain.append(c.data(), c.size());
  CHECK(chain.size() == 3 * chunk_size + 8);
  CHECK(pool.allocated() == 4);
  CHECK(contents(chain) == a + b + "x" + c);
}

TEST_CASE("ChunkChain peek returns one iovec per chunk and respects max_iov and limit") {
  ChunkPool pool;
  ChunkChain chain(pool);
  const std::string data = pattern(2 * chunk_size + 100);
  chain.append(data.data(), data.size());

  iovec iov[8];
  int n = chain.peek(iov, 8);
  REQUIRE(n == 3);
  CHECK(iov[0].iov_len == chunk_size);
  CHECK(iov[1].iov_len == chunk_size);
  CHECK(iov[2].iov_len == 100);
  CHECK(gather(iov, n) == data);

  n = chain.peek(iov, 2);
  REQUIRE(n == 2);
  CHECK(gather(iov, n) == data.substr(0, 2 * chunk_size));

  n = chain.peek(iov, 8, 10);
  REQUIRE(n == 1);
  CHECK(gather(iov, n) == data.substr(0, 10));

  n = chain.peek(iov, 8, chunk_size);
  REQUIRE(n == 1);
  CHECK(iov[0].iov_len == chunk_size);

  n = chain.peek(iov, 8, chunk_size + 1);
  REQUIRE(n == 2);
  CHECK(iov[1].iov_len == 1);
  CHECK(gather(iov, n) == data.substr(0, chunk_size + 1));

  CHECK(chain.peek(iov, 8, 0) == 0);
  CHECK(chain.peek(iov, 0) == 0);
  // Peeking consumes nothing.
  CHECK(chain.size() == data.size());
}

TEST_CASE("ChunkChain copy_out copies a prefix without consuming") {
  ChunkPool pool;
  ChunkChain chain(pool);
  const std::string data = pattern(chunk_size + 50);
  chain.append(data.data(), data.size());
  std::string out(chunk_size + 10, '\0');
  CHECK(chain.copy_out(out.data(), out.size()) == out.size());
  CHECK(out == data.substr(0, out.size()));
  std::string all(data.size() + 100, '\0');
  CHECK(chain.copy_out(all.data(), all.size()) == data.size());
  CHECK(all.substr(0, data.size()) == data);
  CHECK(chain.copy_out(all.data(), 0) == 0);
  CHECK(chain.size() == data.size());
}

TEST_CASE("ChunkChain drain drops bytes from the front and returns emptied chunks") {
  ChunkPool pool;
  ChunkChain chain(pool);
  const std::string data = pattern(3 * chunk_size);
  chain.append(data.data(), data.size());
  REQUIRE(pool.allocated() == 3);

  chain.drain(0);
  CHECK(chain.size() == data.size());

  SUBCASE("partial drain inside the first chunk") {
    chain.drain(100);
    CHECK(chain.size() == data.size() - 100);
    CHECK(pool.cached() == 0);
    CHECK(contents(chain) == data.substr(100));
    iovec iov[4];
    REQUIRE(chain.peek(iov, 4) == 3);
    CHECK(iov[0].iov_len == chunk_size - 100);
  }
  SUBCASE("drain to exactly a chunk boundary") {
    chain.drain(chunk_size);
    CHECK(pool.cached() == 1);
    CHECK(contents(chain) == data.substr(chunk_size));
  }
  SUBCASE("drain across chunks") {
    chain.drain(chunk_size + 1);
    CHECK(pool.cached() == 1);
    CHECK(contents(chain) == data.substr(chunk_size + 1));
    chain.drain(chunk_size);
    CHECK(pool.cached() == 2);
    CHECK(chain.size() == chunk_size - 1);
    CHECK(contents(chain) == data.substr(2 * chunk_size + 1));
  }
  SUBCASE("drain everything") {
    chain.drain(data.size());
    CHECK(chain.empty());
    CHECK(pool.cached() == 3);
    CHECK(pool.allocated() == 3);
  }
  SUBCASE("drain more than held") {
    chain.drain(SIZE_MAX);
    CHECK(chain.empty());
    CHECK(pool.cached() == 3);
  }
  // The chain stays usable after any drain.
  chain.append("tail", 4);
  std::string out(chain.size(), '\0');
  chain.copy_out(out.data(), out.size());
  CHECK(out.substr(out.size() - 4) == "tail");
}

TEST_CASE("ChunkChain append after partial drain keeps the bytes in order") {
  ChunkPool pool;
  ChunkChain chain(pool);
  std::string model;
  size_t seed = 0;
  // Interleaved appends and drains of awkward sizes, checked against a std::string.
  for (size_t step = 0; step < 200; ++step) {
    const size_t len = (step * 7919) % (chunk_size + 333);
    const std::string bytes = pattern(len, seed);
    seed += len;
    chain.append(bytes.data(), bytes.size());
    model += bytes;
    const size_t drop = (step * 104729) % (chain.size() + 1);
    chain.drain(drop);
    model.erase(0, drop);
    REQUIRE(chain.size() == model.size());
  }
  CHECK(contents(chain) == model);
  // Every chunk is either in the chain or cached; no more than the bytes need plus the tail.
  CHECK(pool.allocated() - pool.cached() <= model.size() / chunk_size + 2);
}

TEST_CASE("ChunkChain append never moves bytes already peeked") {
  ChunkPool pool;
  ChunkChain chain(pool);
  const std::string first = pattern(chunk_size - 3);
  chain.append(first.data(), first.size());
  iovec before[2];
  REQUIRE(chain.peek(before, 2) == 1);

  const std::string more = pattern(3 * chunk_size, 5);
  chain.append(more.data(), more.size());
  auto [space, space_len] = chain.reserve();
  std::memset(space, 'z', space_len);
  chain.commit(space_len);

  iovec after[8];
  const int n = chain.peek(after, 8);
  REQUIRE(n >= 1);
  CHECK(after[0].iov_base == before[0].iov_base);
  CHECK(after[0].iov_len == chunk_size);  // The tail of the first chunk got filled.
  CHECK(std::string(static_cast<const char*>(before[0].iov_base), before[0].iov_len) == first);
}

TEST_CASE("ChunkChain reserve and commit read straight into the tail") {
  ChunkPool pool;
  ChunkChain chain(pool);

  auto [p1, n1] = chain.reserve();
  REQUIRE(p1 != nullptr);
  CHECK(n1 == chunk_size);
  CHECK(pool.allocated() == 1);
  CHECK(chain.empty());
  iovec iov[4];
  CHECK(chain.peek(iov, 4) == 0);  // A reserved, uncommitted chunk shows no bytes.

  std::memcpy(p1, "hello", 5);
  chain.commit(5);
  CHECK(chain.size() == 5);
  CHECK(contents(chain) == "hello");

  // The next reserve continues in the same chunk.
  auto [p2, n2] = chain.reserve();
  CHECK(p2 == p1 + 5);
  CHECK(n2 == chunk_size - 5);
  chain.commit(0);
  CHECK(chain.size() == 5);
  std::memset(p2, 'a', n2);
  chain.commit(n2);
  CHECK(chain.size() == chunk_size);
  CHECK(pool.allocated() == 1);

  // A full tail makes reserve add a chunk.
  auto [p3, n3] = chain.reserve();
  CHECK(n3 == chunk_size);
  CHECK(pool.allocated() == 2);
  std::memcpy(p3, "!", 1);
  chain.commit(1);
  const std::string all = contents(chain);
  CHECK(all.size() == chunk_size + 1);
  CHECK(all.substr(0, 5) == "hello");
  CHECK(all.substr(5, chunk_size - 5) == std::string(chunk_size - 5, 'a'));
  CHECK(all.back() == '!');

  // append continues after committed bytes.
  chain.append("?", 1);
  CHECK(contents(chain).substr(chunk_size) == "!?");
}

TEST_CASE("ChunkChain reserve after append uses the tail's free space") {
  ChunkPool pool;
  ChunkChain chain(pool);
  chain.append("abc", 3);
  auto [p, n] = chain.reserve();
  CHECK(n == chunk_size - 3);
  std::memcpy(p, "de", 2);
  chain.commit(2);
  CHECK(contents(chain) == "abcde");
  CHECK(pool.allocated() == 1);
}

TEST_CASE("ChunkChain reserved but uncommitted chunk is returned on clear") {
  ChunkPool pool;
  {
    ChunkChain chain(pool);
    chain.reserve();
    CHECK(pool.allocated() == 1);
    CHECK(pool.cached() == 0);
    // drain(0) is a no-op even with nothing committed.
    chain.drain(0);
    CHECK(pool.cached() == 0);
    chain.clear();
    CHECK(pool.cached() == 1);
    chain.reserve();
    CHECK(pool.cached() == 0);
  }
  // The destructor returned it.
  CHECK(pool.cached() == 1);
  CHECK(pool.allocated() == 1);
}

TEST_CASE("ChunkChain move construction and assignment transfer the bytes") {
  ChunkPool pool;
  const std::string data = pattern(chunk_size + 10);
  ChunkChain a(pool);
  a.append(data.data(), data.size());

  ChunkChain b(std::move(a));
  CHECK(a.empty());
  CHECK(a.size() == 0);
  CHECK(b.size() == data.size());
  CHECK(contents(b) == data);
  CHECK(pool.allocated() == 2);
  CHECK(pool.cached() == 0);

  // The moved-from chain is usable.
  a.append("x", 1);
  CHECK(contents(a) == "x");
  CHECK(pool.allocated() == 3);

  // Assignment returns the target's own chunk to the pool first.
  a = std::move(b);
  CHECK(b.empty());
  CHECK(contents(a) == data);
  CHECK(pool.cached() == 1);
  CHECK(pool.allocated() == 3);

  auto& self = a;
  a = std::move(self);
  CHECK(contents(a) == data);

  a.clear();
  CHECK(a.empty());
  CHECK(pool.cached() == 3);
}

TEST_CASE("ChunkChain move assignment across pools returns chunks to their own pool") {
  ChunkPool pool1;
  ChunkPool pool2;
  {
    ChunkChain a(pool1);
    ChunkChain b(pool2);
    a.append("one", 3);
    b.append("two", 3);
    a = std::move(b);
    CHECK(&a.pool() == &pool2);
    CHECK(pool1.cached() == 1);
    CHECK(contents(a) == "two");
  }
  CHECK(pool1.cached() == 1);
  CHECK(pool2.cached() == 1);
  CHECK(pool1.allocated() == 1);
  CHECK(pool2.allocated() == 1);
}

TEST_CASE("ChunkChain destruction returns every chunk to the pool") {
  ChunkPool pool(2);
  {
    ChunkChain chain(pool);
    const std::string data = pattern(5 * chunk_size);
    chain.append(data.data(), data.size());
    CHECK(pool.allocated() == 5);
  }
  // Two cached, three freed past the cap.
  CHECK(pool.cached() == 2);
  CHECK(pool.allocated() == 2);
}

TEST_CASE("ChunkChain move_to relinks whole chunks and copies partial ones") {
  grelay::ChunkPool pool;
  grelay::ChunkChain from(pool);
  grelay::ChunkChain to(pool);
  std::vector<uint8_t> bytes(2 * grelay::chunk_size + 100);
  for (size_t i = 0; i < bytes.size(); ++i)
    bytes[i] = static_cast<uint8_t>(i * 7);
  from.append(bytes.data(), bytes.size());
  to.append("hdr", 3);
  const size_t before = pool.allocated();

  // The first chunk goes whole: no chunk is taken from the pool for it.
  from.move_to(to, grelay::chunk_size);
  CHECK(pool.allocated() == before);
  CHECK(from.size() == grelay::chunk_size + 100);
  CHECK(to.size() == 3 + grelay::chunk_size);

  // Part of the next chunk is copied; the rest stays in |from|.
  from.move_to(to, 10);
  CHECK(from.size() == grelay::chunk_size + 90);

  // What |to| appends next lands after the moved bytes.
  to.append("x", 1);
  from.move_to(to, SIZE_MAX);
  CHECK(from.empty());

  std::vector<uint8_t> out(to.size());
  REQUIRE(to.copy_out(out.data(), out.size()) == out.size());
  std::vector<uint8_t> want = {'h', 'd', 'r'};
  want.insert(want.end(), bytes.begin(), bytes.begin() + grelay::chunk_size + 10);
  want.push_back('x');
  want.insert(want.end(), bytes.begin() + grelay::chunk_size + 10, bytes.end());
  CHECK(out == want);

  // |from| keeps working after giving its chunks away.
  from.append("abc", 3);
  CHECK(from.size() == 3);
}

TEST_CASE("ChunkPool hands out read blocks with one holder and takes them back from the last") {
  ChunkPool pool;
  CHECK(pool.blocks_out() == 0);
  CHECK(pool.reading() == nullptr);
  ReadBlock* a = pool.get_block();
  REQUIRE(a != nullptr);
  CHECK(a->refs == 1);
  CHECK(a->pool == &pool);
  CHECK(pool.blocks_out() == 1);
  CHECK(pool.may_share());

  pool.hold(a);
  CHECK(a->refs == 2);
  ChunkPool::release(a);
  CHECK(a->refs == 1);
  CHECK(pool.blocks_out() == 1);
  ChunkPool::release(a);
  CHECK(pool.blocks_out() == 0);
  // No chunk or small node is involved.
  CHECK(pool.allocated() == 0);
  CHECK(pool.small_allocated() == 0);

  // The returned block is reused, with one holder again.
  ReadBlock* b = pool.get_block();
  CHECK(b == a);
  CHECK(b->refs == 1);
  CHECK(pool.blocks_out() == 1);
  pool.set_reading(b);
  CHECK(pool.reading() == b);
  pool.set_reading(nullptr);
  CHECK(pool.reading() == nullptr);
  ChunkPool::release(b);
  CHECK(pool.blocks_out() == 0);
}

TEST_CASE("ChunkPool may_share while at most max_blocks_out blocks are out") {
  ChunkPool pool;
  std::vector<ReadBlock*> blocks;
  for (size_t i = 0; i < max_blocks_out; ++i)
    blocks.push_back(pool.get_block());
  CHECK(pool.blocks_out() == max_blocks_out);
  CHECK(pool.may_share());
  blocks.push_back(pool.get_block());
  CHECK(pool.blocks_out() == max_blocks_out + 1);
  CHECK_FALSE(pool.may_share());
  ChunkPool::release(blocks.back());
  blocks.pop_back();
  CHECK(pool.may_share());
  for (ReadBlock* block : blocks)
    ChunkPool::release(block);
  CHECK(pool.blocks_out() == 0);
}

TEST_CASE("ChunkPool hands out small segments owning small_capacity bytes and reuses them") {
  ChunkPool pool;
  SmallSegment* a = pool.get_small();
  REQUIRE(a != nullptr);
  CHECK(a->next == nullptr);
  CHECK(a->begin == 0);
  CHECK(a->end == 0);
  CHECK(a->capacity == small_capacity);
  CHECK(a->base == a->data);
  CHECK(a->block == nullptr);
  CHECK(pool.small_allocated() == 1);
  CHECK(pool.allocated() == 0);
  a->end = 7;
  pool.put(a);
  CHECK(pool.small_allocated() == 1);
  CHECK(pool.cached() == 0);  // Chunks are counted apart.
  SmallSegment* b = pool.get_small();
  CHECK(b == a);
  CHECK(b->end == 0);
  CHECK(b->capacity == small_capacity);
  CHECK(pool.small_allocated() == 1);
  pool.put(b);

  ChunkPool none(0);
  none.put(none.get_small());
  CHECK(none.small_allocated() == 0);
}

TEST_CASE("ChunkChain append_read of share_min bytes in the reading block keeps a view of it") {
  ChunkPool pool;
  ReadBlock* block = filled_block(pool, 3);
  ChunkChain chain(pool);
  {
    Reading reading(pool, block);
    chain.append_read(block->data + 100, share_min);
  }
  CHECK(chain.size() == share_min);
  iovec iov[4];
  REQUIRE(chain.peek(iov, 4) == 1);
  // No copy: the chain's bytes are the block's.
  CHECK(iov[0].iov_base == block->data + 100);
  CHECK(iov[0].iov_len == share_min);
  CHECK(block->refs == 2);
  CHECK(pool.blocks_out() == 1);
  // One small node for the view, no chunk.
  CHECK(pool.allocated() == 0);
  CHECK(pool.small_allocated() == 1);
  CHECK(contents(chain) == block_bytes(block, 100, share_min));
  const std::string want = contents(chain);

  SUBCASE("the reader lets go first, then the chain drains") {
    ChunkPool::release(block);
    CHECK(block->refs == 1);
    CHECK(pool.blocks_out() == 1);
    CHECK(contents(chain) == want);
    chain.drain(share_min - 1);
    CHECK(block->refs == 1);
    CHECK(pool.blocks_out() == 1);
    REQUIRE(chain.peek(iov, 4) == 1);
    CHECK(iov[0].iov_base == block->data + 100 + share_min - 1);
    CHECK(contents(chain) == want.substr(share_min - 1));
    chain.drain(1);
    CHECK(chain.empty());
    CHECK(pool.blocks_out() == 0);
  }
  SUBCASE("the chain clears first, then the reader lets go") {
    chain.clear();
    CHECK(block->refs == 1);
    CHECK(pool.blocks_out() == 1);
    ChunkPool::release(block);
    CHECK(pool.blocks_out() == 0);
  }
  SUBCASE("the reader lets go, then the chain dies") {
    ChunkPool::release(block);
    {
      ChunkChain gone(std::move(chain));
      CHECK(pool.blocks_out() == 1);
      CHECK(contents(gone) == want);
    }
    CHECK(pool.blocks_out() == 0);
  }
  CHECK(pool.small_allocated() == 1);  // The view's node is cached.
}

TEST_CASE("ChunkChain append_read views the last bytes of a block and the whole block") {
  ChunkPool pool;
  ReadBlock* block = filled_block(pool, 4);
  ChunkChain tail(pool);
  ChunkChain whole(pool);
  {
    Reading reading(pool, block);
    tail.append_read(block->data + read_block_size - share_min, share_min);
    whole.append_read(block->data, read_block_size);
  }
  ChunkPool::release(block);
  iovec iov[4];
  REQUIRE(tail.peek(iov, 4) == 1);
  CHECK(iov[0].iov_base == block->data + read_block_size - share_min);
  CHECK(iov[0].iov_len == share_min);
  REQUIRE(whole.peek(iov, 4) == 1);
  CHECK(iov[0].iov_base == block->data);
  CHECK(iov[0].iov_len == read_block_size);
  CHECK(block->refs == 2);
  CHECK(contents(whole) == pattern(read_block_size, 4));
  CHECK(pool.allocated() == 0);
  whole.clear();
  CHECK(pool.blocks_out() == 1);
  tail.clear();
  CHECK(pool.blocks_out() == 0);
}

TEST_CASE("ChunkChain append_read copies small payloads, foreign bytes, and past max_blocks_out") {
  ChunkPool pool;
  ReadBlock* block = filled_block(pool, 5);
  ChunkChain chain(pool);
  std::string want;
  std::vector<ReadBlock*> others;

  SUBCASE("below share_min") {
    Reading reading(pool, block);
    chain.append_read(block->data + 10, share_min - 1);
    want = block_bytes(block, 10, share_min - 1);
  }
  SUBCASE("bytes outside the reading block") {
    const std::string outside = pattern(2 * share_min, 6);
    Reading reading(pool, block);
    chain.append_read(outside.data(), outside.size());
    want = outside;
  }
  SUBCASE("no block being read") {
    chain.append_read(block->data + 10, share_min);
    want = block_bytes(block, 10, share_min);
  }
  SUBCASE("another block being read") {
    others.push_back(filled_block(pool, 7));
    Reading reading(pool, others.back());
    chain.append_read(block->data + 10, share_min);
    want = block_bytes(block, 10, share_min);
  }
  SUBCASE("more than max_blocks_out blocks out") {
    for (size_t i = 0; i < max_blocks_out; ++i)
      others.push_back(pool.get_block());
    REQUIRE(pool.blocks_out() == max_blocks_out + 1);
    Reading reading(pool, block);
    chain.append_read(block->data + 10, share_min);
    want = block_bytes(block, 10, share_min);
  }
  const size_t out = pool.blocks_out();
  CHECK(chain.size() == want.size());
  iovec iov[4];
  REQUIRE(chain.peek(iov, 4) == 1);
  CHECK_FALSE(in_block(block, iov[0].iov_base));
  CHECK(iov[0].iov_len == want.size());
  // Copied into a chunk; the block has no other holder.
  CHECK(pool.allocated() == 1);
  CHECK(pool.small_allocated() == 0);
  CHECK(block->refs == 1);
  for (ReadBlock* other : others)
    CHECK(other->refs == 1);
  // The bytes are the chain's own: they outlive the block's.
  std::memset(block->data, 0, read_block_size);
  ChunkPool::release(block);
  CHECK(pool.blocks_out() == out - 1);
  CHECK(contents(chain) == want);
  for (ReadBlock* other : others)
    ChunkPool::release(other);
  CHECK(pool.blocks_out() == 0);
}

TEST_CASE("ChunkChain append_read views while exactly max_blocks_out blocks are out") {
  ChunkPool pool;
  ReadBlock* block = filled_block(pool, 8);
  std::vector<ReadBlock*> others;
  for (size_t i = 1; i < max_blocks_out; ++i)
    others.push_back(pool.get_block());
  REQUIRE(pool.blocks_out() == max_blocks_out);
  ChunkChain chain(pool);
  {
    Reading reading(pool, block);
    chain.append_read(block->data, share_min);
  }
  CHECK(views_of(chain, block) == 1);
  CHECK(block->refs == 2);
  for (ReadBlock* other : others)
    ChunkPool::release(other);
  ChunkPool::release(block);
  CHECK(pool.blocks_out() == 1);
  chain.clear();
  CHECK(pool.blocks_out() == 0);
}

TEST_CASE("ChunkChain append_read of contiguous pieces of a block grows one view") {
  ChunkPool pool;
  ReadBlock* block = filled_block(pool, 9);
  ChunkChain chain(pool);
  {
    Reading reading(pool, block);
    chain.append_read(block->data + 100, 5000);
    chain.append_read(block->data + 5100, 6000);
    chain.append_read(block->data + 11100, share_min);
  }
  ChunkPool::release(block);
  iovec iov[4];
  REQUIRE(chain.peek(iov, 4) == 1);
  CHECK(iov[0].iov_base == block->data + 100);
  CHECK(iov[0].iov_len == 11000 + share_min);
  CHECK(chain.size() == 11000 + share_min);
  CHECK(block->refs == 1);
  CHECK(pool.small_allocated() == 1);
  CHECK(contents(chain) == pattern(read_block_size, 9).substr(100, 11000 + share_min));
  // Draining the front of the grown view keeps the rest of it.
  chain.drain(5000);
  REQUIRE(chain.peek(iov, 4) == 1);
  CHECK(iov[0].iov_base == block->data + 5100);
  CHECK(pool.blocks_out() == 1);
  chain.clear();
  CHECK(pool.blocks_out() == 0);
}

TEST_CASE("ChunkChain append_read of pieces that do not follow the tail view makes new views") {
  ChunkPool pool;
  ReadBlock* block = filled_block(pool, 10);
  ReadBlock* second = filled_block(pool, 11);
  const std::string bytes = pattern(read_block_size, 10);
  const std::string second_bytes = pattern(read_block_size, 11);
  ChunkChain chain(pool);
  std::vector<std::pair<const void*, size_t>> want;

  SUBCASE("a gap between the pieces") {
    Reading reading(pool, block);
    chain.append_read(block->data, 5000);
    chain.append_read(block->data + 6000, 5000);
    want = {{block->data, 5000}, {block->data + 6000, 5000}};
    CHECK(contents(chain) == bytes.substr(0, 5000) + bytes.substr(6000, 5000));
  }
  SUBCASE("a piece before the tail view") {
    Reading reading(pool, block);
    chain.append_read(block->data + 5000, 5000);
    chain.append_read(block->data, 5000);
    want = {{block->data + 5000, 5000}, {block->data, 5000}};
    CHECK(contents(chain) == bytes.substr(5000, 5000) + bytes.substr(0, 5000));
  }
  SUBCASE("the same offsets of another block") {
    {
      Reading reading(pool, block);
      chain.append_read(block->data, 5000);
    }
    Reading reading(pool, second);
    chain.append_read(second->data + 5000, 5000);
    want = {{block->data, 5000}, {second->data + 5000, 5000}};
    CHECK(contents(chain) == bytes.substr(0, 5000) + second_bytes.substr(5000, 5000));
  }
  SUBCASE("bytes appended between the pieces") {
    Reading reading(pool, block);
    chain.append_read(block->data, 5000);
    chain.append("x", 1);
    chain.append_read(block->data + 5000, 5000);
    REQUIRE(iovecs(chain).size() == 3);
    want = {{block->data, 5000}, {iovecs(chain)[1].iov_base, 1}, {block->data + 5000, 5000}};
    CHECK(contents(chain) == bytes.substr(0, 5000) + "x" + bytes.substr(5000, 5000));
  }
  SUBCASE("a copied piece between the pieces") {
    Reading reading(pool, block);
    chain.append_read(block->data, 5000);
    chain.append_read(block->data + 5000, 100);
    chain.append_read(block->data + 5100, 5000);
    REQUIRE(iovecs(chain).size() == 3);
    want = {{block->data, 5000}, {iovecs(chain)[1].iov_base, 100}, {block->data + 5100, 5000}};
    CHECK_FALSE(in_block(block, want[1].first));
    CHECK(contents(chain) == bytes.substr(0, 10100));
  }
  const std::vector<iovec> iov = iovecs(chain);
  REQUIRE(iov.size() == want.size());
  for (size_t i = 0; i < iov.size(); ++i) {
    CHECK(iov[i].iov_base == want[i].first);
    CHECK(iov[i].iov_len == want[i].second);
  }
  CHECK(block->refs == 1 + views_of(chain, block));
  CHECK(second->refs == 1 + views_of(chain, second));
  CHECK(pool.allocated() == 0);
  ChunkPool::release(block);
  ChunkPool::release(second);
  chain.clear();
  CHECK(pool.blocks_out() == 0);
}

TEST_CASE("ChunkChain append after a view goes into a small segment, then chunks") {
  ChunkPool pool;
  ReadBlock* block = filled_block(pool, 12);
  ChunkChain chain(pool);
  {
    Reading reading(pool, block);
    chain.append_read(block->data, share_min);
  }
  ChunkPool::release(block);
  REQUIRE(pool.small_allocated() == 1);

  const std::string header = pattern(9, 1);
  chain.append(header.data(), header.size());
  CHECK(pool.small_allocated() == 2);
  CHECK(pool.allocated() == 0);
  std::vector<iovec> iov = iovecs(chain);
  REQUIRE(iov.size() == 2);
  CHECK(iov[0].iov_base == block->data);
  CHECK_FALSE(in_block(block, iov[1].iov_base));
  CHECK(iov[1].iov_len == 9);

  // The small segment fills up; what is left goes into a chunk.
  const std::string more = pattern(small_capacity, 2);
  chain.append(more.data(), more.size());
  CHECK(pool.small_allocated() == 2);
  CHECK(pool.allocated() == 1);
  iov = iovecs(chain);
  REQUIRE(iov.size() == 3);
  CHECK(iov[1].iov_len == small_capacity);
  CHECK(iov[2].iov_len == 9);
  CHECK(contents(chain) == pattern(read_block_size, 12).substr(0, share_min) + header + more);
  chain.clear();
  CHECK(pool.blocks_out() == 0);
  CHECK(pool.cached() == 1);

  // Without a view before, appends take chunks only.
  chain.append(header.data(), header.size());
  CHECK(pool.small_allocated() == 2);
  CHECK(pool.cached() == 0);
}

TEST_CASE("ChunkChain bytes copied by append_read after a view go into a small segment") {
  ChunkPool pool;
  ReadBlock* block = filled_block(pool, 13);
  ChunkChain chain(pool);
  {
    Reading reading(pool, block);
    chain.append_read(block->data, share_min);
    chain.append_read(block->data + share_min, 5);
  }
  ChunkPool::release(block);
  CHECK(pool.small_allocated() == 2);
  CHECK(pool.allocated() == 0);
  const std::vector<iovec> iov = iovecs(chain);
  REQUIRE(iov.size() == 2);
  CHECK_FALSE(in_block(block, iov[1].iov_base));
  CHECK(contents(chain) == pattern(read_block_size, 13).substr(0, share_min + 5));
}

TEST_CASE("ChunkChain reserve after a view returns a fresh chunk, never the block's bytes") {
  ChunkPool pool;
  ReadBlock* block = filled_block(pool, 14);
  ChunkChain chain(pool);
  {
    Reading reading(pool, block);
    // The view ends inside the block: bytes after it are the block's, not the chain's.
    chain.append_read(block->data, share_min);
  }
  auto [space, room] = chain.reserve();
  CHECK_FALSE(in_block(block, space));
  CHECK(room == chunk_size);
  CHECK(pool.allocated() == 1);
  CHECK(chain.size() == share_min);
  std::memcpy(space, "abc", 3);
  chain.commit(3);
  CHECK(contents(chain) == block_bytes(block, 0, share_min) + "abc");
  CHECK(block_bytes(block, share_min, 3) == pattern(read_block_size, 14).substr(share_min, 3));
  const std::vector<iovec> iov = iovecs(chain);
  REQUIRE(iov.size() == 2);
  CHECK(iov[1].iov_base == space);

  // The next reserve continues in that chunk.
  auto [next, next_room] = chain.reserve();
  CHECK(next == space + 3);
  CHECK(next_room == chunk_size - 3);
  CHECK(pool.allocated() == 1);
  ChunkPool::release(block);
}

TEST_CASE("ChunkChain reserve after a view and a small segment uses the small one's room") {
  ChunkPool pool;
  ReadBlock* block = filled_block(pool, 15);
  ChunkChain chain(pool);
  {
    Reading reading(pool, block);
    chain.append_read(block->data, share_min);
  }
  ChunkPool::release(block);
  chain.append("hdr", 3);
  auto [space, room] = chain.reserve();
  CHECK_FALSE(in_block(block, space));
  CHECK(room == small_capacity - 3);
  CHECK(pool.allocated() == 0);
  std::memcpy(space, "de", 2);
  chain.commit(2);
  CHECK(contents(chain) == pattern(read_block_size, 15).substr(0, share_min) + "hdrde");
  // A full small segment makes reserve take a chunk.
  chain.commit(0);
  auto [rest, rest_room] = chain.reserve();
  std::memset(rest, 'y', rest_room);
  chain.commit(rest_room);
  auto [chunk_space, chunk_room] = chain.reserve();
  CHECK(chunk_room == chunk_size);
  CHECK(pool.allocated() == 1);
  CHECK_FALSE(in_block(block, chunk_space));
}

TEST_CASE("ChunkChain an empty reserved chunk before a view is passed over by every reader") {
  ChunkPool pool;
  ReadBlock* block = filled_block(pool, 16);
  ChunkChain chain(pool);
  chain.append("ab", 2);
  chain.drain(2);
  // An empty reserved chunk, then a view after it.
  chain.reserve();
  chain.commit(0);
  {
    Reading reading(pool, block);
    chain.append_read(block->data, share_min);
  }
  ChunkPool::release(block);
  std::vector<iovec> iov = iovecs(chain);
  REQUIRE(iov.size() == 1);
  CHECK(iov[0].iov_base == block->data);
  CHECK(contents(chain) == pattern(read_block_size, 16).substr(0, share_min));

  ChunkChain to(pool);
  ChunkPool other;
  ChunkChain copy(other);
  SUBCASE("drain") {
    chain.drain(1);
    CHECK(contents(chain) == pattern(read_block_size, 16).substr(1, share_min - 1));
    CHECK(pool.cached() == 1);
  }
  SUBCASE("move_to within the pool") {
    chain.move_to(to, 10);
    // The empty chunk went back to the pool rather than into |to|.
    CHECK(pool.cached() == 1);
    CHECK(iovecs(to).size() == 1);
    CHECK(contents(to) == pattern(read_block_size, 16).substr(0, 10));
    CHECK(contents(chain) == pattern(read_block_size, 16).substr(10, share_min - 10));
    chain.move_to(to, SIZE_MAX);
    CHECK(contents(to) == pattern(read_block_size, 16).substr(0, share_min));
  }
  SUBCASE("move_to another pool") {
    // Copied, piece by piece: the empty chunk at the head once made this loop forever.
    chain.move_to(copy, 10);
    CHECK(pool.cached() == 1);
    CHECK(contents(copy) == pattern(read_block_size, 16).substr(0, 10));
    CHECK(contents(chain) == pattern(read_block_size, 16).substr(10, share_min - 10));
    chain.move_to(copy, SIZE_MAX);
    CHECK(contents(copy) == pattern(read_block_size, 16).substr(0, share_min));
    CHECK(chain.empty());
    CHECK(views_of(copy, block) == 0);
  }
  SUBCASE("append_range") {
    to.append_range(chain, 1, share_min - 1);
    CHECK(contents(to) == pattern(read_block_size, 16).substr(1, share_min - 1));
  }
  chain.clear();
  to.clear();
  CHECK(pool.blocks_out() == 0);
}

TEST_CASE("ChunkChain move_to of part of a view makes a view in the destination") {
  ChunkPool pool;
  ReadBlock* block = filled_block(pool, 17);
  const std::string bytes = pattern(read_block_size, 17);
  ChunkChain from(pool);
  ChunkChain to(pool);
  to.append("hdr", 3);
  {
    Reading reading(pool, block);
    from.append_read(block->data + 100, 10000);
  }
  ChunkPool::release(block);
  const size_t small = pool.small_allocated();

  from.move_to(to, 3000);
  CHECK(from.size() == 7000);
  CHECK(to.size() == 3003);
  // Both chains view the block: one node more, no chunk more.
  CHECK(block->refs == 2);
  CHECK(pool.small_allocated() == small + 1);
  CHECK(pool.allocated() == 1);
  std::vector<iovec> iov = iovecs(to);
  REQUIRE(iov.size() == 2);
  CHECK(iov[1].iov_base == block->data + 100);
  CHECK(iov[1].iov_len == 3000);
  iov = iovecs(from);
  REQUIRE(iov.size() == 1);
  CHECK(iov[0].iov_base == block->data + 3100);
  CHECK(iov[0].iov_len == 7000);
  CHECK(contents(to) == "hdr" + bytes.substr(100, 3000));
  CHECK(contents(from) == bytes.substr(3100, 7000));

  // What |to| appends next goes after the view, into a small segment.
  to.append("x", 1);
  CHECK(pool.small_allocated() == small + 2);
  CHECK(contents(to) == "hdr" + bytes.substr(100, 3000) + "x");

  SUBCASE("draining the destination leaves the source's bytes") {
    to.clear();
    CHECK(block->refs == 1);
    CHECK(pool.blocks_out() == 1);
    CHECK(contents(from) == bytes.substr(3100, 7000));
    from.drain(6999);
    CHECK(contents(from) == bytes.substr(10099, 1));
    CHECK(pool.blocks_out() == 1);
    from.drain(1);
  }
  SUBCASE("draining the source leaves the destination's bytes") {
    from.clear();
    CHECK(block->refs == 1);
    CHECK(pool.blocks_out() == 1);
    CHECK(contents(to) == "hdr" + bytes.substr(100, 3000) + "x");
    to.drain(4);
    CHECK(contents(to) == bytes.substr(101, 2999) + "x");
    to.clear();
  }
  SUBCASE("moving the rest relinks the source's view") {
    from.move_to(to, SIZE_MAX);
    CHECK(from.empty());
    CHECK(block->refs == 2);
    CHECK(pool.small_allocated() == small + 2);
    iov = iovecs(to);
    REQUIRE(iov.size() == 4);
    CHECK(iov[3].iov_base == block->data + 3100);
    CHECK(iov[3].iov_len == 7000);
    CHECK(contents(to) == "hdr" + bytes.substr(100, 3000) + "x" + bytes.substr(3100, 7000));
    to.clear();
  }
  CHECK(pool.blocks_out() == 0);
}

TEST_CASE("ChunkChain move_to relinks whole views and small segments without new nodes") {
  ChunkPool pool;
  ReadBlock* block = filled_block(pool, 18);
  const std::string bytes = pattern(read_block_size, 18);
  ChunkChain from(pool);
  ChunkChain to(pool);
  {
    Reading reading(pool, block);
    from.append_read(block->data, 5000);
    from.append("h1", 2);
    from.append_read(block->data + 6000, 6000);
    from.append("h2", 2);
  }
  ChunkPool::release(block);
  const std::vector<iovec> before = iovecs(from);
  REQUIRE(before.size() == 4);
  const size_t small = pool.small_allocated();
  REQUIRE(small == 4);

  from.move_to(to, 5002);
  CHECK(pool.small_allocated() == small);
  CHECK(block->refs == 2);
  std::vector<iovec> iov = iovecs(to);
  REQUIRE(iov.size() == 2);
  CHECK(iov[0].iov_base == before[0].iov_base);
  CHECK(iov[1].iov_base == before[1].iov_base);
  CHECK(contents(to) == bytes.substr(0, 5000) + "h1");
  CHECK(contents(from) == bytes.substr(6000, 6000) + "h2");

  // Part of the owned small segment is copied, the view before it relinked.
  from.move_to(to, 6001);
  CHECK(block->refs == 2);
  iov = iovecs(to);
  REQUIRE(iov.size() == 4);
  CHECK(iov[2].iov_base == before[2].iov_base);
  CHECK(iov[3].iov_len == 1);
  CHECK(iov[3].iov_base != before[3].iov_base);
  CHECK(contents(to) == bytes.substr(0, 5000) + "h1" + bytes.substr(6000, 6000) + "h");
  CHECK(contents(from) == "2");
  iov = iovecs(from);
  REQUIRE(iov.size() == 1);
  CHECK(iov[0].iov_base == static_cast<uint8_t*>(before[3].iov_base) + 1);
  to.clear();
  CHECK(pool.blocks_out() == 0);
}

TEST_CASE("ChunkChain move_to another pool copies views") {
  ChunkPool pool;
  ChunkPool other;
  ReadBlock* block = filled_block(pool, 19);
  const std::string bytes = pattern(read_block_size, 19);
  ChunkChain from(pool);
  ChunkChain to(other);
  {
    Reading reading(pool, block);
    from.append_read(block->data, 10000);
  }
  ChunkPool::release(block);
  from.move_to(to, 3000);
  CHECK(block->refs == 1);
  CHECK(views_of(to, block) == 0);
  CHECK(other.small_allocated() == 0);
  CHECK(other.allocated() == 1);
  CHECK(contents(to) == bytes.substr(0, 3000));
  CHECK(contents(from) == bytes.substr(3000, 7000));
  from.move_to(to, SIZE_MAX);
  CHECK(from.empty());
  CHECK(pool.blocks_out() == 0);
  CHECK(contents(to) == bytes.substr(0, 10000));
  CHECK(views_of(to, block) == 0);
}

TEST_CASE("ChunkChain append_range over owned bytes and views shares the views") {
  ChunkPool pool;
  ReadBlock* block = filled_block(pool, 20);
  const std::string bytes = pattern(read_block_size, 20);
  ChunkChain from(pool);
  // [0, 5): a chunk; [5, 5005): a view; [5005, 5015): a small segment; [5015, 11015): a view.
  from.append("01234", 5);
  {
    Reading reading(pool, block);
    from.append_read(block->data + 1000, 5000);
    from.append("abcdefghij", 10);
    from.append_read(block->data + 20000, 6000);
  }
  ChunkPool::release(block);
  const std::string model =
      "01234" + bytes.substr(1000, 5000) + "abcdefghij" + bytes.substr(20000, 6000);
  REQUIRE(contents(from) == model);
  const std::vector<iovec> before = iovecs(from);
  REQUIRE(before.size() == 4);
  const size_t size = model.size();
  struct View {
    size_t begin, end;
  };
  const View views[] = {{5, 5005}, {5015, 11015}};
  const size_t points[] = {0,    1,    4,    5,    6,    2000,     5004, 5005,
                           5006, 5014, 5015, 5016, 9000, size - 1, size};
  for (size_t offset : points) {
    for (size_t end : points) {
      if (end < offset) continue;
      CAPTURE(offset);
      CAPTURE(end);
      const size_t length = end - offset;
      ChunkChain to(pool);
      to.append_range(from, offset, length);
      CHECK(to.size() == length);
      CHECK(contents(to) == model.substr(offset, length));
      // One view in |to| for each view of |from| the range covers part of, pointing at the
      // same bytes.
      size_t shared = 0;
      for (const View& view : views) {
        if (length > 0 && offset < view.end && end > view.begin) ++shared;
      }
      CHECK(views_of(to, block) == shared);
      CHECK(block->refs == 2 + shared);
      for (const iovec& v : iovecs(to)) {
        if (!in_block(block, v.iov_base)) continue;
        const size_t at = static_cast<const uint8_t*>(v.iov_base) - block->data;
        const size_t in_model = at < 20000 ? 5 + (at - 1000) : 5015 + (at - 20000);
        CHECK(in_model >= offset);
        CHECK(in_model + v.iov_len <= end);
      }
      // |from| is unchanged.
      const std::vector<iovec> after = iovecs(from);
      REQUIRE(after.size() == before.size());
      for (size_t i = 0; i < after.size(); ++i) {
        CHECK(after[i].iov_base == before[i].iov_base);
        CHECK(after[i].iov_len == before[i].iov_len);
      }
      CHECK(contents(from) == model);
    }
  }
  CHECK(block->refs == 2);
  from.clear();
  CHECK(pool.blocks_out() == 0);
}

TEST_CASE("ChunkChain append_range from another pool's chain copies views") {
  ChunkPool pool;
  ChunkPool other;
  ReadBlock* block = filled_block(pool, 21);
  ChunkChain from(pool);
  {
    Reading reading(pool, block);
    from.append_read(block->data, 8000);
  }
  ChunkPool::release(block);
  ChunkChain to(other);
  to.append_range(from, 100, 7000);
  CHECK(contents(to) == pattern(read_block_size, 21).substr(100, 7000));
  CHECK(views_of(to, block) == 0);
  CHECK(block->refs == 1);
  CHECK(other.blocks_out() == 0);
  from.clear();
  CHECK(pool.blocks_out() == 0);
  CHECK(contents(to) == pattern(read_block_size, 21).substr(100, 7000));
}

TEST_CASE("ChunkChain move assignment across pools keeps views until the chain lets go") {
  ChunkPool pool;
  ChunkPool other;
  ReadBlock* block = filled_block(pool, 22);
  {
    ChunkChain a(other);
    a.append("x", 1);
    ChunkChain b(pool);
    {
      Reading reading(pool, block);
      b.append_read(block->data, share_min);
    }
    ChunkPool::release(block);
    a = std::move(b);
    CHECK(&a.pool() == &pool);
    CHECK(other.cached() == 1);
    CHECK(views_of(a, block) == 1);
    CHECK(pool.blocks_out() == 1);
  }
  CHECK(pool.blocks_out() == 0);
  CHECK(pool.small_allocated() == 1);
}

TEST_CASE("ChunkChain views and copies match std::string models under random operations") {
  ChunkPool pool;
  // Chain 3 is of another pool: what goes there from the others is copied.
  ChunkPool other;
  constexpr size_t foreign = 3;
  size_t shared_iovecs = 0;
  {
    std::vector<ChunkChain> chains;
    for (int i = 0; i < 3; ++i)
      chains.emplace_back(pool);
    chains.emplace_back(other);
    std::vector<std::string> models(chains.size());
    // Every block read, until check() finds no view of it. The test holds each of them too,
    // so that none goes back to the pool (and its memory to another use) while tracked; the
    // reader lets go of each after its read.
    std::vector<ReadBlock*> live;
    std::mt19937 rng(20261207);
    auto below = [&rng](size_t n) -> size_t { return n == 0 ? 0 : rng() % n; };
    auto random_bytes = [&](size_t n) {
      std::string out(n, '\0');
      for (char& c : out)
        c = static_cast<char>(rng());
      return out;
    };
    auto check = [&](size_t step) {
      CAPTURE(step);
      std::vector<uint32_t> views(live.size(), 0);
      for (size_t c = 0; c < chains.size(); ++c) {
        CAPTURE(c);
        REQUIRE(chains[c].size() == models[c].size());
        const std::vector<iovec> iov = iovecs(chains[c]);
        REQUIRE(gather(iov.data(), static_cast<int>(iov.size())) == models[c]);
        REQUIRE(contents(chains[c]) == models[c]);
        for (const iovec& v : iov) {
          CHECK(v.iov_len > 0);
          for (size_t b = 0; b < live.size(); ++b) {
            if (!in_block(live[b], v.iov_base)) continue;
            CHECK(c != foreign);
            CHECK(static_cast<const uint8_t*>(v.iov_base) + v.iov_len <=
                  live[b]->data + read_block_size);
            ++views[b];
            ++shared_iovecs;
          }
        }
      }
      // A block has one holder per view, and the test's; once no view is left, the test lets
      // go and the block goes back to the pool.
      std::vector<ReadBlock*> still;
      for (size_t b = 0; b < live.size(); ++b) {
        CHECK(live[b]->refs == views[b] + 1);
        if (views[b] == 0) {
          ChunkPool::release(live[b]);
        } else {
          still.push_back(live[b]);
        }
      }
      live = std::move(still);
      REQUIRE(pool.blocks_out() == live.size());
      CHECK(other.blocks_out() == 0);
    };

    for (size_t step = 0; step < 3000; ++step) {
      const size_t op = below(100);
      const size_t c = below(chains.size());
      const size_t d = (c + 1 + below(chains.size() - 1)) % chains.size();
      if (op < 25) {
        // A read: pieces of one block go to the chains, some following the last one.
        ReadBlock* block = pool.get_block();
        // A block still viewed is never handed out again.
        REQUIRE(std::find(live.begin(), live.end(), block) == live.end());
        live.push_back(block);
        pool.hold(block);
        const std::string bytes = random_bytes(read_block_size);
        std::memcpy(block->data, bytes.data(), bytes.size());
        Reading reading(pool, block);
        size_t next = 0;
        size_t to = c;
        for (size_t piece = 0, pieces = 1 + below(5); piece < pieces; ++piece) {
          if (below(4) == 0) to = below(chains.size());
          if (below(2) == 0) next = below(read_block_size);
          size_t len = below(3) == 0 ? 1 + below(share_min) : share_min + below(3 * share_min);
          len = std::min(len, read_block_size - next);
          if (below(10) == 0) {
            // Bytes from elsewhere, however many.
            const std::string outside = random_bytes(len);
            chains[to].append_read(outside.data(), outside.size());
            models[to] += outside;
            continue;
          }
          chains[to].append_read(block->data + next, len);
          models[to] += bytes.substr(next, len);
          next += len;
        }
        ChunkPool::release(block);
      } else if (op < 40) {
        const size_t len = below(3) == 0 ? below(chunk_size + 100) : below(2 * small_capacity);
        const std::string bytes = random_bytes(len);
        chains[c].append(bytes.data(), bytes.size());
        models[c] += bytes;
      } else if (op < 60) {
        const size_t len = below(models[c].size() + 100);
        const size_t moved = std::min(len, models[c].size());
        chains[c].move_to(chains[d], len);
        models[d] += models[c].substr(0, moved);
        models[c].erase(0, moved);
      } else if (op < 70) {
        const size_t len = below(models[c].size() + 100);
        chains[c].drain(len);
        models[c].erase(0, std::min(len, models[c].size()));
      } else if (op < 85) {
        const size_t offset = below(models[c].size() + 1);
        const size_t length = below(models[c].size() - offset + 1);
        chains[d].append_range(chains[c], offset, length);
        models[d] += models[c].substr(offset, length);
      } else if (op < 97) {
        auto [space, room] = chains[c].reserve();
        REQUIRE(room > 0);
        for (ReadBlock* block : live)
          CHECK_FALSE(in_block(block, space));
        const size_t n = below(3) == 0 ? 0 : below(std::min<size_t>(room, 5000) + 1);
        const std::string bytes = random_bytes(n);
        std::memcpy(space, bytes.data(), n);
        chains[c].commit(n);
        models[c] += bytes;
      } else {
        chains[c].clear();
        models[c].clear();
      }
      // Keeps the chains short enough to check every step.
      if (models[c].size() > 96 * 1024) {
        chains[c].drain(models[c].size() / 2);
        models[c].erase(0, models[c].size() / 2);
      }
      check(step);
    }
    for (size_t c = 0; c < chains.size(); ++c) {
      chains[c].clear();
      models[c].clear();
    }
    check(3000);
    CHECK(live.empty());
  }
  // The views were there to find.
  CHECK(shared_iovecs > 1000);
  CHECK(pool.blocks_out() == 0);
  CHECK(pool.allocated() == pool.cached());
  CHECK(other.allocated() == other.cached());
}
