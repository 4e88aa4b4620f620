#include "web/web_codec.h"

#include <array>

namespace grelay {

namespace {

// Base64 alphabet values; '=' and every byte outside the alphabet have a bit of 0xc0 set, so
// one OR over a group's four values tells whether the group is plain data.
constexpr uint8_t b64_pad = 0x40;
constexpr uint8_t b64_invalid = 0x80;
constexpr char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<uint8_t, 256> make_b64_table() {
  std::array<uint8_t, 256> table{};
  for (auto& v : table)
    v = b64_invalid;
  for (uint8_t i = 0; i < 64; ++i)
    table[static_cast<uint8_t>(b64_alphabet[i])] = i;
  table['='] = b64_pad;
  return table;
}

constexpr std::array<uint8_t, 256> b64_table = make_b64_table();

// Writes the 4 characters of the 3 bytes at |in| to |dst|.
inline void encode_group(const uint8_t* in, uint8_t* dst) noexcept {
  const uint32_t v = (uint32_t{in[0]} << 16) | (uint32_t{in[1]} << 8) | uint32_t{in[2]};
  dst[0] = static_cast<uint8_t>(b64_alphabet[v >> 18]);
  dst[1] = static_cast<uint8_t>(b64_alphabet[(v >> 12) & 0x3f]);
  dst[2] = static_cast<uint8_t>(b64_alphabet[(v >> 6) & 0x3f]);
  dst[3] = static_cast<uint8_t>(b64_alphabet[v & 0x3f]);
}

}  // namespace

bool Base64Decoder::take(uint8_t c, ChunkChain& out) {
  const uint8_t v = b64_table[c];
  if (v < 64) {
    if (padded_) return false;  // "AA=A"
    bits_ = (bits_ << 6) | v;
    if (++count_ == 4) {
      const uint8_t bytes[3] = {static_cast<uint8_t>(bits_ >> 16), static_cast<uint8_t>(bits_ >> 8),
                                static_cast<uint8_t>(bits_)};
      out.append(bytes, 3);
      bits_ = 0;
      count_ = 0;
    }
    return true;
  }
  if (v != b64_pad || count_ < 2) return false;  // not base64, or "=AAA", "A==="
  if (count_ == 2) {                             // "AA=": one more '=' must end the group
    padded_ = true;
    count_ = 3;
    return true;
  }
  // count_ == 3: "AA==" holds 12 bits, one byte; "AAA=" holds 18 bits, two bytes. The bits
  // past the last whole byte are dropped, zero or not.
  if (padded_) {
    const uint8_t byte = static_cast<uint8_t>(bits_ >> 4);
    out.append(&byte, 1);
  } else {
    const uint8_t bytes[2] = {static_cast<uint8_t>(bits_ >> 10), static_cast<uint8_t>(bits_ >> 2)};
    out.append(bytes, 2);
  }
  bits_ = 0;
  count_ = 0;
  padded_ = false;
  return true;
}

bool Base64Decoder::decode(const uint8_t* data, size_t len, ChunkChain& out) {
  if (failed_) return false;
  const uint8_t* p = data;
  const uint8_t* const end = data + len;
  // A group the previous call left partial.
  while (p < end && count_ != 0) {
    if (!take(*p++, out)) {
      failed_ = true;
      return false;
    }
  }
  // Whole groups of data go through the table four at a time straight into the chain's free
  // space. A group with '=' or an invalid byte, and the group that meets the end of a chunk
  // with fewer than 3 bytes free (once a chunk), go through take() instead.
  while (end - p >= 4) {
    auto [dst, room] = out.reserve();
    size_t written = 0;
    while (end - p >= 4 && room - written >= 3) {
      const uint32_t a = b64_table[p[0]], b = b64_table[p[1]], c = b64_table[p[2]],
                     d = b64_table[p[3]];
      if (((a | b | c | d) & (b64_pad | b64_invalid)) != 0) break;
      const uint32_t v = (a << 18) | (b << 12) | (c << 6) | d;
      dst[written] = static_cast<uint8_t>(v >> 16);
      dst[written + 1] = static_cast<uint8_t>(v >> 8);
      dst[written + 2] = static_cast<uint8_t>(v);
      written += 3;
      p += 4;
    }
    out.commit(written);
    if (end - p < 4) break;
    for (int i = 0; i < 4; ++i) {
      if (!take(p[i], out)) {
        failed_ = true;
        return false;
      }
    }
    p += 4;
  }
  // The start of a group the next call finishes.
  while (p < end) {
    if (!take(*p++, out)) {
      failed_ = true;
      return false;
    }
  }
  return true;
}

void Base64Encoder::encode(const uint8_t* data, size_t len, ChunkChain& out) {
  if (len == 0) return;
  // Complete the group the previous call left pending.
  if (pending_len_ > 0) {
    uint8_t group[3] = {pending_[0], pending_[1], 0};
    while (pending_len_ < 3 && len > 0) {
      group[pending_len_++] = *data++;
      --len;
    }
    if (pending_len_ < 3) {
      pending_[0] = group[0];
      pending_[1] = group[1];
      return;
    }
    uint8_t chars[4];
    encode_group(group, chars);
    out.append(chars, 4);
    pending_len_ = 0;
  }
  // Whole groups straight into the chain's free space; a chunk whose free space is not a
  // multiple of 4 takes its last group through append().
  while (len >= 3) {
    auto [dst, room] = out.reserve();
    size_t written = 0;
    while (len >= 3 && room - written >= 4) {
      encode_group(data, dst + written);
      written += 4;
      data += 3;
      len -= 3;
    }
    out.commit(written);
    if (len < 3) break;
    uint8_t chars[4];
    encode_group(data, chars);
    out.append(chars, 4);
    data += 3;
    len -= 3;
  }
  for (size_t i = 0; i < len; ++i)
    pending_[i] = data[i];
  pending_len_ = static_cast<uint8_t>(len);
}

void Base64Encoder::flush(ChunkChain& out) {
  if (pending_len_ == 0) return;
  const uint8_t group[3] = {pending_[0], pending_len_ == 2 ? pending_[1] : uint8_t{0}, 0};
  uint8_t chars[4];
  encode_group(group, chars);
  chars[3] = '=';
  if (pending_len_ == 1) chars[2] = '=';
  out.append(chars, 4);
  pending_len_ = 0;
}

}  // namespace grelay
