"""grelay embedded in a host's own nghttp2 server (examples/embed, grelay::StreamRelay): real
grpcio clients call a grpcio backend through the host, which answers /healthz itself on the
same connections. Calls of every kind, metadata and trailers, relay-made statuses, deadlines
and cancels behave as through grelay's own listeners, and a client that stops reading keeps
the host's memory bounded."""

import hashlib
import os
import time

import grpc
import pytest

import support
from embed_support import EmbedServer
from h2_client import H2Client, grpc_frame
from support import GUARD_SECONDS, metadata_dict, pattern_message

pytestmark = pytest.mark.relay_only

RSS_LIMIT_KIB = 64 * 1024


@pytest.fixture(scope="module")
def host(workdir, echo_backend):
  config = support.render_config(
      routes=[{"service": "test.Echo", "cluster": "echo"},
              {"service": "test.Capped", "cluster": "echo", "timeout": "300ms"}],
      clusters={"echo": [echo_backend.address]})
  server = EmbedServer(config, os.path.join(workdir, "embed"))
  yield server
  server.stop()


@pytest.fixture
def ch(host):
  channel = support.channel(host.address)
  yield channel
  channel.close()


def test_unary_with_metadata_and_trailers(ch):
  request = bytes(range(256)) * 4096
  response, call = support.unary(ch).with_call(
      request, metadata=[("x-echo-metadata", "1"), ("x-tag", "embedded")], timeout=GUARD_SECONDS)
  assert response == request
  assert call.code() == grpc.StatusCode.OK
  assert metadata_dict(call.initial_metadata())["x-tag"] == "embedded"
  trailers = metadata_dict(call.trailing_metadata())
  assert trailers["x-tag"] == "embedded"
  assert trailers["x-backend-name"] == "echo"


def test_client_streaming(ch):
  # 40 messages up to 200 KiB: more than the host's 1 MiB stream window in all.
  messages = [bytes([i]) * (i * 5000) for i in range(40)]
  response, call = support.client_stream(ch).with_call(
      iter(messages), metadata=[("x-digest-only", "1")], timeout=GUARD_SECONDS)
  assert response == b""
  assert metadata_dict(call.trailing_metadata()) == {
      "x-count": "40", "x-total-bytes": str(sum(map(len, messages))),
      "x-sha256": hashlib.sha256(b"".join(messages)).hexdigest(), "x-backend-name": "echo"}


def test_server_streaming(ch):
  call = support.server_stream(ch)(b"", metadata=[("x-count", "100"), ("x-size", "3000")],
                                   timeout=GUARD_SECONDS)
  received = list(call)
  assert received == [pattern_message(i, 3000) for i in range(100)]
  assert call.code() == grpc.StatusCode.OK


def test_bidi_streaming(ch):
  messages = [b"m%d" % i * (i + 1) for i in range(50)]
  received = list(support.bidi(ch)(iter(messages), timeout=GUARD_SECONDS))
  assert received == messages


def test_backend_status_and_message_pass_through(ch):
  with pytest.raises(grpc.RpcError) as info:
    support.unary(ch)(b"", metadata=[("x-status-code", "7"), ("x-status-message", "nope")],
                      timeout=GUARD_SECONDS)
  assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
  assert info.value.details() == "nope"


def test_unrouted_method_gets_the_relays_unimplemented(ch):
  with pytest.raises(grpc.RpcError) as info:
    support.unary(ch, "/other.Service/Method")(b"", timeout=GUARD_SECONDS)
  assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
  assert info.value.details() == "no route for /other.Service/Method"


def test_route_deadline_ends_call_and_cancels_backend(ch, echo_backend):
  cid = support.call_id()
  with pytest.raises(grpc.RpcError) as info:
    support.unary(ch, "/test.Capped/Unary")(b"slow", metadata=[("x-sleep-ms", "5000"),
                                                               ("x-call-id", cid)],
                                            timeout=GUARD_SECONDS)
  # The backend, told the remaining time in grpc-timeout, may end the call itself first.
  assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
  assert echo_backend.saw_cancel(cid), "backend never saw the call end early"


def test_client_deadline_reaches_backend(ch):
  _, call = support.unary(ch).with_call(b"", timeout=30)
  remaining = float(metadata_dict(call.trailing_metadata())["x-time-remaining"])
  # The backend reads the deadline on its own clock, a little after the client's.
  assert 25 < remaining <= 30.5


def test_client_cancel_reaches_backend(ch, echo_backend):
  cid = support.call_id()
  md = [("x-count", "100000"), ("x-size", "100"), ("x-interval-ms", "50"), ("x-call-id", cid)]
  call = support.server_stream(ch)(b"", metadata=md)
  assert next(call) == pattern_message(0, 100)
  call.cancel()
  assert echo_backend.saw_cancel(cid), "backend never saw the cancel"


def test_host_answers_its_own_streams_on_the_same_connection(host):
  with H2Client(host.address) as client:
    health = client.call("/healthz", method="GET", content_type=None, te=None,
                         timeout=GUARD_SECONDS)
    assert health.header(":status") == "200"
    assert bytes(health.data) == b"ok\n"
    other = client.call("/index.html", method="GET", content_type=None, te=None,
                        timeout=GUARD_SECONDS)
    assert other.header(":status") == "404"
    # A gRPC call on the same connection is the relay's.
    ch = support.channel(host.address)
    try:
      assert support.unary(ch)(b"ping", timeout=GUARD_SECONDS) == b"ping"
    finally:
      ch.close()


# The host turns nghttp2's HTTP messaging checks off: the relay's own checks of the header
# blocks it reads refuse these (a connection-specific field; userinfo in :authority).
@pytest.mark.parametrize("fields", [
    {"headers": [("connection", "keep-alive")]},
    {"authority": "user@127.0.0.1"},
])
def test_malformed_request_is_reset_and_others_go_on(host, ch, fields):
  with H2Client(host.address) as client:
    if "authority" in fields:
      client.authority = fields["authority"]
    sid = client.start("/test.Echo/Unary", headers=fields.get("headers", ()))
    client.wait_stream(sid, timeout=GUARD_SECONDS)
    assert client.reset_codes() == [1]
  assert support.unary(ch)(b"after", timeout=GUARD_SECONDS) == b"after"


def test_slow_reader_keeps_host_memory_bounded(host, ch):
  """256 MiB streamed to a client that reads slowly: the backend is slowed down by flow
  control, and the host's RSS stays under 64 MiB."""
  message = 64 * 1024
  count = 256 * 1024 * 1024 // message
  call = support.server_stream(ch)(b"", metadata=[("x-count", str(count)),
                                                  ("x-size", str(message))],
                                   timeout=GUARD_SECONDS * 2)
  peak = 0
  received = 0
  digest = hashlib.sha256()
  for i, m in enumerate(call):
    assert m == pattern_message(i, message), "message %d differs" % i
    digest.update(m)
    received += len(m)
    if i % 64 == 0:
      peak = max(peak, host.rss_kib())
    time.sleep(0.003)
  assert call.code() == grpc.StatusCode.OK
  assert received == count * message
  assert metadata_dict(call.trailing_metadata())["x-sha256"] == digest.hexdigest()
  assert peak < RSS_LIMIT_KIB, "embed_server VmRSS peaked at %d KiB" % peak


def test_client_that_stops_reading_keeps_host_memory_bounded(host, ch):
  """A client asks for 256 MiB and reads none of it past its 16 MiB stream window: flow
  control holds the backend back, the host's RSS stays under 64 MiB, and other calls on
  other connections go on meanwhile."""
  with H2Client(host.address) as client:
    sid = client.start("/test.Echo/ServerStream", body=grpc_frame(b""),
                       headers=[("x-count", "4096"), ("x-size", "65536")])
    client.hold(sid)
    deadline = time.monotonic() + 3
    peak = 0
    while time.monotonic() < deadline:
      client.pump(0.1)
      peak = max(peak, host.rss_kib())
      assert support.unary(ch)(b"meanwhile", timeout=GUARD_SECONDS) == b"meanwhile"
    received = len(client.stream(sid).data)
    assert 1024 * 1024 < received <= 16 * 1024 * 1024
    assert client.stream(sid).reset_code is None and not client.stream(sid).ended
  assert peak < RSS_LIMIT_KIB, "embed_server VmRSS peaked at %d KiB" % peak


def test_host_drain_lets_calls_in_flight_finish(workdir, echo_backend):
  """SIGTERM: the host sends GOAWAY and drains its StreamRelays; a relayed stream in flight
  runs to its end, and the host exits once its connections are done."""
  config = support.render_config(routes=[{"service": "test.Echo", "cluster": "echo"}],
                                 clusters={"echo": [echo_backend.address]})
  server = EmbedServer(config, os.path.join(workdir, "embed-drain"))
  channel = support.channel(server.address)
  try:
    call = support.server_stream(channel)(
        b"", metadata=[("x-count", "20"), ("x-size", "100"), ("x-interval-ms", "50")],
        timeout=GUARD_SECONDS)
    assert next(call) == pattern_message(0, 100)
    server.proc.terminate()
    rest = list(call)
    assert rest == [pattern_message(i, 100) for i in range(1, 20)]
    assert call.code() == grpc.StatusCode.OK
  finally:
    channel.close()
  assert server.proc.wait(timeout=support.STOP_SECONDS) == 0, server.log.tail()
