"""Budgets at the edge, client side (docs/config.md, "Budgets at the edge"): a cancel storm
must not stall the worker, and every flood a client can make the relay work for (resets the
relay has to send, CONTINUATION frames, SETTINGS and PING frames, empty DATA frames) ends in
one GOAWAY(ENHANCE_YOUR_CALM) with a debug string, then the close, a count in
grelay_peer_errors_total{peer="client"} and one rate-limited warn line.

Each test runs a relay of its own, so counters are exact, and ends by checking that the relay
still serves a legitimate grpcio client. Backends and legitimate clients: see edge_support.py.
"""

import select
import struct
import time

import pytest

import support
from edge_support import (ECHO_ROUTE, LegitLoop, assert_goaway_then_close, assert_metric,
                          assert_relay_serves, check_legit, fd_count, peer_errors, start_relay,
                          warn_lines)
from h2_backends import ScriptBackend
from h2_client import (CANCEL, CONTINUATION, DATA, ENHANCE_YOUR_CALM, FLOW_CONTROL_ERROR, HEADERS,
                       MAX_WINDOW, PING, PROTOCOL_ERROR, RST_STREAM, SETTINGS, WINDOW_UPDATE,
                       H2Client, frame, grpc_frame)

pytestmark = pytest.mark.relay_only

SCRIPT_ROUTE = {"service": "test.Script", "cluster": "script"}
# The relay's budgets (docs/config.md, "Budgets at the edge").
# Client resets and resets the client made the relay send: one budget each, alike.
RESET_BURST, RESET_RATE = 1000, 33
CONTROL_BURST, CONTROL_RATE = 1000, 100
EMPTY_FRAMES_ALLOWED = 100


@pytest.fixture
def script():
  backend = ScriptBackend()
  yield backend
  backend.close()


def _relay(relay_factory, echo_backend, script=None, listener=None, **cluster_keys):
  clusters = {"echo": [echo_backend.address]}
  routes = [ECHO_ROUTE]
  if script is not None:
    clusters["script"] = dict({"endpoints": [script.address]}, **cluster_keys)
    routes.insert(0, SCRIPT_ROUTE)
  return start_relay(relay_factory, routes, clusters, listener)


def _script_echo(relay, message=b"warm"):
  """An Echo call through the script cluster, so its backend connection is up."""
  conn = H2Client(relay.address)
  st = conn.wait_stream(conn.start("/test.Script/Echo", body=grpc_frame(message)), 10)
  conn.close()
  assert st.grpc_status() == 0, st.describe()


# --- 1. cancel storm ------------------------------------------------------------------------

STORM_CONNECTIONS, STORM_STREAMS = 30, 990
# After the storm the relay's resident memory comes back within this of what it was before.
# The allocator keeps some of the heap the 29700 calls used (15 MiB measured on the code
# before issue 13); a leak of 1 KiB per cancelled call (29 MiB) is over it.
STORM_RSS_SLACK_KIB = 24 * 1024
# Open descriptors come back to the baseline, give or take the backend connections the
# script cluster may have dialled while up to 29700 calls were routed to it within a turn
# (max_connections_per_endpoint, 8, of which one was already open).
STORM_FD_SLACK = 7


def test_cancel_storm_is_o1_and_never_reaches_the_backend(relay_factory, echo_backend, script):
  relay, _ = _relay(relay_factory, echo_backend, script)
  _script_echo(relay)
  legit = LegitLoop(relay.address)
  try:
    time.sleep(0.3)
    rss_before, fds_before = relay.rss_kib(), fd_count(relay)
    conns = [H2Client(relay.address, sndbuf=4 << 20) for _ in range(STORM_CONNECTIONS)]
    for conn in conns:
      conn.handshake()
    run = support.call_id()[:8]
    rst = lambda sid: frame(RST_STREAM, 0, sid, struct.pack(">I", CANCEL))
    bursts = []
    for k, conn in enumerate(conns):
      parts = []
      for i in range(STORM_STREAMS):
        sid = 1 + 2 * i
        fields = conn.request_fields("/test.Script/Hang",
                                     [("x-call-id", "%s-%02d-%03d-%s" % (run, k, i, "s" * 84))])
        parts.append(conn.header_frames(sid, fields) + rst(sid))
      bursts.append(b"".join(parts))
    total = sum(map(len, bursts))
    # Each connection's HEADERS+RST_STREAM pairs in one write, the connections back to back.
    start = time.monotonic()
    for conn, burst in zip(conns, bursts):
      conn.sock.sendall(burst)
    sent = time.monotonic()
    end = sent + 2.0
    while time.monotonic() < end:
      for conn in conns:
        conn.pump(0)
      time.sleep(0.005)
    kept = [c for c in conns if not c.closed and not c.goaways]
    goaways = [c.goaways for c in conns if c.goaways]
    for conn in conns:
      conn.close()
    attack_end = time.monotonic()
    time.sleep(1.0)
  finally:
    results = legit.stop()
  seen = [r for r in script.streams("Hang") if (r.header("x-call-id") or "").startswith(run)]
  print("cancel storm: %d bytes written in %.3f s; legitimate calls: %d, slowest %.3f s; the "
        "backend saw %d streams so far" % (total, sent - start, len(results),
                                          max(r[1] for r in results), len(seen)))
  check_legit(results, window=(start, attack_end), max_latency=1.0)
  # 990 client resets each: under the relay's client reset budget (1000 at once, then 33 per
  # second), so no connection is closed.
  assert len(kept) == STORM_CONNECTIONS, "connections under the reset budget got GOAWAY %r" % (
      goaways[:3],)
  # A call cancelled in the loop turn it was routed in never reaches the backend. Each
  # connection's ~94 KB burst arrives as two loopback segments and the relay takes at most
  # 64 KiB of it per turn, so one turn boundary falls inside it: only the one pair straddling
  # that boundary can have its HEADERS routed a turn before its RST_STREAM.
  time.sleep(0.5)
  seen = [r for r in script.streams("Hang") if (r.header("x-call-id") or "").startswith(run)]
  per_connection = {}
  for r in seen:
    k = r.header("x-call-id").split("-")[1]
    per_connection[k] = per_connection.get(k, 0) + 1
  assert all(n <= 1 for n in per_connection.values()), (
      "the backend saw %d streams cancelled in the turn they were routed (per connection: %r)"
      % (len(seen), sorted(per_connection.values(), reverse=True)[:10]))
  assert support.wait_until(lambda: all(r.reset_code is not None for r in seen), 5), \
      "backend streams of cancelled calls left open"
  assert {r.reset_code for r in seen} <= {CANCEL}
  # Memory and descriptors come back.
  assert support.wait_until(lambda: fd_count(relay) <= fds_before + STORM_FD_SLACK, 5), (
      "the relay holds %d descriptors, %d before the storm" % (fd_count(relay), fds_before))
  assert support.wait_until(
      lambda: relay.rss_kib() <= rss_before + STORM_RSS_SLACK_KIB, 5), (
          "relay VmRSS %d KiB after the storm, %d KiB before" % (relay.rss_kib(), rss_before))
  assert_relay_serves(relay)


# --- 2. MadeYouReset ------------------------------------------------------------------------


def _window_overflow(conn, sid):
  return (conn.header_frames(sid, conn.request_fields("/test.Script/Hang")) +
          frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", MAX_WINDOW)))


def _trailers_without_end_stream(conn, sid):
  return (conn.header_frames(sid, conn.request_fields("/test.Script/Hang")) +
          conn.header_frames(sid, [("x-trailer", "t")]))


def _data_beyond_content_length(conn, sid):
  fields = conn.request_fields("/test.Script/Hang", [("content-length", "1")])
  return conn.header_frames(sid, fields) + frame(DATA, 0, sid, b"xx")


MADE_RESET_TRIGGERS = [
    ("window_overflow", _window_overflow, FLOW_CONTROL_ERROR),
    ("trailers_without_end_stream", _trailers_without_end_stream, PROTOCOL_ERROR),
    ("data_beyond_content_length", _data_beyond_content_length, PROTOCOL_ERROR),
]


@pytest.mark.parametrize("name,trigger,code", MADE_RESET_TRIGGERS,
                         ids=[t[0] for t in MADE_RESET_TRIGGERS])
def test_made_you_reset_flood_gets_goaway(relay_factory, echo_backend, script, name, trigger,
                                          code):
  relay, admin = _relay(relay_factory, echo_backend, script)
  _script_echo(relay)
  seen_before = len(script.streams("Hang"))
  legit = LegitLoop(relay.address)
  try:
    conn = H2Client(relay.address)
    conn.handshake()
    start = time.monotonic()
    sid = 1
    for _ in range(15):  # 1500 fresh streams, 100 to a write
      batch = []
      for _ in range(100):
        batch.append(trigger(conn, sid))
        sid += 2
      conn.send(b"".join(batch))
      conn.wait(lambda: len(conn.reset_codes()) >= (sid - 1) // 2 or conn.goaways or conn.closed,
                3)
      if conn.goaways or conn.closed:
        break
    elapsed = time.monotonic() - start
  finally:
    results = legit.stop()
  resets = conn.reset_codes()
  print("%s: %d streams sent, %d reset, GOAWAY %r, in %.2f s" % (name, (sid - 1) // 2,
                                                                 len(resets), conn.goaways,
                                                                 elapsed))
  assert_goaway_then_close(conn, ENHANCE_YOUR_CALM, b"too many streams reset by the relay")
  assert set(resets) == {code}, "streams reset with %r" % sorted(set(resets))
  # The budget: 1000 resets, plus 33 a second; the GOAWAY's last-stream-id may also count the
  # rest of the write (100 streams) the budget ran out in.
  budget = RESET_BURST + RESET_RATE * (elapsed + 1) + 100
  processed = (conn.goaways[0][0] + 1) // 2
  assert RESET_BURST <= processed <= budget, (
      "GOAWAY after %d streams (last-stream-id %d); the budget is %d" % (
          processed, conn.goaways[0][0], budget))
  assert len(resets) <= processed
  seen = len(script.streams("Hang")) - seen_before
  assert seen <= budget, "the backend saw %d streams of the flood" % seen
  assert_metric(admin, 1, "grelay_peer_errors_total", peer="client", reason="made_reset_flood")
  check_legit(results)
  assert_relay_serves(relay)



def test_client_reset_flood_gets_goaway(relay_factory, echo_backend, script):
  # The classic rapid reset on one connection, past the client reset budget (1000 at once,
  # then 33 a second): GOAWAY(ENHANCE_YOUR_CALM), counted and closed; the flood's streams go
  # no further than the budget allows, and other clients are served throughout.
  relay, admin = _relay(relay_factory, echo_backend, script)
  _script_echo(relay)
  seen_before = len(script.streams("Hang"))
  legit = LegitLoop(relay.address)
  try:
    conn = H2Client(relay.address, sndbuf=4 << 20)
    conn.handshake()
    start = time.monotonic()
    sid = 1
    for _ in range(15):  # up to 1500 streams, 100 to a write
      batch = []
      for _ in range(100):
        batch.append(conn.header_frames(sid, conn.request_fields("/test.Script/Hang")) +
                     frame(RST_STREAM, 0, sid, struct.pack(">I", CANCEL)))
        sid += 2
      conn.send(b"".join(batch))
      conn.wait(lambda: conn.goaways or conn.closed, 0.05)
      if conn.goaways or conn.closed:
        break
    conn.wait(lambda: conn.goaways or conn.closed, 3)
    elapsed = time.monotonic() - start
  finally:
    results = legit.stop()
  assert_goaway_then_close(conn, ENHANCE_YOUR_CALM, b"too many streams reset by the client")
  budget = RESET_BURST + RESET_RATE * (elapsed + 1) + 100
  processed = (conn.goaways[0][0] + 1) // 2
  assert RESET_BURST <= processed <= budget, (
      "GOAWAY after %d streams (last-stream-id %d); the budget is %d" % (
          processed, conn.goaways[0][0], budget))
  seen = len(script.streams("Hang")) - seen_before
  assert seen <= budget, "the backend saw %d streams of the flood" % seen
  assert_metric(admin, 1, "grelay_peer_errors_total", peer="client", reason="reset_flood")
  check_legit(results)
  assert_relay_serves(relay)

# --- 6. floods of frames the relay answers --------------------------------------------------


def _continuation_flood(relay, continuations=20):
  """HEADERS without END_HEADERS, then |continuations| CONTINUATION frames, none ending the
  block; returns the connection once the relay is done with it."""
  conn = H2Client(relay.address)
  conn.handshake()
  fields = conn.request_fields("/test.Echo/Unary", [("x-f%02d" % i, "v" * 20) for i in range(40)])
  block = conn.encoder.encode(fields)
  step = len(block) // (continuations + 2)
  frames = [frame(HEADERS, 0, 1, block[:step])]
  frames += [frame(CONTINUATION, 0, 1, block[step * (i + 1):step * (i + 2)])
             for i in range(continuations)]
  conn.send(b"".join(frames))
  conn.wait(lambda: conn.closed, 3)
  return conn


def test_continuation_flood_gets_goaway(relay_factory, echo_backend):
  relay, admin = _relay(relay_factory, echo_backend)
  warned = len(warn_lines(relay))
  conn = _continuation_flood(relay)
  assert_goaway_then_close(conn, ENHANCE_YOUR_CALM)
  assert_metric(admin, 1, "grelay_peer_errors_total", peer="client", reason="continuation_flood")
  assert support.wait_until(lambda: len(warn_lines(relay)) > warned, 3), \
      "no warn line for the flood:\n" + relay.log.tail(10)
  assert_relay_serves(relay)


@pytest.mark.parametrize("kind", ["settings", "ping"])
def test_control_frame_flood_from_a_reading_client_gets_goaway(relay_factory, echo_backend, kind):
  relay, admin = _relay(relay_factory, echo_backend)
  warned = len(warn_lines(relay))
  conn = H2Client(relay.address)
  conn.handshake()
  if kind == "settings":
    one, acks = frame(SETTINGS, 0, 0), lambda: conn.settings_acks
  else:
    one, acks = frame(PING, 0, 0, b"flooding"), lambda: conn.ping_acks
  conn.wait(lambda: acks() >= (1 if kind == "settings" else 0), 2)
  base = acks()
  sent = 0
  start = time.monotonic()
  # Bursts of 50, each sent once the previous one is acknowledged: the client reads, so the
  # relay's queue of acknowledgements never grows past 50.
  while sent < 6000 and not conn.goaways and not conn.closed:
    conn.send(one * 50)
    sent += 50
    conn.wait(lambda: acks() - base >= sent or conn.goaways or conn.closed, 3)
  elapsed = time.monotonic() - start
  answered = acks() - base
  print("%s flood: %d sent, %d acknowledged, GOAWAY %r in %.2f s" % (kind, sent, answered,
                                                                   conn.goaways, elapsed))
  assert_goaway_then_close(conn, ENHANCE_YOUR_CALM, b"too many control frames", last_stream=0)
  # The budget: 1000 frames, plus 100 a second (the relay sent no DATA here).
  assert CONTROL_BURST - 100 <= answered <= CONTROL_BURST + CONTROL_RATE * (elapsed + 1), (
      "%d %s frames acknowledged before the GOAWAY" % (answered, kind))
  assert_metric(admin, 1, "grelay_peer_errors_total", peer="client", reason="control_frame_flood")
  assert support.wait_until(lambda: len(warn_lines(relay)) > warned, 3), \
      "no warn line for the flood:\n" + relay.log.tail(10)
  assert_relay_serves(relay)


def test_ping_flood_from_a_client_that_does_not_read_gets_goaway(relay_factory, echo_backend):
  relay, admin = _relay(relay_factory, echo_backend)
  warned = len(warn_lines(relay))
  conn = H2Client(relay.address, rcvbuf=4096)
  conn.handshake()
  conn.sock.setblocking(False)
  burst = memoryview(frame(PING, 0, 0, b"flooding") * 1000)
  sent = 0
  stalled = False
  end = time.monotonic() + 5
  # PINGs without reading a byte, until the relay stops taking them (or hangs up).
  while sent < 200 * len(burst) and time.monotonic() < end:
    try:
      sent += conn.sock.send(burst[sent % len(burst):])
    except BlockingIOError:
      if not select.select([], [conn.sock], [], 1.0)[1]:
        stalled = True
        break
    except OSError:
      break
  print("unread PING flood: %d PINGs written, %s" % (sent // 17, "then the relay stopped reading"
                                                     if stalled else "until the end"))
  # Now read everything the relay wrote: the acknowledgements, then its GOAWAY.
  assert_goaway_then_close(conn, ENHANCE_YOUR_CALM, last_stream=0, timeout=10)
  assert_metric(admin, 1, "grelay_peer_errors_total", peer="client", reason="control_frame_flood")
  assert support.wait_until(lambda: len(warn_lines(relay)) > warned, 3), \
      "no warn line for the flood:\n" + relay.log.tail(10)
  assert_relay_serves(relay)


def test_flood_warnings_are_rate_limited(relay_factory, echo_backend):
  relay, admin = _relay(relay_factory, echo_backend)
  warned = len(warn_lines(relay))
  start = time.monotonic()
  for _ in range(20):
    assert_goaway_then_close(_continuation_flood(relay), ENHANCE_YOUR_CALM)
  elapsed = time.monotonic() - start
  assert_metric(admin, 20, "grelay_peer_errors_total", peer="client", reason="continuation_flood")
  # Nothing else makes this relay warn, so every new warn line is about a flood; a line that
  # follows suppressed ones ends with the log's " suppressed=N" (core/log.cc).
  lines = warn_lines(relay)[warned:]
  print("20 floods in %.2f s: %d warn lines" % (elapsed, len(lines)))
  # At most one line per reason per second (one worker), and the first one comes at once.
  assert 1 <= len(lines) <= int(elapsed) + 2, "%d warn lines for 20 floods in %.2f s:\n%s" % (
      len(lines), elapsed, "\n".join(lines))
  # A second later, one more flood: its line counts the floods whose lines were suppressed.
  time.sleep(1.1)
  _continuation_flood(relay)
  assert support.wait_until(lambda: len(warn_lines(relay)) > warned + len(lines), 3)
  lines = warn_lines(relay)[warned:]
  suppressed = sum(int(l.rsplit("suppressed=", 1)[1]) for l in lines if "suppressed=" in l)
  assert len(lines) + suppressed == 21, (
      "21 floods, %d warn lines counting %d suppressed ones:\n%s" % (len(lines), suppressed,
                                                                    "\n".join(lines)))
  assert_relay_serves(relay)


# --- 8. empty DATA frames -------------------------------------------------------------------


def test_empty_data_flood_gets_goaway(relay_factory, echo_backend, script):
  relay, admin = _relay(relay_factory, echo_backend, script)
  conn = H2Client(relay.address)
  conn.handshake()
  cid = support.call_id()
  sid = conn.start("/test.Script/Hang", headers=[("x-call-id", cid)], end_stream=False)
  record = script.wait_record(lambda r: r.header("x-call-id") == cid)
  assert record, "the call never reached the backend"
  empty = frame(DATA, 0, sid)
  # 100 in a row is allowed; a DATA frame with payload, or a HEADERS frame, starts the count
  # again.
  conn.send(empty * EMPTY_FRAMES_ALLOWED)
  conn.send(frame(DATA, 0, sid, b"\0"))
  conn.send(empty * EMPTY_FRAMES_ALLOWED)
  second = conn.start("/test.Script/Hang", end_stream=False)
  conn.send(frame(DATA, 0, second) * EMPTY_FRAMES_ALLOWED)
  conn.wait(lambda: conn.closed, 1.0)
  assert not conn.goaways and not conn.closed, (
      "closed after runs of %d empty DATA frames: GOAWAY %r" % (EMPTY_FRAMES_ALLOWED,
                                                               conn.goaways))
  # The 101st in a row.
  conn.send(frame(DATA, 0, second))
  assert_goaway_then_close(conn, ENHANCE_YOUR_CALM, b"too many empty frames", last_stream=second)
  assert_metric(admin, 1, "grelay_peer_errors_total", peer="client", reason="empty_frame_flood")
  assert support.wait_until(lambda: record.reset_code is not None, 5), \
      "the call's backend stream was not cancelled"
  assert record.reset_code == CANCEL
  assert_relay_serves(relay)


def test_a_few_empty_data_frames_between_real_ones_are_fine(relay_factory, echo_backend, script):
  relay, admin = _relay(relay_factory, echo_backend, script)
  conn = H2Client(relay.address)
  conn.handshake()
  message = bytes(range(200))
  body = grpc_frame(message)
  sid = conn.start("/test.Script/Echo", end_stream=False)
  for i in range(0, len(body), 20):
    conn.send(frame(DATA, 0, sid, body[i:i + 20]) + frame(DATA, 0, sid) * 3)
  conn.send(frame(DATA, 0x1, sid))  # an empty DATA frame with END_STREAM
  st = conn.wait_stream(sid, 10)
  assert st.grpc_status() == 0, st.describe()
  assert bytes(st.data) == body
  assert not conn.goaways and not conn.closed, "GOAWAY %r" % conn.goaways
  assert peer_errors(admin, "client", "empty_frame_flood") == 0
  conn.close()
  assert_relay_serves(relay)

