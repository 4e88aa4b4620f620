"""Deadlines and cancellation travel in both directions."""

import re
import threading

import grpc
import pytest

import support
from h2_client import CANCEL, H2Client, grpc_frame, grpc_unframe
from support import GUARD_SECONDS, metadata_dict, pattern_message

ROUTE_TIMEOUT = 0.3
# grpcio's server turns a received grpc-timeout into time_remaining() through its own clocks,
# which reads up to ~10 ms over the header's value even with no relay in between. Checks of
# time_remaining() allow this much; the header itself is checked exactly with a raw backend.
CLOCK_SLACK = 0.05
YEAR = 365 * 24 * 3600.0
UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}


def parse_grpc_timeout(value):
  match = re.fullmatch(r"(\d{1,8})([HMSmun])", value or "")
  assert match, "forwarded grpc-timeout %r is not valid" % value
  return int(match.group(1)) * UNITS[match.group(2)]


@pytest.fixture(scope="module")
def relay(module_relay_factory, echo_backend, h2_backend):
  return module_relay_factory(
      routes=[{"service": "test.Capped", "cluster": "echo", "timeout": "300ms"},
              {"service": "test.RawCapped", "cluster": "raw", "timeout": "300ms"},
              {"service": "test.Echo", "cluster": "echo"},
              {"service": "test.Raw", "cluster": "raw"}],
      clusters={"echo": [echo_backend.address], "raw": [h2_backend.address]})


@pytest.fixture
def ch(relay, grpc_channel):
  return grpc_channel(relay.addr("echo"))


# A call that should end at a 300-500ms deadline and has no end after this many seconds is
# taken as hung.
HUNG_SECONDS = 15


def _outcome(future, guard=HUNG_SECONDS):
  try:
    future.result(timeout=guard)
    return grpc.StatusCode.OK
  except grpc.FutureTimeoutError:
    future.cancel()
    pytest.fail("the call had no status %d s after it started" % guard)
  except grpc.RpcError as e:
    return e.code()


@pytest.mark.relay_only
def test_route_timeout_expires_call_and_cancels_backend(ch, echo_backend):
  cid = support.call_id()
  # No client deadline: only the route's 300ms applies; the backend would answer after 5 s.
  future = support.unary(ch, "/test.Capped/Unary").future(
      b"slow", metadata=[("x-sleep-ms", "5000"), ("x-call-id", cid)])
  assert _outcome(future) == grpc.StatusCode.DEADLINE_EXCEEDED
  assert echo_backend.saw_cancel(cid, timeout=10), "backend never saw the call end early"


@pytest.mark.relay_only
def test_route_timeout_sends_rst_stream_cancel_upstream(relay, grpc_channel, h2_backend):
  # The raw backend never answers, so only the relay can end this call.
  cid = support.call_id()
  ch = grpc_channel(relay.addr("raw"))
  future = support.unary(ch, "/test.RawCapped/Hang").future(b"x", metadata=[("x-call-id", cid)])
  assert _outcome(future) == grpc.StatusCode.DEADLINE_EXCEEDED
  seen = h2_backend.wait_stream(lambda s: s.header("x-call-id") == cid and s.reset_code is not None,
                                timeout=10)
  assert seen is not None, "backend stream was not reset within 10 s of the deadline"
  assert seen.reset_code == CANCEL
  assert 0 < parse_grpc_timeout(seen.header("grpc-timeout")) <= ROUTE_TIMEOUT


@pytest.mark.relay_only
def test_route_timeout_after_response_headers_ends_with_deadline_trailers(relay, h2_backend):
  # The backend sent headers and one message, then stalls: the relay must close the call with
  # trailers (the message was whole, so no reset) and cancel the backend stream.
  cid = support.call_id()
  with H2Client(relay.addr("raw"), timeout=HUNG_SECONDS) as client:
    r = client.call("/test.RawCapped/Drip", body=grpc_frame(b"d"), headers=[("x-call-id", cid)])
  assert r.reset_code is None, "stream reset with %r" % r.reset_code
  assert r.header(":status") == "200"
  assert grpc_unframe(bytes(r.data)) == [(0, b"drip")]
  assert r.trailers is not None, "no trailers: %s" % r.describe()
  assert r.grpc_status() == 4
  seen = h2_backend.wait_stream(lambda s: s.header("x-call-id") == cid and s.reset_code is not None,
                                timeout=10)
  assert seen is not None and seen.reset_code == CANCEL


@pytest.mark.relay_only
def test_route_timeout_during_server_stream(ch, echo_backend):
  cid = support.call_id()
  md = [("x-count", "1000"), ("x-size", "10"), ("x-interval-ms", "50"), ("x-call-id", cid)]
  call = support.server_stream(ch, "/test.Capped/ServerStream")(b"", metadata=md)
  received = []
  with pytest.raises(grpc.RpcError) as info:
    for message in call:
      received.append(message)
      assert len(received) < 1000, "the stream outlived its 300ms route timeout"
  assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
  assert received == [pattern_message(i, 10) for i in range(len(received))]
  assert echo_backend.saw_cancel(cid, timeout=10), "backend never saw the call end early"


@pytest.mark.relay_only
def test_client_deadline_is_enforced_by_the_relay(relay, h2_backend):
  # A raw client does not enforce its own grpc-timeout, and the backend never answers: the
  # DEADLINE_EXCEEDED can only come from the relay.
  cid = support.call_id()
  with H2Client(relay.addr("raw"), timeout=HUNG_SECONDS) as client:
    r = client.call("/test.Raw/Hang", body=grpc_frame(b"h"),
                    headers=[("grpc-timeout", "300m"), ("x-call-id", cid)])
  assert r.reset_code is None, "stream reset with %r" % r.reset_code
  assert r.trailers_only, "expected a Trailers-Only answer, got %s" % r.describe()
  assert r.grpc_status() == 4
  seen = h2_backend.wait_stream(lambda s: s.header("x-call-id") == cid and s.reset_code is not None,
                                timeout=10)
  assert seen is not None and seen.reset_code == CANCEL


def test_client_deadline_propagates(ch):
  _, call = support.unary(ch).with_call(b"", timeout=2)
  remaining = metadata_dict(call.trailing_metadata())["x-time-remaining"]
  assert remaining != "none", "the backend saw no deadline"
  assert 0 < float(remaining) <= 2 + CLOCK_SLACK


def test_forwarded_grpc_timeout_is_the_remaining_time(relay, h2_backend):
  cid = support.call_id()
  with H2Client(relay.addr("raw")) as client:
    r = client.call("/test.Raw/Echo", body=grpc_frame(b"t"),
                    headers=[("grpc-timeout", "2S"), ("x-call-id", cid)])
  assert r.grpc_status() == 0
  seen = h2_backend.wait_stream(lambda s: s.header("x-call-id") == cid)
  assert 0 < parse_grpc_timeout(seen.header("grpc-timeout")) <= 2


@pytest.mark.parametrize("sent", ["250m", "3S", "2M", "1H", "99999999H", "7000000u"])
def test_forwarded_grpc_timeout_is_well_formed_in_every_unit(relay, h2_backend, sent):
  cid = support.call_id()
  with H2Client(relay.addr("raw")) as client:
    r = client.call("/test.Raw/Echo", body=grpc_frame(b"t"),
                    headers=[("grpc-timeout", sent), ("x-call-id", cid)])
  assert r.grpc_status() == 0
  forwarded = parse_grpc_timeout(h2_backend.wait_stream(
      lambda s: s.header("x-call-id") == cid).header("grpc-timeout"))
  sent_seconds = parse_grpc_timeout(sent)
  # Not a timing check: the lower bound only catches a value converted to the wrong unit.
  # Timeouts past a year may be saturated (99999999H is some 11000 years).
  assert min(sent_seconds, YEAR) / 2 < forwarded <= sent_seconds


def test_no_deadline_forwards_no_grpc_timeout(relay, h2_backend, ch):
  cid = support.call_id()
  with H2Client(relay.addr("raw")) as client:
    r = client.call("/test.Raw/Echo", body=grpc_frame(b"t"), headers=[("x-call-id", cid)])
  assert r.grpc_status() == 0
  seen = h2_backend.wait_stream(lambda s: s.header("x-call-id") == cid)
  assert seen.header("grpc-timeout") is None
  _, call = support.unary(ch).with_call(b"")
  assert metadata_dict(call.trailing_metadata())["x-time-remaining"] == "none"


@pytest.mark.relay_only
def test_route_timeout_caps_longer_client_deadline(ch, relay, h2_backend):
  _, call = support.unary(ch, "/test.Capped/Unary").with_call(b"", timeout=10)
  remaining = metadata_dict(call.trailing_metadata())["x-time-remaining"]
  assert remaining != "none"
  assert 0 < float(remaining) <= ROUTE_TIMEOUT + CLOCK_SLACK
  cid = support.call_id()
  with H2Client(relay.addr("raw")) as client:
    r = client.call("/test.RawCapped/Echo", body=grpc_frame(b"t"),
                    headers=[("grpc-timeout", "10S"), ("x-call-id", cid)])
  assert r.grpc_status() == 0
  seen = h2_backend.wait_stream(lambda s: s.header("x-call-id") == cid)
  assert 0 < parse_grpc_timeout(seen.header("grpc-timeout")) <= ROUTE_TIMEOUT


@pytest.mark.relay_only
def test_route_timeout_keeps_shorter_client_deadline(relay, h2_backend):
  cid = support.call_id()
  with H2Client(relay.addr("raw")) as client:
    r = client.call("/test.RawCapped/Echo", body=grpc_frame(b"t"),
                    headers=[("grpc-timeout", "150m"), ("x-call-id", cid)])
  assert r.grpc_status() == 0
  seen = h2_backend.wait_stream(lambda s: s.header("x-call-id") == cid)
  assert 0 < parse_grpc_timeout(seen.header("grpc-timeout")) <= 0.15


@pytest.mark.relay_only
@pytest.mark.parametrize("value", ["1x", "123456789S", "S", "1.5S", "-1S", "10 S"])
def test_malformed_grpc_timeout_is_internal(relay, value):
  with H2Client(relay.addr("echo")) as client:
    r = client.call("/test.Echo/Unary", body=grpc_frame(b"t"), headers=[("grpc-timeout", value)])
  assert r.reset_code is None, "stream reset with %r" % r.reset_code
  assert r.trailers_only, "expected a Trailers-Only answer, got %s" % r.describe()
  assert r.grpc_status() == 13
  assert r.grpc_message() == "malformed grpc-timeout '%s'" % value
  # The connection is still usable.
  with H2Client(relay.addr("echo")) as client:
    assert client.call("/test.Echo/Unary", body=grpc_frame(b"ok")).grpc_status() == 0


def test_largest_grpc_timeout_is_accepted(relay):
  with H2Client(relay.addr("echo")) as client:
    r = client.call("/test.Echo/Unary", body=grpc_frame(b"long"),
                    headers=[("grpc-timeout", "99999999H")])
  assert r.grpc_status() == 0
  assert grpc_unframe(bytes(r.data)) == [(0, b"long")]


def test_client_cancel_of_server_stream_reaches_backend(ch, echo_backend):
  cid = support.call_id()
  md = [("x-count", "100000"), ("x-size", "100"), ("x-interval-ms", "50"), ("x-call-id", cid)]
  call = support.server_stream(ch)(b"", metadata=md)
  assert next(call) == pattern_message(0, 100)
  assert next(call) == pattern_message(1, 100)
  call.cancel()
  assert echo_backend.saw_cancel(cid, timeout=10), "backend never saw the cancellation"


def test_client_cancel_of_unary_reaches_backend(ch, echo_backend):
  cid = support.call_id()
  future = support.unary(ch).future(b"", metadata=[("x-sleep-ms", "10000"), ("x-call-id", cid)])
  assert echo_backend.saw_start(cid), "the call never reached the backend"
  future.cancel()
  assert echo_backend.saw_cancel(cid, timeout=10), "backend never saw the cancellation"


def test_client_cancel_of_bidi_reaches_backend(ch, echo_backend):
  cid = support.call_id()
  cancelled = threading.Event()

  def requests():
    yield b"first"
    cancelled.wait(GUARD_SECONDS)  # Keeps the request side open until the cancel.

  call = support.bidi(ch)(requests(), metadata=[("x-call-id", cid)])
  assert next(call) == b"first"
  call.cancel()
  cancelled.set()
  assert echo_backend.saw_cancel(cid, timeout=10), "backend never saw the cancellation"


def _open_stream(client, cid):
  md = [("x-count", "100000"), ("x-size", "100"), ("x-interval-ms", "50"), ("x-call-id", cid)]
  sid = client.start("/test.Echo/ServerStream", body=grpc_frame(b""), headers=md)
  r = client.stream(sid)
  assert client.wait(lambda: r.data, 10), "no message within 10 s: %s" % r.describe()
  return sid


def test_client_disconnect_reaches_backend(relay, echo_backend):
  cid = support.call_id()
  client = H2Client(relay.addr("echo"))
  _open_stream(client, cid)
  client.close()
  assert echo_backend.saw_cancel(cid, timeout=10), "backend never saw the disconnect"


def test_client_rst_stream_reaches_backend_and_connection_lives(relay, echo_backend):
  cid = support.call_id()
  with H2Client(relay.addr("echo")) as client:
    sid = _open_stream(client, cid)
    client.rst(sid, CANCEL)
    assert echo_backend.saw_cancel(cid, timeout=10), "backend never saw the reset"
    r = client.call("/test.Echo/Unary", body=grpc_frame(b"after"))
  assert r.grpc_status() == 0
  assert grpc_unframe(bytes(r.data)) == [(0, b"after")]


@pytest.mark.relay_only
def test_frozen_backend_times_out_and_recovers(relay_factory, workdir, echo_backend, grpc_channel):
  frozen = support.BackendProcess(workdir, name="frozen")
  try:
    relay = relay_factory(
        routes=[{"service": "test.Capped", "cluster": "frozen", "timeout": "2s"},
                {"service": "test.Echo", "cluster": "echo"}],
        clusters={"frozen": [frozen.address], "echo": [echo_backend.address]})
    ch = grpc_channel(relay.addr())
    assert support.unary(ch, "/test.Capped/Unary")(b"warm", timeout=GUARD_SECONDS) == b"warm"
    frozen.pause()
    future = support.unary(ch, "/test.Capped/Unary").future(b"stuck")
    assert _outcome(future) == grpc.StatusCode.DEADLINE_EXCEEDED
    # Other clusters are unaffected while one backend is frozen.
    assert support.unary(ch)(b"other", timeout=GUARD_SECONDS) == b"other"
    frozen.resume()
    ok = support.wait_until(
        lambda: _outcome(support.unary(ch, "/test.Capped/Unary").future(b"thawed")) ==
        grpc.StatusCode.OK, 20, interval=0.2)
    assert ok, "the thawed backend served no call within 20 s"
  finally:
    frozen.stop()
