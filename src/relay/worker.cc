#include "relay/worker.h"

#include <unistd.h>

#include <algorithm>
#include <system_error>

#include "config/cluster_compare.h"
#include "config/listener_match.h"
#include "core/log.h"
#include "net/tls_layer.h"
#include "relay/call.h"
#include "upstream/cluster.h"

namespace grelay {

Worker::Worker(uv_loop_t* loop, std::shared_ptr<const Config> config,
               std::shared_ptr<TlsContexts> tls, std::shared_ptr<WorkerStats> stats)
    : loop_(loop), flush_queue_(loop), deadlines_(loop), retry_timers_(loop) {
  for (size_t i = 0; i < config->listeners.size(); ++i)
    gauges_.push_back(std::make_shared<ConnectionGauge>());
  if (config->access_log) access_log_ = std::make_unique<AccessLog>(loop, *config->access_log);
  if (!stats) stats = std::make_shared<WorkerStats>(*config);
  current_ = make_snapshot(std::move(config), std::move(tls), std::move(stats));
}

Worker::~Worker() {
  destroying_ = true;
  current_.reset();
}

SnapshotRef Worker::make_snapshot(std::shared_ptr<const Config> config,
                                  std::shared_ptr<TlsContexts> tls,
                                  std::shared_ptr<WorkerStats> stats) {
  std::vector<ClusterSlot*> chosen;
  chosen.reserve(config->clusters.size());
  for (size_t i = 0; i < config->clusters.size(); ++i) {
    ClusterSlot* found = nullptr;
    if (current_.get()) {
      for (ClusterSlot* slot : current_->clusters()) {
        if (same_settings(slot->cluster->config(), config->clusters[i])) found = slot;
      }
    }
    if (!found) {
      UpstreamContext context{loop_, pool_, flush_queue_, allocator_.mem()};
      context.on_all_closed = on_slot_closed;
      context.on_all_closed_ctx = this;
      slots_.push_back(std::make_unique<ClusterSlot>(context, config, i, tls, stats));
      found = slots_.back().get();
    }
    chosen.push_back(found);
  }
  snapshots_.push_back(std::make_unique<Snapshot>(*this, std::move(config), std::move(chosen),
                                                  std::move(tls), std::move(stats)));
  return SnapshotRef(snapshots_.back().get());
}

void Worker::on_snapshot_unused(Snapshot& snapshot) noexcept {
  if (destroying_) return;
  for (ClusterSlot* slot : snapshot.clusters()) {
    if (--slot->snapshots == 0) retire(*slot);
  }
  auto it = std::find_if(snapshots_.begin(), snapshots_.end(),
                         [&snapshot](const auto& s) { return s.get() == &snapshot; });
  if (it != snapshots_.end()) snapshots_.erase(it);
  reap_slots();
}

void Worker::retire(ClusterSlot& slot) noexcept {
  slot.retired = true;
  // No call can reach the cluster any more: its timers, resolver and connections have
  // nothing left to do.
  slot.cluster->shutdown();
}

void Worker::reap_slots() noexcept {
  std::erase_if(slots_, [](const std::unique_ptr<ClusterSlot>& slot) {
    return slot->retired && slot->context.live_sessions == 0;
  });
}

size_t Worker::live_backend_sessions() const noexcept {
  size_t total = 0;
  for (const auto& slot : slots_)
    total += slot->context.live_sessions;
  return total;
}

void Worker::share_gauges(std::vector<std::shared_ptr<ConnectionGauge>> gauges) {
  if (gauges.size() == config().listeners.size()) gauges_ = std::move(gauges);
}

bool Worker::reconfigure(std::shared_ptr<const Config> config,
                         std::vector<std::shared_ptr<ConnectionGauge>> gauges,
                         std::shared_ptr<TlsContexts> tls, std::shared_ptr<WorkerStats> stats) {
  if (phase_ != Phase::running) return false;
  if (!tls) tls = current_->tls();
  if (!stats) stats = std::make_shared<WorkerStats>(*config);
  // Listener i of the old config becomes listener map[i] of the new one (or none): the same
  // address, matched in order, so that several listeners at one address (port 0) each keep
  // their own place.
  const Config& old = this->config();
  std::vector<ptrdiff_t> map = match_listeners(old, *config);
  if (gauges.size() != config->listeners.size()) {
    gauges.assign(config->listeners.size(), nullptr);
    for (size_t i = 0; i < map.size(); ++i) {
      if (map[i] >= 0) gauges[static_cast<size_t>(map[i])] = gauges_[i];
    }
    for (auto& gauge : gauges) {
      if (!gauge) gauge = std::make_shared<ConnectionGauge>();
    }
  }
  // Listeners the new config keeps go on (under their new index); the others stop
  // accepting, and their connections are told to go.
  std::erase_if(listeners_, [&map](const std::unique_ptr<ListenerSlot>& slot) {
    ptrdiff_t j = slot->index < map.size() ? map[slot->index] : -1;
    if (j >= 0) {
      slot->index = static_cast<size_t>(j);
      return false;
    }
    slot->listener->close();
    return true;
  });
  for (Downstream* s = downstreams_.front(); s; s = IntrusiveList<Downstream>::next(*s)) {
    auto* info = static_cast<SessionInfo*>(s->tag());
    if (!info || info->listener_index == SessionInfo::gone) continue;
    ptrdiff_t j = info->listener_index < map.size() ? map[info->listener_index] : -1;
    if (j >= 0) {
      info->listener_index = static_cast<size_t>(j);
    } else {
      info->listener_index = SessionInfo::gone;
      s->drain();
    }
  }
  addresses_.clear();
  for (const auto& slot : listeners_)
    addresses_.push_back(slot->bound);
  gauges_ = std::move(gauges);
  current_ = make_snapshot(std::move(config), std::move(tls), std::move(stats));
  reap_slots();
  return true;
}

int Worker::listen(size_t index, int fd) noexcept {
  if (index >= config().listeners.size() || phase_ != Phase::running) {
    ::close(fd);
    return UV_EINVAL;
  }
  auto slot = std::make_unique<ListenerSlot>();
  slot->worker = this;
  slot->index = index;
  slot->address = config().listeners[index].address;
  int err = 0;
  slot->listener = Listener::open(loop_, fd, on_accept, slot.get(), err);
  if (!slot->listener) return err;
  sockaddr_storage addr{};
  if (socket_local_address(fd, addr)) {
    slot->bound = sockaddr_to_string(reinterpret_cast<sockaddr*>(&addr));
    addresses_.push_back(slot->bound);
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
  if (rc != 0) {
    GRELAY_LOG_WARN("cannot accept a connection: %s", uv_strerror(rc));
    session->close();
    return;
  }
  if (!self->start_session(*session, slot->index)) session->close();
}

int Worker::serve(uv_os_sock_t fd, size_t listener_index) noexcept {
  if (listener_index >= config().listeners.size()) {
    ::close(fd);
    return UV_EINVAL;
  }
  ServerSession* session = new_session(listener_index);
  if (!session) {
    ::close(fd);
    return UV_ECANCELED;
  }
  int rc = session->connection().open(fd);
  // A socket the handle did not adopt is still ours to close.
  if (rc != 0) ::close(fd);
  if (rc == 0 && !start_session(*session, listener_index)) rc = UV_ECONNREFUSED;
  if (rc != 0) session->close();
  return rc;
}

ServerSession* Worker::new_session(size_t) noexcept {
  if (phase_ != Phase::running) return nullptr;
  auto* session = new ServerSession(loop_, pool_, flush_queue_, allocator_.mem(), *this);
  downstreams_.push_back(*session);
  load_->open_connections.fetch_add(1, std::memory_order_relaxed);
  return session;
}

std::string_view Worker::peer_of(const Downstream& downstream) const noexcept {
  auto* info = static_cast<const SessionInfo*>(downstream.tag());
  return info ? std::string_view(info->peer) : std::string_view();
}

int Worker::secure(ServerSession& session, size_t listener_index) noexcept {
  const ServerTls* tls = current_->tls()->listener(listener_index);
  if (!tls) return 0;
  std::shared_ptr<const ServerTlsContext> context = tls->current();
  SSL* ssl = context->new_ssl();
  if (!ssl) return UV_ENOMEM;
  session.connection().set_tls(std::make_unique<TlsLayer>(ssl, std::move(context), pool_));
  // A client that stalls its handshake is dropped.
  session.set_handshake_timeout(
      static_cast<uint64_t>(config().listeners[listener_index].handshake_timeout.count()));
  return 0;
}

bool Worker::start_session(ServerSession& session, size_t listener_index) noexcept {
  const ListenerConfig& listener = config().listeners[listener_index];
  const std::shared_ptr<ConnectionGauge>& gauge = gauges_[listener_index];
  uint32_t open = gauge->open.fetch_add(1, std::memory_order_relaxed);
  session.hold_count(gauge);
  if (listener.max_connections != 0 && open >= listener.max_connections) {
    GRELAY_LOG_DEBUG("listener %s is at max_connections (%u): connection refused",
                     listener.address.text.c_str(), listener.max_connections);
    return false;
  }
  load_->accepted.fetch_add(1, std::memory_order_relaxed);
  if (secure(session, listener_index) != 0 ||
      !session.start(current_->config_ptr(), listener_index)) {
    GRELAY_LOG_WARN("cannot set up a client connection's session");
    return false;
  }
  char peer[64] = "";
  if (access_log_) session.connection().peer_name(peer, sizeof(peer));
  count_in(session, listener_index, peer);
  return true;
}

void Worker::count_in(Downstream& downstream, size_t listener_index, std::string peer) noexcept {
  auto* info = new SessionInfo;
  info->stats = current_->stats_ptr();
  info->listener = &info->stats->listener(listener_index);
  info->listener_index = listener_index;
  info->listener->connections.add();
  info->listener->active_connections.add(1);
  if (access_log_) info->peer = std::move(peer);
  downstream.set_tag(info);
}

bool Worker::take_share(Downstream& downstream, Cluster& cluster) noexcept {
  auto* info = static_cast<SessionInfo*>(downstream.tag());
  if (!info) return true;
  auto it = std::find_if(info->held.begin(), info->held.end(),
                         [&](const auto& h) { return h.first == &cluster; });
  if (it == info->held.end()) {
    info->held.emplace_back(&cluster, 0);
    it = info->held.end() - 1;
  }
  const double share = cluster.config().max_client_share;
  if (share < 1 && it->second >= 1) {
    // No capacity known (no endpoint yet: a DNS name not answered) bounds nothing; the calls
    // wait for the answer or fail as the cluster says.
    const uint64_t capacity = cluster.stream_capacity();
    if (capacity > 0 &&
        static_cast<double>(it->second + 1) > share * static_cast<double>(capacity)) {
      return false;
    }
  }
  ++it->second;
  return true;
}

void Worker::release_share(Downstream& downstream, const Cluster& cluster) noexcept {
  auto* info = static_cast<SessionInfo*>(downstream.tag());
  if (!info) return;
  for (auto& h : info->held) {
    if (h.first == &cluster) {
      --h.second;
      return;
    }
  }
}

Call* Worker::new_call(Downstream& downstream, int32_t stream_id) noexcept {
  auto* call = new Call(*this, downstream, stream_id);
  if (auto* info = static_cast<SessionInfo*>(downstream.tag())) {
    call->count_in(info->listener->active_calls);
  }
  return call;
}

ServerStreamHandler* Worker::on_new_stream(ServerSession& session, int32_t stream_id) noexcept {
  if (session.listener().web) return new_web_stream(session, stream_id, false);
  return new_call(session, stream_id);
}

ServerStreamHandler* Worker::new_web_stream(Downstream& downstream, int32_t stream_id,
                                            bool http1) noexcept {
  // An HTTP/1.1 request is a web one or refused; an HTTP/2 stream may be plain gRPC, which a
  // WebFront hands to a Call once its header block says so.
  if (http1) return new WebStream(*this, downstream, stream_id);
  return new WebFront(*this, downstream, stream_id);
}

ServerStreamHandler* Worker::new_grpc_call(Downstream& downstream, int32_t stream_id) noexcept {
  if (auto* info = static_cast<SessionInfo*>(downstream.tag())) {
    switch (downstream.protocol()) {
      case CallProtocol::grpc_web:
        info->listener->grpc_web_calls.add();
        break;
      case CallProtocol::grpc_web_text:
        info->listener->grpc_web_text_calls.add();
        break;
      case CallProtocol::connect:
        info->listener->connect_calls.add();
        break;
      case CallProtocol::grpc:
        break;
    }
  }
  return new_call(downstream, stream_id);
}

void Worker::count_preflight(Downstream& downstream) noexcept {
  if (auto* info = static_cast<SessionInfo*>(downstream.tag()))
    info->listener->cors_preflights.add();
}

const CorsConfig* Worker::cors_for(const ListenerConfig& listener, std::string_view path,
                                   std::string_view authority,
                                   const PeerIdentity* client) noexcept {
  const RouteConfig* route =
      current_->router().match(path, authority, client ? &client->sans : nullptr);
  if (route && route->cors) return &*route->cors;
  return listener.cors ? &*listener.cors : nullptr;
}

ServerStreamHandler* Worker::on_new_request(Http1Session& session, int32_t stream_id) noexcept {
  return new_web_stream(session, stream_id, true);
}

void Worker::on_http1(ServerSession& session, std::string_view input) noexcept {
  // The connection keeps every count it has (the listener's gauge, open_connections, its
  // SessionInfo: the access log's peer, its calls' max_client_share) under its new session,
  // which joins downstreams_ so that drains and shutdowns reach it.
  auto* h1 = new Http1Session(loop_, pool_, flush_queue_, *this);
  downstreams_.push_back(*h1);
  load_->open_connections.fetch_add(1, std::memory_order_relaxed);
  int rc = session.connection().hand_over(h1->connection());
  if (rc != 0) {
    GRELAY_LOG_WARN("cannot move a client connection to HTTP/1.1: %s", uv_strerror(rc));
    h1->close();
    return;
  }
  h1->hold_count(session.release_count());
  h1->set_tag(session.tag());
  session.set_tag(nullptr);
  h1->start(session.config(), session.listener(), input);
  // A drain that came before the client's protocol was known.
  if (session.drain_requested() || phase_ != Phase::running) h1->drain();
}

void Worker::on_session_gone(Http1Session& session) noexcept {
  load_->open_connections.fetch_sub(1, std::memory_order_relaxed);
  detach(session);
}

bool Worker::attach(Downstream& downstream, size_t listener_index, std::string peer) noexcept {
  if (phase_ != Phase::running) return false;
  count_in(downstream, listener_index, std::move(peer));
  downstreams_.push_back(downstream);
  return true;
}

void Worker::detach(Downstream& downstream) noexcept {
  downstreams_.erase(downstream);
  if (auto* info = static_cast<SessionInfo*>(downstream.tag())) {
    info->listener->active_connections.add(-1);
    downstream.set_tag(nullptr);
    delete info;
  }
  if (phase_ == Phase::draining) maybe_finish_shutdown();
}

void Worker::on_session_gone(ServerSession& session) noexcept {
  load_->open_connections.fetch_sub(1, std::memory_order_relaxed);
  detach(session);
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
  for (Downstream* s = downstreams_.front(); s;) {
    // close_now() may unlink |s| only later (from its close callback), so step first.
    Downstream* next = IntrusiveList<Downstream>::next(*s);
    if (graceful)
      s->drain();
    else
      s->close_now();
    s = next;
  }
  maybe_finish_shutdown();
}

void Worker::expire_calls() noexcept {
  for (Downstream* s = downstreams_.front(); s;) {
    Downstream* next = IntrusiveList<Downstream>::next(*s);
    s->expire("relay is shutting down: drain_timeout reached");
    s = next;
  }
}

void Worker::maybe_finish_shutdown() noexcept {
  if (phase_ != Phase::draining || !downstreams_.empty()) return;
  // Clients are gone; now the backend connections, then the loop handles.
  phase_ = Phase::closing_backends;
  // Clusters stop their timers and resolvers too, so the loop can end.
  for (auto& slot : slots_)
    slot->cluster->shutdown();
  if (live_backend_sessions() == 0) on_backends_closed();
}

void Worker::on_slot_closed(void* ctx) noexcept {
  auto* self = static_cast<Worker*>(ctx);
  if (self->phase_ == Phase::closing_backends && self->live_backend_sessions() == 0) {
    self->on_backends_closed();
  }
}

void Worker::on_backends_closed() noexcept {
  if (phase_ != Phase::closing_backends) return;
  phase_ = Phase::closing_handles;
  open_handles_ = access_log_ ? 4 : 3;
  flush_queue_.close(on_handle_closed, this);
  deadlines_.close(on_handle_closed, this);
  retry_timers_.close(on_handle_closed, this);
  if (access_log_) access_log_->close(on_handle_closed, this);
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
