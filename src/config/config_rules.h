#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "grelay/config.h"

namespace grelay {

// The rules a config's values follow beyond their TOML types, shared by the TOML loader
// (which reports the line of the value) and validate_config() (which reports the element of
// a config built in code), so both say the same thing. Each returns "" when the value
// passes, else the message.

// "|name| must be between |min| and |max|, got |value|".
std::string range_error(std::string_view name, int64_t value, int64_t min, int64_t max);
// A duration's bounds: more than 0 and at most max_config_duration.
std::string duration_error(std::chrono::milliseconds duration);
// A [[cluster]] name: letters, digits, '.', '_' and '-' (they end up in metric labels).
std::string cluster_name_error(std::string_view name);
// A [[route]] name: letters, digits, '.', '_', '-' and '/'.
std::string route_name_error(std::string_view name);
// What a route of |kind| matches: "/package.Service/Method", "package.Service" or "/...".
std::string route_match_error(RouteMatch kind, std::string_view match);
// A route's authority: no spaces, controls or '/'.
std::string authority_error(std::string_view authority);
// A cluster's hash_header, already lower case.
std::string hash_header_error(std::string_view header);
// An SNI name of a listener certificate, already lower case: a DNS name or *.domain.
std::string certificate_name_error(std::string_view name);
// A cluster's tls server_name: a DNS name or an IP address.
std::string server_name_error(std::string_view name);
// A CORS allowed origin: "*", "scheme://host[:port]", or "scheme://*.domain[:port]".
std::string cors_origin_error(std::string_view origin);
// A CORS allowed or exposed header name, already lower case: an HTTP token.
std::string cors_header_error(std::string_view name);
// "duplicate |what| 'name' (first |first|)", |first| saying where the first one is.
std::string duplicate_error(std::string_view what, std::string_view name, std::string_view first);
// A route's cluster that none of |names| is.
std::string unknown_cluster_error(std::string_view cluster,
                                  const std::vector<std::string_view>& names);

}  // namespace grelay
