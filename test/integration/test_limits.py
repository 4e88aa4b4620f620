"""Per-listener limits and timeouts: max_connections, idle_timeout, max_connection_age (with
GOAWAY), stream_idle_timeout (and a route turning it off for long streams)."""

import time

import grpc
import pytest

import support
from h2_client import SETTINGS_MAX_CONCURRENT_STREAMS, H2Client
from support import GUARD_SECONDS

pytestmark = pytest.mark.relay_only


def _relay(relay_factory, echo_backend, routes=None, **listener):
  listener = dict({"address": "127.0.0.1:0"}, **listener)
  return relay_factory(routes=routes or [{"service": "test.Echo", "cluster": "echo"}],
                       clusters={"echo": [echo_backend.address]}, listeners=(listener,))


def _handshake(conn, timeout=5):
  """True once the relay's SETTINGS arrived."""
  return conn.wait(lambda: conn.got_settings, timeout)


def test_idle_connection_is_closed_after_idle_timeout(relay_factory, echo_backend):
  relay = _relay(relay_factory, echo_backend, idle_timeout="300ms")
  conn = H2Client(relay.address)
  try:
    assert _handshake(conn)
    assert conn.read_until_closed(10), "the idle connection was not closed"
  finally:
    conn.close()
  assert conn.goaway_codes() == [(2**31 - 1, 0), (0, 0)]


def test_idle_timeout_spares_connections_with_open_calls(relay_factory, echo_backend):
  relay = _relay(relay_factory, echo_backend, idle_timeout="300ms")
  ch = support.channel(relay.addr())
  # One call outlasting the idle timeout several times.
  assert support.unary(ch)(b"busy", timeout=GUARD_SECONDS,
                           metadata=[("x-sleep-ms", "1200")]) == b"busy"
  # After it, the client reconnects as needed once the idle connection is gone.
  time.sleep(0.8)
  assert support.unary(ch)(b"again", timeout=GUARD_SECONDS) == b"again"
  ch.close()


def test_max_connection_age_sends_goaway_and_calls_go_on(relay_factory, echo_backend):
  relay = _relay(relay_factory, echo_backend, max_connection_age="400ms")
  conn = H2Client(relay.address)
  try:
    assert _handshake(conn)
    assert conn.read_until_closed(10)
  finally:
    conn.close()
  assert conn.goaway_codes()[0] == (2**31 - 1, 0)
  # A client making calls for longer than the age reconnects transparently; none fails.
  ch = support.channel(relay.addr())
  end = time.monotonic() + 1.5
  calls = 0
  while time.monotonic() < end:
    assert support.unary(ch)(b"age", timeout=GUARD_SECONDS) == b"age"
    calls += 1
  assert calls > 0
  # An open call outlives the age (no grace configured): it completes.
  assert support.unary(ch)(b"long", timeout=GUARD_SECONDS,
                           metadata=[("x-sleep-ms", "1000")]) == b"long"
  ch.close()


def test_max_connection_age_grace_ends_calls_still_open(relay_factory, echo_backend):
  relay = _relay(relay_factory, echo_backend, max_connection_age="300ms",
                 max_connection_age_grace="300ms")
  ch = support.channel(relay.addr())
  with pytest.raises(grpc.RpcError) as info:
    support.unary(ch)(b"x", timeout=GUARD_SECONDS, metadata=[("x-sleep-ms", "5000")])
  assert info.value.code() == grpc.StatusCode.UNAVAILABLE
  assert "max_connection_age_grace" in info.value.details()
  ch.close()


def test_max_connections_refuses_connections_past_the_limit(relay_factory, echo_backend):
  relay = _relay(relay_factory, echo_backend, max_connections=2)
  a = H2Client(relay.address)
  b = H2Client(relay.address)
  try:
    assert _handshake(a) and _handshake(b)
    c = H2Client(relay.address)
    try:
      # Closed at once, before any SETTINGS.
      assert c.read_until_closed(5)
      assert not c.frames
    finally:
      c.close()
    a.close()
    # A slot is free again once the relay saw the close.
    def accepted():
      d = H2Client(relay.address)
      try:
        return _handshake(d, timeout=2)
      finally:
        d.close()
    assert support.wait_until(accepted, 5)
  finally:
    a.close()
    b.close()


def test_stream_idle_timeout_resets_a_silent_stream(relay_factory, echo_backend):
  relay = _relay(relay_factory, echo_backend, stream_idle_timeout="300ms")
  ch = support.channel(relay.addr())
  cid = support.call_id()
  with pytest.raises(grpc.RpcError) as info:
    list(support.server_stream(ch)(b"", timeout=GUARD_SECONDS,
                                   metadata=[("x-sleep-ms", "3000"), ("x-count", "1"),
                                             ("x-call-id", cid)]))
  assert info.value.code() == grpc.StatusCode.UNAVAILABLE
  assert "stream_idle_timeout" in info.value.details()
  assert echo_backend.saw_cancel(cid)
  # A long stream with frames flowing more often than the timeout is not touched.
  stream = support.server_stream(ch)(b"", timeout=GUARD_SECONDS,
                                     metadata=[("x-count", "15"), ("x-size", "10"),
                                               ("x-interval-ms", "100")])
  assert len(list(stream)) == 15
  assert stream.code() == grpc.StatusCode.OK
  ch.close()


def test_route_turns_stream_idle_timeout_off(relay_factory, echo_backend):
  routes = [{"path": "/test.Echo/ServerStream", "cluster": "echo", "stream_idle_timeout": "off"},
            {"service": "test.Echo", "cluster": "echo"}]
  relay = _relay(relay_factory, echo_backend, routes=routes, stream_idle_timeout="300ms")
  ch = support.channel(relay.addr())
  stream = support.server_stream(ch)(b"", timeout=GUARD_SECONDS,
                                     metadata=[("x-sleep-ms", "1000"), ("x-count", "2"),
                                               ("x-size", "5"), ("x-interval-ms", "800")])
  assert len(list(stream)) == 2
  # The listener's timeout still holds for the other route.
  with pytest.raises(grpc.RpcError) as info:
    support.unary(ch)(b"x", timeout=GUARD_SECONDS, metadata=[("x-sleep-ms", "2000")])
  assert info.value.code() == grpc.StatusCode.UNAVAILABLE
  ch.close()


def test_max_concurrent_streams_is_announced_and_kept(relay_factory, echo_backend):
  relay = _relay(relay_factory, echo_backend, max_concurrent_streams=3)
  conn = H2Client(relay.address)
  try:
    assert _handshake(conn)
  finally:
    conn.close()
  assert conn.peer_settings[SETTINGS_MAX_CONCURRENT_STREAMS] == 3
  # Nine calls at once on one connection: the client holds back what is over the limit and
  # every call completes.
  ch = support.channel(relay.addr())
  futures = [support.unary(ch).future(b"%d" % i, timeout=GUARD_SECONDS,
                                      metadata=[("x-sleep-ms", "300")]) for i in range(9)]
  assert [f.result() for f in futures] == [b"%d" % i for i in range(9)]
  ch.close()
