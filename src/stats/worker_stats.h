#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "grelay/config.h"
#include "grelay/status.h"
#include "stats/labelled_family.h"

namespace grelay {

// Metric kinds. Each names its Prometheus type (prometheus_type); its get() is what a scrape
// reads, and what get() returns adds up with += when workers are merged.

// A counter with one writer (the worker that owns it) and any number of readers (the admin
// thread at scrape time). The writer adds with a relaxed load and store, which costs no
// locked instruction; readers see a value that is at most a little stale.
class Counter {
 public:
  static constexpr const char* prometheus_type = "counter";
  void add(uint64_t n = 1) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A gauge with one writer, like Counter.
class Gauge {
 public:
  static constexpr const char* prometheus_type = "gauge";
  void add(int64_t n) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  int64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// A counter several threads may bump (process-wide events such as reloads).
class SharedCounter {
 public:
  static constexpr const char* prometheus_type = "counter";
  void add(uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

inline constexpr size_t status_code_count = 17;

// What a scrape reads of StatusCounters: the calls of each status code.
struct StatusTotals {
  std::array<uint64_t, status_code_count> calls{};
  StatusTotals& operator+=(const StatusTotals& other) noexcept {
    for (size_t i = 0; i < calls.size(); ++i)
      calls[i] += other.calls[i];
    return *this;
  }
};

// Calls by the gRPC status they ended with: one counter per code, one writer. Their samples
// are told apart by the label |label|, whose value is the code's name ("OK", ...).
class StatusCounters {
 public:
  static constexpr const char* prometheus_type = "counter";
  static constexpr const char* label = "grpc_code";
  void add(StatusCode code) noexcept {
    auto index = static_cast<size_t>(code);
    counters_[index < status_code_count ? index : static_cast<size_t>(StatusCode::unknown)].add();
  }
  StatusTotals get() const noexcept {
    StatusTotals out;
    for (size_t i = 0; i < status_code_count; ++i)
      out.calls[i] = counters_[i].get();
    return out;
  }

 private:
  std::array<Counter, status_code_count> counters_;
};

// Upper bounds of the call duration histogram buckets, in seconds (+Inf is implicit).
inline constexpr std::array<double, 16> duration_bounds = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

// What a scrape reads of a DurationHistogram. Non-cumulative: buckets[i] counts durations in
// (duration_bounds[i-1], duration_bounds[i]]; the last slot is +Inf.
struct DurationTotals {
  std::array<uint64_t, duration_bounds.size() + 1> buckets{};
  uint64_t sum_ns = 0;
  DurationTotals& operator+=(const DurationTotals& other) noexcept {
    for (size_t i = 0; i < buckets.size(); ++i)
      buckets[i] += other.buckets[i];
    sum_ns += other.sum_ns;
    return *this;
  }
};

// A histogram of durations over duration_bounds, one writer.
class DurationHistogram {
 public:
  static constexpr const char* prometheus_type = "histogram";
  void observe(uint64_t duration_ns) noexcept {
    // Bounds are compared in nanoseconds so no floating point runs per call.
    static constexpr auto bounds_ns = [] {
      std::array<uint64_t, duration_bounds.size()> out{};
      for (size_t i = 0; i < out.size(); ++i)
        out[i] = static_cast<uint64_t>(duration_bounds[i] * 1e9 + 0.5);
      return out;
    }();
    size_t bucket = 0;
    while (bucket < bounds_ns.size() && duration_ns > bounds_ns[bucket])
      ++bucket;
    buckets_[bucket].add();
    sum_ns_.add(duration_ns);
  }
  DurationTotals get() const noexcept {
    DurationTotals out;
    for (size_t i = 0; i < buckets_.size(); ++i)
      out.buckets[i] = buckets_[i].get();
    out.sum_ns = sum_ns_.get();
    return out;
  }

 private:
  std::array<Counter, duration_bounds.size() + 1> buckets_;
  Counter sum_ns_;
};

// Why the relay itself ended a call with an error status, X(reason): the enum ErrorReason and
// its label values (the names) follow from this list; docs/config.md lists them in its order.
#define GRELAY_ERROR_REASONS(X)  \
  X(no_route)                    \
  X(bad_method)                  \
  X(bad_content_type)            \
  X(metadata_too_large)          \
  X(bad_timeout)                 \
  X(no_endpoint)                 \
  X(backend_stream)              \
  X(backend_http_status)         \
  X(backend_reset)               \
  X(backend_malformed)           \
  X(backend_connection_lost)     \
  X(deadline_exceeded)           \
  X(stream_idle_timeout)         \
  X(connection_expired)          \
  X(response_metadata_too_large) \
  X(client_share)                \
  X(response_not_sent)

#define GRELAY_ENUM_ENTRY(name) name,
enum class ErrorReason : uint8_t {
  none,
  GRELAY_ERROR_REASONS(GRELAY_ENUM_ENTRY) count_,
};
#undef GRELAY_ENUM_ENTRY
inline constexpr size_t error_reason_count = static_cast<size_t>(ErrorReason::count_);

// grelay_relay_errors_total{reason}: one sample per reason but none.
inline constexpr LabelledFamily<1> relay_errors_family{
    "grelay_relay_errors_total",
    "counter",
    "Calls the relay ended with an error status of its own, by reason.",
    {"reason"}};

// The label value of |reason| ("no_route", ...); "" for none.
std::string_view error_reason_name(ErrorReason reason) noexcept;

// The metrics of every call series, declared once: X(member, kind, Prometheus name, help).
// CallSeries, its merge over workers and its families (admin/metrics.cc) follow from this
// list. Labels: call_stat_labels, then the kind's own (StatusCounters' grpc_code, a
// histogram's le).
#define GRELAY_CALL_STATS(X)                                                            \
  X(started, Counter, "grelay_calls_started_total",                                     \
    "Calls whose request headers arrived, by route, cluster, gRPC service and method.") \
  X(finished, StatusCounters, "grelay_calls_total",                                     \
    "Calls finished, by the gRPC status the client got (relay-made ones included).")    \
  X(duration, DurationHistogram, "grelay_call_duration_seconds",                        \
    "Time from a call's request headers to its end.")                                   \
  X(request_messages, Counter, "grelay_request_messages_total",                         \
    "gRPC messages received from clients (length prefixes).")                           \
  X(response_messages, Counter, "grelay_response_messages_total",                       \
    "gRPC messages sent to clients (length prefixes).")                                 \
  X(request_bytes, Counter, "grelay_request_bytes_total",                               \
    "Request DATA bytes received from clients.")                                        \
  X(response_bytes, Counter, "grelay_response_bytes_total", "Response DATA bytes sent to clients.")

inline constexpr std::array<const char*, 4> call_stat_labels = {"route", "cluster", "grpc_service",
                                                                "grpc_method"};

#define GRELAY_STATS_MEMBER(member, kind, name, help) kind member;

// The counters of the calls of one (route, cluster, gRPC service, gRPC method).
struct CallSeries {
  std::string route;
  std::string cluster;
  std::string service;
  std::string method;

  GRELAY_CALL_STATS(GRELAY_STATS_MEMBER)

  // Records one finished call.
  void finish(StatusCode code, uint64_t duration_ns, uint64_t request_messages,
              uint64_t response_messages, uint64_t request_bytes, uint64_t response_bytes) noexcept;
};

// One resolved address of a configured endpoint (an IP literal's own, or one record of a
// DNS name) as one worker sees it. The worker writes, the admin thread reads.
struct AddressState {
  explicit AddressState(std::string address) : address(std::move(address)) {}
  const std::string address;
  std::atomic<bool> healthy{true};
  std::atomic<bool> ejected{false};
  // Removed by DNS (or its cluster by a reload): takes no new call, open ones finish.
  std::atomic<bool> draining{false};
};

// The metrics of a listener, a cluster and an endpoint, each declared once:
// X(member, kind, Prometheus name, help). The stats structs below, their merge over workers
// and their Prometheus families (admin/metrics.cc) all follow from these lists, so adding
// such a metric is one line here. |kind| is Gauge or Counter; a metric with an empty name is
// kept for the admin JSON (/clusters) only. Their labels are listener_stat_labels,
// cluster_stat_labels and endpoint_stat_labels.
#define GRELAY_LISTENER_STATS(X)                                                                 \
  X(active_calls, Gauge, "grelay_listener_active_calls", "Client streams (calls) open.")         \
  X(active_connections, Gauge, "grelay_listener_active_connections", "Client connections open.") \
  X(connections, Counter, "grelay_listener_connections_total", "Client connections accepted.")   \
  X(grpc_web_calls, Counter, "grelay_listener_grpc_web_calls_total",                             \
    "Calls that came in as gRPC-Web (binary), HTTP/2 or HTTP/1.1.")                              \
  X(grpc_web_text_calls, Counter, "grelay_listener_grpc_web_text_calls_total",                   \
    "Calls that came in as gRPC-Web text (base64).")                                             \
  X(connect_calls, Counter, "grelay_listener_connect_calls_total",                               \
    "Calls that came in with the Connect protocol, unary or streaming.")                         \
  X(cors_preflights, Counter, "grelay_listener_cors_preflights_total",                           \
    "CORS preflight requests the relay answered itself (allowed or not).")

#define GRELAY_CLUSTER_STATS(X)                                                           \
  X(active_calls, Gauge, "grelay_cluster_active_calls",                                   \
    "Calls routed to the cluster and not ended.")                                         \
  X(connections, Gauge, "grelay_cluster_active_connections", "Backend connections open.") \
  X(retries, Counter, "grelay_retries_total",                                             \
    "Call attempts after the first: retries under a route's retry policy and "            \
    "transparent ones (another connection or endpoint).")

#define GRELAY_ENDPOINT_STATS(X)                                         \
  X(active_calls, Gauge, "", "Calls on the endpoint and not ended.")     \
  X(connections, Gauge, "", "Backend connections to the endpoint open.") \
  X(connect_failures, Counter, "grelay_backend_connect_failures_total",  \
    "Backend connections that could not be established.")                \
  X(ejections, Counter, "grelay_ejections_total", "Times an endpoint was ejected from balancing.")

inline constexpr std::array<const char*, 1> listener_stat_labels = {"listener"};
inline constexpr std::array<const char*, 1> cluster_stat_labels = {"cluster"};
inline constexpr std::array<const char*, 2> endpoint_stat_labels = {"cluster", "endpoint"};

// Counters of a LabelledFamily, one per value of its label: X(member, kind, label value).
// grelay_health_checks_total{cluster, endpoint, result}: each endpoint's checks by result.
inline constexpr LabelledFamily<1> health_checks_family{
    "grelay_health_checks_total", "counter", "Active health checks, by result.", {"result"}};
#define GRELAY_HEALTH_CHECK_STATS(X)      \
  X(health_checks_ok, Counter, "healthy") \
  X(health_checks_failed, Counter, "unhealthy")

#define GRELAY_LABELLED_MEMBER(member, kind, value) kind member;

struct EndpointStats {
  std::string address;
  GRELAY_ENDPOINT_STATS(GRELAY_STATS_MEMBER)
  GRELAY_HEALTH_CHECK_STATS(GRELAY_LABELLED_MEMBER)
  // Set by health checking and outlier ejection (written by the owning worker).
  enum class Health : uint8_t { unknown, healthy, unhealthy };
  std::atomic<Health> health{Health::unknown};
  std::atomic<bool> ejected{false};

  // The addresses this configured endpoint resolved to on its worker, for the per-address
  // state gauges. Added when the worker creates an Endpoint, removed when it frees it; both
  // are rare (DNS changes), so a mutex guards the list.
  std::shared_ptr<AddressState> add_address(std::string resolved);
  void remove_address(const AddressState* state);
  std::vector<std::shared_ptr<const AddressState>> addresses() const;

 private:
  mutable std::mutex addresses_mutex_;
  std::vector<std::shared_ptr<AddressState>> addresses_;
};

struct ClusterStats {
  std::string name;
  GRELAY_CLUSTER_STATS(GRELAY_STATS_MEMBER)
  // One per configured endpoint, in config order.
  std::deque<EndpointStats> endpoints;
};

struct ListenerStats {
  std::string address;
  GRELAY_LISTENER_STATS(GRELAY_STATS_MEMBER)
};

// Everything one worker counts. Created from the config before the worker serves; the
// worker writes, the admin thread reads (and merges every worker's) at scrape time.
class WorkerStats {
 public:
  explicit WorkerStats(const Config& config);
  WorkerStats(const WorkerStats&) = delete;
  WorkerStats& operator=(const WorkerStats&) = delete;

  // The series of a call routed by route |route_index| with request :path |path|. Worker
  // thread only. A path route's series is fixed; other routes get one series per distinct
  // method (bounded per route; beyond it, or for a :path that is no gRPC method name, the
  // route's "other" series).
  CallSeries& routed(size_t route_index, std::string_view path);
  // The series of calls no route took (route, cluster, service and method "").
  CallSeries& unrouted() noexcept { return *unrouted_; }

  ClusterStats& cluster(size_t index) noexcept { return clusters_[index]; }
  ListenerStats& listener(size_t index) noexcept { return listeners_[index]; }
  Counter& errors(ErrorReason reason) noexcept { return errors_[static_cast<size_t>(reason)]; }

  // Readers (any thread).
  template <typename F>
  void for_each_series(F&& f) const {
    std::lock_guard<std::mutex> lock(series_mutex_);
    for (const CallSeries& s : series_)
      f(s);
  }
  const std::deque<ClusterStats>& clusters() const noexcept { return clusters_; }
  const std::deque<ListenerStats>& listeners() const noexcept { return listeners_; }
  uint64_t errors(ErrorReason reason) const noexcept {
    return errors_[static_cast<size_t>(reason)].get();
  }

  // Most distinct methods given their own series per route and worker.
  static constexpr size_t max_methods_per_route = 200;

 private:
  // Lets the method map be searched with a string_view, without allocating.
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  struct RouteSlot {
    // The series of every call of a path route; the "other" series of other routes.
    CallSeries* fixed = nullptr;
    bool exact = false;
    std::unordered_map<std::string, CallSeries*, StringHash, std::equal_to<>> methods;
    // The series found last: calls of one method often come in runs, and comparing the
    // path costs less than hashing it.
    std::string last_path;
    CallSeries* last = nullptr;
  };

  CallSeries& add_series(std::string route, std::string cluster, std::string service,
                         std::string method);

  mutable std::mutex series_mutex_;
  // A deque keeps the address of every series as more are added.
  std::deque<CallSeries> series_;
  std::vector<RouteSlot> routes_;
  CallSeries* unrouted_ = nullptr;
  std::deque<ClusterStats> clusters_;
  std::deque<ListenerStats> listeners_;
  std::array<Counter, error_reason_count> errors_;
};

// The label value of a route: its `name`, else what it matches.
std::string route_label(const RouteConfig& route);

// Splits "/pkg.Service/Method" into its service and method. False when |path| is not a gRPC
// method path made of letters, digits, '_' and '.'.
bool split_grpc_path(std::string_view path, std::string_view& service, std::string_view& method);

}  // namespace grelay
