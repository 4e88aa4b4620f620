#include "stats/worker_stats.h"

#include <doctest/doctest.h>

#include <string>

#include "grelay/config.h"

namespace {

std::shared_ptr<const grelay::Config> config_with_routes() {
  return grelay::parse_config(R"(
[[listener]]
address = "127.0.0.1:0"
[[route]]
path = "/a.B/C"
cluster = "c"
[[route]]
name = "svc"
service = "a.S"
cluster = "c"
[[route]]
prefix = "/p."
authority = "api.example.com"
cluster = "c"
[[route]]
none = true
cluster = "c"
[[cluster]]
name = "c"
endpoints = ["127.0.0.1:1", "127.0.0.1:2"]
)",
                              "t.toml");
}

}  // namespace

TEST_CASE("split_grpc_path takes service and method names only") {
  std::string_view service, method;
  REQUIRE(grelay::split_grpc_path("/pkg.Svc/Get_1", service, method));
  CHECK(service == "pkg.Svc");
  CHECK(method == "Get_1");
  CHECK_FALSE(grelay::split_grpc_path("/pkg.Svc/", service, method));
  CHECK_FALSE(grelay::split_grpc_path("pkg.Svc/Get", service, method));
  CHECK_FALSE(grelay::split_grpc_path("/pkg.Svc/Get/x", service, method));
  CHECK_FALSE(grelay::split_grpc_path("/pkg\"Svc/Get", service, method));
  CHECK_FALSE(grelay::split_grpc_path("/p\xc3\xa9/Get", service, method));
  CHECK_FALSE(grelay::split_grpc_path("/x", service, method));
}

TEST_CASE("route labels: the name, else what the route matches") {
  auto config = config_with_routes();
  CHECK(grelay::route_label(config->routes[0]) == "/a.B/C");
  CHECK(grelay::route_label(config->routes[1]) == "svc");
  CHECK(grelay::route_label(config->routes[2]) == "/p.@api.example.com");
  CHECK(grelay::route_label(config->routes[3]) == "*");
}

TEST_CASE("WorkerStats gives each method of a route its series, bounded") {
  auto config = config_with_routes();
  grelay::WorkerStats stats(*config);
  grelay::CallSeries& exact = stats.routed(0, "/a.B/C");
  CHECK(exact.route == "/a.B/C");
  CHECK(exact.cluster == "c");
  CHECK(exact.service == "a.B");
  CHECK(exact.method == "C");

  grelay::CallSeries& get = stats.routed(1, "/a.S/Get");
  CHECK(&stats.routed(1, "/a.S/Get") == &get);
  CHECK(get.route == "svc");
  CHECK(get.service == "a.S");
  CHECK(get.method == "Get");
  CHECK(&stats.routed(1, "/a.S/Put") != &get);

  // A :path that is no gRPC method name goes to the route's "other" series.
  grelay::CallSeries& odd = stats.routed(3, "/weird path");
  CHECK(odd.service == "other");
  CHECK(odd.method == "other");

  for (size_t i = 0; i < grelay::WorkerStats::max_methods_per_route + 10; ++i)
    stats.routed(2, "/p.S/M" + std::to_string(i));
  CHECK(&stats.routed(2, "/p.S/Mnew") == &stats.routed(2, "/p.S/Mother"));
  CHECK(stats.routed(2, "/p.S/Mnew").method == "other");
  size_t series = 0;
  stats.for_each_series([&](const grelay::CallSeries&) { ++series; });
  // unrouted + 4 fixed + Get + Put + the bounded methods of route 2.
  CHECK(series == 1 + 4 + 2 + grelay::WorkerStats::max_methods_per_route);

  CHECK(stats.clusters().size() == 1);
  CHECK(stats.clusters()[0].endpoints.size() == 2);
  CHECK(stats.clusters()[0].endpoints[1].address == "127.0.0.1:2");
  CHECK(stats.listeners()[0].address == "127.0.0.1:0");
}

TEST_CASE("CallSeries::finish counts the status, bytes, messages and duration bucket") {
  grelay::CallSeries s;
  s.finish(grelay::StatusCode::ok, 400'000, 1, 2, 10, 20);          // 0.4 ms
  s.finish(grelay::StatusCode::unavailable, 500'000, 1, 0, 5, 0);   // exactly 0.5 ms
  s.finish(grelay::StatusCode::ok, 3'000'000'000, 3, 4, 30, 40);    // 3 s
  s.finish(grelay::StatusCode::ok, 1'000'000'000'000, 0, 0, 0, 0);  // past the last bound
  const grelay::StatusTotals finished = s.finished.get();
  CHECK(finished.calls[0] == 3);
  CHECK(finished.calls[14] == 1);
  const grelay::DurationTotals duration = s.duration.get();
  CHECK(duration.buckets[0] == 2);   // le 0.0005 includes its bound
  CHECK(duration.buckets[12] == 1);  // (2.5, 5]
  CHECK(duration.buckets[grelay::duration_bounds.size()] == 1);
  CHECK(duration.sum_ns == 1'003'000'900'000);
  CHECK(s.request_messages.get() == 5);
  CHECK(s.response_messages.get() == 6);
  CHECK(s.request_bytes.get() == 45);
  CHECK(s.response_bytes.get() == 60);
}
