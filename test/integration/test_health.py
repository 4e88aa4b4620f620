"""Active health checks (grpc.health.v1), outlier ejection, and failing fast when no endpoint
is usable."""

import collections
import time

import grpc
import pytest

import admin_support
import support

pytestmark = pytest.mark.relay_only

ROUTE = [{"prefix": "/test.", "cluster": "pool"}]
HEALTH = {"interval": "100ms", "timeout": "1s", "unhealthy_threshold": 1,
          "healthy_threshold": 1}


@pytest.fixture
def pair(workdir):
  started = [support.BackendProcess(workdir, name="health%d" % i) for i in range(2)]
  yield started
  for b in started:
    b.stop()


def set_health(grpc_channel, backend, state):
  ch = grpc_channel(backend.address)
  ch.unary_unary("/test.Control/SetHealth")(state, timeout=support.GUARD_SECONDS)


def answered_by(ch, n):
  counts = collections.Counter()
  for _ in range(n):
    _, call = support.unary(ch).with_call(b"x", timeout=support.GUARD_SECONDS)
    counts[support.metadata_dict(call.trailing_metadata())["x-backend-name"]] += 1
  return counts


def wait_log(relay, text, timeout=10):
  return relay.log.wait_for(lambda lines: any(text in l for l in lines), timeout)


def test_not_serving_takes_an_endpoint_out_and_serving_brings_it_back(relay_factory,
                                                                      grpc_channel, pair):
  a, b = pair
  relay = relay_factory(ROUTE, {"pool": {"endpoints": [a.address, b.address],
                                         "health_check": HEALTH}})
  ch = grpc_channel(relay.addr())
  assert set(answered_by(ch, 4)) == {a.name, b.name}
  set_health(grpc_channel, a, b"NOT_SERVING")
  assert wait_log(relay, "%s is unhealthy: health check status NOT_SERVING" % a.address)
  assert answered_by(ch, 20) == {b.name: 20}
  set_health(grpc_channel, a, b"SERVING")
  assert wait_log(relay, "%s is healthy again" % a.address)
  assert answered_by(ch, 20)[a.name] > 0


def test_health_check_sends_the_configured_service(relay_factory, grpc_channel, pair):
  # The backend answers every service; the check still has to reach it and decode.
  a = pair[0]
  relay = relay_factory(ROUTE, {"pool": {"endpoints": [a.address],
                                         "health_check": dict(HEALTH, service="test.Echo")}})
  ch = grpc_channel(relay.addr())
  assert answered_by(ch, 3) == {a.name: 3}
  set_health(grpc_channel, a, b"NOT_SERVING")
  assert wait_log(relay, "is unhealthy")


def test_no_healthy_endpoint_answers_unavailable_at_once(relay_factory, grpc_channel, pair):
  a, b = pair
  relay = relay_factory(ROUTE, {"pool": {"endpoints": [a.address, b.address],
                                         "health_check": HEALTH}})
  set_health(grpc_channel, a, b"NOT_SERVING")
  set_health(grpc_channel, b, b"NOT_SERVING")
  assert relay.log.wait_for(lambda lines: sum("is unhealthy" in l for l in lines) >= 2, 10)
  ch = grpc_channel(relay.addr())
  # A long deadline: the answer must come from the relay giving up, not the deadline.
  with pytest.raises(grpc.RpcError) as err:
    support.unary(ch)(b"x", timeout=60)
  assert err.value.code() == grpc.StatusCode.UNAVAILABLE
  assert "no usable endpoint" in err.value.details()
  assert "2 unhealthy" in err.value.details()


def test_killed_backend_is_ejected_and_calls_keep_succeeding(relay_factory, grpc_channel,
                                                              workdir):
  started = [support.BackendProcess(workdir, name="eject%d" % i) for i in range(3)]
  try:
    relay = relay_factory(ROUTE, {"pool": {
        "endpoints": [b.address for b in started],
        "outlier": {"consecutive_failures": 2, "base_ejection": "30s",
                    "max_ejection_percent": 50}}})
    ch = grpc_channel(relay.addr())
    assert set(answered_by(ch, 6)) == {b.name for b in started}
    victim = started[0]
    victim.kill()
    ejected = "%s ejected for" % victim.address
    # Calls go on (each one must succeed) until the endpoint's redials have failed enough.
    counts = collections.Counter()
    end = time.monotonic() + 20
    while not any(ejected in l for l in relay.log.lines) and time.monotonic() < end:
      counts += answered_by(ch, 5)
      time.sleep(0.05)
    assert wait_log(relay, ejected, timeout=1)
    counts += answered_by(ch, 30)
    assert victim.name not in counts
  finally:
    for b in started:
      b.stop()


def test_unavailable_answers_eject_an_endpoint(relay_factory, grpc_channel, pair):
  a, b = pair
  relay = relay_factory(ROUTE, {"pool": {
      "endpoints": [a.address, b.address],
      "outlier": {"consecutive_failures": 3, "base_ejection": "30s"}}})
  ch = grpc_channel(relay.addr())
  # Every answer is UNAVAILABLE until one endpoint is ejected; then, half may be ejected, so
  # the other stays.
  for _ in range(6):
    with pytest.raises(grpc.RpcError):
      support.unary(ch)(b"x", metadata=[("x-fail-attempts", "1")],
                        timeout=support.GUARD_SECONDS)
  assert wait_log(relay, "ejected for 30000 ms after 3 consecutive failures")
  counts = answered_by(ch, 10)
  assert len(counts) == 1 and sum(counts.values()) == 10


def test_every_probe_is_counted_below_the_threshold(tmp_path, grpc_channel, pair):
  # With a threshold no run of failures reaches, the endpoint stays in balancing, and each
  # failed probe still counts.
  a, b = pair
  health = dict(HEALTH, unhealthy_threshold=100)
  relay, admin = admin_support.start_relay(
      tmp_path, ROUTE, {"pool": {"endpoints": [a.address], "health_check": health}})
  try:
    set_health(grpc_channel, a, b"NOT_SERVING")

    def failed():
      return admin_support.Scrape(admin).value("grelay_health_checks_total", cluster="pool",
                                               endpoint=a.address, result="unhealthy") or 0

    assert support.wait_until(lambda: failed() >= 3, 10), failed()
    assert not any("is unhealthy" in line for line in list(relay.log.lines)), relay.log.tail()
    ch = grpc_channel(relay.addr())
    assert answered_by(ch, 4) == {a.name: 4}
  finally:
    relay.stop()
