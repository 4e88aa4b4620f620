#include "relay/snapshot.h"

#include "relay/worker.h"

namespace grelay {

ClusterSlot::ClusterSlot(UpstreamContext ctx, std::shared_ptr<const Config> cfg, size_t index,
                         std::shared_ptr<TlsContexts> tls_contexts,
                         std::shared_ptr<WorkerStats> worker_stats)
    : config(std::move(cfg)),
      tls(std::move(tls_contexts)),
      stats(std::move(worker_stats)),
      context(ctx) {
  cluster = std::make_unique<Cluster>(context, config->clusters[index], tls->cluster(index));
  cluster->set_stats(stats->cluster(index));
}

Snapshot::Snapshot(Worker& worker, std::shared_ptr<const Config> config,
                   std::vector<ClusterSlot*> clusters, std::shared_ptr<TlsContexts> tls,
                   std::shared_ptr<WorkerStats> stats)
    : worker_(worker),
      config_(std::move(config)),
      router_(*config_),
      clusters_(std::move(clusters)),
      tls_(std::move(tls)),
      stats_(std::move(stats)) {
  for (ClusterSlot* slot : clusters_)
    ++slot->snapshots;
}

void SnapshotRef::reset() noexcept {
  Snapshot* snapshot = snapshot_;
  snapshot_ = nullptr;
  if (snapshot && --snapshot->refs_ == 0) snapshot->worker_.on_snapshot_unused(*snapshot);
}

}  // namespace grelay
