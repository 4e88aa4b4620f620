#pragma once

#include <toml++/toml.h>

#include "config/config_reader.h"
#include "grelay/config.h"

namespace grelay {

// The `tls` tables of [[listener]] and [[cluster]]. Each checks that the files it names load
// (a certificate with its key, a CA bundle) and throws ConfigError ("file:line: message") on
// the first problem.
ListenerTlsConfig parse_listener_tls(const ConfigReader& r, const toml::node& node);
ClusterTlsConfig parse_cluster_tls(const ConfigReader& r, const toml::node& node);

}  // namespace grelay
