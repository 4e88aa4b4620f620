"""DNS discovery: names resolved with c-ares against a local dnsmasq whose records change
during the test."""

import collections

import grpc
import pytest

import support
from dns_support import NAME, Dnsmasq, Load

pytestmark = pytest.mark.relay_only


@pytest.fixture
def dns(workdir):
  server = Dnsmasq(workdir)
  yield server
  server.stop()


@pytest.fixture
def trio(workdir):
  """Backends on 127.0.0.1, .2 and .3, all on the same port."""
  port = support.free_port()
  started = []
  try:
    for i in range(1, 4):
      started.append(support.BackendProcess(workdir, name="dns%d" % i, port=port,
                                            host="127.0.0.%d" % i))
    yield started
  finally:
    for b in started:
      b.stop()


def cluster(dns, port, **extra):
  spec = {"endpoints": ["%s:%d" % (NAME, port)], "dns_server": dns.address,
          "resolve_interval": "100ms"}
  spec.update(extra)
  return {"pool": spec}


ROUTE = [{"prefix": "/test.", "cluster": "pool"}]


def test_all_records_become_endpoints(relay_factory, grpc_channel, dns, trio):
  dns.set_records(["127.0.0.1", "127.0.0.2", "127.0.0.3"])
  relay = relay_factory(ROUTE, cluster(dns, trio[0].port))
  ch = grpc_channel(relay.addr())
  counts = collections.Counter()
  for _ in range(30):
    _, call = support.unary(ch).with_call(b"x", timeout=support.GUARD_SECONDS)
    counts[support.metadata_dict(call.trailing_metadata())["x-backend-name"]] += 1
  assert counts == {b.name: 10 for b in trio}


def test_endpoints_added_and_removed_under_load_fail_no_call(relay_factory, grpc_channel, dns,
                                                             trio):
  one, two, _ = trio
  dns.set_records(["127.0.0.1"])
  relay = relay_factory(ROUTE, cluster(dns, one.port))
  ch = grpc_channel(relay.addr())
  load = Load(relay.addr())
  try:
    assert support.wait_until(lambda: load.count(one.name) >= 20, 20)
    dns.set_records(["127.0.0.1", "127.0.0.2"])
    assert support.wait_until(lambda: load.count(two.name) >= 20, 20), load.counts
    # A stream open on the endpoint that goes away finishes there.
    stream = support.server_stream(ch)(
        b"", metadata=[("x-count", "10"), ("x-size", "8"), ("x-interval-ms", "100")],
        timeout=support.GUARD_SECONDS)
    next(stream)
    dns.set_records(["127.0.0.2"])
    assert relay.log.wait_for(
        lambda lines: any("(127.0.0.1:%d) removed by DNS" % one.port in l for l in lines), 10)
    assert len(list(stream)) == 9
    assert stream.code() == grpc.StatusCode.OK
    assert relay.log.wait_for(
        lambda lines: any("(127.0.0.1:%d) drained" % one.port in l for l in lines), 10)
    # Nothing goes to the removed endpoint any more: stopping it fails no call.
    before = load.count(one.name)
    one.stop()
    after_two = load.count(two.name)
    assert support.wait_until(lambda: load.count(two.name) >= after_two + 20, 20)
    assert load.count(one.name) == before
  finally:
    load.stop()
  assert load.failures == []


def test_unresolvable_name_fails_fast(relay_factory, grpc_channel, dns, trio):
  relay = relay_factory(ROUTE, cluster(dns, trio[0].port))
  ch = grpc_channel(relay.addr())
  with pytest.raises(grpc.RpcError) as err:
    support.unary(ch)(b"x", timeout=60)
  assert err.value.code() == grpc.StatusCode.UNAVAILABLE
  assert "no address resolved" in err.value.details()
  assert relay.log.wait_for(lambda lines: any("cannot resolve %s" % NAME in l for l in lines), 5)


def test_first_call_waits_for_the_first_answer(relay_factory, grpc_channel, dns, trio):
  dns.set_records(["127.0.0.3"])
  relay = relay_factory(ROUTE, cluster(dns, trio[2].port, resolve_interval="30s"))
  ch = grpc_channel(relay.addr())
  _, call = support.unary(ch).with_call(b"x", timeout=support.GUARD_SECONDS)
  assert support.metadata_dict(call.trailing_metadata())["x-backend-name"] == trio[2].name


def test_connect_failure_re_resolves_the_name(relay_factory, grpc_channel, dns, trio):
  one, two, _ = trio
  dns.set_records(["127.0.0.1"])
  # Periodic re-resolution is far away: only the failure can trigger it.
  relay = relay_factory(ROUTE, cluster(dns, one.port, resolve_interval="5m"))
  ch = grpc_channel(relay.addr())
  _, call = support.unary(ch).with_call(b"x", timeout=support.GUARD_SECONDS)
  assert support.metadata_dict(call.trailing_metadata())["x-backend-name"] == one.name
  dns.set_records(["127.0.0.2"])
  one.stop()

  def answered_by_two():
    try:
      _, call = support.unary(ch).with_call(b"x", timeout=support.GUARD_SECONDS)
    except grpc.RpcError:
      return False
    return support.metadata_dict(call.trailing_metadata())["x-backend-name"] == two.name

  assert support.wait_until(answered_by_two, 20, interval=0.1)
  assert relay.log.wait_for(
      lambda lines: any("(127.0.0.2:%d) added" % two.port in l for l in lines), 1)
