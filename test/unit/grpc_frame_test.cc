#include <doctest/doctest.h>

#include <vector>

#include "core/grpc_frame.h"

using grelay::GrpcFrameTracker;

namespace {

std::vector<uint8_t> message(size_t len, uint8_t flag = 0) {
  std::vector<uint8_t> out = {flag, uint8_t(len >> 24), uint8_t(len >> 16), uint8_t(len >> 8),
                              uint8_t(len)};
  out.resize(5 + len, 0xab);
  return out;
}

}  // namespace

TEST_CASE("GrpcFrameTracker starts at a boundary") {
  GrpcFrameTracker t;
  CHECK(t.at_boundary());
  CHECK(t.messages() == 0);
}

TEST_CASE("GrpcFrameTracker follows whole messages") {
  GrpcFrameTracker t;
  auto m = message(100);
  t.advance(m.data(), m.size());
  CHECK(t.at_boundary());
  CHECK(t.messages() == 1);
  auto empty = message(0);
  t.advance(empty.data(), empty.size());
  CHECK(t.at_boundary());
  CHECK(t.messages() == 2);
}

TEST_CASE("GrpcFrameTracker sees a message cut anywhere") {
  auto m = message(300, 1);
  for (size_t cut = 1; cut < m.size(); ++cut) {
    GrpcFrameTracker t;
    t.advance(m.data(), cut);
    CHECK_FALSE(t.at_boundary());
    t.advance(m.data() + cut, m.size() - cut);
    CHECK(t.at_boundary());
    CHECK(t.messages() == 1);
  }
}

TEST_CASE("GrpcFrameTracker handles byte-by-byte input over several messages") {
  std::vector<uint8_t> stream;
  for (size_t len : {0u, 1u, 70000u, 5u}) {
    auto m = message(len);
    stream.insert(stream.end(), m.begin(), m.end());
  }
  GrpcFrameTracker t;
  size_t boundaries = 0;
  for (uint8_t b : stream) {
    t.advance(&b, 1);
    if (t.at_boundary()) ++boundaries;
  }
  CHECK(t.messages() == 4);
  CHECK(boundaries == 4);
}
