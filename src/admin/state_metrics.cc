#include "admin/state_metrics.h"

#include <map>
#include <tuple>

#include "admin/prometheus_text.h"

namespace grelay {

std::string render_endpoint_states(const std::vector<std::shared_ptr<const WorkerStats>>& workers) {
  struct Merged {
    bool active = false;  // some worker still gives it new calls
    bool unhealthy = false;
    bool ejected = false;
    bool retired_unhealthy = false;
    bool retired_ejected = false;
  };
  // Sorted by cluster, configured endpoint and address, so scrapes compare line by line.
  std::map<std::tuple<std::string, std::string, std::string>, Merged> states;
  for (const auto& worker : workers) {
    for (const ClusterStats& cluster : worker->clusters()) {
      for (const EndpointStats& endpoint : cluster.endpoints) {
        for (const auto& state : endpoint.addresses()) {
          Merged& m = states[{cluster.name, endpoint.address, state->address}];
          bool healthy = state->healthy.load(std::memory_order_relaxed);
          bool ejected = state->ejected.load(std::memory_order_relaxed);
          if (state->draining.load(std::memory_order_relaxed)) {
            m.retired_unhealthy |= !healthy;
            m.retired_ejected |= ejected;
          } else {
            m.active = true;
            m.unhealthy |= !healthy;
            m.ejected |= ejected;
          }
        }
      }
    }
  }
  using namespace prometheus;
  std::string out;
  family(out, endpoint_state_family);
  for (const auto& [key, m] : states) {
    const auto& [cluster, endpoint, address] = key;
    bool unhealthy = m.active ? m.unhealthy : m.retired_unhealthy;
    bool ejected = m.active ? m.ejected : m.retired_ejected;
    auto line = [&, &cluster = cluster, &endpoint = endpoint, &address = address](const char* state,
                                                                                  bool on) {
      sample(out, endpoint_state_family.name,
             labels(endpoint_state_family.labels, {cluster, endpoint, address, state}),
             on ? "1" : "0");
    };
    line("healthy", !unhealthy);
    line("ejected", ejected);
    line("draining", !m.active);
  }
  return out;
}

std::string render_certificate_expiry(const std::vector<CertificateExpiry>& certificates) {
  using namespace prometheus;
  std::string out;
  family(out, certificate_expiry_family);
  for (const CertificateExpiry& c : certificates) {
    sample(out, certificate_expiry_family.name,
           labels(certificate_expiry_family.labels, {c.kind, c.name, c.file}),
           std::to_string(c.not_after));
  }
  return out;
}

}  // namespace grelay
