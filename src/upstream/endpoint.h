#pragma once

#include <uv.h>

#include <cstdint>
#include <string>

#include "core/chunk.h"
#include "core/intrusive_list.h"
#include "core/worker_stats.h"
#include "grelay/config.h"
#include "net/flush_queue.h"
#include "net/tls_context.h"
#include "upstream/backend_session.h"

namespace grelay {

// What the sessions of a worker share: the loop, buffers and the send queue.
struct UpstreamContext {
  uv_loop_t* loop;
  ChunkPool& pool;
  FlushQueue& flush_queue;
  nghttp2_mem* mem;
  // Backend sessions alive (so shutdown knows when the last socket is released).
  size_t live_sessions = 0;
  // Called when |live_sessions| drops to zero, if set.
  void (*on_all_closed)(void* ctx) noexcept = nullptr;
  void* on_all_closed_ctx = nullptr;
};

// One backend address of a cluster and its pooled connections.
class Endpoint {
 public:
  // |tls|: dial over TLS with it (nullptr: h2c).
  Endpoint(UpstreamContext& ctx, const HostPort& address, const ClusterConfig& cluster,
           const ClientTls* tls = nullptr) noexcept;
  // Destroy only once every session is released (UpstreamContext::live_sessions is 0):
  // sessions report to their endpoint until then.
  ~Endpoint() = default;
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  // Puts |handler| on a connection: one with a free stream slot, else a new one while under
  // the per-endpoint cap, else the least loaded (its stream limit queues the request).
  void open_stream(UpstreamHandler& handler) noexcept;

  // True while recent connect failures hold new dials back.
  bool backing_off(uint64_t now_ms) const noexcept;
  const std::string& last_error() const noexcept { return last_error_; }
  const std::string& name() const noexcept { return address_.text; }
  size_t load() const noexcept;

  // Closes every connection (shutdown).
  void close_all() noexcept;

  // Where this endpoint counts connections and failures; set once before it serves.
  void set_stats(ClusterStats* cluster, EndpointStats* endpoint) noexcept {
    cluster_stats_ = cluster;
    stats_ = endpoint;
  }
  ClusterStats* cluster_stats() noexcept { return cluster_stats_; }
  EndpointStats* stats() noexcept { return stats_; }

  UpstreamContext& context() noexcept { return ctx_; }
  const ClusterConfig& cluster() const noexcept { return cluster_; }
  const ClientTls* tls() const noexcept { return tls_; }

 private:
  friend class BackendSession;

  BackendSession* dial() noexcept;
  void on_connected() noexcept;
  void on_connect_failed(const std::string& why) noexcept;
  void on_session_gone(BackendSession& session) noexcept;

  UpstreamContext& ctx_;
  HostPort address_;
  const ClusterConfig& cluster_;
  const ClientTls* tls_;
  IntrusiveList<BackendSession> sessions_;
  bool literal_ = false;
  sockaddr_storage addr_{};
  uint32_t failures_ = 0;
  uint64_t retry_at_ms_ = 0;
  std::string last_error_;
  ClusterStats* cluster_stats_ = nullptr;
  EndpointStats* stats_ = nullptr;
  // The failure last logged at warning level; the same one again is logged at debug level
  // only, until a connection succeeds.
  std::string logged_error_;
};

}  // namespace grelay
