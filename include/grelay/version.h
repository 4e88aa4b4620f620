#pragma once

namespace grelay {

inline constexpr const char* version_string = "0.1.0";

}  // namespace grelay
