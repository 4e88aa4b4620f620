#pragma once

#include <string>
#include <string_view>

namespace grelay {

// Appends |s| as a JSON string. Bytes that are not printable ASCII (from the network, or a
// config value) are written as \u00XX, so the output is valid JSON whatever |s| holds.
void append_json_string(std::string& out, std::string_view s);

}  // namespace grelay
