#pragma once

#include <cstdint>

#include "grelay/status.h"
#include "stats/worker_stats.h"

namespace grelay {

// Where a Call's request and response stand, and the status its client gets. Each change of
// state is one method here; the Call does the I/O that goes with it. It holds no pointer and
// does no I/O, so its transitions are testable without a loop.
//
// The status is decided exactly when the response reaches relay_ending or done, and the first
// decision wins: the status logged is the one the relay sends. A client may still not get it:
// a response its stream could not take (response_not_sent()) is reset and counted and logged
// as INTERNAL; a relay-made ending that comes in the middle of a response message resets the
// stream with INTERNAL_ERROR, and a client that resets its stream first gets nothing. Those two
// are logged with the status decided.
class CallState {
 public:
  // Where the request from the client stands.
  enum class Request : uint8_t {
    headers,    // request headers arriving
    streaming,  // headers complete; DATA may follow, kept for the backend
    ended,      // the client ended its request (END_STREAM)
    discarded,  // the call is over on the backend side and no attempt follows: request bytes
                // that arrive are given back to the client and dropped
  };
  // Where the response to the client stands.
  enum class Response : uint8_t {
    none,          // nothing sent yet
    streaming,     // HEADERS sent; the backend's DATA and trailers follow
    waiting,       // as streaming, but the client stream's body callback deferred for want of
                   // bytes: the backend's next bytes or end resume it
    relay_ending,  // HEADERS sent; the relay ends the call with the decided status once the
                   // response bytes it keeps are sent
    done,          // the end (trailers, Trailers-Only, or reset) is submitted
  };

  Request request() const noexcept { return request_; }
  Response response() const noexcept { return response_; }

  // --- request ---------------------------------------------------------------------------

  // The request HEADERS block is complete: headers -> streaming.
  void request_headers_end() noexcept {
    if (request_ == Request::headers) request_ = Request::streaming;
  }
  // The client ended its request: headers or streaming -> ended. A discarded request stays
  // discarded: nothing reads its end.
  void request_end() noexcept {
    if (request_ != Request::discarded) request_ = Request::ended;
  }
  // No backend stream takes the request any more: any state -> discarded.
  void discard_request() noexcept { request_ = Request::discarded; }
  // Request bytes that arrive now are kept for a backend; otherwise they are given back and
  // dropped (the backend side is over, or the response ended, which ends the call).
  bool keeps_request_data() const noexcept {
    return request_ != Request::discarded && response_ != Response::done;
  }

  // --- response --------------------------------------------------------------------------

  // The backend's response headers went to the client and its body follows: none ->
  // streaming.
  void response_started() noexcept {
    if (response_ == Response::none) response_ = Response::streaming;
  }
  // Response HEADERS were sent and the call is not over: the backend's bytes go to the client.
  bool response_streaming() const noexcept {
    return response_ == Response::streaming || response_ == Response::waiting;
  }
  // The client stream's body callback found nothing to send and deferred: streaming ->
  // waiting.
  void response_waits() noexcept {
    if (response_ == Response::streaming) response_ = Response::waiting;
  }
  // Response bytes or the backend's end arrived: waiting -> streaming. True when the client
  // stream's body callback was deferred and the caller must resume it.
  bool response_resumes() noexcept {
    if (response_ != Response::waiting) return false;
    response_ = Response::streaming;
    return true;
  }
  // The backend's answer, ending with |status| (its Trailers-Only headers or its trailers),
  // went to the client: none, streaming or waiting -> done.
  void response_end(StatusCode status) noexcept {
    decide(Response::done, status, ErrorReason::none);
  }
  // The relay ends the call with |status|, for |reason|: none -> done (the caller answers
  // with one HEADERS frame), streaming or waiting -> relay_ending (the caller sends the
  // trailers after the response bytes kept). A status decided before wins.
  void relay_end(StatusCode status, ErrorReason reason) noexcept {
    decide(response_ == Response::none ? Response::done : Response::relay_ending, status, reason);
  }
  // The relay's trailers, or a reset in their place, were submitted: relay_ending -> done.
  void relay_end_sent() noexcept {
    if (response_ == Response::relay_ending) response_ = Response::done;
  }
  // The response HEADERS or trailers submitted could not be sent, and the client gets a reset
  // instead: any state -> done, with INTERNAL whatever status was decided before.
  void response_not_sent() noexcept {
    response_ = Response::done;
    status_ = StatusCode::internal;
    reason_ = ErrorReason::response_not_sent;
  }
  // The client's stream closed. A call whose status was not decided was cancelled by the
  // client, or met its deadline when |deadline_passed|: -> done with that status.
  void client_closed(bool deadline_passed) noexcept {
    if (deadline_passed) {
      decide(Response::done, StatusCode::deadline_exceeded, ErrorReason::deadline_exceeded);
    } else {
      decide(Response::done, StatusCode::cancelled, ErrorReason::none);
    }
  }

  // --- the status ------------------------------------------------------------------------

  // The status the client gets is decided (relay_ending or done).
  bool status_decided() const noexcept {
    return response_ == Response::relay_ending || response_ == Response::done;
  }
  // The status the client gets, and the relay's reason for it (none for a backend's status or
  // a client's cancel). Meaningful once status_decided().
  StatusCode status() const noexcept { return status_; }
  ErrorReason reason() const noexcept { return reason_; }

 private:
  void decide(Response to, StatusCode status, ErrorReason reason) noexcept {
    if (status_decided()) return;
    response_ = to;
    status_ = status;
    reason_ = reason;
  }

  Request request_ = Request::headers;
  Response response_ = Response::none;
  ErrorReason reason_ = ErrorReason::none;
  StatusCode status_ = StatusCode::unknown;
};

}  // namespace grelay
