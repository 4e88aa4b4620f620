#pragma once

#include <string>
#include <string_view>

namespace grelay {

// Appends |s| as a JSON string, valid JSON (and UTF-8) whatever |s| holds. Well-formed UTF-8
// is written as it is, so "café" stays "café". Each byte that is not part of well-formed
// UTF-8 (from the network, or a config value) is written as \u00XX, its value, and control
// characters (below 0x20, and 0x7f) as well: no byte is ever dropped. A \u00XX in the output
// therefore always stands for one raw byte XX, never for the character U+00XX, which would
// have been written as its UTF-8 bytes.
void append_json_string(std::string& out, std::string_view s);

}  // namespace grelay
