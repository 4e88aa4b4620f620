#include "h2/closed_streams.h"

#include <doctest/doctest.h>
#include <nghttp2/nghttp2.h>

#include <cstring>
#include <set>
#include <string>
#include <vector>

namespace grelay {
namespace {

const std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

std::string frame(uint8_t type, uint8_t flags, int32_t id, size_t payload = 4) {
  std::string f(9 + payload, 'x');
  f[0] = static_cast<char>(payload >> 16);
  f[1] = static_cast<char>(payload >> 8);
  f[2] = static_cast<char>(payload);
  f[3] = static_cast<char>(type);
  f[4] = static_cast<char>(flags);
  for (int i = 0; i < 4; ++i)
    f[5 + i] = static_cast<char>(static_cast<uint32_t>(id) >> (24 - 8 * i));
  return f;
}
std::string headers(int32_t id, bool end_stream) {
  return frame(NGHTTP2_HEADERS,
               NGHTTP2_FLAG_END_HEADERS | (end_stream ? NGHTTP2_FLAG_END_STREAM : 0), id, 10);
}
std::string data(int32_t id, bool end_stream = false) {
  return frame(NGHTTP2_DATA, end_stream ? NGHTTP2_FLAG_END_STREAM : 0, id, 4);
}
std::string rst(int32_t id) {
  return frame(NGHTTP2_RST_STREAM, 0, id, 4);
}
std::string settings() {
  return frame(NGHTTP2_SETTINGS, 0, 0, 0);
}

// Stands in for nghttp2 and the session: parses what it is given, opens a stream on its HEADERS
// and closes it on the client's RST_STREAM, or on END_STREAM as if the relay had answered at
// once (unless the stream is |held|), telling ClosedStreams as the session's callbacks do.
struct FakeHost final : ClosedStreams::Host {
  explicit FakeHost(ClosedStreams& c) : closed(c) {}

  ssize_t take(const uint8_t* data, size_t len) noexcept override {
    takes.emplace_back(reinterpret_cast<const char*>(data), len);
    input.append(reinterpret_cast<const char*>(data), len);
    for (;;) {
      if (parsed < preface.size()) {
        if (input.size() < preface.size()) break;
        parsed = preface.size();
      }
      if (input.size() - parsed < 9) break;
      const auto* h = reinterpret_cast<const uint8_t*>(input.data() + parsed);
      size_t length = size_t{h[0]} << 16 | size_t{h[1]} << 8 | h[2];
      if (input.size() - parsed < 9 + length) break;
      parsed += 9 + length;
      on_frame(h[3], h[4], static_cast<int32_t>(h[5] << 24 | h[6] << 16 | h[7] << 8 | h[8]));
    }
    return static_cast<ssize_t>(len);
  }
  void on_frame(uint8_t type, uint8_t flags, int32_t id) {
    if (type == NGHTTP2_RST_STREAM) {
      closed.on_reset_received(id);
      if (open.erase(id)) closed.on_close(id);
      return;
    }
    if (type == NGHTTP2_HEADERS && id > last_id) {
      last_id = id;
      open.insert(id);
    }
    if ((flags & NGHTTP2_FLAG_END_STREAM) && !held.count(id) && open.erase(id)) {
      closed.on_close(id);
    }
  }
  bool serving(int32_t stream_id) noexcept override {
    ++serving_calls;
    return open.count(stream_id) != 0;
  }
  void reset_closed(int32_t stream_id) noexcept override {
    resets.push_back(stream_id);
    // The session sends it, and nghttp2 does not know the stream: nothing closes.
    closed.on_reset_sent(stream_id);
  }
  void fail(uint32_t error_code, const char*) noexcept override { failures.push_back(error_code); }

  // The relay resets |id| (a malformed request, an early answer): nghttp2 closes it once sent.
  void relay_reset(int32_t id) {
    closed.on_reset_sent(id);
    if (open.erase(id)) closed.on_close(id);
  }

  ssize_t receive(const std::string& bytes) {
    return closed.receive(*this, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }

  ClosedStreams& closed;
  std::string input;
  size_t parsed = 0;
  int32_t last_id = 0;
  std::set<int32_t> open;
  std::set<int32_t> held;
  std::vector<std::string> takes;
  std::vector<int32_t> resets;
  std::vector<uint32_t> failures;
  int serving_calls = 0;
};

std::string joined(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts)
    out += p;
  return out;
}

}  // namespace

TEST_CASE("a client that follows the RFC has its input handed over whole") {
  ClosedStreams closed;
  FakeHost host(closed);
  // Pipelined unary calls: each DATA lands on the stream its batch opened.
  std::string in = preface + settings();
  for (int32_t id = 1; id < 20; id += 2)
    in += headers(id, false) + data(id, true);
  CHECK(host.receive(in) == static_cast<ssize_t>(in.size()));
  CHECK(host.takes.size() == 1);
  CHECK(host.serving_calls == 0);
  CHECK(host.resets.empty());
  CHECK(host.failures.empty());

  // DATA on a stream served across reads: the session is asked (its last stream looked up is
  // remembered), and the input is not split.
  host.held.insert(21);
  host.receive(headers(21, false));
  host.takes.clear();
  host.receive(data(21) + data(21) + data(21, true));
  CHECK(host.takes.size() == 1);
  CHECK(host.serving_calls == 3);
}

TEST_CASE("DATA or HEADERS after both sides ended a stream is a connection error STREAM_CLOSED") {
  for (bool same_read : {false, true}) {
    for (bool is_headers : {false, true}) {
      CAPTURE(same_read);
      CAPTURE(is_headers);
      ClosedStreams closed;
      FakeHost host(closed);
      std::string first = preface + settings() + headers(1, true);
      std::string late = is_headers ? headers(1, true) : data(1);
      if (same_read) {
        host.receive(first + late + headers(3, true));
        // Split before the late frame; the rest is dropped.
        REQUIRE(host.takes.size() == 1);
        CHECK(host.takes[0] == first);
      } else {
        host.receive(first);
        host.receive(late + headers(3, true));
        CHECK(host.takes.size() == 1);
      }
      CHECK(host.failures == std::vector<uint32_t>{NGHTTP2_STREAM_CLOSED});
      CHECK(host.open.empty());
      // Nothing more is handed over once the connection failed.
      host.receive(headers(5, true));
      CHECK(host.takes.size() == 1);
    }
  }
}

TEST_CASE("a stream still open is nghttp2's to judge") {
  ClosedStreams closed;
  FakeHost host(closed);
  host.held.insert(1);
  std::string in = preface + settings() + headers(1, true) + data(1);
  host.receive(in);
  // Split before the DATA (its stream may have closed), then handed over as it is.
  CHECK(joined(host.takes) == in);
  CHECK(host.takes.size() == 2);
  CHECK(host.failures.empty());
  CHECK(host.resets.empty());
}

TEST_CASE("frames after the client's RST_STREAM get one RST_STREAM(STREAM_CLOSED)") {
  for (bool same_read : {false, true}) {
    CAPTURE(same_read);
    ClosedStreams closed;
    FakeHost host(closed);
    std::string in = preface + settings() + headers(1, false);
    if (same_read) {
      host.receive(in + rst(1) + data(1) + data(1) + headers(1, true) + headers(3, true));
    } else {
      host.receive(in + rst(1));
      host.receive(data(1));
      host.receive(data(1) + headers(1, true) + headers(3, true));
    }
    CHECK(host.resets == std::vector<int32_t>{1});
    CHECK(host.failures.empty());
    CHECK(host.open.count(3) == 0);  // stream 3 opened and ended: the input went on
    CHECK(closed.check(1, false) == ClosedStreams::Verdict::take);
  }
}

TEST_CASE("frames after the relay's RST_STREAM are ignored, unless the client reset it too") {
  ClosedStreams closed;
  FakeHost host(closed);
  host.receive(preface + settings() + headers(1, false));
  host.relay_reset(1);
  std::string late = data(1) + data(1, true) + headers(1, true);
  host.receive(late);
  CHECK(host.resets.empty());
  CHECK(host.failures.empty());
  CHECK(joined(host.takes) == preface + settings() + headers(1, false) + late);
  // The client's RST_STREAM crossed the relay's: nothing may follow it.
  host.receive(rst(1) + data(1));
  CHECK(host.resets == std::vector<int32_t>{1});
  CHECK(host.failures.empty());
}

TEST_CASE("HEADERS on a stream id the client skipped is a PROTOCOL_ERROR, DATA STREAM_CLOSED") {
  for (bool is_headers : {false, true}) {
    for (bool same_read : {false, true}) {
      CAPTURE(is_headers);
      CAPTURE(same_read);
      ClosedStreams closed;
      FakeHost host(closed);
      std::string first = preface + settings() + headers(5, true);
      std::string late = is_headers ? headers(3, true) : data(3);
      if (same_read) {
        host.receive(first + late);
      } else {
        host.receive(first);
        host.receive(late);
      }
      CHECK(joined(host.takes) == first);
      CHECK(host.failures ==
            std::vector<uint32_t>{is_headers ? NGHTTP2_PROTOCOL_ERROR : NGHTTP2_STREAM_CLOSED});
    }
  }
  ClosedStreams closed;
  FakeHost host(closed);
  host.receive(preface + settings() + headers(1, true) + headers(9, true));
  CHECK(closed.check(1, true) == ClosedStreams::Verdict::closed_error);
  CHECK(closed.check(3, true) == ClosedStreams::Verdict::protocol_error);
  CHECK(closed.check(7, true) == ClosedStreams::Verdict::protocol_error);
  CHECK(closed.check(7, false) == ClosedStreams::Verdict::closed_error);
  CHECK(closed.check(9, true) == ClosedStreams::Verdict::closed_error);
}

TEST_CASE("closed streams are forgotten after the last few dozen") {
  ClosedStreams closed;
  FakeHost host(closed);
  const auto remembered = static_cast<int32_t>(ClosedStreams::remembered_streams);
  std::string in = preface + settings();
  for (int32_t id = 1; id < 2 * remembered; id += 2)
    in += headers(id, true);
  host.receive(in);
  CHECK(closed.check(1, false) == ClosedStreams::Verdict::closed_error);
  host.receive(headers(2 * remembered + 1, true));
  // Stream 1 fell out: a late frame on it is dropped, never taken for a skipped id's.
  CHECK(closed.check(1, true) == ClosedStreams::Verdict::take);
  CHECK(closed.check(3, true) == ClosedStreams::Verdict::closed_error);
  host.receive(headers(1, true) + data(1));
  CHECK(host.failures.empty());
}

TEST_CASE("frame headers cut anywhere between reads give the same verdicts") {
  const std::string in = preface + settings() + headers(1, false) + data(1) + rst(1) + data(1) +
                         headers(3, true) + headers(7, true) + data(7) + data(5);
  for (size_t cut1 = 0; cut1 <= in.size(); ++cut1) {
    for (size_t cut2 : {cut1, cut1 + 1, cut1 + 5, cut1 + 9, cut1 + 14}) {
      if (cut2 > in.size()) continue;
      CAPTURE(cut1);
      CAPTURE(cut2);
      ClosedStreams closed;
      FakeHost host(closed);
      host.receive(in.substr(0, cut1));
      host.receive(in.substr(cut1, cut2 - cut1));
      host.receive(in.substr(cut2));
      CHECK(host.resets == std::vector<int32_t>{1});
      // DATA on 7 after both sides ended it; what follows is dropped.
      CHECK(host.failures == std::vector<uint32_t>{NGHTTP2_STREAM_CLOSED});
      // Dropped from the header of that DATA on, but for what an earlier read handed over.
      const size_t late = in.size() - 2 * data(7).size();
      size_t kept = late;
      for (size_t cut : {cut1, cut2}) {
        if (cut > late && cut < late + 9) kept = cut;
      }
      CHECK(joined(host.takes) == in.substr(0, kept));
    }
  }
}

TEST_CASE("the record stays small") {
  // Per client connection, next to the session's other state; nghttp2's closed streams would
  // cost a few hundred bytes each, up to max_concurrent_streams of them.
  CHECK(sizeof(ClosedStreams) <= 256);
  MESSAGE("sizeof(ClosedStreams) = " << sizeof(ClosedStreams));
}

}  // namespace grelay
