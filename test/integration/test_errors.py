"""Failures are reported with the gRPC status README.md gives them ("gRPC status of relay-made
errors")."""

import threading
import time

import grpc
import pytest

import support
from h2_backends import BlackholeEndpoint, H2Backend
from h2_client import INTERNAL_ERROR, H2Client, grpc_frame, grpc_unframe
from support import GUARD_SECONDS, pattern_message


@pytest.fixture(scope="module")
def down_address():
  return "127.0.0.1:%d" % support.free_port()


@pytest.fixture(scope="module")
def relay(module_relay_factory, echo_backend, h2_backend, garbage_backend, down_address):
  return module_relay_factory(
      routes=[{"service": "test.Echo", "cluster": "echo"},
              {"service": "test.Raw", "cluster": "raw"},
              {"service": "test.Down", "cluster": "down"},
              {"service": "test.Garbage", "cluster": "garbage"}],
      clusters={"echo": [echo_backend.address], "raw": [h2_backend.address],
                "down": {"endpoints": [down_address], "connect_timeout": "2s"},
                "garbage": [garbage_backend.address]})


@pytest.fixture
def ch(relay, grpc_channel):
  return grpc_channel(relay.addr("echo"))


def _code(callable_, *args, **kwargs):
  """The status code a call ends with (OK when it returns)."""
  try:
    callable_(*args, **kwargs)
    return grpc.StatusCode.OK
  except grpc.RpcError as e:
    return e.code()


def _assert_relay_made_error(r, code):
  """A relay-made error before response headers is Trailers-Only (README.md, "gRPC status of
  relay-made errors")."""
  assert r.reset_code is None, "stream reset with %r" % r.reset_code
  assert r.trailers_only, "expected one HEADERS frame with END_STREAM, got %s" % r.describe()
  assert r.header(":status") == "200"
  assert r.header("content-type") == "application/grpc"
  assert r.grpc_status() == code


@pytest.mark.relay_only
def test_unknown_route_is_unimplemented(relay, grpc_channel):
  ch = grpc_channel(relay.addr())
  assert _code(support.unary(ch, "/nope.Service/Unary"), b"",
               timeout=GUARD_SECONDS) == grpc.StatusCode.UNIMPLEMENTED
  with H2Client(relay.addr()) as client:
    r = client.call("/nope.Service/Unary", body=grpc_frame(b""))
  _assert_relay_made_error(r, 12)


def test_unknown_method_on_routed_service_is_unimplemented(ch):
  assert _code(support.unary(ch, "/test.Echo/NoSuchMethod"), b"",
               timeout=GUARD_SECONDS) == grpc.StatusCode.UNIMPLEMENTED


def test_backend_down_is_unavailable(relay, grpc_channel):
  ch = grpc_channel(relay.addr("down"))
  # The guard deadline is long: DEADLINE_EXCEEDED here would mean the relay sat on the call.
  assert _code(support.unary(ch, "/test.Down/Unary"), b"x",
               timeout=20) == grpc.StatusCode.UNAVAILABLE
  call = support.server_stream(ch, "/test.Down/ServerStream")(b"", timeout=20)
  assert _code(list, call) == grpc.StatusCode.UNAVAILABLE


@pytest.mark.relay_only
def test_backend_down_answer_is_trailers_only(relay):
  with H2Client(relay.addr("down"), timeout=20) as client:
    r = client.call("/test.Down/Unary", body=grpc_frame(b"x"))
  _assert_relay_made_error(r, 14)


@pytest.mark.relay_only
def test_connect_timeout_gives_unavailable(relay_factory, grpc_channel):
  hole = BlackholeEndpoint()
  try:
    assert hole.is_black(), "could not make an endpoint whose connects hang"
    relay = relay_factory(routes=[{"service": "test.Echo", "cluster": "hole"}],
                          clusters={"hole": {"endpoints": [hole.address],
                                             "connect_timeout": "500ms"}})
    ch = grpc_channel(relay.addr())
    # The client deadline is far beyond connect_timeout: the relay must give up first.
    assert _code(support.unary(ch), b"x", timeout=20) == grpc.StatusCode.UNAVAILABLE
  finally:
    hole.close()


@pytest.mark.relay_only
def test_backend_that_never_speaks_http2_gives_unavailable(relay_factory, grpc_channel):
  """A backend that accepts TCP and then says nothing: the connect timeout also covers its
  SETTINGS, so a call without a deadline still ends, with UNAVAILABLE."""
  import socket
  silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
  silent.bind(("127.0.0.1", 0))
  silent.listen(16)
  accepted = []
  stop = threading.Event()

  def accept_loop():
    silent.settimeout(0.1)
    while not stop.is_set():
      try:
        accepted.append(silent.accept()[0])
      except OSError:
        pass

  thread = threading.Thread(target=accept_loop, daemon=True)
  thread.start()
  try:
    relay = relay_factory(routes=[{"service": "test.Echo", "cluster": "silent"}],
                          clusters={"silent": {"endpoints": ["127.0.0.1:%d" % silent.getsockname()[1]],
                                               "connect_timeout": "500ms"}})
    ch = grpc_channel(relay.addr())
    assert _code(support.unary(ch), b"x") == grpc.StatusCode.UNAVAILABLE
    assert accepted, "the relay never connected to the silent backend"
  finally:
    stop.set()
    thread.join()
    for conn in accepted:
      conn.close()
    silent.close()


HTTP_MAPPING = [
    (400, grpc.StatusCode.INTERNAL),
    (401, grpc.StatusCode.UNAUTHENTICATED),
    (403, grpc.StatusCode.PERMISSION_DENIED),
    (404, grpc.StatusCode.UNIMPLEMENTED),
    (429, grpc.StatusCode.UNAVAILABLE),
    (431, grpc.StatusCode.INTERNAL),
    (500, grpc.StatusCode.UNKNOWN),
    (502, grpc.StatusCode.UNAVAILABLE),
    (503, grpc.StatusCode.UNAVAILABLE),
    (504, grpc.StatusCode.UNAVAILABLE),
    (418, grpc.StatusCode.UNKNOWN),
]


@pytest.mark.parametrize("http_status,code", HTTP_MAPPING, ids=[str(s) for s, _ in HTTP_MAPPING])
def test_http_status_without_grpc_status_is_mapped(relay, grpc_channel, direct, http_status,
                                                   code):
  if direct and http_status == 431:
    # Straight from the backend, grpcio maps the bare 431 itself, as UNKNOWN; through the
    # relay the client gets the relay's explicit grpc-status.
    code = grpc.StatusCode.UNKNOWN
  ch = grpc_channel(relay.addr("raw"))
  assert _code(support.unary(ch, "/test.Raw/Http%d" % http_status), b"x",
               timeout=GUARD_SECONDS) == code


@pytest.mark.relay_only
@pytest.mark.parametrize("http_status,code", HTTP_MAPPING, ids=[str(s) for s, _ in HTTP_MAPPING])
def test_http_status_mapping_is_made_by_the_relay(relay, http_status, code):
  # grpcio would map a bare HTTP status itself; the relay must send grpc-status explicitly.
  with H2Client(relay.addr("raw")) as client:
    r = client.call("/test.Raw/Http%d" % http_status, body=grpc_frame(b"x"))
  assert r.reset_code is None
  assert r.header(":status") == "200"
  assert r.grpc_status() == code.value[0], "headers %r trailers %r" % (r.headers, r.trailers)


RESETS = [
    ("RefusedStream", grpc.StatusCode.UNAVAILABLE),
    ("Cancel", grpc.StatusCode.CANCELLED),
    ("EnhanceYourCalm", grpc.StatusCode.RESOURCE_EXHAUSTED),
    ("InternalError", grpc.StatusCode.INTERNAL),
]


@pytest.mark.parametrize("reset,code", RESETS, ids=[r for r, _ in RESETS])
def test_backend_reset_before_headers_is_mapped(relay, grpc_channel, reset, code):
  ch = grpc_channel(relay.addr("raw"))
  assert _code(support.unary(ch, "/test.Raw/Reset" + reset), b"x",
               timeout=GUARD_SECONDS) == code


@pytest.mark.relay_only
def test_refused_stream_is_retried_on_another_endpoint(relay_factory, echo_backend,
                                                       grpc_channel):
  # A stream the backend refused is replayed on another endpoint (README.md, the pooling
  # bullet; docs/config.md, "Health").
  refuser = H2Backend(refuse_all=True)
  try:
    relay = relay_factory(routes=[{"service": "test.Echo", "cluster": "mixed"}],
                          clusters={"mixed": [refuser.address, echo_backend.address]})
    ch = grpc_channel(relay.addr())
    for i in range(10):
      assert support.unary(ch)(b"retry %d" % i, timeout=GUARD_SECONDS) == b"retry %d" % i
    assert refuser.streams(), "no call was sent to the refusing endpoint"
  finally:
    refuser.close()


def test_backend_trailers_only_error_passes_through(relay, grpc_channel):
  ch = grpc_channel(relay.addr("raw"))
  with pytest.raises(grpc.RpcError) as info:
    support.unary(ch, "/test.Raw/TrailersOnly7")(b"x", timeout=GUARD_SECONDS)
  assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
  assert info.value.details() == "trailers only"


def test_garbage_backend_is_unavailable_and_relay_keeps_serving(relay, grpc_channel):
  ch = grpc_channel(relay.addr("echo"))
  stream = support.server_stream(ch)(
      b"", metadata=[("x-count", "20"), ("x-size", "100"), ("x-interval-ms", "50")],
      timeout=GUARD_SECONDS)
  assert next(stream) == pattern_message(0, 100)
  garbage = grpc_channel(relay.addr("garbage"))
  for _ in range(3):
    assert _code(support.unary(garbage, "/test.Garbage/Unary"), b"x",
                 timeout=20) == grpc.StatusCode.UNAVAILABLE
  assert list(stream) == [pattern_message(i, 100) for i in range(1, 20)]
  assert stream.code() == grpc.StatusCode.OK
  assert support.unary(ch)(b"still here", timeout=GUARD_SECONDS) == b"still here"


def _drain(call, outcome):
  try:
    for _ in call:
      pass
    outcome.append(grpc.StatusCode.OK)
  except grpc.RpcError as e:
    outcome.append(e.code())


def test_backend_killed_mid_stream_then_restarted(relay_factory, workdir, grpc_channel):
  backend = support.BackendProcess(workdir, name="victim")
  try:
    relay = relay_factory(routes=[{"service": "test.Echo", "cluster": "victim"}],
                          clusters={"victim": [backend.address]})
    ch = grpc_channel(relay.addr("victim"))
    md = [("x-count", "1000000"), ("x-size", "1000"), ("x-interval-ms", "20")]
    calls = [support.server_stream(ch)(b"", metadata=md, timeout=GUARD_SECONDS)
             for _ in range(5)]
    for call in calls:
      assert next(call) == pattern_message(0, 1000)
    outcomes = [[] for _ in calls]
    threads = [threading.Thread(target=_drain, args=(c, o), daemon=True)
               for c, o in zip(calls, outcomes)]
    for t in threads:
      t.start()
    backend.kill()
    for t in threads:
      t.join(10)
    ended = [o[0] for o in outcomes if o]
    assert len(ended) == len(calls), "%d of %d calls still running 10 s after the backend died" % (
        len(calls) - len(ended), len(calls))
    # Each 1000-byte message reaches the relay whole, so no call is cut inside one: the
    # lost backend connection is UNAVAILABLE for each (README.md, relay-made errors).
    assert ended == [grpc.StatusCode.UNAVAILABLE] * len(calls), ended

    backend.restart()
    ok = support.wait_until(
        lambda: _code(support.unary(ch), b"back", timeout=5) == grpc.StatusCode.OK, 10,
        interval=0.2)
    assert ok, "no call succeeded within 10 s of the backend restarting"
    assert support.unary(ch)(b"again", timeout=GUARD_SECONDS) == b"again"
  finally:
    backend.stop()


@pytest.mark.relay_only
def test_backend_lost_mid_message_never_ends_with_a_cut_message(relay_factory, workdir):
  # 256 KiB messages sent back to back: the backend dies with messages half-forwarded. Each
  # stream must end either with a reset, or with grpc-status 14 after whole messages only.
  backend = support.BackendProcess(workdir, name="cut")
  try:
    relay = relay_factory(routes=[{"service": "test.Echo", "cluster": "cut"}],
                          clusters={"cut": [backend.address]})
    size = 256 * 1024
    md = [("x-count", "100000"), ("x-size", str(size))]
    with H2Client(relay.addr("cut"), timeout=GUARD_SECONDS) as client:
      sids = [client.start("/test.Echo/ServerStream", body=grpc_frame(b""), headers=md)
              for _ in range(4)]
      end = time.monotonic() + GUARD_SECONDS
      while not all(len(client.stream(s).data) > 2 * size for s in sids):
        assert client.pump(), "relay closed the client connection"
        assert time.monotonic() < end, "streams stalled: %r" % [
            len(client.stream(s).data) for s in sids]
        # Streams sharing a connection must progress together; a starved one would make
        # this loop read (and keep) the others' data without end.
        assert sum(len(client.stream(s).data) for s in sids) < 64 * 1024 * 1024, (
            "one stream starved the others: %r" % [len(client.stream(s).data) for s in sids])
      backend.kill()
      for sid in sids:
        r = client.wait_stream(sid)
        assert not client.closed, "the relay closed the client connection"
        # The relay hands on every byte it got, then ends the stream: trailers with
        # UNAVAILABLE after whole messages, a reset (INTERNAL_ERROR) after a cut one.
        data = bytes(r.data)
        whole = 0
        while len(data) - whole >= 5 and len(data) - whole - 5 >= int.from_bytes(
            data[whole + 1:whole + 5], "big"):
          whole += 5 + int.from_bytes(data[whole + 1:whole + 5], "big")
        if whole == len(data):
          assert r.reset_code is None and r.grpc_status() == 14, "stream %d: %s" % (
              sid, r.describe())
        else:
          assert r.reset_code == INTERNAL_ERROR and r.trailers is None, "stream %d: %s" % (
              sid, r.describe())
        for i, (_, message) in enumerate(grpc_unframe(data[:whole])):
          assert message == pattern_message(i, size), "stream %d message %d differs" % (sid, i)
  finally:
    backend.stop()
