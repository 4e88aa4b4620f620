#include "relay/worker.h"

#include <unistd.h>

#include <system_error>

#include "core/log.h"
#include "relay/call.h"

namespace grelay {

Worker::Worker(uv_loop_t* loop, std::shared_ptr<const Config> config,
               std::shared_ptr<TlsContexts> tls)
    : loop_(loop),
      config_(std::move(config)),
      tls_(std::move(tls)),
      flush_queue_(loop),
      deadlines_(loop),
      retry_timers_(loop),
      router_(*config_),
      upstream_{loop, pool_, flush_queue_, allocator_.mem()},
      stats_(std::make_shared<WorkerStats>(*config_)) {
  clusters_.reserve(config_->clusters.size());
  for (size_t i = 0; i < config_->clusters.size(); ++i) {
    clusters_.push_back(
        std::make_unique<Cluster>(upstream_, config_->clusters[i], tls_->cluster(i)));
    clusters_.back()->set_stats(stats_->cluster(i));
  }
  if (config_->access_log) access_log_ = std::make_unique<AccessLog>(loop, *config_->access_log);
}

Worker::~Worker() = default;

int Worker::listen(size_t index, int fd) noexcept {
  auto slot = std::make_unique<ListenerSlot>(ListenerSlot{this, index, nullptr});
  int err = 0;
  slot->listener = Listener::open(loop_, fd, on_accept, slot.get(), err);
  if (!slot->listener) return err;
  sockaddr_storage addr{};
  if (socket_local_address(fd, addr)) {
    addresses_.push_back(sockaddr_to_string(reinterpret_cast<sockaddr*>(&addr)));
  }
  listeners_.push_back(std::move(slot));
  return 0;
}

void Worker::on_accept(void* ctx, uv_stream_t* server) noexcept {
  auto* slot = static_cast<ListenerSlot*>(ctx);
  Worker* self = slot->worker;
  ServerSession* session = self->new_session(slot->index);
  if (!session) return;
  int rc = session->connection().accept(server);
  if (rc == 0) rc = self->secure(*session, slot->index);
  if (rc == 0 && self->access_log_) {
    char peer[64];
    session->connection().peer_name(peer, sizeof(peer));
    self->session_info_[session].peer = peer;
  }
  if (rc != 0 || !session->start(self->config_->listeners[slot->index])) {
    GRELAY_LOG_WARN("cannot accept a connection: %s", rc ? uv_strerror(rc) : "session setup");
    session->close();
  }
}

int Worker::serve(uv_os_sock_t fd, size_t listener_index) noexcept {
  if (listener_index >= config_->listeners.size()) return UV_EINVAL;
  ServerSession* session = new_session(listener_index);
  if (!session) return UV_ECANCELED;
  int rc = session->connection().open(fd);
  if (rc == 0) rc = secure(*session, listener_index);
  if (rc == 0 && access_log_) {
    char peer[64];
    session->connection().peer_name(peer, sizeof(peer));
    session_info_[session].peer = peer;
  }
  if (rc == 0 && !session->start(config_->listeners[listener_index])) rc = UV_ENOMEM;
  if (rc != 0) session->close();
  return rc;
}

ServerSession* Worker::new_session(size_t listener_index) noexcept {
  if (phase_ != Phase::running) return nullptr;
  auto* session = new ServerSession(loop_, pool_, flush_queue_, allocator_.mem(), *this);
  sessions_.push_back(*session);
  session_info_[session].listener = listener_index;
  ListenerStats& stats = stats_->listener(listener_index);
  stats.connections.add();
  stats.active_connections.add(1);
  return session;
}

std::string_view Worker::peer_of(const ServerSession& session) const noexcept {
  auto it = session_info_.find(&session);
  return it == session_info_.end() ? std::string_view() : std::string_view(it->second.peer);
}

int Worker::secure(ServerSession& session, size_t listener_index) noexcept {
  const ServerTls* tls = tls_->listener(listener_index);
  if (!tls) return 0;
  std::shared_ptr<const ServerTlsContext> context = tls->current();
  SSL* ssl = context->new_ssl();
  if (!ssl) return UV_ENOMEM;
  Connection& conn = session.connection();
  conn.set_tls(std::make_unique<TlsLayer>(ssl, std::move(context), pool_));
  // A client that stalls its handshake is dropped (ServerSession::on_timer).
  conn.start_timer(
      static_cast<uint64_t>(config_->listeners[listener_index].handshake_timeout.count()));
  return 0;
}

ServerStreamHandler* Worker::on_new_stream(ServerSession& session, int32_t stream_id) noexcept {
  auto* call = new Call(*this, session, stream_id);
  auto it = session_info_.find(&session);
  if (it != session_info_.end()) call->count_in(stats_->listener(it->second.listener).active_calls);
  return call;
}

void Worker::on_session_gone(ServerSession& session) noexcept {
  sessions_.erase(session);
  auto it = session_info_.find(&session);
  if (it != session_info_.end()) {
    stats_->listener(it->second.listener).active_connections.add(-1);
    session_info_.erase(it);
  }
  if (phase_ == Phase::draining) maybe_finish_shutdown();
}

void Worker::shutdown(bool graceful, std::function<void()> done) {
  if (done) shutdown_done_ = std::move(done);
  if (phase_ == Phase::running) {
    for (auto& slot : listeners_)
      slot->listener->close();
    listeners_.clear();
    phase_ = Phase::draining;
  }
  if (phase_ != Phase::draining) return;
  for (ServerSession* s = sessions_.front(); s; s = IntrusiveList<ServerSession>::next(*s)) {
    if (graceful)
      s->shutdown();
    else
      s->close();
  }
  maybe_finish_shutdown();
}

void Worker::maybe_finish_shutdown() noexcept {
  if (phase_ != Phase::draining || !sessions_.empty()) return;
  // Clients are gone; now the backend connections, then the loop handles.
  phase_ = Phase::closing_backends;
  // Clusters stop their timers and resolvers too, so the loop can end.
  for (auto& cluster : clusters_)
    cluster->shutdown();
  if (upstream_.live_sessions == 0) {
    on_backends_closed(this);
    return;
  }
  upstream_.on_all_closed = on_backends_closed;
  upstream_.on_all_closed_ctx = this;
}

void Worker::on_backends_closed(void* ctx) noexcept {
  auto* self = static_cast<Worker*>(ctx);
  if (self->phase_ != Phase::closing_backends) return;
  self->phase_ = Phase::closing_handles;
  self->upstream_.on_all_closed = nullptr;
  self->open_handles_ = self->access_log_ ? 4 : 3;
  self->flush_queue_.close(on_handle_closed, self);
  self->deadlines_.close(on_handle_closed, self);
  self->retry_timers_.close(on_handle_closed, self);
  if (self->access_log_) self->access_log_->close(on_handle_closed, self);
}

void Worker::on_handle_closed(void* ctx) noexcept {
  auto* self = static_cast<Worker*>(ctx);
  if (--self->open_handles_ > 0) return;
  self->phase_ = Phase::closed;
  if (self->shutdown_done_) {
    auto done = std::move(self->shutdown_done_);
    done();
  }
}

}  // namespace grelay
