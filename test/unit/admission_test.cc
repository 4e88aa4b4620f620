#include "relay/admission.h"

#include <doctest/doctest.h>

#include <string>

#include "route/router.h"

namespace {

using grelay::AdmissionRequest;
using grelay::ErrorReason;
using grelay::StatusCode;

std::shared_ptr<const grelay::Config> config() {
  return grelay::parse_config(
      "[[listener]]\naddress = \"127.0.0.1:0\"\n\n"
      "[[route]]\nservice = \"a.Svc\"\ncluster = \"c\"\n\n"
      "[[route]]\nservice = \"capped.Svc\"\ncluster = \"c\"\ntimeout = \"2s\"\n\n"
      "[[cluster]]\nname = \"c\"\nendpoints = [\"127.0.0.1:1\"]\n",
      "admission.toml");
}

AdmissionRequest unary(std::string_view path = "/a.Svc/M") {
  AdmissionRequest request;
  request.method = "POST";
  request.path = path;
  request.authority = "relay";
  request.content_type = "application/grpc";
  request.metadata_bytes = 100;
  request.max_metadata = 8192;
  return request;
}

}  // namespace

TEST_CASE("admit: a gRPC call on a route is admitted with the route and no deadline") {
  auto c = config();
  grelay::Router router(*c);
  auto admission = grelay::admit(unary(), router);
  CHECK_FALSE(admission.refusal);
  REQUIRE(admission.route);
  CHECK(admission.route == &c->routes[0]);
  CHECK_FALSE(admission.timeout);
}

TEST_CASE("admit: the deadline is the smaller of grpc-timeout and the route's cap") {
  auto c = config();
  grelay::Router router(*c);
  auto request = unary("/capped.Svc/M");
  CHECK(grelay::admit(request, router).timeout == std::chrono::seconds(2));
  request.grpc_timeout = "500m";
  CHECK(grelay::admit(request, router).timeout == std::chrono::milliseconds(500));
  request.grpc_timeout = "1H";
  CHECK(grelay::admit(request, router).timeout == std::chrono::seconds(2));
  auto uncapped = unary();
  uncapped.grpc_timeout = "3S";
  CHECK(grelay::admit(uncapped, router).timeout == std::chrono::seconds(3));
}

TEST_CASE("admit: each check refuses with its own status, reason and HTTP status") {
  auto c = config();
  grelay::Router router(*c);
  struct Case {
    AdmissionRequest request;
    const char* http_status;
    StatusCode status;
    ErrorReason reason;
    bool routed;
  };
  auto big = unary();
  big.metadata_bytes = 9000;
  auto get = unary();
  get.method = "GET";
  auto json = unary();
  json.content_type = "application/json";
  auto nowhere = unary("/b.Svc/M");
  auto bad_timeout = unary();
  bad_timeout.grpc_timeout = "5x";
  const Case cases[] = {
      {big, "200", StatusCode::resource_exhausted, ErrorReason::metadata_too_large, false},
      {get, "405", StatusCode::internal, ErrorReason::bad_method, true},
      {json, "415", StatusCode::internal, ErrorReason::bad_content_type, true},
      {nowhere, "200", StatusCode::unimplemented, ErrorReason::no_route, false},
      {bad_timeout, "200", StatusCode::internal, ErrorReason::bad_timeout, true},
  };
  for (const Case& k : cases) {
    CAPTURE(grelay::error_reason_name(k.reason));
    auto admission = grelay::admit(k.request, router);
    REQUIRE(admission.refusal);
    CHECK(std::string(admission.refusal->http_status) == k.http_status);
    CHECK(admission.refusal->status == k.status);
    CHECK(admission.refusal->reason == k.reason);
    CHECK_FALSE(admission.refusal->message.empty());
    // A refused call is still counted under its route when it has one.
    CHECK((admission.route != nullptr) == k.routed);
  }
}
