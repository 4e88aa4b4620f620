#include "h2/closed_streams.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <bit>
#include <cstring>

namespace grelay {
namespace {

constexpr size_t frame_head_size = 9;

// Frame headers are read one 32-bit load at a time: the scan runs on every frame a client
// sends.
uint32_t load_be32(const uint8_t* p) noexcept {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap32(v);
  return v;
}

}  // namespace

uint32_t* ClosedStreams::find(int32_t stream_id) noexcept {
  const uint32_t key = static_cast<uint32_t>(stream_id) >> 1;
  for (size_t i = 0; i < closed_count_; ++i) {
    if ((closed_[i] >> 2) == key) return &closed_[i];
  }
  return nullptr;
}

void ClosedStreams::remember(int32_t stream_id, Ending how) noexcept {
  closed_[closed_next_] = (static_cast<uint32_t>(stream_id) >> 1) << 2 | static_cast<uint32_t>(how);
  closed_next_ = static_cast<uint8_t>((closed_next_ + 1) % remembered_streams);
  if (closed_count_ < remembered_streams) ++closed_count_;
}

void ClosedStreams::on_reset_received(int32_t stream_id) noexcept {
  reset_received_ = stream_id;
  // The client reset a stream the relay had reset already (the two resets crossed, or the
  // client reset it late): the client may send nothing on it after its own reset.
  uint32_t* entry = find(stream_id);
  if (entry && static_cast<Ending>(*entry & 3) == Ending::relay_reset) {
    *entry = (*entry & ~uint32_t{3}) | static_cast<uint32_t>(Ending::client_reset);
  }
}

void ClosedStreams::on_close(int32_t stream_id) noexcept {
  // A stream closes on a reset, or once both sides ended it.
  Ending how = stream_id == reset_received_ ? Ending::client_reset
               : stream_id == reset_sent_   ? Ending::relay_reset
                                            : Ending::ended;
  remember(stream_id, how);
}

void ClosedStreams::skipped(uint32_t stream_id) noexcept {
  gaps_[gap_next_] = {next_id_, stream_id - 2};
  gap_next_ = static_cast<uint8_t>((gap_next_ + 1) % remembered_gaps);
  if (gap_count_ < remembered_gaps) ++gap_count_;
  batch_gap_ = true;
}

ClosedStreams::Verdict ClosedStreams::check(int32_t stream_id, bool headers) const noexcept {
  if (const uint32_t* entry = find(stream_id)) {
    switch (static_cast<Ending>(*entry & 3)) {
      case Ending::client_reset:
        return Verdict::stream_error;
      case Ending::ended:
        return Verdict::closed_error;
      case Ending::relay_reset:
      case Ending::answered:
        return Verdict::take;
    }
  }
  const auto id = static_cast<uint32_t>(stream_id);
  for (size_t i = 0; i < gap_count_; ++i) {
    if (id >= gaps_[i].first && id <= gaps_[i].last) {
      // RFC 9113 §5.1.1 for HEADERS; DATA lands on a stream that is closed (§6.1).
      return headers ? Verdict::protocol_error : Verdict::closed_error;
    }
  }
  // Forgotten, or never taken by nghttp2 (refused, or after GOAWAY): nghttp2 ignores it.
  return Verdict::take;
}

bool ClosedStreams::passes(Host& host, uint8_t type, int32_t id) noexcept {
  if ((ended_ & bit(id)) != 0) return false;
  return host.serving(id) || check(id, type == NGHTTP2_HEADERS) == Verdict::take;
}

bool ClosedStreams::judge(Host& host, uint8_t type, int32_t id) noexcept {
  start_batch();
  const bool headers = type == NGHTTP2_HEADERS;
  switch (check(id, headers)) {
    case Verdict::take:
      break;
    case Verdict::stream_error: {
      host.reset_closed(id);
      uint32_t* entry = find(id);
      *entry = (*entry & ~uint32_t{3}) | static_cast<uint32_t>(Ending::answered);
      break;
    }
    case Verdict::closed_error:
      failed_ = true;
      host.fail(NGHTTP2_STREAM_CLOSED,
                headers ? "HEADERS on a closed stream" : "DATA on a closed stream");
      return false;
    case Verdict::protocol_error:
      failed_ = true;
      host.fail(NGHTTP2_PROTOCOL_ERROR, "HEADERS on a stream id skipped before");
      return false;
  }
  return true;
}

ssize_t ClosedStreams::receive(Host& host, const uint8_t* data, size_t len) noexcept {
  if (failed_) return static_cast<ssize_t>(len);
  // At a frame boundary nghttp2 has processed every byte handed to it.
  if (payload_left_ == 0 && head_size_ == 0) start_batch();
  size_t pos = std::min<size_t>(preface_left_, len);
  preface_left_ = static_cast<uint8_t>(preface_left_ - pos);
  size_t rest = std::min<size_t>(payload_left_, len - pos);
  payload_left_ -= static_cast<uint32_t>(rest);
  pos += rest;
  size_t taken = 0;
  while (pos < len) {
    // A frame header starts at |start|, or started in the last read (then |start| is 0).
    const size_t start = pos;
    const uint8_t* head = data + pos;
    if (head_size_ == 0 && len - pos >= frame_head_size) {
      pos += frame_head_size;
    } else {
      size_t n = std::min<size_t>(frame_head_size - head_size_, len - pos);
      std::memcpy(head_ + head_size_, data + pos, n);
      head_size_ = static_cast<uint8_t>(head_size_ + n);
      pos += n;
      if (head_size_ < frame_head_size) break;
      head_size_ = 0;
      head = head_;
    }
    const uint32_t length_type = load_be32(head);
    rest = std::min<size_t>(length_type >> 8, len - pos);
    pos += rest;
    payload_left_ = (length_type >> 8) - static_cast<uint32_t>(rest);
    const auto type = static_cast<uint8_t>(length_type);
    if (type > NGHTTP2_HEADERS && type != NGHTTP2_RST_STREAM) continue;
    const auto id = static_cast<int32_t>(load_be32(head + 5) & 0x7fffffff);
    if (type == NGHTTP2_RST_STREAM) {
      ended_ |= bit(id);
      continue;
    }
    // Stream 0, even ids (the relay's own) and idle streams are nghttp2's to judge, and so is a
    // stream the batch opened, unless a frame of the batch may have ended it.
    const auto uid = static_cast<uint32_t>(id);
    if (uid >= next_id_) {
      if (type == NGHTTP2_HEADERS && (uid & 1) != 0) open(uid);
    } else if ((uid & 1) != 0 && ((ended_ & bit(id)) != 0 || uid < batch_first_ || batch_gap_) &&
               !passes(host, type, id)) {
      if (start > taken) {
        ssize_t rv = host.take(data + taken, start - taken);
        if (rv < 0) return rv;
        taken = start;
      }
      // After a connection error the rest is dropped: nghttp2 reads no more.
      if (!judge(host, type, id)) return static_cast<ssize_t>(len);
    }
    if (head[4] & NGHTTP2_FLAG_END_STREAM) ended_ |= bit(id);
  }
  if (len > taken) {
    ssize_t rv = host.take(data + taken, len - taken);
    if (rv < 0) return rv;
  }
  return static_cast<ssize_t>(len);
}

}  // namespace grelay
