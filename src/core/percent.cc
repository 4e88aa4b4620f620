#include "core/percent.h"

namespace grelay {

namespace {

constexpr char hex_digits[] = "0123456789ABCDEF";

bool needs_encoding(unsigned char c) noexcept {
  return c < 0x20 || c > 0x7e || c == '%';
}

// The value of hex digit |c|, or -1.
int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string percent_encode_grpc_message(std::string_view message) {
  size_t encoded = 0;
  for (char c : message)
    encoded += needs_encoding(static_cast<unsigned char>(c)) ? 1 : 0;
  std::string out;
  out.reserve(message.size() + 2 * encoded);
  for (char c : message) {
    const auto byte = static_cast<unsigned char>(c);
    if (needs_encoding(byte)) {
      out.push_back('%');
      out.push_back(hex_digits[byte >> 4]);
      out.push_back(hex_digits[byte & 0xf]);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string percent_decode_grpc_message(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
        hex_value(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2])));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

}  // namespace grelay
