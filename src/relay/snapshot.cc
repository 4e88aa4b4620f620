#include "relay/snapshot.h"

#include "relay/worker.h"

namespace grelay {

ClusterSlot::ClusterSlot(UpstreamContext ctx, std::shared_ptr<const Config> cfg, size_t index)
    : config(std::move(cfg)), context(ctx) {
  cluster = std::make_unique<Cluster>(context, config->clusters[index]);
}

Snapshot::Snapshot(Worker& worker, std::shared_ptr<const Config> config,
                   std::vector<ClusterSlot*> clusters)
    : worker_(worker),
      config_(std::move(config)),
      router_(*config_),
      clusters_(std::move(clusters)) {
  for (ClusterSlot* slot : clusters_)
    ++slot->snapshots;
}

void SnapshotRef::reset() noexcept {
  Snapshot* snapshot = snapshot_;
  snapshot_ = nullptr;
  if (snapshot && --snapshot->refs_ == 0) snapshot->worker_.on_snapshot_unused(*snapshot);
}

}  // namespace grelay
