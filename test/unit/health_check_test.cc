#include "upstream/health_check.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

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

namespace {

using grelay::HealthAnswer;
using grelay::HealthCheckConfig;
using grelay::HealthCheckState;
using grelay::judge_health_answer;

// Stands in for Endpoint: holds whether it is healthy and, as Endpoint::on_health_result
// does, takes every result it is told as its state.
struct FakeEndpoint {
  bool healthy = true;
  std::vector<bool> heard;

  // One probe ending with |serving| at |now_ms|.
  void probe(HealthCheckState& state, bool serving, uint64_t now_ms) {
    state.start(now_ms);
    if (state.finish(serving, healthy, now_ms)) {
      heard.push_back(serving);
      healthy = serving;
    }
  }
};

// A clean answer with grpc-status 0 carrying HealthCheckResponse bytes |message|.
HealthAnswer answer_with(std::string message) {
  HealthAnswer answer;
  answer.http_status = "200";
  answer.grpc_status = "0";
  answer.body = std::string(4, '\0') + static_cast<char>(message.size()) + message;
  return answer;
}

}  // namespace

TEST_CASE("HealthCheckState: the first probe is due at once, the next an interval after each") {
  HealthCheckConfig config;  // interval 5 s, timeout 1 s
  HealthCheckState state(config);
  CHECK(state.due(0));
  state.start(100);
  CHECK(state.running());
  CHECK_FALSE(state.due(100));
  CHECK_FALSE(state.due(10'000));  // never two probes at once
  CHECK_FALSE(state.timed_out(1099));
  CHECK(state.timed_out(1100));
  state.finish(true, true, 300);
  CHECK_FALSE(state.running());
  CHECK_FALSE(state.timed_out(10'000));
  CHECK_FALSE(state.due(5299));
  CHECK(state.due(5300));
}

TEST_CASE(
    "HealthCheckState: defaults take an endpoint out after 2 failures, back after 1 success") {
  HealthCheckConfig config;
  REQUIRE(config.unhealthy_threshold == 2);
  REQUIRE(config.healthy_threshold == 1);
  HealthCheckState state(config);
  FakeEndpoint endpoint;
  endpoint.probe(state, false, 0);
  CHECK(endpoint.healthy);
  CHECK(endpoint.heard.empty());
  endpoint.probe(state, false, 5000);
  CHECK_FALSE(endpoint.healthy);
  CHECK(endpoint.heard == std::vector<bool>{false});
  endpoint.probe(state, true, 10'000);
  CHECK(endpoint.healthy);
  CHECK(endpoint.heard == std::vector<bool>{false, true});
}

TEST_CASE("HealthCheckState: a success between failures starts the failures over") {
  HealthCheckConfig config;
  config.unhealthy_threshold = 3;
  HealthCheckState state(config);
  FakeEndpoint endpoint;
  for (bool serving : {false, false, true, false, false})
    endpoint.probe(state, serving, 0);
  CHECK(endpoint.healthy);
  // The success confirmed the healthy state, so it was told; no failure was.
  CHECK(endpoint.heard == std::vector<bool>{true});
  endpoint.probe(state, false, 0);
  CHECK_FALSE(endpoint.healthy);
  CHECK(endpoint.heard == std::vector<bool>{true, false});
}

TEST_CASE("HealthCheckState: healthy_threshold successes in a row bring an endpoint back") {
  HealthCheckConfig config;
  config.healthy_threshold = 3;
  config.unhealthy_threshold = 1;
  HealthCheckState state(config);
  FakeEndpoint endpoint;
  endpoint.probe(state, false, 0);
  CHECK_FALSE(endpoint.healthy);
  for (bool serving : {true, true, false, true, true})
    endpoint.probe(state, serving, 0);
  // The failure confirmed the unhealthy state and started the successes over.
  CHECK_FALSE(endpoint.healthy);
  CHECK(endpoint.heard == std::vector<bool>{false, false});
  endpoint.probe(state, true, 0);
  CHECK(endpoint.healthy);
  CHECK(endpoint.heard == std::vector<bool>{false, false, true});
}

TEST_CASE("HealthCheckState: results that confirm the endpoint's state are told each time") {
  HealthCheckConfig config;
  HealthCheckState state(config);
  FakeEndpoint endpoint;
  endpoint.probe(state, true, 0);
  endpoint.probe(state, true, 0);
  CHECK(endpoint.heard == std::vector<bool>{true, true});
  endpoint.probe(state, false, 0);
  endpoint.probe(state, false, 0);
  endpoint.probe(state, false, 0);
  CHECK(endpoint.heard == std::vector<bool>{true, true, false, false});
}

TEST_CASE("HealthCheckState: timed-out probes are failures that count to the threshold") {
  HealthCheckConfig config;
  HealthCheckState state(config);
  FakeEndpoint endpoint;
  // What HealthCheck::maintain does with a probe past its timeout: abandon it, then fail it.
  uint64_t now = 0;
  for (int i = 0; i < 2; ++i) {
    CHECK(state.due(now));
    state.start(now);
    now += 1000;
    REQUIRE(state.timed_out(now));
    state.abandon();
    if (state.finish(false, endpoint.healthy, now)) {
      endpoint.heard.push_back(false);
      endpoint.healthy = false;
    }
    CHECK_FALSE(state.due(now + 4999));
    now += 5000;
  }
  CHECK_FALSE(endpoint.healthy);
  CHECK(endpoint.heard == std::vector<bool>{false});
}

TEST_CASE("HealthCheckState: an abandoned probe leaves the next one due at once") {
  HealthCheckConfig config;
  HealthCheckState state(config);
  state.start(0);
  state.abandon();
  CHECK_FALSE(state.running());
  CHECK_FALSE(state.timed_out(10'000));
  CHECK(state.due(0));
}

TEST_CASE("judge_health_answer: only SERVING in a clean answer is a success") {
  auto serving = judge_health_answer(answer_with(std::string("\x08\x01", 2)));
  CHECK(serving.serving);
  CHECK(serving.why == "SERVING");

  auto not_serving = judge_health_answer(answer_with(std::string("\x08\x02", 2)));
  CHECK_FALSE(not_serving.serving);
  CHECK(not_serving.why == "health check status NOT_SERVING");

  auto unknown = judge_health_answer(answer_with(""));  // an empty message: UNKNOWN
  CHECK_FALSE(unknown.serving);
  CHECK(unknown.why == "health check status UNKNOWN");

  auto service_unknown = judge_health_answer(answer_with(std::string("\x08\x03", 2)));
  CHECK(service_unknown.why == "health check status SERVICE_UNKNOWN");

  auto unnamed = judge_health_answer(answer_with(std::string("\x08\x07", 2)));
  CHECK_FALSE(unnamed.serving);
  CHECK(unnamed.why == "health check status 7");
}

TEST_CASE("judge_health_answer: errors, other statuses and bad bodies are failures") {
  HealthAnswer reset = answer_with(std::string("\x08\x01", 2));
  reset.error_code = NGHTTP2_REFUSED_STREAM;
  CHECK_FALSE(judge_health_answer(reset).serving);
  CHECK(judge_health_answer(reset).why == "health check stream reset: REFUSED_STREAM");

  HealthAnswer lost = answer_with(std::string("\x08\x01", 2));
  lost.error_code = grelay::h2_connection_lost;
  CHECK_FALSE(judge_health_answer(lost).serving);
  CHECK(judge_health_answer(lost).why == "health check: connection lost");

  HealthAnswer malformed = answer_with(std::string("\x08\x01", 2));
  malformed.error_code = grelay::h2_malformed_answer;
  CHECK_FALSE(judge_health_answer(malformed).serving);
  CHECK(judge_health_answer(malformed).why ==
        "health check answer is malformed (RFC 9113 section 8)");

  HealthAnswer unimplemented;
  unimplemented.http_status = "200";
  unimplemented.grpc_status = "12";
  unimplemented.grpc_message = "no health service";
  CHECK_FALSE(judge_health_answer(unimplemented).serving);
  CHECK(judge_health_answer(unimplemented).why ==
        "health check answered grpc-status 12 (no health service)");

  HealthAnswer no_status;
  no_status.http_status = "503";
  CHECK_FALSE(judge_health_answer(no_status).serving);
  CHECK(judge_health_answer(no_status).why == "health check answered grpc-status (none), HTTP 503");

  HealthAnswer compressed = answer_with(std::string("\x08\x01", 2));
  compressed.body[0] = 1;  // the compressed flag: the bytes are no plain message
  CHECK_FALSE(judge_health_answer(compressed).serving);
  CHECK(judge_health_answer(compressed).why == "health check answer is not a HealthCheckResponse");

  HealthAnswer short_body;
  short_body.grpc_status = "0";
  short_body.body = std::string(3, '\0');
  CHECK(judge_health_answer(short_body).why == "health check answer is not a HealthCheckResponse");

  HealthAnswer garbage = answer_with(std::string("\x08", 1));  // a varint cut short
  CHECK(judge_health_answer(garbage).why == "health check answer is not a HealthCheckResponse");
}
