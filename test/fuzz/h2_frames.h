// What the differential fuzz targets (fuzz_request_check, fuzz_response_check) share: header
// fields as the input spells them, their printing, and HTTP/2 frames built by hand for the
// nghttp2 session each target compares grelay's checks with.
#pragma once

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace fuzz_h2 {

struct Field {
  std::string_view name;
  std::string_view value;
  bool operator==(const Field& o) const { return name == o.name && value == o.value; }
};

inline constexpr size_t max_frame_payload = 16384;

inline std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

inline std::string describe(const Field& f) {
  return "\"" + printable(f.name) + "\": \"" + printable(f.value) + "\"";
}

// The harness itself failed (not a finding): stop loudly.
[[noreturn]] inline void harness_error(const char* what, long code) {
  std::fprintf(stderr, "fuzz harness: %s (%ld)\n", what, code);
  std::abort();
}

struct NgDeflaterDeleter {
  void operator()(nghttp2_hd_deflater* d) const noexcept { nghttp2_hd_deflate_del(d); }
};
using NgDeflaterPtr = std::unique_ptr<nghttp2_hd_deflater, NgDeflaterDeleter>;

inline void append_frame_header(std::string& out, size_t length, uint8_t type, uint8_t flags,
                                int32_t stream) {
  const uint8_t hd[9] = {static_cast<uint8_t>(length >> 16),
                         static_cast<uint8_t>(length >> 8),
                         static_cast<uint8_t>(length),
                         type,
                         flags,
                         static_cast<uint8_t>(stream >> 24),
                         static_cast<uint8_t>(stream >> 16),
                         static_cast<uint8_t>(stream >> 8),
                         static_cast<uint8_t>(stream)};
  out.append(reinterpret_cast<const char*>(hd), sizeof(hd));
}

// |fields| HPACK-encoded with |deflater|, as a HEADERS frame and as many CONTINUATION frames
// as the block needs, on |stream_id|.
inline std::string header_block_frames(nghttp2_hd_deflater* deflater,
                                       const std::vector<Field>& fields, int32_t stream_id,
                                       bool end_stream) {
  std::vector<nghttp2_nv> nva;
  nva.reserve(fields.size());
  static uint8_t empty[1];
  auto bytes = [](std::string_view s) {
    return s.empty() ? empty : reinterpret_cast<uint8_t*>(const_cast<char*>(s.data()));
  };
  for (const Field& f : fields) {
    nva.push_back(
        {bytes(f.name), bytes(f.value), f.name.size(), f.value.size(), NGHTTP2_NV_FLAG_NONE});
  }
  std::string block(nghttp2_hd_deflate_bound(deflater, nva.data(), nva.size()), '\0');
  ssize_t n = nghttp2_hd_deflate_hd(deflater, reinterpret_cast<uint8_t*>(block.data()),
                                    block.size(), nva.data(), nva.size());
  if (n < 0) harness_error("nghttp2_hd_deflate_hd", n);
  block.resize(static_cast<size_t>(n));
  std::string frames;
  size_t pos = 0;
  do {
    const size_t len = std::min(block.size() - pos, max_frame_payload);
    const bool last = pos + len == block.size();
    uint8_t flags = last ? NGHTTP2_FLAG_END_HEADERS : 0;
    if (pos == 0 && end_stream) flags |= NGHTTP2_FLAG_END_STREAM;
    append_frame_header(frames, len, pos == 0 ? NGHTTP2_HEADERS : NGHTTP2_CONTINUATION, flags,
                        stream_id);
    frames.append(block, pos, len);
    pos += len;
  } while (pos < block.size());
  return frames;
}

}  // namespace fuzz_h2
