#pragma once

#include <string>

#include <toml++/toml.h>

#include "grelay/config.h"

namespace grelay {

// The [[cluster]] keys about balancing, discovery, health and limits, and a route's
// `retry` table. Each throws ConfigError ("file:line: message") on the first problem.

// Keys of [[cluster]] besides name, endpoints, lb, max_connections_per_endpoint and
// connect_timeout.
inline constexpr std::string_view cluster_upstream_keys[] = {"hash_header",
                                                             "dns_server",
                                                             "resolve_interval",
                                                             "health_check",
                                                             "outlier",
                                                             "keepalive",
                                                             "max_pending",
                                                             "max_active",
                                                             "max_connection_age",
                                                             "max_streams_per_connection",
                                                             "max_client_share"};

void parse_cluster_upstream_keys(const toml::table& table, const std::string& path,
                                 ClusterConfig& cluster);

// One element of `endpoints`: "host:port" or { address = "host:port", weight = N }.
void parse_endpoint_entry(const toml::node& node, const std::string& path, ClusterConfig& cluster);

RetryConfig parse_retry(const toml::node& node, const std::string& path);

}  // namespace grelay
