"""Reload (SIGHUP and POST /reload): new calls follow the new routes and clusters, open calls
finish on what they started with, an invalid file changes nothing, listeners come and go,
clusters that did not change keep their backend connections."""

import http.client
import re
import signal
import socket
import threading

import grpc
import pytest

import support
from h2_backends import H2Backend
from h2_client import H2Client
from support import GUARD_SECONDS

pytestmark = pytest.mark.relay_only

ADMIN_RE = re.compile(r"admin endpoint at http://([\d.]+):(\d+)/")


def _write(relay, routes, clusters, listeners=("127.0.0.1:0",), extra=""):
  text = support.render_config(routes, clusters, listeners=listeners, extra=extra)
  with open(relay.config_path, "w") as f:
    f.write(text)
  return text


def _count(relay, needle):
  return sum(1 for line in list(relay.log.lines) if needle in line)


def _sighup(relay):
  """Reloads through SIGHUP; returns once the relay logged the outcome."""
  done = _count(relay, "reloaded ") + _count(relay, "reload failed")
  relay.proc.send_signal(signal.SIGHUP)
  assert relay.log.wait_for(
      lambda ls: sum(1 for l in ls if "reloaded " in l or "reload failed" in l) > done, 10), \
      relay.log.tail()


def _admin(relay):
  hits = relay.log.wait_for(lambda ls: [m for m in map(ADMIN_RE.search, ls) if m], 10)
  assert hits, relay.log.tail()
  return hits[0].group(1), int(hits[0].group(2))


def _post(admin, path):
  conn = http.client.HTTPConnection(admin[0], admin[1], timeout=10)
  try:
    conn.request("POST", path)
    response = conn.getresponse()
    return response.status, response.read().decode()
  finally:
    conn.close()


def _backend_of(ch, payload=b"who"):
  response, call = support.unary(ch).with_call(payload, timeout=GUARD_SECONDS)
  assert response == payload
  return support.metadata_dict(call.trailing_metadata())["x-backend-name"]


class Load:
  """Client threads making unary calls back to back until stopped; counts failures."""

  def __init__(self, address, threads=4):
    self.stop_ = threading.Event()
    self.lock_ = threading.Lock()
    self.ok = 0
    self.failures = []
    self.backends = []
    self.threads_ = [threading.Thread(target=self._run, args=(address,), daemon=True)
                     for _ in range(threads)]
    for t in self.threads_:
      t.start()

  def _run(self, address):
    ch = support.channel(address)
    method = support.unary(ch)
    try:
      while not self.stop_.is_set():
        try:
          _, call = method.with_call(b"load", timeout=GUARD_SECONDS)
          name = support.metadata_dict(call.trailing_metadata()).get("x-backend-name")
          with self.lock_:
            self.ok += 1
            self.backends.append(name)
        except grpc.RpcError as e:
          with self.lock_:
            self.failures.append("%s: %s" % (e.code(), e.details()))
    finally:
      ch.close()

  def wait_calls(self, n, timeout=20):
    start = self.ok
    return support.wait_until(lambda: self.ok >= start + n, timeout)

  def stop(self):
    self.stop_.set()
    for t in self.threads_:
      t.join(GUARD_SECONDS)


def test_reload_under_load_moves_new_calls_and_keeps_open_streams(
    relay_factory, echo_backend, other_backend):
  routes_a = [{"service": "test.Echo", "cluster": "a"}]
  routes_b = [{"service": "test.Echo", "cluster": "b"}]
  clusters = {"a": [echo_backend.address], "b": [other_backend.address]}
  relay = relay_factory(routes=routes_a, clusters=clusters)
  ch = support.channel(relay.addr())
  assert _backend_of(ch) == "echo"
  # A long stream opened before the reload: 40 messages, 100 ms apart.
  stream = support.server_stream(ch)(b"", timeout=GUARD_SECONDS,
                                     metadata=[("x-count", "40"), ("x-size", "100"),
                                               ("x-interval-ms", "100")])
  it = iter(stream)
  before = [next(it) for _ in range(3)]
  load = Load(relay.addr())
  try:
    assert load.wait_calls(50)
    _write(relay, routes_b, clusters)
    _sighup(relay)
    assert _count(relay, "reloaded ") == 1
    assert _backend_of(ch) == "other"
    assert load.wait_calls(50)
    # Back and forth a few more times, still under load.
    for routes in (routes_a, routes_b, routes_a, routes_b):
      _write(relay, routes, clusters)
      _sighup(relay)
      assert load.wait_calls(20)
  finally:
    load.stop()
  assert load.failures == [], load.failures[:5]
  assert load.ok > 0
  assert load.backends[-1] == "other"
  # The stream opened before the reloads kept flowing on its backend to its end.
  after = list(it)
  assert len(before) + len(after) == 40
  assert [m for m in before + after] == [support.pattern_message(i, 100) for i in range(40)]
  assert stream.code() == grpc.StatusCode.OK
  assert support.metadata_dict(stream.trailing_metadata())["x-backend-name"] == "echo"
  assert _backend_of(ch) == "other"
  ch.close()


def test_stream_outlives_the_removal_of_its_cluster(relay_factory, echo_backend, other_backend):
  relay = relay_factory(routes=[{"service": "test.Echo", "cluster": "a"}],
                        clusters={"a": [echo_backend.address]})
  ch = support.channel(relay.addr())
  stream = support.server_stream(ch)(b"", timeout=GUARD_SECONDS,
                                     metadata=[("x-count", "15"), ("x-size", "20"),
                                               ("x-interval-ms", "100")])
  it = iter(stream)
  first = next(it)
  # Cluster "a" is gone from the new config; the open stream still runs on it to its end.
  _write(relay, [{"service": "test.Echo", "cluster": "b"}], {"b": [other_backend.address]})
  _sighup(relay)
  assert _count(relay, "reloaded ") == 1
  assert _backend_of(ch) == "other"
  rest = list(it)
  assert [first] + rest == [support.pattern_message(i, 20) for i in range(15)]
  assert stream.code() == grpc.StatusCode.OK
  assert support.metadata_dict(stream.trailing_metadata())["x-backend-name"] == "echo"
  # Calls after the stream ended still work (the retired cluster was released cleanly).
  assert _backend_of(ch) == "other"
  ch.close()


def test_invalid_config_on_reload_keeps_serving(relay_factory, echo_backend, other_backend):
  clusters = {"a": [echo_backend.address], "b": [other_backend.address]}
  relay = relay_factory(routes=[{"service": "test.Echo", "cluster": "a"}], clusters=clusters,
                        extra='[admin]\naddress = "127.0.0.1:0"\n')
  admin = _admin(relay)
  ch = support.channel(relay.addr())
  assert _backend_of(ch) == "echo"
  text = _write(relay, [{"service": "test.Echo", "cluster": "nope"}], clusters)
  line = [i + 1 for i, l in enumerate(text.splitlines()) if l == 'cluster = "nope"'][0]
  _sighup(relay)
  where = "%s:%d:" % (relay.config_path, line)
  assert relay.log.wait_for(lambda ls: any("reload failed" in l and where in l for l in ls), 5), \
      relay.log.tail()
  assert relay.alive()
  assert _backend_of(ch) == "echo"
  # Through the admin endpoint: 400 with the same file:line.
  status, body = _post(admin, "/reload")
  assert status == 400
  assert body.startswith(where) and "unknown cluster 'nope'" in body
  # A TOML syntax error too.
  with open(relay.config_path, "a") as f:
    f.write("[[route]\n")
  status, body = _post(admin, "/reload")
  assert status == 400 and body.startswith(relay.config_path + ":")
  # New connections and calls still work on the old config.
  ch2 = support.channel(relay.addr())
  assert _backend_of(ch2) == "echo"
  # A valid file again: 200, and new calls follow it.
  _write(relay, [{"service": "test.Echo", "cluster": "b"}], clusters,
         extra='[admin]\naddress = "127.0.0.1:0"\n')
  assert _post(admin, "/reload") == (200, "reloaded\n")
  assert _backend_of(ch2) == "other"
  ch.close()
  ch2.close()


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


def test_reload_adds_and_removes_listeners(relay_factory, echo_backend):
  routes = [{"service": "test.Echo", "cluster": "a"}]
  clusters = {"a": [echo_backend.address]}
  relay = relay_factory(routes=routes, clusters=clusters)
  first = relay.address
  second = "127.0.0.1:%d" % support.free_port()
  _write(relay, routes, clusters, listeners=("127.0.0.1:0", second))
  _sighup(relay)
  assert relay.log.wait_for(lambda ls: any("listening on " + second in l for l in ls), 5)
  ch = support.channel(second)
  assert _backend_of(ch) == "echo"
  ch_first = support.channel(first)
  assert _backend_of(ch_first) == "echo"
  ch_first.close()
  raw = H2Client(first)
  try:
    raw.handshake()
    # Drop the first listener: it stops accepting, its connections get GOAWAY; the second
    # goes on.
    _write(relay, routes, clusters, listeners=(second,))
    _sighup(relay)
    assert support.wait_until(lambda: _refused(first), 5)
    assert raw.read_until_closed(10)
    assert raw.goaway_codes() == [(2**31 - 1, 0), (0, 0)]
  finally:
    raw.close()
  assert _backend_of(ch) == "echo"
  ch.close()


def test_unchanged_cluster_keeps_its_backend_connection(relay_factory):
  backend = H2Backend()
  try:
    clusters = {"h2": [backend.address]}
    relay = relay_factory(routes=[{"service": "t.S", "cluster": "h2"}], clusters=clusters)
    ch = support.channel(relay.addr())
    echo = support.unary(ch, "/t.S/Echo")
    assert echo(b"one", timeout=GUARD_SECONDS) == b"one"
    assert backend.connections_ == 1
    # Only the routes change: the cluster and its connection stay.
    _write(relay, [{"path": "/t.S/Other", "cluster": "h2"}, {"service": "t.S", "cluster": "h2"}],
           clusters)
    _sighup(relay)
    assert echo(b"two", timeout=GUARD_SECONDS) == b"two"
    assert backend.connections_ == 1
    # A changed cluster is built anew, with a new connection.
    _write(relay, [{"service": "t.S", "cluster": "h2"}],
           {"h2": {"endpoints": [backend.address], "connect_timeout": "3s"}})
    _sighup(relay)
    assert echo(b"three", timeout=GUARD_SECONDS) == b"three"
    assert backend.connections_ == 2
    # The retired cluster had no call left: its connection is closed, the new one stays.
    assert support.wait_until(lambda: len(backend.conns_) == 1, 5)
    ch.close()
  finally:
    backend.close()


def test_reload_with_a_taken_port_changes_nothing(relay_factory, echo_backend, other_backend):
  clusters = {"a": [echo_backend.address], "b": [other_backend.address]}
  admin_section = '[admin]\naddress = "127.0.0.1:0"\n'
  relay = relay_factory(routes=[{"service": "test.Echo", "cluster": "a"}], clusters=clusters,
                        extra=admin_section)
  admin = _admin(relay)
  ch = support.channel(relay.addr())
  with socket.socket() as taken:
    # Bound without SO_REUSEPORT, so the relay cannot share it.
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    text = _write(relay, [{"service": "test.Echo", "cluster": "b"}], clusters,
                  listeners=("127.0.0.1:0", "127.0.0.1:%d" % port), extra=admin_section)
    line = [i + 1 for i, l in enumerate(text.splitlines()) if l == "[[listener]]"][1]
    status, body = _post(admin, "/reload")
  assert status == 500
  assert body.startswith("%s:%d: cannot listen on 127.0.0.1:%d" % (relay.config_path, line, port))
  # The valid file was not applied: the old routes still serve.
  assert _backend_of(ch) == "echo"
  ch.close()
