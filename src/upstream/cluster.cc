#include "upstream/cluster.h"

#include <algorithm>
#include <cstring>
#include <random>

#include "core/log.h"
#include "net/listener.h"
#include "upstream/dns_resolver.h"

namespace grelay {
namespace {

constexpr uint64_t max_tick_ms = 250;
constexpr uint64_t min_tick_ms = 10;
// A connect failure re-resolves its name, but not more often than this.
constexpr uint64_t min_reresolve_gap_ms = 500;

bool same_address(const sockaddr_storage& a, const sockaddr_storage& b) noexcept {
  if (a.ss_family != b.ss_family) return false;
  if (a.ss_family == AF_INET6) {
    const auto& x = reinterpret_cast<const sockaddr_in6&>(a);
    const auto& y = reinterpret_cast<const sockaddr_in6&>(b);
    return x.sin6_port == y.sin6_port &&
           std::memcmp(&x.sin6_addr, &y.sin6_addr, sizeof(x.sin6_addr)) == 0;
  }
  const auto& x = reinterpret_cast<const sockaddr_in&>(a);
  const auto& y = reinterpret_cast<const sockaddr_in&>(b);
  return x.sin_port == y.sin_port && x.sin_addr.s_addr == y.sin_addr.s_addr;
}

uint64_t tick_period(const ClusterConfig& c) noexcept {
  uint64_t tick = max_tick_ms;
  auto consider = [&tick](std::chrono::milliseconds d) {
    if (d.count() > 0) tick = std::min<uint64_t>(tick, static_cast<uint64_t>(d.count()) / 4);
  };
  if (c.keepalive) {
    consider(c.keepalive->interval);
    consider(c.keepalive->timeout);
  }
  if (c.health_check) {
    consider(c.health_check->interval);
    consider(c.health_check->timeout);
  }
  consider(c.resolve_interval);
  consider(c.max_connection_age);
  return std::max(tick, min_tick_ms);
}

}  // namespace

Cluster::Cluster(UpstreamContext& ctx, const ClusterConfig& config, const ClientTls* tls)
    : ctx_(ctx),
      config_(config),
      balancer_(LoadBalancer::create(config.lb, static_cast<uint32_t>(std::random_device{}()))),
      tls_(tls) {
  if (config.keepalive) {
    keepalive_interval_ms_ = static_cast<uint64_t>(config.keepalive->interval.count());
  }
  timer_ = new uv_timer_t;
  uv_timer_init(ctx.loop, timer_);
  timer_->data = this;
  uint64_t period = tick_period(config);
  uv_timer_start(timer_, tick_cb, period, period);

  bool any_dns = false;
  for (size_t i = 0; i < config.endpoints.size(); ++i) {
    Target target;
    target.address = config.endpoints[i];
    target.weight = i < config.weights.size() ? config.weights[i] : 1;
    sockaddr_storage addr{};
    target.dns = !make_sockaddr(target.address.host, target.address.port, addr);
    any_dns = any_dns || target.dns;
    targets_.push_back(std::move(target));
    if (!targets_.back().dns) add_endpoint(i, reinterpret_cast<const sockaddr*>(&addr));
  }
  if (any_dns) {
    std::string error;
    resolver_ = DnsResolver::create(ctx.loop, config.dns_server, config.connect_timeout, &error);
    if (!resolver_) {
      GRELAY_LOG_ERROR("cluster %s: cannot start the DNS resolver: %s", config.name.c_str(),
                       error.c_str());
    }
    for (size_t i = 0; i < targets_.size(); ++i) {
      if (targets_[i].dns) resolve(i);
    }
  }
  membership_changed();
}

Cluster::~Cluster() {
  shutdown();
}

void Cluster::shutdown() noexcept {
  if (shut_down_) return;
  shut_down_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(timer_), timer_closed_cb);
  timer_ = nullptr;
  if (resolver_) resolver_->close();
  resolver_ = nullptr;
  while (UpstreamHandler* handler = waiting_.pop_front())
    handler->on_upstream_failed(StatusCode::unavailable, "relay shutting down");
  for (auto& e : endpoints_)
    e->close_all();
  for (auto& e : retired_)
    e->close_all();
}

bool Cluster::idle() const noexcept {
  auto all_idle = [](const std::vector<std::unique_ptr<Endpoint>>& list) {
    return std::all_of(list.begin(), list.end(), [](const auto& e) { return e->idle(); });
  };
  return all_idle(endpoints_) && all_idle(retired_);
}

void Cluster::timer_closed_cb(uv_handle_t* handle) noexcept {
  delete reinterpret_cast<uv_timer_t*>(handle);
}

void Cluster::tick_cb(uv_timer_t* timer) noexcept {
  static_cast<Cluster*>(timer->data)->tick();
}

void Cluster::tick() noexcept {
  uint64_t now = uv_now(ctx_.loop);
  for (size_t i = 0; i < targets_.size(); ++i) {
    Target& t = targets_[i];
    if (t.dns && !t.resolving && now >= t.next_resolve_ms) resolve(i);
  }
  for (size_t i = 0; i < endpoints_.size(); ++i)
    endpoints_[i]->maintain(now);
  for (size_t i = 0; i < retired_.size(); ++i)
    retired_[i]->maintain(now);
  // Drained endpoints are freed here, never from inside one of their sessions' callbacks.
  std::erase_if(retired_, [this](const std::unique_ptr<Endpoint>& e) {
    if (!e->idle()) return false;
    GRELAY_LOG_INFO("cluster %s: endpoint %s drained", config_.name.c_str(), e->name().c_str());
    return true;
  });
}

// --- discovery ---------------------------------------------------------------------------

void Cluster::resolve(size_t index) noexcept {
  Target& target = targets_[index];
  uint64_t now = uv_now(ctx_.loop);
  target.next_resolve_ms = now + static_cast<uint64_t>(config_.resolve_interval.count());
  if (!resolver_) return;
  target.resolving = true;
  resolver_->resolve(
      target.address.host, target.address.port,
      [this, index](int status, const std::string& error, std::vector<sockaddr_storage> addresses) {
        on_resolved(index, status, error, std::move(addresses));
      });
}

void Cluster::on_resolved(size_t index, int status, const std::string& error,
                          std::vector<sockaddr_storage> addresses) noexcept {
  Target& target = targets_[index];
  target.resolving = false;
  target.answered = true;
  if (status != 0 || addresses.empty()) {
    // The last good answer stays in use: a DNS hiccup must not empty the cluster.
    GRELAY_LOG_WARN("cluster %s: cannot resolve %s: %s", config_.name.c_str(),
                    target.address.text.c_str(), status != 0 ? error.c_str() : "no addresses");
    serve_waiting();
    return;
  }
  std::vector<Endpoint*> gone;
  for (auto it = endpoints_.begin(); it != endpoints_.end();) {
    Endpoint& e = **it;
    bool listed = std::any_of(addresses.begin(), addresses.end(),
                              [&e](const auto& a) { return same_address(a, e.address()); });
    if (e.target() != index || listed) {
      ++it;
      continue;
    }
    gone.push_back(it->get());
    retired_.push_back(std::move(*it));
    it = endpoints_.erase(it);
  }
  size_t added = 0;
  for (const sockaddr_storage& a : addresses) {
    bool known = std::any_of(endpoints_.begin(), endpoints_.end(), [&](const auto& e) {
      return e->target() == index && same_address(a, e->address());
    });
    if (known) continue;
    add_endpoint(index, reinterpret_cast<const sockaddr*>(&a));
    ++added;
  }
  if (!gone.empty() || added > 0) membership_changed();
  // Retiring fails the calls still waiting for its connections: they find other endpoints,
  // so the endpoint lists are complete first.
  for (Endpoint* e : gone) {
    GRELAY_LOG_INFO("cluster %s: endpoint %s removed by DNS; draining it", config_.name.c_str(),
                    e->name().c_str());
    e->retire();
  }
  serve_waiting();
}

void Cluster::add_endpoint(size_t index, const sockaddr* addr) noexcept {
  const Target& target = targets_[index];
  std::string name = target.address.text;
  if (target.dns) name += " (" + sockaddr_to_string(addr) + ")";
  endpoints_.push_back(
      std::make_unique<Endpoint>(*this, ctx_, addr, std::move(name), target.weight, index));
  if (stats_ && index < stats_->endpoints.size()) {
    endpoints_.back()->set_stats(stats_, &stats_->endpoints[index]);
  }
  if (target.dns) {
    GRELAY_LOG_INFO("cluster %s: endpoint %s added", config_.name.c_str(),
                    endpoints_.back()->name().c_str());
  }
}

void Cluster::membership_changed() noexcept {
  std::vector<LbMember> members;
  members.reserve(endpoints_.size());
  for (auto& e : endpoints_)
    members.push_back({e->name(), e->weight()});
  balancer_->rebuild(members);
  candidates_.reserve(endpoints_.size());
}

bool Cluster::first_answer_pending() const noexcept {
  return resolver_ && std::any_of(targets_.begin(), targets_.end(),
                                  [](const Target& t) { return t.dns && !t.answered; });
}

void Cluster::serve_waiting() noexcept {
  std::vector<UpstreamHandler*> handlers;
  while (UpstreamHandler* handler = waiting_.pop_front())
    handlers.push_back(handler);
  // A handler may be deleted by its own callback, but never another one: each is served
  // once and only through its own pointer.
  for (UpstreamHandler* handler : handlers)
    open_stream(*handler);
}

void Cluster::on_endpoint_failed(Endpoint& endpoint) noexcept {
  Target& target = targets_[endpoint.target()];
  if (!target.dns || target.resolving) return;
  // Re-resolved on a coming tick (the backend may have moved), but not sooner than a short
  // gap after the last lookup started.
  uint64_t last = target.next_resolve_ms - static_cast<uint64_t>(config_.resolve_interval.count());
  target.next_resolve_ms = std::min(target.next_resolve_ms, last + min_reresolve_gap_ms);
}

// --- picking -----------------------------------------------------------------------------

Endpoint* Cluster::pick(std::string_view key, const Endpoint* avoid, uint64_t now) noexcept {
  candidates_.clear();
  Endpoint* avoided = nullptr;
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    Endpoint& e = *endpoints_[i];
    if (!e.usable(now)) continue;
    if (&e == avoid) {
      avoided = &e;
      continue;
    }
    candidates_.push_back({static_cast<uint32_t>(i), e.weight(), e.load()});
  }
  if (candidates_.empty()) return avoided;
  if (candidates_.size() == 1) return endpoints_[candidates_[0].id].get();
  return endpoints_[candidates_[balancer_->pick(candidates_, key)].id].get();
}

uint64_t Cluster::stream_capacity() noexcept {
  const uint64_t now = uv_now(ctx_.loop);
  if (now == capacity_ms_) return capacity_;
  uint64_t total = 0;
  for (auto& e : endpoints_)
    total += uint64_t{config_.max_connections_per_endpoint} * e->stream_limit();
  if (config_.max_active > 0) total = std::min<uint64_t>(total, config_.max_active);
  capacity_ = total;
  capacity_ms_ = now;
  return total;
}

void Cluster::open_stream(UpstreamHandler& handler, std::string_view affinity_key) noexcept {
  if (shut_down_) {
    handler.on_upstream_failed(StatusCode::unavailable, "relay shutting down");
    return;
  }
  const char* breaker = nullptr;
  uint32_t cap = 0;
  if (config_.max_active > 0 && active() >= config_.max_active) {
    breaker = "max_active";
    cap = config_.max_active;
  } else if (config_.max_pending > 0 && pending() >= config_.max_pending) {
    breaker = "max_pending";
    cap = config_.max_pending;
  }
  if (breaker) {
    handler.on_upstream_failed(StatusCode::resource_exhausted,
                               "cluster '" + config_.name + "' is at its " + breaker + " of " +
                                   std::to_string(cap) + " calls");
    return;
  }
  uint64_t now = uv_now(ctx_.loop);
  Endpoint* endpoint = pick(affinity_key, handler.last_endpoint_, now);
  if (endpoint) {
    handler.last_endpoint_ = endpoint;
    endpoint->open_stream(handler);
    return;
  }
  if (first_answer_pending()) {
    waiting_.push_back(handler);
    return;
  }
  // Say why: the most telling state of the endpoints.
  std::string why;
  size_t unhealthy = 0, ejected = 0, backing_off = 0;
  for (auto& e : endpoints_) {
    if (!e->healthy()) {
      ++unhealthy;
    } else if (e->ejected(now)) {
      ++ejected;
    } else if (e->backing_off(now)) {
      ++backing_off;
      why = e->last_error();
    }
  }
  std::string message = "no usable endpoint in cluster '" + config_.name + "'";
  if (endpoints_.empty()) {
    message += ": no address resolved";
  } else {
    message += " (" + std::to_string(endpoints_.size()) +
               " endpoints: " + std::to_string(unhealthy) + " unhealthy, " +
               std::to_string(ejected) + " ejected, " + std::to_string(backing_off) +
               " failing to connect" + (why.empty() ? "" : "; last error: " + why) + ")";
  }
  handler.on_upstream_failed(StatusCode::unavailable, message);
}

void Cluster::set_stats(ClusterStats& stats) noexcept {
  stats_ = &stats;
  for (auto& e : endpoints_) {
    if (e->target() < stats.endpoints.size()) e->set_stats(&stats, &stats.endpoints[e->target()]);
  }
}

// --- outcomes ----------------------------------------------------------------------------

void Cluster::report(Endpoint& endpoint, StatusCode status) noexcept {
  endpoint.on_call_result(status);
}

bool Cluster::may_eject() const noexcept {
  if (!config_.outlier) return false;
  uint64_t now = uv_now(ctx_.loop);
  size_t ejected = 0;
  for (auto& e : endpoints_)
    ejected += e->ejected(now) ? 1 : 0;
  return (ejected + 1) * 100 <= config_.outlier->max_ejection_percent * endpoints_.size();
}

void Cluster::on_too_many_pings(Endpoint& endpoint) noexcept {
  uint64_t before = keepalive_interval_ms_;
  keepalive_interval_ms_ = std::min<uint64_t>(keepalive_interval_ms_ * 2, 3600 * 1000);
  GRELAY_LOG_WARN(
      "cluster %s: backend %s asked for fewer pings (too_many_pings); keepalive "
      "interval %llu ms -> %llu ms",
      config_.name.c_str(), endpoint.name().c_str(), static_cast<unsigned long long>(before),
      static_cast<unsigned long long>(keepalive_interval_ms_));
}

RetryBudget& Cluster::retry_budget(const RetryConfig& policy) {
  for (auto& budget : retry_budgets_) {
    if (budget->serves(policy)) return *budget;
  }
  retry_budgets_.push_back(
      std::make_unique<RetryBudget>(policy.budget_tokens, policy.budget_ratio));
  return *retry_budgets_.back();
}

}  // namespace grelay
