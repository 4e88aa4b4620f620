#include "grelay/status.h"

#include <doctest/doctest.h>
#include <nghttp2/nghttp2.h>

#include <string>

using grelay::StatusCode;

TEST_CASE("status_name gives the canonical name of every code") {
  const char* names[] = {"OK",
                         "CANCELLED",
                         "UNKNOWN",
                         "INVALID_ARGUMENT",
                         "DEADLINE_EXCEEDED",
                         "NOT_FOUND",
                         "ALREADY_EXISTS",
                         "PERMISSION_DENIED",
                         "RESOURCE_EXHAUSTED",
                         "FAILED_PRECONDITION",
                         "ABORTED",
                         "OUT_OF_RANGE",
                         "UNIMPLEMENTED",
                         "INTERNAL",
                         "UNAVAILABLE",
                         "DATA_LOSS",
                         "UNAUTHENTICATED"};
  for (int code = 0; code <= 16; ++code) {
    CAPTURE(code);
    CHECK(grelay::status_name(static_cast<StatusCode>(code)) == names[code]);
  }
  CHECK(grelay::status_name(StatusCode::ok) == "OK");
  CHECK(grelay::status_name(StatusCode::unavailable) == "UNAVAILABLE");
  CHECK(grelay::status_name(StatusCode::unauthenticated) == "UNAUTHENTICATED");
}

TEST_CASE("status_name of a value outside the enum is UNKNOWN") {
  for (int code : {-1, 17, 100, -2147483647 - 1, 2147483647}) {
    CAPTURE(code);
    CHECK(grelay::status_name(static_cast<StatusCode>(code)) == "UNKNOWN");
  }
}

TEST_CASE("status_from_http follows the HTTP to gRPC status mapping") {
  CHECK(grelay::status_from_http(400) == StatusCode::internal);
  CHECK(grelay::status_from_http(431) == StatusCode::internal);
  CHECK(grelay::status_from_http(401) == StatusCode::unauthenticated);
  CHECK(grelay::status_from_http(403) == StatusCode::permission_denied);
  CHECK(grelay::status_from_http(404) == StatusCode::unimplemented);
  CHECK(grelay::status_from_http(429) == StatusCode::unavailable);
  CHECK(grelay::status_from_http(502) == StatusCode::unavailable);
  CHECK(grelay::status_from_http(503) == StatusCode::unavailable);
  CHECK(grelay::status_from_http(504) == StatusCode::unavailable);
}

TEST_CASE("status_from_http maps every other status to UNKNOWN") {
  for (int http :
       {0, -1, 100, 200, 204, 301, 402, 405, 408, 415, 430, 432, 500, 501, 505, 599, 999}) {
    CAPTURE(http);
    CHECK(grelay::status_from_http(http) == StatusCode::unknown);
  }
}

TEST_CASE("status_from_h2_error maps the codes with a status of their own") {
  CHECK(grelay::status_from_h2_error(NGHTTP2_REFUSED_STREAM) == StatusCode::unavailable);
  CHECK(grelay::status_from_h2_error(NGHTTP2_CANCEL) == StatusCode::cancelled);
  CHECK(grelay::status_from_h2_error(NGHTTP2_ENHANCE_YOUR_CALM) == StatusCode::resource_exhausted);
  CHECK(grelay::status_from_h2_error(NGHTTP2_INADEQUATE_SECURITY) == StatusCode::permission_denied);
}

TEST_CASE("status_from_h2_error maps every other code to INTERNAL") {
  for (uint32_t code : {uint32_t{NGHTTP2_NO_ERROR}, uint32_t{NGHTTP2_PROTOCOL_ERROR},
                        uint32_t{NGHTTP2_INTERNAL_ERROR}, uint32_t{NGHTTP2_FLOW_CONTROL_ERROR},
                        uint32_t{NGHTTP2_SETTINGS_TIMEOUT}, uint32_t{NGHTTP2_STREAM_CLOSED},
                        uint32_t{NGHTTP2_FRAME_SIZE_ERROR}, uint32_t{NGHTTP2_COMPRESSION_ERROR},
                        uint32_t{NGHTTP2_CONNECT_ERROR}, uint32_t{NGHTTP2_HTTP_1_1_REQUIRED},
                        uint32_t{0xe}, uint32_t{0xff}, uint32_t{0xffffffff}}) {
    CAPTURE(code);
    CHECK(grelay::status_from_h2_error(code) == StatusCode::internal);
  }
}

TEST_CASE("the relay never derives an application-reserved status") {
  const StatusCode reserved[] = {StatusCode::invalid_argument, StatusCode::not_found,
                                 StatusCode::already_exists,   StatusCode::failed_precondition,
                                 StatusCode::aborted,          StatusCode::out_of_range,
                                 StatusCode::data_loss};
  for (int http = 0; http < 1000; ++http) {
    for (StatusCode code : reserved)
      CHECK_FALSE(grelay::status_from_http(http) == code);
  }
  for (uint32_t h2 = 0; h2 < 64; ++h2) {
    for (StatusCode code : reserved)
      CHECK_FALSE(grelay::status_from_h2_error(h2) == code);
  }
}

TEST_CASE("status_from_grpc_status reads 0 to 16 and nothing else") {
  CHECK(grelay::status_from_grpc_status("0") == StatusCode::ok);
  CHECK(grelay::status_from_grpc_status("14") == StatusCode::unavailable);
  CHECK(grelay::status_from_grpc_status("16") == StatusCode::unauthenticated);
  CHECK(grelay::status_from_grpc_status("014") == StatusCode::unavailable);
  // Anything else is UNKNOWN: out of range, trailing bytes, signs, spaces, empty.
  for (const char* text :
       {"17", "99", "-1", "+1", "14abc", " 14", "14 ", "", "x", "99999999999999999999"}) {
    CAPTURE(text);
    CHECK(grelay::status_from_grpc_status(text) == StatusCode::unknown);
  }
}
