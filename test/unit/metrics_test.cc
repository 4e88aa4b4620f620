#include "admin/metrics.h"

#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "admin/admin_server.h"
#include "grelay/config.h"
#include "stats/peer_error.h"

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::shared_ptr<const grelay::Config> config() {
  return grelay::parse_config(R"(
[[listener]]
address = "127.0.0.1:5000"
[[route]]
service = "a.S"
cluster = "c"
[[route]]
path = "/a.S/Fixed"
name = "fixed"
cluster = "c"
[[cluster]]
name = "c"
endpoints = ["127.0.0.1:1"]
)",
                              "t.toml");
}

// The sample a metric of kind |Kind| shows for an object that counted nothing: one 0 for a
// counter or gauge, a 0 count for a histogram, nothing for StatusCounters (codes that counted
// no call are left out).
std::string zero_sample(const grelay::Counter*, const std::string& name,
                        const std::string& labels) {
  return "\n" + name + "{" + labels + "} 0\n";
}
std::string zero_sample(const grelay::Gauge*, const std::string& name, const std::string& labels) {
  return "\n" + name + "{" + labels + "} 0\n";
}
std::string zero_sample(const grelay::SharedCounter*, const std::string& name,
                        const std::string& labels) {
  return "\n" + name + (labels.empty() ? "" : "{" + labels + "}") + " 0\n";
}
std::string zero_sample(const grelay::DurationHistogram*, const std::string& name,
                        const std::string& labels) {
  return "\n" + name + "_count{" + labels + "} 0\n";
}
std::string zero_sample(const grelay::StatusCounters*, const std::string&, const std::string&) {
  return "";
}

// A named metric has its HELP and TYPE lines and, for |labels|, the sample of an object that
// counted nothing; an unnamed one (admin JSON only) has no family.
template <typename Kind>
void check_family(const std::string& text, const std::string& name, const std::string& help,
                  const std::string& labels) {
  CAPTURE(name);
  if (name.empty()) {
    CHECK_FALSE(contains(text, " " + help + "\n"));
    return;
  }
  CHECK(contains(text, "# HELP " + name + " " + help + "\n# TYPE " + name + " " +
                           Kind::prometheus_type + "\n"));
  CHECK(contains(text, zero_sample(static_cast<const Kind*>(nullptr), name, labels)));
}

}  // namespace

TEST_CASE("each declared metric is exposed from its declaration") {
  auto cfg = config();
  grelay::Metrics metrics;
  metrics.add_worker(std::make_shared<grelay::WorkerStats>(*cfg));
  const std::string text = metrics.render_prometheus();
  std::string labels;
#define CHECK_FAMILY(member, kind, name, help) check_family<grelay::kind>(text, name, help, labels);
  // The path route's series shows before it counted a call.
  labels = R"(route="fixed",cluster="c",grpc_service="a.S",grpc_method="Fixed")";
  GRELAY_CALL_STATS(CHECK_FAMILY)
  labels = R"(listener="127.0.0.1:5000")";
  GRELAY_LISTENER_STATS(CHECK_FAMILY)
  labels = R"(cluster="c")";
  GRELAY_CLUSTER_STATS(CHECK_FAMILY)
  labels = R"(cluster="c",endpoint="127.0.0.1:1")";
  GRELAY_ENDPOINT_STATS(CHECK_FAMILY)
  labels = "";
  GRELAY_PROCESS_STATS(CHECK_FAMILY)
#undef CHECK_FAMILY

  CHECK(contains(text,
                 "# HELP grelay_health_checks_total Active health checks, by result.\n"
                 "# TYPE grelay_health_checks_total counter\n"
                 "grelay_health_checks_total{cluster=\"c\",endpoint=\"127.0.0.1:1\","
                 "result=\"healthy\"} 0\n"
                 "grelay_health_checks_total{cluster=\"c\",endpoint=\"127.0.0.1:1\","
                 "result=\"unhealthy\"} 0\n"));
  CHECK(contains(text,
                 "# HELP grelay_reloads_total Config reloads, by result.\n"
                 "# TYPE grelay_reloads_total counter\n"
                 "grelay_reloads_total{result=\"success\"} 0\n"
                 "grelay_reloads_total{result=\"failure\"} 0\n"));
  CHECK(contains(text,
                 "# HELP grelay_relay_errors_total Calls the relay ended with an error "
                 "status of its own, by reason.\n# TYPE grelay_relay_errors_total counter\n"
                 "grelay_relay_errors_total{reason=\"no_route\"} 0\n"));
#define CHECK_REASON(reason) \
  CHECK(contains(text, "\ngrelay_relay_errors_total{reason=\"" #reason "\"} 0\n"));
  GRELAY_ERROR_REASONS(CHECK_REASON)
#undef CHECK_REASON
  CHECK_FALSE(contains(text, "grelay_relay_errors_total{reason=\"\"}"));
  CHECK(contains(text,
                 "# HELP grelay_peer_errors_total Connections the relay closed (with GOAWAY, "
                 "or an HTTP/1.1 error answer) for a budget, a timeout or a protocol error of "
                 "the peer, by side and reason.\n# TYPE grelay_peer_errors_total counter\n"));
  // Peer errors are counted process-wide: other tests may have counted some.
#define CHECK_PEER_ERROR(reason)                                                                \
  CHECK(contains(text, "\ngrelay_peer_errors_total{peer=\"client\",reason=\"" #reason "\"} ")); \
  CHECK(contains(text, "\ngrelay_peer_errors_total{peer=\"backend\",reason=\"" #reason "\"} "));
  GRELAY_PEER_ERRORS(CHECK_PEER_ERROR)
#undef CHECK_PEER_ERROR
}

TEST_CASE("Metrics merges every worker's series by their labels") {
  auto cfg = config();
  auto w1 = std::make_shared<grelay::WorkerStats>(*cfg);
  auto w2 = std::make_shared<grelay::WorkerStats>(*cfg);
  grelay::Metrics metrics;
  metrics.add_worker(w1);
  metrics.add_worker(w2);

  w1->routed(0, "/a.S/Get").started.add();
  w1->routed(0, "/a.S/Get").finish(grelay::StatusCode::ok, 1'000'000, 1, 1, 10, 12);
  w2->routed(0, "/a.S/Get").started.add();
  w2->routed(0, "/a.S/Get").finish(grelay::StatusCode::ok, 2'000'000'000, 2, 3, 20, 30);
  w2->unrouted().started.add();
  w2->unrouted().finish(grelay::StatusCode::unimplemented, 1000, 0, 0, 0, 0);
  w1->errors(grelay::ErrorReason::no_route).add();
  w1->cluster(0).endpoints[0].connect_failures.add(2);
  w2->cluster(0).retries.add();
  w1->listener(0).connections.add();
  w1->listener(0).active_connections.add(1);
  metrics.process().drains.add();

  const std::string text = metrics.render_prometheus();
  const std::string get = R"(route="a.S",cluster="c",grpc_service="a.S",grpc_method="Get")";
  CHECK(contains(text, "grelay_calls_started_total{" + get + "} 2\n"));
  CHECK(contains(text, "grelay_calls_total{" + get + ",grpc_code=\"OK\"} 2\n"));
  CHECK(contains(text, "grelay_call_duration_seconds_bucket{" + get + ",le=\"0.001\"} 1\n"));
  CHECK(contains(text, "grelay_call_duration_seconds_bucket{" + get + ",le=\"1\"} 1\n"));
  CHECK(contains(text, "grelay_call_duration_seconds_bucket{" + get + ",le=\"2.5\"} 2\n"));
  CHECK(contains(text, "grelay_call_duration_seconds_bucket{" + get + ",le=\"+Inf\"} 2\n"));
  CHECK(contains(text, "grelay_call_duration_seconds_sum{" + get + "} 2.001\n"));
  CHECK(contains(text, "grelay_call_duration_seconds_count{" + get + "} 2\n"));
  CHECK(contains(text, "grelay_request_messages_total{" + get + "} 3\n"));
  CHECK(contains(text, "grelay_response_bytes_total{" + get + "} 42\n"));
  const std::string none = R"(route="",cluster="",grpc_service="",grpc_method="")";
  CHECK(contains(text, "grelay_calls_total{" + none + ",grpc_code=\"UNIMPLEMENTED\"} 1\n"));
  // The route's catch-all "other" series shows only once it counted a call.
  CHECK_FALSE(contains(text, "grpc_service=\"other\""));
  CHECK(contains(text, "grelay_relay_errors_total{reason=\"no_route\"} 1\n"));
  CHECK(contains(text, "grelay_relay_errors_total{reason=\"deadline_exceeded\"} 0\n"));
  CHECK(contains(
      text, "grelay_backend_connect_failures_total{cluster=\"c\",endpoint=\"127.0.0.1:1\"} 2\n"));
  CHECK(contains(text, "grelay_retries_total{cluster=\"c\"} 1\n"));
  CHECK(contains(text, "grelay_listener_connections_total{listener=\"127.0.0.1:5000\"} 1\n"));
  CHECK(contains(text, "grelay_listener_active_connections{listener=\"127.0.0.1:5000\"} 1\n"));
  CHECK(contains(text, "grelay_drains_total 1\n"));
  CHECK(contains(text, "grelay_reloads_total{result=\"failure\"} 0\n"));
  CHECK(contains(text, "# TYPE grelay_call_duration_seconds histogram\n"));

  const std::string clusters = metrics.render_clusters();
  CHECK(clusters ==
        R"({"clusters":[{"name":"c","active_calls":0,"connections":0,"retries":1,"endpoints":[)"
        R"({"address":"127.0.0.1:1","health":"unknown","ejected":false,"active_calls":0,)"
        R"("connections":0,"connect_failures":2}]}]})"
        "\n");
}

TEST_CASE("Metrics::totals sums the counters a scrape shows, and shares process events") {
  auto cfg = config();
  auto w1 = std::make_shared<grelay::WorkerStats>(*cfg);
  auto w2 = std::make_shared<grelay::WorkerStats>(*cfg);
  auto process = std::make_shared<grelay::ProcessStats>();
  grelay::Metrics metrics(process);
  grelay::Metrics other(process);
  metrics.add_worker(w1);
  metrics.add_worker(w2);
  w1->routed(0, "/a.S/Get").started.add();
  w1->routed(0, "/a.S/Get").finish(grelay::StatusCode::ok, 1000, 1, 2, 10, 20);
  w2->routed(1, "/a.S/Fixed").started.add();
  w2->routed(1, "/a.S/Fixed").finish(grelay::StatusCode::unavailable, 1000, 1, 0, 5, 0);
  w2->errors(grelay::ErrorReason::no_endpoint).add();
  w1->listener(0).connections.add(2);
  w1->listener(0).active_connections.add(1);
  w2->listener(0).connections.add();
  w1->cluster(0).connections.add(3);
  w2->cluster(0).retries.add();
  w2->cluster(0).endpoints[0].connect_failures.add(4);
  other.process().reloads_ok.add();

  const grelay::RelayMetrics m = metrics.totals();
  CHECK(m.calls_started == 2);
  CHECK(m.ended(grelay::StatusCode::ok) == 1);
  CHECK(m.ended(grelay::StatusCode::unavailable) == 1);
  CHECK(m.calls_ended_total() == 2);
  CHECK(m.request_messages == 2);
  CHECK(m.response_messages == 2);
  CHECK(m.request_bytes == 15);
  CHECK(m.response_bytes == 20);
  CHECK(m.client_connections == 3);
  CHECK(m.active_client_connections == 1);
  CHECK(m.active_backend_connections == 3);
  CHECK(m.backend_connect_failures == 4);
  CHECK(m.retries == 1);
  REQUIRE(m.listeners.size() == 1);
  CHECK(m.listeners[0].address == "127.0.0.1:5000");
  CHECK(m.listeners[0].connections_accepted == 3);
  REQUIRE(m.clusters.size() == 1);
  CHECK(m.clusters[0].name == "c");
  CHECK(m.clusters[0].active_connections == 3);
  CHECK(m.clusters[0].connect_failures == 4);
  REQUIRE(m.relay_errors.size() == grelay::error_reason_count - 1);
  for (const grelay::ReasonCount& r : m.relay_errors) {
    CAPTURE(r.reason);
    CHECK(r.count == (r.reason == "no_endpoint" ? 1 : 0));
  }
  CHECK(m.client_errors.size() == grelay::peer_error_count);
  CHECK(m.backend_errors.size() == grelay::peer_error_count);
  // Registries made with one ProcessStats report the same process events.
  CHECK(m.reloads == 1);
  CHECK(metrics.render_prometheus().find("grelay_reloads_total{result=\"success\"} 1\n") !=
        std::string::npos);
}

TEST_CASE("redacted_config_json hides keys, passwords and secrets") {
  grelay::Config config;
  config.path = "t.toml";
  config.source = R"(
workers = 2
[[listener]]
address = "127.0.0.1:1"
tls = { cert = "server.pem", key = "server.key" }
[[cluster]]
name = "c"
tls = { ca = "ca.pem", key = "client.key", api_secret = "s3", password = "pw" }
)";
  const std::string json = grelay::redacted_config_json(config);
  CHECK(contains(json, "\"workers\" : 2"));
  CHECK(contains(json, "\"cert\" : \"server.pem\""));
  CHECK(contains(json, "\"ca\" : \"ca.pem\""));
  for (const char* secret : {"server.key", "client.key", "s3", "pw"}) {
    CAPTURE(secret);
    CHECK_FALSE(contains(json, std::string("\"") + secret + "\""));
  }
  CHECK(contains(json, "\"key\" : \"<redacted>\""));
  CHECK(contains(json, "\"api_secret\" : \"<redacted>\""));
  CHECK(contains(json, "\"password\" : \"<redacted>\""));
}
