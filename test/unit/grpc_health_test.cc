#include "admin/grpc_health.h"

#include <doctest/doctest.h>

using namespace grelay;
using namespace std::string_view_literals;

TEST_CASE("health request: the service field, unknown fields skipped") {
  std::string service = "x";
  CHECK(parse_health_check_request("", service));
  CHECK(service == "");
  CHECK(parse_health_check_request("\x0a\x06grelay"sv, service));
  CHECK(service == "grelay");
  // A varint field 2, a fixed32 field 3 and a fixed64 field 4 around it.
  CHECK(
      parse_health_check_request("\x10\x96\x01\x0a\x03"
                                 "abc\x1d\x01\x02\x03\x04"
                                 "\x21\x01\x02\x03\x04\x05\x06\x07\x08"sv,
                                 service));
  CHECK(service == "abc");
}

TEST_CASE("health request: malformed input is refused") {
  std::string service;
  CHECK_FALSE(parse_health_check_request("\x0a\x06gre"sv, service));   // cut string
  CHECK_FALSE(parse_health_check_request("\x0a"sv, service));          // no length
  CHECK_FALSE(parse_health_check_request("\x10\x80"sv, service));      // cut varint
  CHECK_FALSE(parse_health_check_request("\x0b"sv, service));          // group wire type
  CHECK_FALSE(parse_health_check_request("\x1d\x01\x02"sv, service));  // cut fixed32
  CHECK_FALSE(parse_health_check_request("\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"sv,
                                         service));  // varint too long
}

TEST_CASE("one uncompressed gRPC message per unary request") {
  std::string_view message;
  CHECK(take_single_grpc_message("\0\0\0\0\0"sv, message));
  CHECK(message.empty());
  CHECK(take_single_grpc_message("\0\0\0\0\x02\x0a\x00"sv, message));
  CHECK(message == "\x0a\x00"sv);
  CHECK_FALSE(take_single_grpc_message(""sv, message));
  CHECK_FALSE(take_single_grpc_message("\0\0\0\0"sv, message));
  CHECK_FALSE(take_single_grpc_message("\1\0\0\0\0"sv, message));            // compressed
  CHECK_FALSE(take_single_grpc_message("\0\0\0\0\x03\x0a\x00"sv, message));  // short
  CHECK_FALSE(take_single_grpc_message("\0\0\0\0\0\0\0\0\0\0"sv, message));  // two
}

TEST_CASE("health response frames") {
  CHECK(health_check_response_frame(ServingStatus::serving) == "\0\0\0\0\x02\x08\x01"sv);
  CHECK(health_check_response_frame(ServingStatus::not_serving) == "\0\0\0\0\x02\x08\x02"sv);
  CHECK(health_check_response_frame(ServingStatus::service_unknown) == "\0\0\0\0\x02\x08\x03"sv);
  CHECK(health_check_response_frame(ServingStatus::unknown) == "\0\0\0\0\0"sv);
}

TEST_CASE("health of each service") {
  for (ServingStatus process : {ServingStatus::serving, ServingStatus::not_serving}) {
    CHECK(health_of("", process) == process);
    CHECK(health_of("grelay", process) == process);
    CHECK(health_of("liveness", process) == ServingStatus::serving);
    CHECK(health_of("helloworld.Greeter", process) == ServingStatus::service_unknown);
  }
}
