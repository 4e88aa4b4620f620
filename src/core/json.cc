#include "core/json.h"

#include <cstdio>

namespace grelay {
namespace {

// Length of the well-formed UTF-8 sequence of two to four bytes at the front of |s| (RFC 3629:
// no overlong form, no surrogate, nothing past U+10FFFF), or 0 when there is none.
size_t utf8_sequence(std::string_view s) noexcept {
  auto at = [&s](size_t i) { return static_cast<unsigned char>(s[i]); };
  auto continuation = [&](size_t i) { return i < s.size() && (at(i) & 0xc0) == 0x80; };
  const unsigned char lead = at(0);
  if (lead >= 0xc2 && lead <= 0xdf) return continuation(1) ? 2 : 0;
  if (lead >= 0xe0 && lead <= 0xef) {
    if (!continuation(1) || !continuation(2)) return 0;
    if (lead == 0xe0 && at(1) < 0xa0) return 0;  // overlong
    if (lead == 0xed && at(1) > 0x9f) return 0;  // UTF-16 surrogate
    return 3;
  }
  if (lead >= 0xf0 && lead <= 0xf4) {
    if (!continuation(1) || !continuation(2) || !continuation(3)) return 0;
    if (lead == 0xf0 && at(1) < 0x90) return 0;  // overlong
    if (lead == 0xf4 && at(1) > 0x8f) return 0;  // past U+10FFFF
    return 4;
  }
  return 0;
}

void append_escaped_byte(std::string& out, unsigned char byte) {
  char hex[8];
  std::snprintf(hex, sizeof(hex), "\\u%04x", byte);
  out += hex;
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte == 0x7f) {
      append_escaped_byte(out, byte);
    } else if (byte < 0x80) {
      out += c;
    } else if (size_t n = utf8_sequence(s.substr(i)); n > 0) {
      out.append(s.data() + i, n);
      i += n;
      continue;
    } else {
      append_escaped_byte(out, byte);
    }
    ++i;
  }
  out += '"';
}

}  // namespace grelay
