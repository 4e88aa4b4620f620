"""grpc.health.v1.Health on the admin address, for grelay itself: what Kubernetes' native gRPC
probes (and grpc_health_probe) ask. Called with grpcio; the messages are encoded by hand
(Debian's python3-grpcio has no grpc_health module)."""

import queue
import signal
import threading
import time

import grpc
import pytest

import admin_support
import support

pytestmark = pytest.mark.relay_only

CHECK = "/grpc.health.v1.Health/Check"
WATCH = "/grpc.health.v1.Health/Watch"
SERVING, NOT_SERVING, SERVICE_UNKNOWN = 1, 2, 3


def encode_request(service):
  raw = service.encode()
  assert len(raw) < 128
  return (b"\x0a" + bytes([len(raw)]) + raw) if raw else b""


def decode_status(message):
  """HealthCheckResponse.status (field 1, varint); 0 when absent."""
  if not message:
    return 0
  assert message[0] == 0x08 and len(message) == 2, message
  return message[1]


def check(channel, service="", timeout=5):
  stub = channel.unary_unary(CHECK, request_serializer=encode_request,
                             response_deserializer=decode_status)
  return stub(service, timeout=timeout)


def watch(channel, service="", timeout=30):
  stub = channel.unary_stream(WATCH, request_serializer=encode_request,
                              response_deserializer=decode_status)
  return stub(service, timeout=timeout)


@pytest.fixture
def relay_with_admin(tmp_path, echo_backend):
  relay, admin = admin_support.start_relay(
      tmp_path, [{"prefix": "/", "cluster": "echo"}], {"echo": [echo_backend.address]})
  yield relay, admin
  relay.stop()


def test_check_serving_for_the_process_and_grelay(relay_with_admin):
  _, admin = relay_with_admin
  with grpc.insecure_channel("%s:%d" % admin) as ch:
    assert check(ch) == SERVING
    assert check(ch, "grelay") == SERVING
    assert check(ch, "liveness") == SERVING
    with pytest.raises(grpc.RpcError) as err:
      check(ch, "helloworld.Greeter")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    # A method the service does not have.
    other = ch.unary_unary("/grpc.health.v1.Health/List")
    with pytest.raises(grpc.RpcError) as err:
      other(b"", timeout=5)
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_malformed_request_is_internal(relay_with_admin):
  _, admin = relay_with_admin
  with grpc.insecure_channel("%s:%d" % admin) as ch:
    raw = ch.unary_unary(CHECK)
    with pytest.raises(grpc.RpcError) as err:
      raw(b"\x0a\x09cut", timeout=5)
    assert err.value.code() == grpc.StatusCode.INTERNAL


def test_plain_admin_paths_still_answer_on_h2c(relay_with_admin):
  _, admin = relay_with_admin
  answers = admin_support.get_h2(admin, ["/healthz", "/grpc.health.v1.Health/Check"])
  assert answers[0][0] == 200
  # A GET is no gRPC call: the health path is just an unknown admin path.
  assert answers[1][0] == 404


def test_watch_turns_not_serving_when_the_drain_begins(relay_with_admin, echo_backend):
  relay, admin = relay_with_admin
  statuses = queue.Queue()
  with grpc.insecure_channel("%s:%d" % admin) as ch:
    call = watch(ch)
    unknown = watch(ch, "no.such.Service")

    def read():
      try:
        for status in call:
          statuses.put(status)
      except grpc.RpcError as e:
        statuses.put(e.code())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert statuses.get(timeout=5) == SERVING
    assert next(unknown) == SERVICE_UNKNOWN
    # A call held open keeps the drain (and the admin endpoint) going.
    data = support.channel(relay.addr())
    held = support.server_stream(data)(b"", metadata=(("x-sleep-ms", "3000"),), timeout=20)
    time.sleep(0.3)
    relay.signal(signal.SIGTERM)
    assert statuses.get(timeout=5) == NOT_SERVING
    assert check(ch) == NOT_SERVING
    # The liveness service keeps answering SERVING: a draining pod is alive.
    assert check(ch, "liveness") == SERVING
    list(held)
    data.close()
    call.cancel()
    unknown.cancel()
