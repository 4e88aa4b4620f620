"""Load balancing policies, weights, circuit breakers and backend connection limits."""

import collections
import threading
import time

import grpc
import pytest

import support
from h2_backends import BlackholeEndpoint

pytestmark = pytest.mark.relay_only

ROUTE = [{"prefix": "/", "cluster": "pool"}]


@pytest.fixture(scope="module")
def backends(workdir):
  started = [support.BackendProcess(workdir, name="lb%d" % i) for i in range(4)]
  yield started
  for b in started:
    b.stop()


def backend_of(ch, metadata=()):
  """Makes one unary call; returns the x-backend-name that answered it."""
  _, call = support.unary(ch).with_call(b"x", metadata=list(metadata), timeout=support.GUARD_SECONDS)
  return support.metadata_dict(call.trailing_metadata())["x-backend-name"]


def test_weighted_round_robin_follows_the_weights(relay_factory, grpc_channel, backends):
  a, b = backends[0], backends[1]
  relay = relay_factory(ROUTE, {"pool": {"endpoints": [{"address": a.address, "weight": 3},
                                                       b.address]}})
  ch = grpc_channel(relay.addr())
  counts = collections.Counter(backend_of(ch) for _ in range(40))
  assert counts == {a.name: 30, b.name: 10}


def test_random_reaches_every_endpoint(relay_factory, grpc_channel, backends):
  relay = relay_factory(ROUTE, {"pool": {"endpoints": [b.address for b in backends[:3]],
                                         "lb": "random"}})
  ch = grpc_channel(relay.addr())
  counts = collections.Counter(backend_of(ch) for _ in range(90))
  assert set(counts) == {b.name for b in backends[:3]}


def test_ring_hash_keeps_a_key_on_one_endpoint(relay_factory, grpc_channel, backends):
  relay = relay_factory(ROUTE, {"pool": {"endpoints": [b.address for b in backends[:3]],
                                         "lb": "ring_hash", "hash_header": "x-user"}})
  ch = grpc_channel(relay.addr())
  placement = {}
  for user in range(20):
    seen = {backend_of(ch, [("x-user", "user-%d" % user)]) for _ in range(3)}
    assert len(seen) == 1, "user-%d went to %s" % (user, seen)
    placement[user] = seen.pop()
  assert len(set(placement.values())) >= 2


def open_held_streams(ch, n, metadata=()):
  """Opens |n| bidi calls that stay open until the returned event is set."""
  release = threading.Event()

  def requests():
    release.wait(support.GUARD_SECONDS)
    return
    yield  # pragma: no cover (a generator that sends nothing)

  ids = [support.call_id() for _ in range(n)]
  calls = [support.bidi(ch)(requests(), metadata=[("x-call-id", cid)] + list(metadata),
                            timeout=support.GUARD_SECONDS) for cid in ids]
  return ids, calls, release


def test_least_request_spreads_long_streams_evenly(relay_factory, grpc_channel, backends):
  relay = relay_factory(ROUTE, {"pool": {"endpoints": [b.address for b in backends],
                                         "lb": "least_request"}})
  ch = grpc_channel(relay.addr())
  ids, calls, release = open_held_streams(ch, 100)
  try:
    def placed():
      where = {}
      for b in backends:
        for kind, cid in b.events():
          if kind == "started" and cid in ids:
            where[cid] = b.name
      return where if len(where) == len(ids) else None

    where = support.wait_until(placed, 30)
    assert where, "not every stream reached a backend"
    counts = collections.Counter(where.values())
    assert all(20 <= counts[b.name] <= 30 for b in backends), counts
  finally:
    release.set()
  for call in calls:
    assert list(call) == []
    assert call.code() == grpc.StatusCode.OK


def test_max_active_refuses_at_once(relay_factory, grpc_channel, backends):
  # One client connection makes every call: max_client_share (a quarter of max_active by
  # default) is turned off so that max_active is what refuses.
  relay = relay_factory(ROUTE, {"pool": {"endpoints": [backends[0].address], "max_active": 2,
                                         "max_client_share": 1}})
  ch = grpc_channel(relay.addr())
  ids, calls, release = open_held_streams(ch, 2)
  try:
    assert all(backends[0].saw_start(cid) for cid in ids)
    with pytest.raises(grpc.RpcError) as err:
      support.unary(ch)(b"x", timeout=support.GUARD_SECONDS)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "max_active" in err.value.details()
  finally:
    release.set()
  for call in calls:
    list(call)
    assert call.code() == grpc.StatusCode.OK
  assert support.unary(ch)(b"again", timeout=support.GUARD_SECONDS) == b"again"


def test_max_pending_refuses_at_once(relay_factory, grpc_channel):
  hole = BlackholeEndpoint()
  try:
    assert hole.is_black(), "could not make an endpoint whose connects hang"
    relay = relay_factory(ROUTE, {"pool": {"endpoints": [hole.address], "max_pending": 1,
                                           "connect_timeout": "2s"}})
    ch = grpc_channel(relay.addr())
    # Connected first, so that the first call surely reaches the relay before the others.
    grpc.channel_ready_future(ch).result(timeout=support.GUARD_SECONDS)
    first = support.unary(ch).future(b"waits", timeout=support.GUARD_SECONDS)

    def refused():
      try:
        support.unary(ch)(b"x", timeout=support.GUARD_SECONDS)
      except grpc.RpcError as e:
        return e if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED else None
      return None

    err = support.wait_until(refused, 10)
    assert err is not None and "max_pending" in err.details()
    with pytest.raises(grpc.RpcError) as first_err:
      first.result()
    assert first_err.value.code() == grpc.StatusCode.UNAVAILABLE
  finally:
    hole.close()


def peers_of(backend, ids):
  found = {}
  for kind, rest in backend.events():
    if kind == "peer":
      cid, peer = rest.split(" ", 1)
      if cid in ids:
        found[cid] = peer
  return found


def test_max_streams_per_connection_opens_fresh_connections(relay_factory, grpc_channel,
                                                            backends):
  b = backends[0]
  relay = relay_factory(ROUTE, {"pool": {"endpoints": [b.address],
                                         "max_streams_per_connection": 5}})
  ch = grpc_channel(relay.addr())
  ids = [support.call_id() for _ in range(20)]
  for cid in ids:
    support.unary(ch)(b"x", metadata=[("x-call-id", cid), ("x-record-peer", "1")],
                      timeout=support.GUARD_SECONDS)
  peers = support.wait_until(lambda: (lambda p: p if len(p) == 20 else None)(peers_of(b, ids)),
                             10)
  assert peers
  per_connection = collections.Counter(peers.values())
  assert len(per_connection) >= 4
  assert max(per_connection.values()) <= 5


def test_max_connection_age_rotates_without_failures(relay_factory, grpc_channel, backends):
  b = backends[1]
  relay = relay_factory(ROUTE, {"pool": {"endpoints": [b.address],
                                         "max_connection_age": "200ms"}})
  ch = grpc_channel(relay.addr())
  # A stream that outlives its connection's age still finishes.
  stream = support.server_stream(ch)(b"", metadata=[("x-count", "8"), ("x-size", "10"),
                                                    ("x-interval-ms", "100")],
                                     timeout=support.GUARD_SECONDS)
  ids = [support.call_id() for _ in range(12)]
  for cid in ids:
    support.unary(ch)(b"x", metadata=[("x-call-id", cid), ("x-record-peer", "1")],
                      timeout=support.GUARD_SECONDS)
    time.sleep(0.1)
  assert len(list(stream)) == 8
  assert stream.code() == grpc.StatusCode.OK
  peers = support.wait_until(lambda: (lambda p: p if len(p) == 12 else None)(peers_of(b, ids)),
                             10)
  assert peers and len(set(peers.values())) >= 2
