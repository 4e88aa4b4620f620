#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/chunk.h"
#include "core/intrusive_list.h"
#include "grelay/config.h"
#include "h1/http1_session.h"
#include "h2/server_session.h"
#include "h2/session_allocator.h"
#include "net/flush_queue.h"
#include "net/listener.h"
#include "net/tls_contexts.h"
#include "relay/access_log.h"
#include "relay/deadline_queue.h"
#include "relay/snapshot.h"
#include "stats/worker_stats.h"
#include "web/web_stream.h"

namespace grelay {

class Call;

// How many connections one worker took, written on its loop and readable from any thread
// (to see how connections spread over workers). Shared, so it outlives the Worker.
struct WorkerLoad {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> open_connections{0};
};

// Everything the relay runs on one loop. Sessions and calls refer back to it; it outlives
// them (shutdown() reports when the last is gone).
class Worker final : public ServerSessionOwner, public Http1SessionOwner, public WebHost {
 public:
  // |tls|: the config's TLS contexts (shared by every worker of the config, through their
  // Relays' group). |stats|: where the calls of |config| count; nullptr makes new ones.
  Worker(uv_loop_t* loop, std::shared_ptr<const Config> config, std::shared_ptr<TlsContexts> tls,
         std::shared_ptr<WorkerStats> stats = nullptr);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  uv_loop_t* loop() const noexcept { return loop_; }
  DeadlineQueue& deadlines() noexcept { return deadlines_; }
  // Timers of calls waiting out a retry backoff.
  DeadlineQueue& retry_timers() noexcept { return retry_timers_; }
  // The config new connections and calls follow; calls keep the snapshot they started on.
  const Config& config() const noexcept { return current_->config(); }
  const SnapshotRef& snapshot() const noexcept { return current_; }
  const std::shared_ptr<TlsContexts>& tls_contexts() const noexcept { return current_->tls(); }
  std::shared_ptr<const WorkerLoad> load() const noexcept { return load_; }
  ChunkPool& pool() noexcept override { return pool_; }
  FlushQueue& flush_queue() noexcept override { return flush_queue_; }
  nghttp2_mem* mem() noexcept { return allocator_.mem(); }
  // The access log, or nullptr when the config has none. It is the one of the config the
  // worker started with: a reload does not change it.
  AccessLog* access_log() noexcept { return access_log_.get(); }
  // The client address of |downstream| ("ip:port"), kept while the access log is on; else "".
  std::string_view peer_of(const Downstream& downstream) const noexcept;
  // Counts one more call of |downstream| to |cluster|, unless that would take the connection
  // over the cluster's max_client_share of its stream capacity (then false). A connection
  // may always hold one call.
  bool take_share(Downstream& downstream, Cluster& cluster) noexcept;
  // Gives back what take_share() counted.
  void release_share(Downstream& downstream, const Cluster& cluster) noexcept;

  // A downstream that is not a connection of the worker's listeners (a host application's own
  // session) joins the worker: its calls count under listener |listener_index| of the current
  // config, and it is drained, expired and closed with the worker's connections. |peer| is the
  // client's address for the access log. False (and nothing done) once a shutdown has begun.
  bool attach(Downstream& downstream, size_t listener_index, std::string peer) noexcept;
  // The downstream is gone (it has ended its streams first).
  void detach(Downstream& downstream) noexcept;
  // A new call on stream |stream_id| of |downstream|, counted among its listener's calls.
  Call* new_call(Downstream& downstream, int32_t stream_id) noexcept;
  // The handler of a new request stream of |downstream| on a listener with web protocols on:
  // it finds out whether the request is a web call (|http1|: |downstream| speaks HTTP/1.1).
  ServerStreamHandler* new_web_stream(Downstream& downstream, int32_t stream_id,
                                      bool http1) noexcept;

  // WebHost.
  ServerStreamHandler* new_grpc_call(Downstream& downstream, int32_t stream_id) noexcept override;
  const CorsConfig* cors_for(const ListenerConfig& listener, std::string_view path,
                             std::string_view authority,
                             const PeerIdentity* client) noexcept override;
  void count_preflight(Downstream& downstream) noexcept override;

  // Adopts the listening socket |fd| for listener |index| of the current config. Returns 0
  // or a libuv error.
  int listen(size_t index, int fd) noexcept;
  // Serves one accepted connection for listener |listener_index| of the current config.
  int serve(uv_os_sock_t fd, size_t listener_index) noexcept;
  const std::vector<std::string>& addresses() const noexcept { return addresses_; }

  // Counts connections of listener i (of the current config) in |gauges[i]|, so that workers
  // sharing a listener share its max_connections.
  void share_gauges(std::vector<std::shared_ptr<ConnectionGauge>> gauges);

  // Reload: new connections and calls follow |config| from now on; open calls finish on the
  // snapshot they started with. Clusters whose settings did not change keep their backend
  // connections; the others are retired once their last call ends. Listeners whose address
  // is gone from |config| stop accepting and their connections are shut down (GOAWAY).
  // |gauges| (one per listener of |config|, or empty) as for share_gauges(); |tls| and
  // |stats| as for the constructor. Listeners added by |config| are opened afterwards with
  // listen(). Returns false (and changes nothing) once a shutdown has begun.
  bool reconfigure(std::shared_ptr<const Config> config,
                   std::vector<std::shared_ptr<ConnectionGauge>> gauges,
                   std::shared_ptr<TlsContexts> tls, std::shared_ptr<WorkerStats> stats);

  void shutdown(bool graceful, std::function<void()> done);
  // Drain timeout: every open call ends now with UNAVAILABLE; connections close once the
  // statuses are out.
  void expire_calls() noexcept;

  ServerStreamHandler* on_new_stream(ServerSession& session, int32_t stream_id) noexcept override;
  void on_session_gone(ServerSession& session) noexcept override;
  void on_http1(ServerSession& session, std::string_view input) noexcept override;

  ServerStreamHandler* on_new_request(Http1Session& session, int32_t stream_id) noexcept override;
  void on_session_gone(Http1Session& session) noexcept override;

  // The last reference to |snapshot| went away (SnapshotRef).
  void on_snapshot_unused(Snapshot& snapshot) noexcept;

 private:
  struct ListenerSlot {
    Worker* worker;
    size_t index;
    Listener* listener;
    // The address as configured, and as bound ("ip:port").
    HostPort address;
    std::string bound;
  };
  // What the worker keeps per client connection or attached downstream (Downstream::tag()).
  struct SessionInfo {
    // The counters of the listener the connection came in on, in the snapshot of its accept.
    std::shared_ptr<WorkerStats> stats;
    ListenerStats* listener = nullptr;
    // The connection's listener in the config in force (reconfigure() follows it through
    // each reload); |gone| once a reload dropped it.
    static constexpr size_t gone = SIZE_MAX;
    size_t listener_index = gone;
    std::string peer;
    // Calls of this connection in flight per cluster (max_client_share); few clusters each.
    std::vector<std::pair<const Cluster*, uint32_t>> held;
  };

  static void on_accept(void* ctx, uv_stream_t* server) noexcept;
  ServerSession* new_session(size_t listener_index) noexcept;
  bool start_session(ServerSession& session, size_t listener_index) noexcept;
  // Counts |downstream| as a connection of listener |listener_index| (SessionInfo).
  void count_in(Downstream& downstream, size_t listener_index, std::string peer) noexcept;
  // Puts TLS on |session|'s connection when listener |listener_index| has it. Returns 0 or a
  // libuv error.
  int secure(ServerSession& session, size_t listener_index) noexcept;
  // Builds a snapshot of |config|, keeping the slots of unchanged clusters.
  SnapshotRef make_snapshot(std::shared_ptr<const Config> config, std::shared_ptr<TlsContexts> tls,
                            std::shared_ptr<WorkerStats> stats);
  void retire(ClusterSlot& slot) noexcept;
  // Deletes retired slots whose connections are all released.
  void reap_slots() noexcept;
  size_t live_backend_sessions() const noexcept;
  void maybe_finish_shutdown() noexcept;
  static void on_slot_closed(void* ctx) noexcept;
  void on_backends_closed() noexcept;
  static void on_handle_closed(void* ctx) noexcept;

  uv_loop_t* loop_;
  // Outlives every session (and so every rcbuf a Call still holds).
  SessionAllocator allocator_;
  ChunkPool pool_;
  FlushQueue flush_queue_;
  DeadlineQueue deadlines_;
  DeadlineQueue retry_timers_;
  // Every cluster slot alive: in use by a snapshot, or retired and closing.
  std::vector<std::unique_ptr<ClusterSlot>> slots_;
  // Every snapshot some call (or the worker, for the current one) refers to.
  std::vector<std::unique_ptr<Snapshot>> snapshots_;
  SnapshotRef current_;
  std::vector<std::shared_ptr<ConnectionGauge>> gauges_;
  std::vector<std::unique_ptr<ListenerSlot>> listeners_;
  std::vector<std::string> addresses_;
  // Every client connection of the listeners and every attached downstream.
  IntrusiveList<Downstream> downstreams_;
  std::shared_ptr<WorkerLoad> load_ = std::make_shared<WorkerLoad>();
  std::unique_ptr<AccessLog> access_log_;

  enum class Phase { running, draining, closing_backends, closing_handles, closed };
  Phase phase_ = Phase::running;
  int open_handles_ = 0;
  bool destroying_ = false;
  std::function<void()> shutdown_done_;
};

}  // namespace grelay
