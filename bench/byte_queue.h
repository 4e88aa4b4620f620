#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace grelay::bench {

// A FIFO of bytes: appends at the back, consumes from the front in O(1). The dead
// prefix is reclaimed lazily, so a queue holds about twice its peak contents at most.
class ByteQueue {
 public:
  size_t size() const { return bytes_.size() - head_; }
  bool empty() const { return head_ == bytes_.size(); }
  const uint8_t* data() const { return bytes_.data() + head_; }

  void append(const uint8_t* data, size_t length) {
    // Move the live bytes down once the dead prefix outgrows them; amortised O(1).
    if (head_ != 0 && head_ >= size()) {
      bytes_.erase(bytes_.begin(), bytes_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
    bytes_.insert(bytes_.end(), data, data + length);
  }

  void consume(size_t length) {
    head_ += length;
    if (head_ < bytes_.size()) return;
    head_ = 0;
    // An idle queue keeps a small buffer for the next message but not a large one, so
    // many streams that once held a big message do not pin their peak memory.
    if (bytes_.capacity() > retained_capacity) {
      std::vector<uint8_t>().swap(bytes_);
    } else {
      bytes_.clear();
    }
  }

 private:
  static constexpr size_t retained_capacity = 64 * 1024;

  std::vector<uint8_t> bytes_;
  size_t head_ = 0;
};

}  // namespace grelay::bench
