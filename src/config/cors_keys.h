#pragma once

#include <toml++/toml.h>

#include <string_view>

#include "config/config_reader.h"
#include "grelay/config.h"

namespace grelay {

// `cors = { allow_origins = [...], allow_headers = [...], expose_headers = [...],
// max_age = "10m", allow_credentials = false }` of a [[listener]] or [[route]] (|where|).
// Header names are lower-cased. Throws ConfigError on the first problem.
CorsConfig parse_cors(const ConfigReader& r, const toml::node& node, std::string_view where);

}  // namespace grelay
