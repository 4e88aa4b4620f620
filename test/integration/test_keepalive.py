"""HTTP/2 PING keepalive on backend connections, and backend GOAWAY under load."""

import threading
import time

import grpc
import pytest

import support

pytestmark = pytest.mark.relay_only

ROUTE = [{"prefix": "/test.", "cluster": "pool"}]


def test_stopped_backend_is_detected_by_ping(relay_factory, grpc_channel, workdir):
  started = [support.BackendProcess(workdir, name="ka%d" % i, args=["--permit-pings"])
             for i in range(2)]
  try:
    relay = relay_factory(ROUTE, {"pool": {
        "endpoints": [b.address for b in started],
        "connect_timeout": "1s",
        "keepalive": {"interval": "200ms", "timeout": "500ms"},
        "outlier": {"consecutive_failures": 1, "base_ejection": "30s"}}})
    ch = grpc_channel(relay.addr())
    cid = support.call_id()
    # A stream that would run for 100 s, with a deadline further out still.
    stream = support.server_stream(ch)(
        b"", metadata=[("x-call-id", cid), ("x-count", "1000"), ("x-size", "10"),
                       ("x-interval-ms", "100")], timeout=120)
    first = next(stream)
    assert len(first) == 10
    victim = next(b for b in started if b.saw_start(cid, timeout=0))
    victim.pause()
    try:
      with pytest.raises(grpc.RpcError) as err:
        for _ in stream:
          pass
      assert err.value.code() == grpc.StatusCode.UNAVAILABLE
      assert relay.log.wait_for(
          lambda lines: any("keepalive PING unanswered for 500 ms" in l for l in lines), 10)
      other = next(b for b in started if b is not victim)
      for _ in range(10):
        _, call = support.unary(ch).with_call(b"x", timeout=support.GUARD_SECONDS)
        assert support.metadata_dict(call.trailing_metadata())["x-backend-name"] == other.name
    finally:
      victim.resume()
  finally:
    for b in started:
      b.stop()


def test_too_many_pings_makes_the_relay_ping_less(relay_factory, grpc_channel, workdir):
  # The backend keeps grpcio's default ping policy, which answers frequent pings on an idle
  # connection with GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings").
  b = support.BackendProcess(workdir, name="strict")
  try:
    relay = relay_factory(ROUTE, {"pool": {
        "endpoints": [b.address],
        "keepalive": {"interval": "50ms", "timeout": "5s", "without_calls": True}}})
    ch = grpc_channel(relay.addr())
    assert support.unary(ch)(b"x", timeout=support.GUARD_SECONDS) == b"x"
    assert relay.log.wait_for(
        lambda lines: any("too_many_pings" in l and "50 ms -> 100 ms" in l for l in lines), 20)
    for _ in range(5):
      assert support.unary(ch)(b"y", timeout=support.GUARD_SECONDS) == b"y"
  finally:
    b.stop()


def test_backend_goaway_under_load_fails_no_call(relay_factory, grpc_channel, workdir):
  # grpcio's max_connection_age sends GOAWAY on every connection after 300 ms.
  b = support.BackendProcess(workdir, name="aging", args=["--max-connection-age-ms", "300"])
  try:
    relay = relay_factory(ROUTE, {"pool": [b.address]})
    failures = []
    done = [0]
    stop = time.monotonic() + 2.5
    lock = threading.Lock()

    def load():
      ch = support.channel(relay.addr())
      try:
        while time.monotonic() < stop:
          try:
            assert support.unary(ch)(b"m" * 100, timeout=support.GUARD_SECONDS) == b"m" * 100
            with lock:
              done[0] += 1
          except grpc.RpcError as e:
            with lock:
              failures.append("%s: %s" % (e.code(), e.details()))
      finally:
        ch.close()

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
      t.start()
    for t in threads:
      t.join()
    assert failures == []
    assert done[0] > 0
    assert relay.log.wait_for(lambda lines: any("sent GOAWAY" in l for l in lines), 5)
  finally:
    b.stop()
