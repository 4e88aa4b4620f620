#include "relay/call_state.h"

#include <doctest/doctest.h>

namespace {

using grelay::CallState;
using grelay::ErrorReason;
using grelay::StatusCode;
using Request = CallState::Request;
using Response = CallState::Response;

// A call whose headers are in and whose backend answered with HEADERS: the response streams.
CallState streaming() {
  CallState state;
  state.request_headers_end();
  state.response_started();
  return state;
}

}  // namespace

TEST_CASE("CallState: a new call has request headers arriving, no response and no status") {
  CallState state;
  CHECK(state.request() == Request::headers);
  CHECK(state.response() == Response::none);
  CHECK_FALSE(state.status_decided());
  CHECK_FALSE(state.response_streaming());
  CHECK(state.keeps_request_data());
}

TEST_CASE("CallState: the request goes headers -> streaming -> ended") {
  CallState state;
  state.request_headers_end();
  CHECK(state.request() == Request::streaming);
  CHECK(state.keeps_request_data());
  state.request_end();
  CHECK(state.request() == Request::ended);
  CHECK(state.keeps_request_data());
  // A second end of the headers (trailers) does not reopen an ended request.
  state.request_headers_end();
  CHECK(state.request() == Request::ended);
}

TEST_CASE("CallState: a discarded request drops its bytes and stays discarded at its end") {
  CallState state;
  state.request_headers_end();
  state.discard_request();
  CHECK(state.request() == Request::discarded);
  CHECK_FALSE(state.keeps_request_data());
  state.request_end();
  CHECK(state.request() == Request::discarded);
  // The response is not touched by the backend side's end.
  CHECK(state.response() == Response::none);
  CHECK_FALSE(state.status_decided());
}

TEST_CASE("CallState: once the response is done, request bytes are dropped") {
  CallState state;
  state.request_headers_end();
  state.response_end(StatusCode::ok);
  CHECK(state.request() == Request::streaming);
  CHECK_FALSE(state.keeps_request_data());
}

TEST_CASE(
    "CallState: a streamed answer waits for bytes, resumes once, ends with the backend's "
    "status") {
  CallState state = streaming();
  CHECK(state.response() == Response::streaming);
  CHECK(state.response_streaming());
  CHECK_FALSE(state.status_decided());
  // Nothing to resume while the body callback was not deferred.
  CHECK_FALSE(state.response_resumes());
  CHECK(state.response() == Response::streaming);

  state.response_waits();
  CHECK(state.response() == Response::waiting);
  CHECK(state.response_streaming());
  CHECK(state.response_resumes());
  CHECK(state.response() == Response::streaming);
  CHECK_FALSE(state.response_resumes());

  state.response_waits();
  state.response_end(StatusCode::not_found);
  CHECK(state.response() == Response::done);
  CHECK_FALSE(state.response_streaming());
  CHECK(state.status_decided());
  CHECK(state.status() == StatusCode::not_found);
  CHECK(state.reason() == ErrorReason::none);
}

TEST_CASE("CallState: a backend's Trailers-Only answer goes none -> done with its status") {
  CallState state;
  state.request_headers_end();
  state.response_end(StatusCode::permission_denied);
  CHECK(state.response() == Response::done);
  CHECK(state.status() == StatusCode::permission_denied);
  CHECK(state.reason() == ErrorReason::none);
  // A done response is not started again.
  state.response_started();
  CHECK(state.response() == Response::done);
}

TEST_CASE("CallState: a relay-made status before any response is sent at once: none -> done") {
  CallState state;
  state.request_headers_end();
  state.relay_end(StatusCode::unimplemented, ErrorReason::no_route);
  CHECK(state.response() == Response::done);
  CHECK(state.status() == StatusCode::unimplemented);
  CHECK(state.reason() == ErrorReason::no_route);
}

TEST_CASE("CallState: a relay-made status after HEADERS waits for the body: relay_ending -> done") {
  CallState state = streaming();
  state.relay_end(StatusCode::deadline_exceeded, ErrorReason::deadline_exceeded);
  CHECK(state.response() == Response::relay_ending);
  CHECK(state.status_decided());
  CHECK_FALSE(state.response_streaming());
  CHECK(state.status() == StatusCode::deadline_exceeded);
  CHECK(state.reason() == ErrorReason::deadline_exceeded);
  // The body callback no longer waits for backend bytes.
  state.response_waits();
  CHECK(state.response() == Response::relay_ending);
  CHECK_FALSE(state.response_resumes());

  state.relay_end_sent();
  CHECK(state.response() == Response::done);
  CHECK(state.status() == StatusCode::deadline_exceeded);
  CHECK(state.reason() == ErrorReason::deadline_exceeded);
}

TEST_CASE("CallState: a relay-made status while the body callback waits moves to relay_ending") {
  CallState state = streaming();
  state.response_waits();
  state.relay_end(StatusCode::unavailable, ErrorReason::stream_idle_timeout);
  CHECK(state.response() == Response::relay_ending);
  CHECK_FALSE(state.response_resumes());
  CHECK(state.status() == StatusCode::unavailable);
}

TEST_CASE("CallState: the first status decided wins") {
  CallState state = streaming();
  state.relay_end(StatusCode::resource_exhausted, ErrorReason::response_metadata_too_large);
  state.relay_end(StatusCode::deadline_exceeded, ErrorReason::deadline_exceeded);
  state.response_end(StatusCode::ok);
  state.client_closed(true);
  CHECK(state.response() == Response::relay_ending);
  CHECK(state.status() == StatusCode::resource_exhausted);
  CHECK(state.reason() == ErrorReason::response_metadata_too_large);

  CallState answered;
  answered.response_end(StatusCode::ok);
  answered.relay_end(StatusCode::unavailable, ErrorReason::connection_expired);
  answered.client_closed(false);
  CHECK(answered.response() == Response::done);
  CHECK(answered.status() == StatusCode::ok);
  CHECK(answered.reason() == ErrorReason::none);
}

TEST_CASE("CallState: a client that closes first cancelled the call, or met its deadline") {
  CallState cancelled = streaming();
  cancelled.client_closed(false);
  CHECK(cancelled.response() == Response::done);
  CHECK(cancelled.status() == StatusCode::cancelled);
  CHECK(cancelled.reason() == ErrorReason::none);

  CallState at_deadline;
  at_deadline.request_headers_end();
  at_deadline.client_closed(true);
  CHECK(at_deadline.response() == Response::done);
  CHECK(at_deadline.status() == StatusCode::deadline_exceeded);
  CHECK(at_deadline.reason() == ErrorReason::deadline_exceeded);
}

TEST_CASE("CallState: a response not sent is a reset logged as INTERNAL, over any status") {
  CallState state = streaming();
  state.response_end(StatusCode::ok);
  state.response_not_sent();
  CHECK(state.response() == Response::done);
  CHECK(state.status() == StatusCode::internal);
  CHECK(state.reason() == ErrorReason::response_not_sent);

  CallState ending = streaming();
  ending.relay_end(StatusCode::unavailable, ErrorReason::backend_reset);
  ending.response_not_sent();
  CHECK(ending.response() == Response::done);
  CHECK(ending.status() == StatusCode::internal);
  CHECK(ending.reason() == ErrorReason::response_not_sent);
}
