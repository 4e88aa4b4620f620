#include "admin/metrics.h"

#include <cstdio>
#include <map>
#include <utility>

#include "admin/process_metrics.h"
#include "admin/prometheus_text.h"
#include "core/json.h"
#include "grelay/version.h"
#include "stats/peer_error.h"

namespace grelay {
namespace {

using prometheus::label_pairs;

std::string json_string(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

std::string format_double(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

class Writer {
 public:
  void family(const char* name, const char* type, const char* help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  template <size_t N>
  void family(const LabelledFamily<N>& f) {
    family(f.name, f.prometheus_type, f.help);
  }
  void sample(const std::string& name, const std::string& label_text, const std::string& value) {
    out_ += name;
    if (!label_text.empty()) {
      out_ += '{';
      out_ += label_text;
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }

  // The samples of one labelled object's metric, by what a scrape read of its kind.
  void samples(const std::string& name, const std::string& label_text, uint64_t value) {
    sample(name, label_text, std::to_string(value));
  }
  void samples(const std::string& name, const std::string& label_text, int64_t value) {
    sample(name, label_text, std::to_string(value));
  }
  // One sample per status code that counted a call.
  void samples(const std::string& name, const std::string& label_text, const StatusTotals& t) {
    for (size_t i = 0; i < status_code_count; ++i) {
      if (t.calls[i] == 0) continue;
      std::string code(status_name(static_cast<StatusCode>(i)));
      samples(name, label_text + "," + label_pairs({{StatusCounters::label, code}}), t.calls[i]);
    }
  }
  // A histogram: cumulative buckets, the sum and the count.
  void samples(const std::string& name, const std::string& label_text, const DurationTotals& t) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i < t.buckets.size(); ++i) {
      cumulative += t.buckets[i];
      std::string le = i < duration_bounds.size() ? format_double(duration_bounds[i]) : "+Inf";
      samples(name + "_bucket", label_text + "," + label_pairs({{"le", le}}), cumulative);
    }
    sample(name + "_sum", label_text, format_double(t.sum_ns / 1e9));
    samples(name + "_count", label_text, cumulative);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// A declared metric summed over workers: whatever its kind's get() returns (an int64_t for a
// gauge, a uint64_t for a counter, StatusTotals, DurationTotals).
#define GRELAY_TOTAL_MEMBER(member, kind, ...) decltype(std::declval<const kind&>().get()) member{};
#define GRELAY_ADD_MEMBER(member, ...) member += from.member.get();

// Writes the family of each named metric of a GRELAY_*_STATS list, with the samples of every
// entry of |entries| (pairs of label text and totals).
#define GRELAY_FAMILY(member, kind, name, help)      \
  if (*(name)) {                                     \
    w.family(name, kind::prometheus_type, help);     \
    for (const auto& [label_text, totals] : entries) \
      w.samples(name, label_text, totals.member);    \
  }
// Writes one sample per counter of a LabelledFamily (X(member, kind, value)) for each entry of
// |entries|, after the entry's own labels.
#define GRELAY_LABELLED_SAMPLE(member, kind, value)                                            \
  w.samples(                                                                                   \
      family.name,                                                                             \
      label_text + (label_text.empty() ? "" : ",") + label_pairs({{family.labels[0], value}}), \
      totals.member);

// The merged counters of every call series with the same labels.
struct SeriesTotals {
  GRELAY_CALL_STATS(GRELAY_TOTAL_MEMBER)
  // A route's fixed series shows from the start; others once they counted a call.
  bool shown = false;

  void add(const CallSeries& from) { GRELAY_CALL_STATS(GRELAY_ADD_MEMBER) }
};

struct EndpointTotals {
  GRELAY_ENDPOINT_STATS(GRELAY_TOTAL_MEMBER)
  GRELAY_HEALTH_CHECK_STATS(GRELAY_TOTAL_MEMBER)
  bool any_healthy = false;
  bool any_unhealthy = false;
  size_t ejected = 0;

  void add(const EndpointStats& from) {
    GRELAY_ENDPOINT_STATS(GRELAY_ADD_MEMBER)
    GRELAY_HEALTH_CHECK_STATS(GRELAY_ADD_MEMBER)
    auto health = from.health.load(std::memory_order_relaxed);
    any_healthy |= health == EndpointStats::Health::healthy;
    any_unhealthy |= health == EndpointStats::Health::unhealthy;
    if (from.ejected.load(std::memory_order_relaxed)) ++ejected;
  }
};

struct ClusterTotals {
  std::string name;
  GRELAY_CLUSTER_STATS(GRELAY_TOTAL_MEMBER)
  std::vector<std::pair<std::string, EndpointTotals>> endpoints;

  void add(const ClusterStats& from) { GRELAY_CLUSTER_STATS(GRELAY_ADD_MEMBER) }
};

struct ListenerTotals {
  GRELAY_LISTENER_STATS(GRELAY_TOTAL_MEMBER)

  void add(const ListenerStats& from) { GRELAY_LISTENER_STATS(GRELAY_ADD_MEMBER) }
};

struct ProcessTotals {
  GRELAY_PROCESS_STATS(GRELAY_TOTAL_MEMBER)
  GRELAY_RELOAD_STATS(GRELAY_TOTAL_MEMBER)

  void add(const ProcessStats& from) {
    GRELAY_PROCESS_STATS(GRELAY_ADD_MEMBER)
    GRELAY_RELOAD_STATS(GRELAY_ADD_MEMBER)
  }
};

constexpr LabelledFamily<1> build_info_family{
    "grelay_build_info",
    "gauge",
    "Always 1; the version label names the running build.",
    {"version"}};

// Sums every worker's cluster counters, in config order.
std::vector<ClusterTotals> merge_clusters(
    const std::vector<std::shared_ptr<const WorkerStats>>& workers) {
  std::vector<ClusterTotals> out;
  for (const auto& w : workers) {
    const auto& clusters = w->clusters();
    if (out.size() < clusters.size()) out.resize(clusters.size());
    for (size_t i = 0; i < clusters.size(); ++i) {
      const ClusterStats& c = clusters[i];
      ClusterTotals& t = out[i];
      t.name = c.name;
      t.add(c);
      if (t.endpoints.size() < c.endpoints.size()) t.endpoints.resize(c.endpoints.size());
      for (size_t j = 0; j < c.endpoints.size(); ++j) {
        const EndpointStats& e = c.endpoints[j];
        auto& [address, et] = t.endpoints[j];
        address = e.address;
        et.add(e);
      }
    }
  }
  return out;
}

}  // namespace

void Metrics::add_worker(std::shared_ptr<const WorkerStats> stats) {
  std::lock_guard<std::mutex> lock(mutex_);
  workers_.push_back(std::move(stats));
}

void Metrics::clear_workers() {
  std::lock_guard<std::mutex> lock(mutex_);
  workers_.clear();
}

std::vector<std::shared_ptr<const WorkerStats>> Metrics::snapshot() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return workers_;
}

std::string Metrics::render_prometheus() const {
  auto workers = snapshot();
  Writer w;

  w.family(build_info_family);
  w.samples(build_info_family.name, label_pairs(build_info_family.labels, {version_string}),
            int64_t{1});

  // Call series, merged over workers by their labels (sorted, so scrapes compare line by line).
  std::map<std::string, SeriesTotals> series;
  for (const auto& worker : workers) {
    worker->for_each_series([&](const CallSeries& s) {
      SeriesTotals& t =
          series[label_pairs(call_stat_labels, {s.route, s.cluster, s.service, s.method})];
      t.shown |= s.started.get() > 0 || (!s.route.empty() && s.service != "other");
      t.add(s);
    });
  }
  {
    std::vector<std::pair<std::string, const SeriesTotals&>> entries;
    for (const auto& [label_text, t] : series)
      if (t.shown) entries.emplace_back(label_text, t);
    GRELAY_CALL_STATS(GRELAY_FAMILY)
  }

  // Listeners, merged by address.
  {
    std::map<std::string, ListenerTotals> entries;
    for (const auto& worker : workers) {
      for (const ListenerStats& l : worker->listeners())
        entries[label_pairs(listener_stat_labels, {l.address})].add(l);
    }
    GRELAY_LISTENER_STATS(GRELAY_FAMILY)
  }

  auto clusters = merge_clusters(workers);
  {
    std::vector<std::pair<std::string, const ClusterTotals&>> entries;
    for (const auto& c : clusters)
      entries.emplace_back(label_pairs(cluster_stat_labels, {c.name}), c);
    GRELAY_CLUSTER_STATS(GRELAY_FAMILY)
  }
  {
    std::vector<std::pair<std::string, const EndpointTotals&>> entries;
    for (const auto& c : clusters) {
      for (const auto& [address, e] : c.endpoints)
        entries.emplace_back(label_pairs(endpoint_stat_labels, {c.name, address}), e);
    }
    GRELAY_ENDPOINT_STATS(GRELAY_FAMILY)
    const auto& family = health_checks_family;
    w.family(family);
    for (const auto& [label_text, totals] : entries) {
      GRELAY_HEALTH_CHECK_STATS(GRELAY_LABELLED_SAMPLE)
    }
  }

  w.family(relay_errors_family);
  for (size_t i = 1; i < error_reason_count; ++i) {
    auto reason = static_cast<ErrorReason>(i);
    uint64_t total = 0;
    for (const auto& worker : workers)
      total += worker->errors(reason);
    w.samples(relay_errors_family.name,
              label_pairs(relay_errors_family.labels, {error_reason_name(reason)}), total);
  }

  w.family(peer_errors_family);
  for (size_t side = 0; side < peer_side_count; ++side) {
    for (size_t why = 0; why < peer_error_count; ++why) {
      const auto peer = static_cast<PeerSide>(side);
      const auto reason = static_cast<PeerError>(why);
      w.samples(
          peer_errors_family.name,
          label_pairs(peer_errors_family.labels, {peer_side_name(peer), peer_error_name(reason)}),
          peer_error_total(peer, reason));
    }
  }

  {
    ProcessTotals merged;
    merged.add(*process_);
    const std::array<std::pair<std::string, const ProcessTotals&>, 1> entries{{{"", merged}}};
    GRELAY_PROCESS_STATS(GRELAY_FAMILY)
    const auto& family = reloads_family;
    w.family(family);
    for (const auto& [label_text, totals] : entries) {
      GRELAY_RELOAD_STATS(GRELAY_LABELLED_SAMPLE)
    }
  }
  // State gauges and the process_* families are rendered in their own files.
  std::string out = w.take();
  out += render_endpoint_states(workers);
  out +=
      render_certificate_expiry(certificates_ ? certificates_() : std::vector<CertificateExpiry>{});
  out += render_process_metrics(sample_process());
  return out;
}

RelayMetrics Metrics::totals() const {
  static_assert(grpc_status_count == status_code_count);
  auto workers = snapshot();
  RelayMetrics out;
  // Listeners by address and clusters by name, each in the order first seen.
  auto listener = [&out](const std::string& address) -> ListenerMetrics& {
    for (ListenerMetrics& l : out.listeners) {
      if (l.address == address) return l;
    }
    out.listeners.push_back({address});
    return out.listeners.back();
  };
  auto cluster = [&out](const std::string& name) -> ClusterMetrics& {
    for (ClusterMetrics& c : out.clusters) {
      if (c.name == name) return c;
    }
    out.clusters.push_back({name});
    return out.clusters.back();
  };
  for (const auto& worker : workers) {
    worker->for_each_series([&out](const CallSeries& s) {
      out.calls_started += s.started.get();
      const StatusTotals ended = s.finished.get();
      for (size_t i = 0; i < status_code_count; ++i)
        out.calls_ended[i] += ended.calls[i];
      out.request_messages += s.request_messages.get();
      out.response_messages += s.response_messages.get();
      out.request_bytes += s.request_bytes.get();
      out.response_bytes += s.response_bytes.get();
    });
    for (const ListenerStats& l : worker->listeners()) {
      ListenerMetrics& m = listener(l.address);
      m.connections_accepted += l.connections.get();
      m.active_connections += l.active_connections.get();
      m.active_calls += l.active_calls.get();
      out.client_connections += l.connections.get();
      out.active_client_connections += l.active_connections.get();
      out.active_calls += l.active_calls.get();
    }
    for (const ClusterStats& c : worker->clusters()) {
      ClusterMetrics& m = cluster(c.name);
      m.active_calls += c.active_calls.get();
      m.active_connections += c.connections.get();
      m.retries += c.retries.get();
      for (const EndpointStats& e : c.endpoints) {
        m.connect_failures += e.connect_failures.get();
        m.ejections += e.ejections.get();
      }
      out.active_backend_connections += c.connections.get();
      out.retries += c.retries.get();
    }
  }
  for (const ClusterMetrics& c : out.clusters)
    out.backend_connect_failures += c.connect_failures;
  for (size_t i = 1; i < error_reason_count; ++i) {
    auto reason = static_cast<ErrorReason>(i);
    uint64_t total = 0;
    for (const auto& worker : workers)
      total += worker->errors(reason);
    out.relay_errors.push_back({std::string(error_reason_name(reason)), total});
  }
  for (size_t why = 0; why < peer_error_count; ++why) {
    const auto reason = static_cast<PeerError>(why);
    const std::string name(peer_error_name(reason));
    out.client_errors.push_back({name, peer_error_total(PeerSide::client, reason)});
    out.backend_errors.push_back({name, peer_error_total(PeerSide::backend, reason)});
  }
  out.reloads = process_->reloads_ok.get();
  out.failed_reloads = process_->reloads_failed.get();
  out.drains = process_->drains.get();
  return out;
}

std::string Metrics::render_clusters() const {
  auto clusters = merge_clusters(snapshot());
  std::string out = "{\"clusters\":[";
  for (size_t i = 0; i < clusters.size(); ++i) {
    const ClusterTotals& c = clusters[i];
    if (i > 0) out += ',';
    out += "{\"name\":" + json_string(c.name) +
           ",\"active_calls\":" + std::to_string(c.active_calls) +
           ",\"connections\":" + std::to_string(c.connections) +
           ",\"retries\":" + std::to_string(c.retries) + ",\"endpoints\":[";
    for (size_t j = 0; j < c.endpoints.size(); ++j) {
      const auto& [address, e] = c.endpoints[j];
      if (j > 0) out += ',';
      // Workers check and eject on their own: the worst state any of them has is shown.
      const char* health = e.any_unhealthy ? "unhealthy" : e.any_healthy ? "healthy" : "unknown";
      out += "{\"address\":" + json_string(address) + ",\"health\":\"" + health +
             "\",\"ejected\":" + (e.ejected > 0 ? "true" : "false") +
             ",\"active_calls\":" + std::to_string(e.active_calls) +
             ",\"connections\":" + std::to_string(e.connections) +
             ",\"connect_failures\":" + std::to_string(e.connect_failures) + "}";
    }
    out += "]}";
  }
  out += "]}\n";
  return out;
}

}  // namespace grelay
