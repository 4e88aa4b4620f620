"""Drain on SIGTERM/SIGINT: stop accepting, the two-step GOAWAY, open calls run to their end
within drain_timeout, what remains is ended with UNAVAILABLE, exit 0; a second signal exits
at once."""

import signal
import socket

import grpc
import pytest

import support
from h2_client import GOAWAY, PING, H2Client
from support import GUARD_SECONDS

pytestmark = pytest.mark.relay_only


def _relay(relay_factory, echo_backend, drain_timeout="20s", listeners=("127.0.0.1:0",)):
  return relay_factory(routes=[{"service": "test.Echo", "cluster": "echo"}],
                       clusters={"echo": [echo_backend.address]}, listeners=listeners,
                       extra='drain_timeout = "%s"' % drain_timeout)


def _refused(address):
  host, port = address.rsplit(":", 1)
  try:
    with socket.create_connection((host, int(port)), timeout=2):
      return False
  except ConnectionRefusedError:
    return True
  except ConnectionResetError:
    # Caught in the backlog of a socket being closed: look again.
    return False


def test_sigterm_with_100_streams_in_flight_completes_each(relay_factory, echo_backend):
  relay = _relay(relay_factory, echo_backend)
  channels = [support.channel(relay.addr()) for _ in range(4)]
  ids = [support.call_id() for _ in range(100)]
  # Half unary calls, half server streams still sending when the drain starts.
  futures, streams = [], []
  for i, cid in enumerate(ids[:50]):
    method = support.unary(channels[i % 4])
    futures.append(method.future(b"call %d" % i, timeout=GUARD_SECONDS,
                                 metadata=[("x-sleep-ms", "2000"), ("x-call-id", cid)]))
  for i, cid in enumerate(ids[50:]):
    method = support.server_stream(channels[i % 4])
    streams.append(method(b"", timeout=GUARD_SECONDS,
                          metadata=[("x-count", "10"), ("x-size", "64"),
                                    ("x-interval-ms", "200"), ("x-call-id", cid)]))
  for cid in ids:
    assert echo_backend.saw_start(cid), "a call never reached the backend"
  relay.signal(signal.SIGTERM)
  # New connections are refused while the open calls run on.
  assert support.wait_until(lambda: _refused(relay.address), 5)
  assert relay.alive()
  for i, f in enumerate(futures):
    assert f.result() == b"call %d" % i
    assert f.code() == grpc.StatusCode.OK
  for stream in streams:
    assert list(stream) == [support.pattern_message(i, 64) for i in range(10)]
    assert stream.code() == grpc.StatusCode.OK
  for ch in channels:
    ch.close()
  # Exits 0 on its own, well before the 20 s drain timeout.
  assert relay.proc.wait(15) == 0
  assert relay.log.wait_for(lambda ls: any("grelay stopped" in l for l in ls), 5)
  assert not any("drain timeout reached" in l for l in relay.log.lines)
  relay.stop()


def test_drain_timeout_ends_remaining_calls_with_unavailable(relay_factory, echo_backend):
  relay = _relay(relay_factory, echo_backend, drain_timeout="1s")
  ch = support.channel(relay.addr())
  cid = support.call_id()
  # A stream that has sent some messages and would go on for a minute.
  call = support.server_stream(ch)(b"", timeout=GUARD_SECONDS,
                                   metadata=[("x-count", "600"), ("x-size", "10"),
                                             ("x-interval-ms", "100"), ("x-call-id", cid)])
  it = iter(call)
  next(it)
  relay.signal(signal.SIGTERM)
  with pytest.raises(grpc.RpcError) as info:
    for _ in it:
      pass
  assert info.value.code() == grpc.StatusCode.UNAVAILABLE
  assert "drain_timeout" in info.value.details()
  assert echo_backend.saw_cancel(cid), "the backend stream was not cancelled"
  ch.close()
  assert relay.proc.wait(15) == 0
  relay.stop()


def test_drain_sends_goaway_in_two_steps(relay_factory, echo_backend):
  relay = _relay(relay_factory, echo_backend)
  conn = H2Client(relay.address)
  try:
    conn.handshake()  # done before the drain starts
    relay.signal(signal.SIGTERM)
    assert conn.read_until_closed(10), "the relay did not close the idle connection"
  finally:
    conn.close()
  goaways = conn.goaway_codes()
  assert len(goaways) == 2, conn.describe_frames()
  # First the notice (largest stream id), then the real last stream id (none was opened).
  assert goaways[0] == (2**31 - 1, 0)
  assert goaways[1] == (0, 0)
  assert len(conn.pings()) == 1
  # The PING goes out with the first GOAWAY (nghttp2 may put it first), before the second.
  kinds = [f[0] for f in conn.frames if f[0] in (PING, GOAWAY) and not f[1] & 1]
  assert sorted(kinds[:2]) == [PING, GOAWAY] and kinds[2:] == [GOAWAY]
  assert relay.proc.wait(15) == 0
  relay.stop()


def test_goaway_second_step_comes_without_a_ping_ack(relay_factory, echo_backend):
  relay = _relay(relay_factory, echo_backend)
  conn = H2Client(relay.address, ack_pings=False)
  try:
    conn.handshake()
    relay.signal(signal.SIGTERM)
    assert conn.read_until_closed(10)
  finally:
    conn.close()
  assert conn.goaway_codes() == [(2**31 - 1, 0), (0, 0)]
  assert relay.proc.wait(15) == 0
  relay.stop()


def test_second_sigterm_exits_at_once(relay_factory, echo_backend):
  relay = _relay(relay_factory, echo_backend, drain_timeout="5m")
  ch = support.channel(relay.addr())
  cid = support.call_id()
  future = support.unary(ch).future(b"x", timeout=GUARD_SECONDS,
                                    metadata=[("x-sleep-ms", "60000"), ("x-call-id", cid)])
  assert echo_backend.saw_start(cid)
  relay.signal(signal.SIGTERM)
  assert relay.log.wait_for(lambda ls: any("draining" in l for l in ls), 5)
  assert relay.alive()
  relay.signal(signal.SIGTERM)
  # Far sooner than the 5 minute drain timeout (the guard only keeps the suite bounded).
  assert relay.proc.wait(10) == 0
  with pytest.raises(grpc.RpcError) as info:
    future.result()
  assert info.value.code() == grpc.StatusCode.UNAVAILABLE
  ch.close()
  relay.stop()


def test_sigint_drains_like_sigterm(relay_factory, echo_backend):
  relay = _relay(relay_factory, echo_backend)
  ch = support.channel(relay.addr())
  cid = support.call_id()
  future = support.unary(ch).future(b"int", timeout=GUARD_SECONDS,
                                    metadata=[("x-sleep-ms", "1000"), ("x-call-id", cid)])
  assert echo_backend.saw_start(cid)
  relay.signal(signal.SIGINT)
  assert future.result() == b"int"
  ch.close()
  assert relay.proc.wait(15) == 0
  relay.stop()
