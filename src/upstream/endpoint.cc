#include "upstream/endpoint.h"

#include <algorithm>
#include <cstring>

#include "core/log.h"
#include "net/listener.h"
#include "upstream/cluster.h"
#include "upstream/health_check.h"

namespace grelay {
namespace {

constexpr uint64_t backoff_base_ms = 100;
constexpr uint64_t backoff_max_ms = 5000;

}  // namespace

Endpoint::Endpoint(Cluster& owner, UpstreamContext& ctx, const sockaddr* addr, std::string name,
                   uint32_t weight, size_t target) noexcept
    : owner_(owner), ctx_(ctx), name_(std::move(name)), weight_(weight), target_(target) {
  std::memcpy(&addr_, addr,
              addr->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
  if (owner_.config().health_check) {
    health_ = std::make_unique<HealthCheck>(*this, *owner_.config().health_check);
  }
}

Endpoint::~Endpoint() {
  if (stats_ && state_) stats_->remove_address(state_.get());
}

void Endpoint::set_stats(ClusterStats* cluster, EndpointStats* endpoint) noexcept {
  if (stats_ && state_) stats_->remove_address(state_.get());
  state_.reset();
  cluster_stats_ = cluster;
  stats_ = endpoint;
  if (!stats_) return;
  state_ = stats_->add_address(sockaddr_to_string(reinterpret_cast<const sockaddr*>(&addr_)));
  state_->healthy.store(healthy_, std::memory_order_relaxed);
  state_->ejected.store(ejected_until_ms_ > uv_now(ctx_.loop), std::memory_order_relaxed);
  state_->draining.store(retired_, std::memory_order_relaxed);
}

const ClusterConfig& Endpoint::cluster() const noexcept {
  return owner_.config();
}

const ClientTls* Endpoint::tls() const noexcept {
  return owner_.tls();
}

const std::string& Endpoint::host() const noexcept {
  return owner_.target_host(target_);
}

bool Endpoint::backing_off(uint64_t now_ms) const noexcept {
  return failures_ > 0 && now_ms < retry_at_ms_;
}

uint64_t Endpoint::stream_limit() const noexcept {
  for (BackendSession* s = sessions_.front(); s; s = IntrusiveList<BackendSession>::next(*s)) {
    if (s->settings_seen()) return s->max_concurrent_streams();
  }
  return 100;
}

void Endpoint::add_counts(ptrdiff_t load, ptrdiff_t queued) noexcept {
  load_ += static_cast<size_t>(load);
  queued_ += static_cast<size_t>(queued);
  owner_.add_counts(load, queued);
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
  if (usable < cluster().max_connections_per_endpoint || !best) {
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
  session->dial(reinterpret_cast<const sockaddr*>(&addr_));
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
  count_failure(why);
  owner_.on_endpoint_failed(*this);
}

void Endpoint::on_keepalive_timeout(const std::string& why) noexcept {
  last_error_ = why;
  count_failure(why);
}

void Endpoint::on_call_result(StatusCode status) noexcept {
  if (status != StatusCode::unavailable) {
    consecutive_failures_ = 0;
    return;
  }
  count_failure("UNAVAILABLE answers");
}

void Endpoint::count_failure(const std::string& why) noexcept {
  const auto& outlier = cluster().outlier;
  if (!outlier || retired_) return;
  uint64_t now = uv_now(ctx_.loop);
  if (ejected(now)) return;
  if (++consecutive_failures_ < outlier->consecutive_failures) return;
  if (!owner_.may_eject()) return;
  // Each ejection lasts twice the one before, up to the cap.
  uint64_t base = static_cast<uint64_t>(outlier->base_ejection.count());
  uint64_t duration = base << std::min<uint32_t>(ejections_, 20);
  duration = std::min<uint64_t>(duration, static_cast<uint64_t>(outlier->max_ejection.count()));
  ++ejections_;
  consecutive_failures_ = 0;
  ejected_until_ms_ = now + duration;
  if (stats_) {
    stats_->ejections.add();
    stats_->ejected.store(true, std::memory_order_relaxed);
  }
  if (state_) state_->ejected.store(true, std::memory_order_relaxed);
  GRELAY_LOG_WARN("backend %s ejected for %llu ms after %u consecutive failures (last: %s)",
                  name().c_str(), static_cast<unsigned long long>(duration),
                  outlier->consecutive_failures, why.c_str());
}

void Endpoint::count_health_check(bool serving) noexcept {
  if (stats_) (serving ? stats_->health_checks_ok : stats_->health_checks_failed).add();
}

void Endpoint::on_health_result(bool serving, const std::string& why) noexcept {
  if (stats_) {
    stats_->health.store(
        serving ? EndpointStats::Health::healthy : EndpointStats::Health::unhealthy,
        std::memory_order_relaxed);
  }
  if (serving == healthy_) return;
  healthy_ = serving;
  if (state_) state_->healthy.store(serving, std::memory_order_relaxed);
  if (serving) {
    GRELAY_LOG_INFO("backend %s is healthy again", name().c_str());
  } else {
    GRELAY_LOG_WARN("backend %s is unhealthy: %s", name().c_str(), why.c_str());
  }
}

void Endpoint::retire() noexcept {
  retired_ = true;
  if (state_) state_->draining.store(true, std::memory_order_relaxed);
  health_.reset();
  for (BackendSession* s = sessions_.front(); s;) {
    BackendSession* next = IntrusiveList<BackendSession>::next(*s);
    s->retire();
    s = next;
  }
}

void Endpoint::maintain(uint64_t now_ms) noexcept {
  if (health_) health_->maintain(now_ms);
  for (BackendSession* s = sessions_.front(); s;) {
    BackendSession* next = IntrusiveList<BackendSession>::next(*s);
    s->maintain(now_ms);
    s = next;
  }
  if (stats_ && ejected_until_ms_ != 0 && !ejected(now_ms)) {
    stats_->ejected.store(false, std::memory_order_relaxed);
    if (state_) state_->ejected.store(false, std::memory_order_relaxed);
  }
  // Ejections wear off: an endpoint back in service for a full max_ejection starts over.
  const auto& outlier = cluster().outlier;
  if (outlier && ejections_ > 0 && ejected_until_ms_ != 0 &&
      now_ms > ejected_until_ms_ + static_cast<uint64_t>(outlier->max_ejection.count())) {
    ejections_ = 0;
  }
}

void Endpoint::on_session_gone(BackendSession& session) noexcept {
  sessions_.erase(session);
  if (stats_) {
    stats_->connections.add(-1);
    cluster_stats_->connections.add(-1);
  }
}

void Endpoint::close_all() noexcept {
  health_.reset();
  for (BackendSession* s = sessions_.front(); s; s = IntrusiveList<BackendSession>::next(*s)) {
    s->close();
  }
}

}  // namespace grelay
