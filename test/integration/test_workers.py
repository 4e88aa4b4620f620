"""Worker threads: how connections spread over them (handoff round robin, SO_REUSEPORT),
workers = 0, and calls and reloads with several workers."""

import os
import re
import signal

import pytest

import support
from h2_client import H2Client
from support import GUARD_SECONDS

pytestmark = pytest.mark.relay_only

ACCEPTED_RE = re.compile(r"worker (\d+) accepted (\d+) connections")
STARTED_RE = re.compile(r"grelay started with (\d+) workers? \(accept: (\w+)\)")


def _relay(relay_factory, echo_backend, extra):
  return relay_factory(routes=[{"service": "test.Echo", "cluster": "echo"}],
                       clusters={"echo": [echo_backend.address]}, extra=extra)


def _open(address, n):
  conns = []
  for _ in range(n):
    c = H2Client(address)
    c.handshake()
    conns.append(c)
  return conns


def _accepted_per_worker(relay):
  relay.signal(signal.SIGTERM)
  assert relay.proc.wait(15) == 0
  lines = relay.log.wait_for(lambda ls: any("grelay stopped" in l for l in ls), 5)
  assert lines, relay.log.tail()
  counts = {}
  for line in relay.log.lines:
    m = ACCEPTED_RE.search(line)
    if m:
      counts[int(m.group(1))] = int(m.group(2))
  return [counts[w] for w in sorted(counts)]


def test_handoff_spreads_connections_evenly(relay_factory, echo_backend):
  relay = _relay(relay_factory, echo_backend, 'workers = 2\naccept = "handoff"')
  assert relay.log.wait_for(lambda ls: any("2 workers (accept: handoff)" in l for l in ls), 5)
  conns = _open(relay.address, 64)
  for c in conns:
    c.close()
  assert _accepted_per_worker(relay) == [32, 32]
  relay.stop()


def test_reuseport_spreads_connections_over_every_worker(relay_factory, echo_backend):
  relay = _relay(relay_factory, echo_backend, 'workers = 2\naccept = "reuseport"')
  assert relay.log.wait_for(lambda ls: any("2 workers (accept: reuseport)" in l for l in ls), 5)
  conns = _open(relay.address, 64)
  for c in conns:
    c.close()
  counts = _accepted_per_worker(relay)
  assert sum(counts) == 64
  # The kernel hashes each connection's addresses: both workers get some (all 64 on one
  # worker would happen once in 2^63 runs).
  assert len(counts) == 2 and min(counts) > 0
  relay.stop()


def test_workers_zero_runs_one_per_cpu(relay_factory, echo_backend):
  relay = _relay(relay_factory, echo_backend, "workers = 0")
  hits = relay.log.wait_for(lambda ls: [m for m in map(STARTED_RE.search, ls) if m], 5)
  assert hits
  assert int(hits[0].group(1)) == len(os.sched_getaffinity(0))
  ch = support.channel(relay.addr())
  assert support.unary(ch)(b"cpu", timeout=GUARD_SECONDS) == b"cpu"
  ch.close()


@pytest.mark.parametrize("accept", ["handoff", "reuseport"])
def test_calls_and_reload_on_every_worker(relay_factory, echo_backend, other_backend, accept):
  clusters = {"a": [echo_backend.address], "b": [other_backend.address]}
  relay = relay_factory(routes=[{"service": "test.Echo", "cluster": "a"}], clusters=clusters,
                        extra='workers = 2\naccept = "%s"' % accept)

  def backends(n):
    names = []
    for _ in range(n):
      # A channel each, so the connections land on both workers.
      ch = support.channel(relay.addr())
      _, call = support.unary(ch).with_call(b"w", timeout=GUARD_SECONDS)
      names.append(support.metadata_dict(call.trailing_metadata())["x-backend-name"])
      ch.close()
    return names

  assert set(backends(8)) == {"echo"}
  with open(relay.config_path, "w") as f:
    f.write(support.render_config([{"service": "test.Echo", "cluster": "b"}], clusters,
                                  extra='workers = 2\naccept = "%s"' % accept))
  relay.proc.send_signal(signal.SIGHUP)
  assert relay.log.wait_for(lambda ls: any("reloaded " in l for l in ls), 10)
  # Both workers took the new config (the reload is posted before any later connection).
  assert set(backends(8)) == {"other"}
  counts = _accepted_per_worker(relay)
  if accept == "handoff":
    assert counts == [8, 8]
  relay.stop()
