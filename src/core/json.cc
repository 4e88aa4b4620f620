#include "core/json.h"

#include <cstdio>

namespace grelay {

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte >= 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "\\u%04x", byte);
      out += hex;
    } else {
      out += c;
    }
  }
  out += '"';
}

}  // namespace grelay
