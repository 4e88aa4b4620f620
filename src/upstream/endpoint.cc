#include "upstream/endpoint.h"

#include <algorithm>

#include "core/log.h"
#include "net/listener.h"

namespace grelay {
namespace {

constexpr uint64_t backoff_base_ms = 100;
constexpr uint64_t backoff_max_ms = 5000;

}  // namespace

Endpoint::Endpoint(UpstreamContext& ctx, const HostPort& address, const ClusterConfig& cluster,
                   const ClientTls* tls) noexcept
    : ctx_(ctx), address_(address), cluster_(cluster), tls_(tls) {
  literal_ = make_sockaddr(address_.host, address_.port, addr_);
}

bool Endpoint::backing_off(uint64_t now_ms) const noexcept {
  return failures_ > 0 && now_ms < retry_at_ms_;
}

size_t Endpoint::load() const noexcept {
  size_t total = 0;
  for (BackendSession* s = sessions_.front(); s; s = IntrusiveList<BackendSession>::next(*s)) {
    total += s->load();
  }
  return total;
}

void Endpoint::open_stream(UpstreamHandler& handler) noexcept {
  BackendSession* best = nullptr;
  size_t usable = 0;
  for (BackendSession* s = sessions_.front(); s; s = IntrusiveList<BackendSession>::next(*s)) {
    if (!s->usable()) continue;
    ++usable;
    if (s->has_free_slot()) {
      s->attach(handler);
      return;
    }
    if (!best || s->load() < best->load()) best = s;
  }
  if (usable < cluster_.max_connections_per_endpoint || !best) {
    if (BackendSession* fresh = dial()) {
      fresh->attach(handler);
      return;
    }
  }
  if (best) {
    best->attach(handler);
    return;
  }
  handler.on_upstream_failed(StatusCode::unavailable, "cannot open a connection to " + name());
}

BackendSession* Endpoint::dial() noexcept {
  auto* session = new BackendSession(*this);
  sessions_.push_front(*session);
  if (stats_) {
    stats_->connections.add(1);
    cluster_stats_->connections.add(1);
  }
  session->dial(address_.host, address_.port,
                literal_ ? reinterpret_cast<const sockaddr*>(&addr_) : nullptr);
  // A dial can fail at once (and close the session, which stays listed until released).
  return session->usable() ? session : nullptr;
}

void Endpoint::on_connected() noexcept {
  if (failures_ > 0) GRELAY_LOG_INFO("backend %s is reachable again", name().c_str());
  failures_ = 0;
  last_error_.clear();
  logged_error_.clear();
}

void Endpoint::on_connect_failed(const std::string& why) noexcept {
  // Redials repeat the same failure while it lasts: say it once.
  if (why != logged_error_) {
    GRELAY_LOG_WARN("backend %s: %s", name().c_str(), why.c_str());
    logged_error_ = why;
  } else {
    GRELAY_LOG_DEBUG("backend %s: %s", name().c_str(), why.c_str());
  }
  ++failures_;
  if (stats_) stats_->connect_failures.add();
  uint64_t delay = backoff_base_ms << std::min<uint32_t>(failures_ - 1, 10);
  delay = std::min(delay, backoff_max_ms);
  // Jitter spreads the redials of many workers and endpoints.
  delay = delay / 2 + static_cast<uint64_t>(std::rand()) % (delay / 2 + 1);
  retry_at_ms_ = uv_now(ctx_.loop) + delay;
  last_error_ = why;
}

void Endpoint::on_session_gone(BackendSession& session) noexcept {
  sessions_.erase(session);
  if (stats_) {
    stats_->connections.add(-1);
    cluster_stats_->connections.add(-1);
  }
}

void Endpoint::close_all() noexcept {
  for (BackendSession* s = sessions_.front(); s; s = IntrusiveList<BackendSession>::next(*s)) {
    s->close();
  }
}

}  // namespace grelay
