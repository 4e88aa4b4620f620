#pragma once

#include <cstddef>
#include <cstdint>

namespace grelay {

// Follows the gRPC length-prefixed message framing (1 flag byte, 4-byte big-endian length,
// payload) through a byte stream cut at arbitrary points, without keeping the bytes. Tells
// whether the stream stands between two messages and how many messages began.
class GrpcFrameTracker {
 public:
  void advance(const uint8_t* data, size_t len) noexcept {
    while (len > 0) {
      if (remaining_ > 0) {
        size_t take = len < remaining_ ? len : static_cast<size_t>(remaining_);
        remaining_ -= take;
        data += take;
        len -= take;
        continue;
      }
      if (header_len_ == 0 && len >= sizeof(header_)) {
        // A whole prefix at hand, as nearly always: read it in place.
        remaining_ = (uint32_t{data[1]} << 24) | (uint32_t{data[2]} << 16) |
                     (uint32_t{data[3]} << 8) | uint32_t{data[4]};
        ++messages_;
        reserved_flags_ |= (data[0] & ~uint8_t{1}) != 0;
        data += sizeof(header_);
        len -= sizeof(header_);
        continue;
      }
      header_[header_len_++] = *data++;
      --len;
      if (header_len_ == sizeof(header_)) {
        remaining_ = (uint32_t{header_[1]} << 24) | (uint32_t{header_[2]} << 16) |
                     (uint32_t{header_[3]} << 8) | uint32_t{header_[4]};
        header_len_ = 0;
        ++messages_;
        reserved_flags_ |= (header_[0] & ~uint8_t{1}) != 0;
      }
    }
  }

  // True when no message is partly through the stream.
  bool at_boundary() const noexcept { return header_len_ == 0 && remaining_ == 0; }
  uint64_t messages() const noexcept { return messages_; }
  // A message's flag byte had a bit set besides 0x01 (compressed): gRPC defines none, and the
  // web protocols give 0x80 (gRPC-Web trailers) and 0x02 (Connect end of stream) to the
  // server's last frame.
  bool reserved_flags() const noexcept { return reserved_flags_; }

 private:
  uint8_t header_[5] = {};
  uint8_t header_len_ = 0;
  uint64_t remaining_ = 0;
  uint64_t messages_ = 0;
  bool reserved_flags_ = false;
};

}  // namespace grelay
