"""Limits at the edge (docs/config.md, "Budgets at the edge"): one client connection's share
of a cluster, the timeouts for the preface, request headers and idle connections (and a
watch stream that outlives them all), response metadata over max_response_metadata, and
backends that flood the relay with DATA frames.

Each test runs a relay of its own, so counters are exact, and ends by checking that the relay
still serves a legitimate grpcio client.
"""

import os
import re
import subprocess
import time

import grpc
import pytest

import support
from edge_support import (ECHO_ROUTE, EdgeBackend, FloodBackend, LegitLoop,
                          assert_goaway_then_close, assert_metric, assert_relay_serves,
                          check_legit, metric, metric_sum, start_relay)
from h2_backends import ScriptBackend
from h2_client import (CANCEL, ENHANCE_YOUR_CALM, HEADERS, NO_ERROR, PREFACE, H2Client,
                       assert_relay_made, frame, grpc_frame)

pytestmark = pytest.mark.relay_only

SCRIPT_ROUTE = {"service": "test.Script", "cluster": "script"}
RESOURCE_EXHAUSTED, UNAVAILABLE = 8, 14


def _clusters(echo_backend, **more):
  out = {"echo": [echo_backend.address]}
  out.update(more)
  return out


# --- 3. one client's share of a cluster -----------------------------------------------------

# The script backend announces SETTINGS_MAX_CONCURRENT_STREAMS 8 and the cluster may open two
# connections to it: a capacity of 16 streams.
SHARE_STREAMS, SHARE_CONNECTIONS = 8, 2


@pytest.mark.parametrize("share", [None, 0.5], ids=["default_0.25", "0.5"])
def test_one_client_connection_cannot_take_more_than_its_share(relay_factory, echo_backend,
                                                                share):
  backend = ScriptBackend(max_concurrent_streams=SHARE_STREAMS)
  try:
    cluster = {"endpoints": [backend.address],
               "max_connections_per_endpoint": SHARE_CONNECTIONS}
    if share is not None:
      cluster["max_client_share"] = share
    relay, admin = start_relay(relay_factory, [SCRIPT_ROUTE, ECHO_ROUTE],
                               _clusters(echo_backend, script=cluster))
    allowed = int(SHARE_STREAMS * SHARE_CONNECTIONS * (share or 0.25))
    # A first call, so the relay knows the backend's SETTINGS.
    legit = support.channel(relay.address)
    echo = support.unary(legit, "/test.Script/Echo")
    assert echo(b"warm", timeout=10) == b"warm"

    greedy = H2Client(relay.address)
    ids = [support.call_id() for _ in range(allowed + 6)]
    sids = [greedy.start("/test.Script/Hang", headers=[("x-call-id", cid)], end_stream=False)
            for cid in ids]
    held = lambda: {r.header("x-call-id") for r in backend.streams("Hang")}
    over = sids[allowed:]
    greedy.wait(lambda: all(greedy.stream(s).ended for s in over) and
                len(held() & set(ids)) >= allowed, 3)
    greedy.wait(lambda: False, 0.3)  # anything more that would come
    # Silent streams over the share are refused at once; the ones within it reach the backend.
    refused = [s for s in sids if greedy.stream(s).ended or greedy.stream(s).reset_code]
    assert refused == over, (
        "a share of %d streams: streams %r of %r were refused, expected %r; backend holds %d" %
        (allowed, refused, sids, over, len(held() & set(ids))))
    for s in over:
      assert_relay_made(greedy.stream(s), RESOURCE_EXHAUSTED)
    assert held() & set(ids) == set(ids[:allowed])

    # Another connection is unaffected: it gets its own share.
    other = H2Client(relay.address)
    other_ids = [support.call_id() for _ in range(4)]
    other_sids = [other.start("/test.Script/Hang", headers=[("x-call-id", cid)],
                              end_stream=False) for cid in other_ids]
    assert other.wait(lambda: set(other_ids) <= held(), 3), \
        "another connection's calls did not reach the backend"
    assert not any(other.stream(s).ended or other.stream(s).reset_code for s in other_sids)
    # And so is a legitimate client on the same cluster.
    for i in range(5):
      assert echo(b"legit %d" % i, timeout=5) == b"legit %d" % i
    legit.close()
    assert_metric(admin, len(over), "grelay_relay_errors_total", reason="client_share")
    greedy.close()
    other.close()
    assert_relay_serves(relay)
  finally:
    backend.close()


# --- 3. timeouts and their defaults ---------------------------------------------------------


@pytest.mark.parametrize("sends", ["nothing", "magic_only"])
def test_preface_timeout(relay_factory, echo_backend, sends):
  relay, admin = start_relay(relay_factory, [ECHO_ROUTE], _clusters(echo_backend),
                             listener={"preface_timeout": "1s"})
  conn = H2Client(relay.address, preface=False, silent=True)
  start = time.monotonic()
  if sends == "magic_only":
    conn.sock.sendall(PREFACE)
  assert_goaway_then_close(conn, NO_ERROR, b"preface timeout", last_stream=0, single=False,
                           timeout=5)
  took = conn.closed_at - start
  assert 0.9 <= took <= 3.0, "closed %.2f s after connecting; preface_timeout is 1 s" % took
  assert_metric(admin, 1, "grelay_peer_errors_total", peer="client", reason="preface_timeout")
  assert_relay_serves(relay)


def test_request_headers_timeout(relay_factory, echo_backend):
  relay, admin = start_relay(relay_factory, [ECHO_ROUTE], _clusters(echo_backend),
                             listener={"request_headers_timeout": "1s"})
  conn = H2Client(relay.address)
  conn.handshake()
  block = conn.encoder.encode(conn.request_fields("/test.Echo/Unary"))
  start = time.monotonic()
  conn.send(frame(HEADERS, 0, 1, block[:len(block) // 2]))  # no END_HEADERS, then nothing
  assert_goaway_then_close(conn, NO_ERROR, b"request headers timeout", single=False,
                           timeout=5)
  took = conn.closed_at - start
  assert 0.9 <= took <= 3.0, "closed %.2f s after the HEADERS; the timeout is 1 s" % took
  assert_metric(admin, 1, "grelay_peer_errors_total", peer="client", reason="headers_timeout")
  assert_relay_serves(relay)


def test_slow_but_complete_request_headers_are_served(relay_factory, echo_backend):
  relay, admin = start_relay(relay_factory, [ECHO_ROUTE], _clusters(echo_backend),
                             listener={"request_headers_timeout": "1s"})
  conn = H2Client(relay.address)
  conn.handshake()
  block = conn.encoder.encode(conn.request_fields("/test.Echo/Unary"))
  half = len(block) // 2
  conn.send(frame(HEADERS, 0, 1, block[:half]))
  conn.wait(lambda: False, 0.5)
  conn.send(frame(0x9, 0x4, 1, block[half:]))  # CONTINUATION with END_HEADERS
  conn.wait(lambda: False, 0.8)  # past the timeout, counted from the first HEADERS frame
  conn.queue(1, grpc_frame(b"slow headers"), True)
  st = conn.wait_stream(1, 10)
  assert st.grpc_status() == 0, st.describe()
  assert bytes(st.data) == grpc_frame(b"slow headers")
  assert not conn.goaways and not conn.closed, conn.goaways
  conn.close()
  assert_relay_serves(relay)


def test_idle_connection_gets_goaway_after_idle_timeout(relay_factory, echo_backend):
  relay, admin = start_relay(relay_factory, [ECHO_ROUTE], _clusters(echo_backend),
                             listener={"idle_timeout": "1s"})
  conn = H2Client(relay.address)
  start = time.monotonic()
  conn.handshake()
  assert conn.wait(lambda: conn.closed, 5), "the idle connection was not closed within 5 s"
  took = conn.closed_at - start
  # The two-step GOAWAY, both NO_ERROR, the last naming no stream.
  assert [(last, code) for last, code, _ in conn.goaways] == [(2**31 - 1, NO_ERROR),
                                                             (0, NO_ERROR)], conn.goaways
  assert 0.9 <= took <= 4.0, "closed %.2f s after connecting; idle_timeout is 1 s" % took
  assert_relay_serves(relay)


def test_watch_stream_outlives_every_connection_timeout(relay_factory, echo_backend):
  relay, admin = start_relay(relay_factory, [ECHO_ROUTE], _clusters(echo_backend),
                             listener={"preface_timeout": "1s", "request_headers_timeout": "1s",
                                       "idle_timeout": "1s"})
  ch = support.channel(relay.address)
  try:
    # Nothing for 1.3 s (not even response headers), a message, nothing for 1.5 s, a message.
    stream = support.server_stream(ch)(b"", timeout=20,
                                       metadata=[("x-sleep-ms", "1300"), ("x-count", "2"),
                                                 ("x-size", "5"), ("x-interval-ms", "1500")])
    replies = list(stream)
    assert len(replies) == 2
    assert stream.code() == grpc.StatusCode.OK
  finally:
    ch.close()
  assert_relay_serves(relay)


NEW_KEYS = """\
[[listener]]
address = "127.0.0.1:0"
preface_timeout = "10s"
request_headers_timeout = "10s"
idle_timeout = "off"
max_request_metadata = 65536
max_response_metadata = 1048576

[[route]]
service = "test.Echo"
cluster = "echo"

[[cluster]]
name = "echo"
endpoints = ["127.0.0.1:50051"]
max_client_share = 1
"""

BAD_VALUES = [
    ("preface_timeout", '"soon"'),
    ("request_headers_timeout", "10"),
    ("max_request_metadata", "1023"),
    ("max_response_metadata", "1048577"),
    ("max_client_share", "0"),
    ("max_client_share", "1.5"),
]


def _check(tmp_path, text):
  path = os.path.join(str(tmp_path), "check.toml")
  with open(path, "w") as f:
    f.write(text)
  p = subprocess.run([support.grelay_bin(), "--check", "-c", path], capture_output=True,
                     text=True, timeout=10)
  return p.returncode, p.stdout + p.stderr


def test_new_keys_are_checked_and_their_defaults_documented(tmp_path):
  code, out = _check(tmp_path, NEW_KEYS)
  assert code == 0, "grelay --check refuses the new keys: %s" % out
  for key, value in BAD_VALUES:
    text = re.sub(r"(?m)^%s = .*$" % key, "%s = %s" % (key, value), NEW_KEYS, count=1)
    code, out = _check(tmp_path, text)
    assert code == 2 and key in out, "%s = %s: exit %d, %r" % (key, value, code, out)
  with open(os.path.join(support.REPO, "docs", "config.md")) as f:
    doc = f.read()
  defaults = {"preface_timeout": '`"10s"`', "request_headers_timeout": '`"10s"`',
              "idle_timeout": '`"5m"`', "max_request_metadata": "`65536`",
              "max_response_metadata": "`65536`", "max_client_share": "`0.25`"}
  for key, default in defaults.items():
    rows = [line for line in doc.splitlines() if line.startswith("| `%s` |" % key)]
    assert rows, "docs/config.md has no row for %s" % key
    cells = [c.strip() for c in rows[0].split("|")]
    assert cells[3].startswith(default), "docs/config.md: %s defaults to %r, expected %s" % (
        key, cells[3], default)
  for name in ["grelay_peer_errors_total", "made_reset_flood", "empty_frame_flood",
               "control_frame_flood", "continuation_flood", "preface_timeout", "headers_timeout",
               "response_metadata_too_large", "client_share"]:
    assert name in doc, "docs/config.md does not mention %s" % name


# --- 4. response metadata over the limit ----------------------------------------------------


def _metadata_call(relay, method, size, timeout=5.0):
  """A unary call whose answer carries |size| bytes of metadata; fails if it hangs."""
  conn = H2Client(relay.address)
  cid = support.call_id()
  sid = conn.start("/test.Script/" + method, body=grpc_frame(b"x"),
                   headers=[("x-metadata-size", str(size)), ("x-call-id", cid)])
  st = conn.wait_stream(sid, timeout)
  conn.close()
  assert st.ended or st.reset_code is not None, (
      "%s with %d bytes of metadata: no answer within %.0f s (the call hangs): %s" % (
          method, size, timeout, st.describe()))
  return st, cid


def _assert_metadata_refused(st, method):
  if method == "HeavyHeaders":
    assert_relay_made(st, RESOURCE_EXHAUSTED)
  else:
    # The response headers went out before the trailers came: the relay's status is in
    # trailers of its own.
    assert st.reset_code is None, st.describe()
    assert st.header(":status") == "200" and st.trailers is not None, st.describe()
    assert st.grpc_status() == RESOURCE_EXHAUSTED, st.describe()
  fields = (st.headers or []) + (st.trailers or [])
  assert not [k for k, _ in fields if k.startswith("x-pad-")], "the backend's metadata leaked"


@pytest.mark.parametrize("method", ["HeavyHeaders", "HeavyTrailers"])
def test_response_metadata_over_64_kib_is_resource_exhausted(relay_factory, echo_backend,
                                                             method):
  backend = EdgeBackend()
  try:
    relay, admin = start_relay(relay_factory, [SCRIPT_ROUTE, ECHO_ROUTE],
                               _clusters(echo_backend, script=[backend.address]))
    st, cid = _metadata_call(relay, method, 100 * 1024)
    _assert_metadata_refused(st, method)
    record = backend.wait_record(lambda r: r.header("x-call-id") == cid)
    if method == "HeavyHeaders":
      assert support.wait_until(lambda: record.reset_code is not None, 5), \
          "the backend stream was not cancelled"
      assert record.reset_code == CANCEL
    assert_metric(admin, 1, "grelay_relay_errors_total", reason="response_metadata_too_large")
    assert metric_sum(admin, "grelay_calls_total", grpc_method=method,
                      grpc_code="RESOURCE_EXHAUSTED") == 1
    assert metric_sum(admin, "grelay_calls_total", grpc_method=method, grpc_code="OK") == 0
    assert_relay_serves(relay)
  finally:
    backend.close()


def test_max_response_metadata_is_configurable(relay_factory, echo_backend):
  backend = EdgeBackend()
  try:
    relay, admin = start_relay(relay_factory, [SCRIPT_ROUTE, ECHO_ROUTE],
                               _clusters(echo_backend, script=[backend.address]),
                               listener={"max_response_metadata": 4096})
    for method in ["HeavyHeaders", "HeavyTrailers"]:
      st, _ = _metadata_call(relay, method, 8 * 1024)
      _assert_metadata_refused(st, method)
    # Under the limit, metadata passes.
    st, _ = _metadata_call(relay, "HeavyTrailers", 2 * 1024)
    assert st.grpc_status() == 0, st.describe()
    assert [k for k, _ in st.trailers if k.startswith("x-pad-")], st.describe()
    assert_metric(admin, 2, "grelay_relay_errors_total", reason="response_metadata_too_large")
    assert_relay_serves(relay)
  finally:
    backend.close()


# --- 5. backends that flood the relay with DATA frames --------------------------------------

FLOOD_ROUTE = {"service": "flood.Svc", "cluster": "flood"}


def test_backend_empty_data_flood_gets_goaway(relay_factory, echo_backend):
  backend = FloodBackend("empty")
  try:
    relay, admin = start_relay(relay_factory, [FLOOD_ROUTE, ECHO_ROUTE],
                               _clusters(echo_backend, flood=[backend.address]))
    legit = LegitLoop(relay.address)
    try:
      conn = H2Client(relay.address)
      start = time.monotonic()
      st = conn.wait_stream(conn.start("/flood.Svc/Call", body=grpc_frame(b"x")), 5)
      ended = time.monotonic()
      conn.close()
      time.sleep(0.5)
    finally:
      results = legit.stop()
    print("empty DATA flood: %d frames written by the backend; call over after %.2f s" % (
        backend.frames_sent, ended - start))
    assert st.ended, "the call did not end within 5 s of endless empty DATA: %s" % st.describe()
    # Response headers went out; the relay ends the call itself (connection lost).
    assert st.reset_code is None and st.grpc_status() == UNAVAILABLE, st.describe()
    assert support.wait_until(lambda: backend.peer_closed == 1, 5), \
        "the relay did not close the flooding backend's connection"
    assert len(backend.goaways) == 1, "GOAWAYs to the backend: %r" % backend.goaways
    _, code, debug = backend.goaways[0]
    assert (code, debug) == (ENHANCE_YOUR_CALM, b"too many empty frames"), backend.goaways
    assert_metric(admin, 1, "grelay_peer_errors_total", peer="backend", reason="empty_frame_flood")
    check_legit(results, max_latency=1.0)
    assert_relay_serves(relay)
  finally:
    backend.close()


def test_backend_tiny_data_flood_does_not_starve_other_clusters(relay_factory, echo_backend):
  backend = FloodBackend("tiny", seconds=3.0)
  try:
    relay, admin = start_relay(relay_factory, [FLOOD_ROUTE, ECHO_ROUTE],
                               _clusters(echo_backend, flood=[backend.address]))
    legit = LegitLoop(relay.address)
    try:
      conn = H2Client(relay.address)
      start = time.monotonic()
      st = conn.wait_stream(conn.start("/flood.Svc/Call", body=grpc_frame(b"x")), 20)
      ended = time.monotonic()
      conn.close()
    finally:
      results = legit.stop()
    print("1-byte DATA flood: %d frames in %.2f s; %d legitimate calls, slowest %.3f s" % (
        backend.frames_sent, ended - start, len(results), max(r[1] for r in results)))
    check_legit(results, window=(start, ended), max_latency=1.0, min_calls=10)
    # DATA with a payload is no abuse: the call goes through whole.
    assert st.grpc_status() == 0, st.describe()
    assert len(st.data) == backend.bytes_sent
    assert backend.goaways == [] and backend.peer_closed == 0, backend.goaways
    assert metric(admin, "grelay_peer_errors_total", peer="backend",
                  reason="empty_frame_flood") == 0
    assert_relay_serves(relay)
  finally:
    backend.close()
