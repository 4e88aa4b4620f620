#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "grelay/config.h"
#include "net/tls_contexts.h"
#include "route/router.h"
#include "stats/worker_stats.h"
#include "upstream/cluster.h"
#include "upstream/endpoint.h"
#include "upstream/upstream_context.h"

namespace grelay {

class Worker;

// One [[cluster]] on one worker with the backend connections it pools. It has its own
// UpstreamContext so that a retired cluster knows when its last connection is released.
// Kept across reloads while its settings do not change, so its connections are kept too.
struct ClusterSlot {
  ClusterSlot(UpstreamContext context, std::shared_ptr<const Config> config, size_t index,
              std::shared_ptr<TlsContexts> tls, std::shared_ptr<WorkerStats> stats);
  ClusterSlot(const ClusterSlot&) = delete;
  ClusterSlot& operator=(const ClusterSlot&) = delete;

  // The Config holding the ClusterConfig that |cluster| refers to, and the TLS contexts and
  // counters it uses, kept as long as the cluster lives.
  std::shared_ptr<const Config> config;
  std::shared_ptr<TlsContexts> tls;
  std::shared_ptr<WorkerStats> stats;
  UpstreamContext context;
  std::unique_ptr<Cluster> cluster;
  // Snapshots that include this slot. At 0, with the slot out of the current snapshot, no
  // call can reach it any more: it is retired.
  size_t snapshots = 0;
  bool retired = false;
};

// What a call needs from one config, immutable once built: the config itself, its router and
// the clusters its routes name. A worker swaps to a new one on reload; each call keeps the one
// it started with (through a SnapshotRef), so it finishes on its own routes and clusters.
// Reference counts are plain integers: a snapshot belongs to one worker's loop.
class Snapshot {
 public:
  // |clusters| holds one slot per cluster of |config|, in config order; |tls| and |stats|
  // are the config's TLS contexts and where its calls count.
  Snapshot(Worker& worker, std::shared_ptr<const Config> config, std::vector<ClusterSlot*> clusters,
           std::shared_ptr<TlsContexts> tls, std::shared_ptr<WorkerStats> stats);
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;

  const Config& config() const noexcept { return *config_; }
  const std::shared_ptr<const Config>& config_ptr() const noexcept { return config_; }
  const Router& router() const noexcept { return router_; }
  Cluster& cluster(size_t index) const noexcept { return *clusters_[index]->cluster; }
  const std::vector<ClusterSlot*>& clusters() const noexcept { return clusters_; }
  const std::shared_ptr<TlsContexts>& tls() const noexcept { return tls_; }
  WorkerStats& stats() const noexcept { return *stats_; }
  const std::shared_ptr<WorkerStats>& stats_ptr() const noexcept { return stats_; }

 private:
  friend class SnapshotRef;

  Worker& worker_;
  std::shared_ptr<const Config> config_;
  Router router_;
  std::vector<ClusterSlot*> clusters_;
  std::shared_ptr<TlsContexts> tls_;
  std::shared_ptr<WorkerStats> stats_;
  size_t refs_ = 0;
};

// A counted reference to a Snapshot; the worker is told when the last one goes.
class SnapshotRef {
 public:
  SnapshotRef() noexcept = default;
  explicit SnapshotRef(Snapshot* snapshot) noexcept : snapshot_(snapshot) {
    if (snapshot_) ++snapshot_->refs_;
  }
  SnapshotRef(const SnapshotRef& other) noexcept : SnapshotRef(other.snapshot_) {}
  SnapshotRef& operator=(SnapshotRef other) noexcept {
    std::swap(snapshot_, other.snapshot_);
    return *this;
  }
  ~SnapshotRef() { reset(); }

  void reset() noexcept;
  Snapshot* get() const noexcept { return snapshot_; }
  Snapshot* operator->() const noexcept { return snapshot_; }
  Snapshot& operator*() const noexcept { return *snapshot_; }

 private:
  Snapshot* snapshot_ = nullptr;
};

}  // namespace grelay
