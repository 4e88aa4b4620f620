#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "admin/state_metrics.h"
#include "grelay/metrics.h"
#include "stats/worker_stats.h"

namespace grelay {

// Process-wide events, counted by the server (any thread), declared once like the worker
// metrics: X(member, kind, Prometheus name, help) for unlabelled ones, X(member, kind, label
// value) for the counters of grelay_reloads_total.
#define GRELAY_PROCESS_STATS(X) \
  X(drains, SharedCounter, "grelay_drains_total", "Graceful drains started (SIGTERM/SIGINT).")

inline constexpr LabelledFamily<1> reloads_family{
    "grelay_reloads_total", "counter", "Config reloads, by result.", {"result"}};
#define GRELAY_RELOAD_STATS(X)            \
  X(reloads_ok, SharedCounter, "success") \
  X(reloads_failed, SharedCounter, "failure")

struct ProcessStats {
  GRELAY_PROCESS_STATS(GRELAY_STATS_MEMBER)
  GRELAY_RELOAD_STATS(GRELAY_LABELLED_MEMBER)
};

// What the admin endpoint reports: every worker's counters, merged when asked.
// Hooks for features that count outside the data path:
//   process().drains.add()                       each drain started (SIGTERM/SIGINT)
//   process().reloads_ok.add() / reloads_failed  each config reload attempt
class Metrics {
 public:
  // |process|: the process-wide events to report, which several registries may share (a
  // relay's own and its group's); by default, a set of its own.
  explicit Metrics(std::shared_ptr<ProcessStats> process = std::make_shared<ProcessStats>())
      : process_(std::move(process)) {}

  // Adds the counters of one worker. They stay reported (counters never go back) until
  // clear_workers().
  void add_worker(std::shared_ptr<const WorkerStats> stats);
  // Forgets every worker (before adding the workers of a new generation).
  void clear_workers();
  ProcessStats& process() noexcept { return *process_; }
  // What grelay_tls_certificate_expiry_timestamp_seconds reports: called at each scrape, on
  // the admin thread.
  void set_certificate_source(std::function<std::vector<CertificateExpiry>()> source) {
    certificates_ = std::move(source);
  }

  // Every metric in the Prometheus text exposition format (version 0.0.4).
  std::string render_prometheus() const;
  // The clusters, their endpoints and what is known of each, as JSON.
  std::string render_clusters() const;
  // The counters summed (the public view, without route or method labels).
  RelayMetrics totals() const;

 private:
  std::vector<std::shared_ptr<const WorkerStats>> snapshot() const;

  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<const WorkerStats>> workers_;
  std::shared_ptr<ProcessStats> process_;
  std::function<std::vector<CertificateExpiry>()> certificates_;
};

}  // namespace grelay
