#include "admin/state_metrics.h"

#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "grelay/config.h"

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
[[cluster]]
name = "c"
endpoints = ["backend.example:50051"]
)",
                              "t.toml");
}

std::string line(const char* address, const char* state, int value) {
  return std::string(
             "grelay_endpoint_state{cluster=\"c\",endpoint=\"backend.example:50051\","
             "address=\"") +
         address + "\",state=\"" + state + "\"} " + std::to_string(value) + "\n";
}

}  // namespace

TEST_CASE("render_endpoint_states gives each resolved address its three states") {
  auto cfg = config();
  auto w1 = std::make_shared<grelay::WorkerStats>(*cfg);
  auto w2 = std::make_shared<grelay::WorkerStats>(*cfg);
  auto a1 = w1->cluster(0).endpoints[0].add_address("10.0.0.1:50051");
  auto b1 = w1->cluster(0).endpoints[0].add_address("10.0.0.2:50051");
  auto a2 = w2->cluster(0).endpoints[0].add_address("10.0.0.1:50051");
  // One worker ejected 10.0.0.1; 10.0.0.2 left DNS and drains.
  a2->ejected = true;
  b1->draining = true;
  b1->healthy = false;
  const std::string out = grelay::render_endpoint_states({w1, w2});
  CHECK(out.rfind("# HELP grelay_endpoint_state 1 for the state each resolved endpoint address "
                  "is in (healthy, ejected, draining), else 0.\n"
                  "# TYPE grelay_endpoint_state gauge\n",
                  0) == 0);
  CHECK(contains(out, line("10.0.0.1:50051", "healthy", 1)));
  CHECK(contains(out, line("10.0.0.1:50051", "ejected", 1)));
  CHECK(contains(out, line("10.0.0.1:50051", "draining", 0)));
  CHECK(contains(out, line("10.0.0.2:50051", "healthy", 0)));
  CHECK(contains(out, line("10.0.0.2:50051", "ejected", 0)));
  CHECK(contains(out, line("10.0.0.2:50051", "draining", 1)));
}

TEST_CASE("render_certificate_expiry gives one series per certificate") {
  const std::string out =
      grelay::render_certificate_expiry({{"listener", "127.0.0.1:8443", "server.pem", 1800000000},
                                         {"cluster", "greeter", "client.pem", 1900000000}});
  CHECK(out.rfind("# HELP grelay_tls_certificate_expiry_timestamp_seconds When each certificate "
                  "grelay presents stops being valid (notAfter), in seconds since the epoch.\n"
                  "# TYPE grelay_tls_certificate_expiry_timestamp_seconds gauge\n",
                  0) == 0);
  CHECK(contains(out,
                 "grelay_tls_certificate_expiry_timestamp_seconds{kind=\"listener\","
                 "name=\"127.0.0.1:8443\",file=\"server.pem\"} 1800000000\n"));
  CHECK(contains(out,
                 "grelay_tls_certificate_expiry_timestamp_seconds{kind=\"cluster\","
                 "name=\"greeter\",file=\"client.pem\"} 1900000000\n"));
}
