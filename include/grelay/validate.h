#pragma once

#include <memory>

#include "grelay/config.h"
#include "grelay/export.h"

namespace grelay {

// Checks |config|, built field by field in code, by the rules load_config() applies to a
// file, with the same messages, and completes it as the loader does: each route's
// cluster_index; each address's host in canonical form ("localhost" is 127.0.0.1) and its
// text, when empty, as "host:port" (an address given only as text is read from it); one
// weight per endpoint (1 unless set); hash_header and certificate names in lower case.
// Certificate, key and CA files are loaded to check them; file names are used as given.
// Returns the config to hand to a Relay or RelayGroup, or throws ConfigError. Its what()
// names the element: an element with a |line| (a config loaded from a file and then
// changed) by "path:line", one made in code by its place in the Config ("routes[2]: route
// names unknown cluster 'greter' (did you mean 'greeter'?)").
GRELAY_API std::shared_ptr<const Config> validate_config(Config config);

}  // namespace grelay
