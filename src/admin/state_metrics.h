#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "stats/labelled_family.h"
#include "stats/worker_stats.h"

namespace grelay {

// Gauges of state rather than counts: each resolved endpoint address's state, and when each
// certificate grelay presents expires. Rendered at scrape time after the counters.

// grelay_endpoint_state{cluster,endpoint,address,state} 0 or 1 for state healthy, ejected
// and draining: one series per address a configured endpoint resolved to, merged over
// workers and over the configs still in use after a reload (an address is draining only
// where nothing still sends it new calls; healthy and ejected are then what the workers
// that do see).
inline constexpr LabelledFamily<4> endpoint_state_family{
    "grelay_endpoint_state",
    "gauge",
    "1 for the state each resolved endpoint address is in (healthy, ejected, draining), else 0.",
    {"cluster", "endpoint", "address", "state"}};
std::string render_endpoint_states(const std::vector<std::shared_ptr<const WorkerStats>>& workers);

// A certificate grelay presents, for grelay_tls_certificate_expiry_timestamp_seconds.
struct CertificateExpiry {
  std::string kind;  // "listener" or "cluster"
  std::string name;  // the listener's address or the cluster's name
  std::string file;
  int64_t not_after = 0;  // seconds since the epoch
};

inline constexpr LabelledFamily<3> certificate_expiry_family{
    "grelay_tls_certificate_expiry_timestamp_seconds",
    "gauge",
    "When each certificate grelay presents stops being valid (notAfter), in seconds since the "
    "epoch.",
    {"kind", "name", "file"}};
std::string render_certificate_expiry(const std::vector<CertificateExpiry>& certificates);

}  // namespace grelay
