#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/chunk.h"
#include "core/intrusive_list.h"
#include "core/worker_stats.h"
#include "grelay/config.h"
#include "h2/server_session.h"
#include "h2/session_allocator.h"
#include "net/flush_queue.h"
#include "net/listener.h"
#include "relay/access_log.h"
#include "net/tls_contexts.h"
#include "relay/deadline_queue.h"
#include "route/router.h"
#include "upstream/cluster.h"
#include "upstream/endpoint.h"

namespace grelay {

// Everything the relay runs on one loop. Sessions and calls refer back to it; it outlives
// them (shutdown() reports when the last is gone).
class Worker final : public ServerSessionOwner {
 public:
  Worker(uv_loop_t* loop, std::shared_ptr<const Config> config, std::shared_ptr<TlsContexts> tls);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  uv_loop_t* loop() const noexcept { return loop_; }
  DeadlineQueue& deadlines() noexcept { return deadlines_; }
  // Timers of calls waiting out a retry backoff.
  DeadlineQueue& retry_timers() noexcept { return retry_timers_; }
  const Router& router() const noexcept { return router_; }
  Cluster& cluster(size_t index) noexcept { return *clusters_[index]; }
  const Config& config() const noexcept { return *config_; }
  WorkerStats& stats() noexcept { return *stats_; }
  std::shared_ptr<const WorkerStats> shared_stats() const noexcept { return stats_; }
  // The access log, or nullptr when the config has none.
  AccessLog* access_log() noexcept { return access_log_.get(); }
  // The client address of |session| ("ip:port"), kept while the access log is on; else "".
  std::string_view peer_of(const ServerSession& session) const noexcept;
  const std::shared_ptr<TlsContexts>& tls_contexts() const noexcept { return tls_; }

  // Adopts the listening socket |fd| for listener |index|. Returns 0 or a libuv error.
  int listen(size_t index, int fd) noexcept;
  int serve(uv_os_sock_t fd, size_t listener_index) noexcept;
  const std::vector<std::string>& addresses() const noexcept { return addresses_; }

  void shutdown(bool graceful, std::function<void()> done);

  ServerStreamHandler* on_new_stream(ServerSession& session, int32_t stream_id) noexcept override;
  void on_session_gone(ServerSession& session) noexcept override;

 private:
  struct ListenerSlot {
    Worker* worker;
    size_t index;
    Listener* listener;
  };

  static void on_accept(void* ctx, uv_stream_t* server) noexcept;
  ServerSession* new_session(size_t listener_index) noexcept;
  // Puts TLS on |session|'s connection when listener |listener_index| has it. Returns 0 or a
  // libuv error.
  int secure(ServerSession& session, size_t listener_index) noexcept;
  void maybe_finish_shutdown() noexcept;
  static void on_backends_closed(void* ctx) noexcept;
  static void on_handle_closed(void* ctx) noexcept;

  uv_loop_t* loop_;
  std::shared_ptr<const Config> config_;
  std::shared_ptr<TlsContexts> tls_;
  // Outlives every session (and so every rcbuf a Call still holds).
  SessionAllocator allocator_;
  ChunkPool pool_;
  FlushQueue flush_queue_;
  DeadlineQueue deadlines_;
  DeadlineQueue retry_timers_;
  Router router_;
  UpstreamContext upstream_;
  std::vector<std::unique_ptr<Cluster>> clusters_;
  std::vector<std::unique_ptr<ListenerSlot>> listeners_;
  std::vector<std::string> addresses_;
  IntrusiveList<ServerSession> sessions_;
  std::shared_ptr<WorkerStats> stats_;
  std::unique_ptr<AccessLog> access_log_;
  struct SessionInfo {
    size_t listener;
    std::string peer;
  };
  std::unordered_map<const ServerSession*, SessionInfo> session_info_;

  enum class Phase { running, draining, closing_backends, closing_handles, closed };
  Phase phase_ = Phase::running;
  int open_handles_ = 0;
  std::function<void()> shutdown_done_;
};

}  // namespace grelay
