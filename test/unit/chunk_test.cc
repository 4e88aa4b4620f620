#include "core/chunk.h"

#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

using grelay::Chunk;
using grelay::chunk_size;
using grelay::ChunkChain;
using grelay::ChunkPool;

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
