#include "upstream/health_check.h"

#include <doctest/doctest.h>

#include <string>

using grelay::decode_health_response;
using grelay::encode_health_request;

TEST_CASE("HealthCheckRequest is one framed message") {
  // No service: an empty message.
  CHECK(encode_health_request("") == std::string("\0\0\0\0\0", 5));
  // service = "svc": field 1, length-delimited.
  CHECK(encode_health_request("svc") == std::string("\0\0\0\0\5\x0a\x03svc", 10));
  std::string long_name(200, 'x');
  std::string framed = encode_health_request(long_name);
  REQUIRE(framed.size() == 5 + 3 + 200);
  CHECK(framed[4] == static_cast<char>(203));
  // The length is a two-byte varint: 200 = 0xc8 0x01.
  CHECK(framed.substr(5, 3) == std::string("\x0a\xc8\x01", 3));
}

TEST_CASE("HealthCheckResponse decodes its status and skips other fields") {
  CHECK(decode_health_response(std::string("\x08\x01", 2)) == 1u);
  CHECK(decode_health_response(std::string("\x08\x02", 2)) == 2u);
  // Empty: the default, UNKNOWN.
  CHECK(decode_health_response("") == 0u);
  // An unknown length-delimited field, a fixed64 and a fixed32 before the status.
  CHECK(decode_health_response(std::string("\x12\x02hi\x19"
                                           "12345678\x25"
                                           "1234\x08\x01",
                                           20)) == 1u);
  // The last value of a repeated field wins.
  CHECK(decode_health_response(std::string("\x08\x02\x08\x01", 4)) == 1u);
}

TEST_CASE("malformed HealthCheckResponse bytes are rejected") {
  CHECK(!decode_health_response(std::string("\x08", 1)));          // varint cut
  CHECK(!decode_health_response(std::string("\x12\x05hi", 4)));    // length past the end
  CHECK(!decode_health_response(std::string("\x0b", 1)));          // group wire type
  CHECK(!decode_health_response(std::string("\x00\x01", 2)));      // field 0
  CHECK(!decode_health_response(std::string(11, '\xff')));         // endless varint
  CHECK(!decode_health_response(std::string("\x19\x01\x02", 3)));  // fixed64 cut
}
