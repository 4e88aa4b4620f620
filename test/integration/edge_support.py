"""Helpers for the edge-budget tests: the check that a connection got one GOAWAY and was closed
(on h2_client.H2Client, which records every GOAWAY with its debug data), backends that
misbehave on purpose, a legitimate grpcio client running in a process of its own, and
/metrics, log and /proc readings of the relay.

The contract these helpers serve is docs/config.md, "Budgets at the edge": every
connection the relay closes for abuse or a timeout gets one GOAWAY (a code, the last stream it
processed, an ASCII debug string) and is then closed; each close counts in
grelay_peer_errors_total{peer, reason} and logs one rate-limited warn line.
"""

import os
import select
import socket
import struct
import subprocess
import tempfile
import threading
import time

import hpack

import admin_support
import support
from h2_backends import ScriptBackend
from h2_client import (ACK, DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS, PING, PREFACE,
                       RST_STREAM, SETTINGS, SETTINGS_INITIAL_WINDOW_SIZE,
                       SETTINGS_MAX_CONCURRENT_STREAMS, WINDOW_UPDATE, code_name, frame,
                       grpc_frame, take_frames)

HERE = os.path.dirname(os.path.abspath(__file__))
ADMIN = '[admin]\naddress = "127.0.0.1:0"'
ECHO_ROUTE = {"service": "test.Echo", "cluster": "echo"}


def assert_goaway_then_close(conn, code, debug=None, last_stream=None, single=True, timeout=3.0):
  """|conn| got a GOAWAY with |code| and an ASCII debug string (|debug| exactly when given, else
  any non-empty one), and the relay closed the connection after it. |conn| is closed in the
  end, whatever the outcome (a relay that keeps it open would wait for it when it stops)."""
  try:
    _check_goaway_then_close(conn, code, debug, last_stream, single, timeout)
  finally:
    conn.close()


def _check_goaway_then_close(conn, code, debug, last_stream, single, timeout):
  closed = conn.wait(lambda: conn.closed, timeout)
  if not conn.goaways:
    raise AssertionError("no GOAWAY: %s" % (
        "the relay closed the connection bare" if closed else
        "the connection is still open %.0f s later" % timeout))
  if single:
    assert len(conn.goaways) == 1, "expected one GOAWAY, got %r" % conn.goaways
  last, got, text = conn.goaways[-1]
  assert got == code, "GOAWAY %s (debug %r), expected %s" % (code_name(got), text, code_name(code))
  assert text, "GOAWAY %s without debug data" % code_name(got)
  assert all(32 <= b < 127 for b in text), "GOAWAY debug data is not printable ASCII: %r" % text
  if debug is not None:
    assert text == debug, "GOAWAY debug %r, expected %r" % (text, debug)
  if last_stream is not None:
    assert last == last_stream, "GOAWAY last-stream-id %d, expected %d" % (last, last_stream)
  assert closed, "GOAWAY %s sent, but the connection is still open %.0f s later" % (
      code_name(got), timeout)


# --- the relay: admin, metrics, log, /proc ------------------------------------------------


def start_relay(relay_factory, routes, clusters, listener=None):
  """A relay with an admin endpoint; returns (relay, admin address)."""
  spec = {"address": "127.0.0.1:0"}
  spec.update(listener or {})
  relay = relay_factory(routes=routes, clusters=clusters, listeners=(spec,), extra=ADMIN)
  hits = relay.log.wait_for(lambda ls: [m for m in map(admin_support.ADMIN_RE.search, ls) if m],
                            10)
  assert hits, "grelay did not log its admin address:\n" + relay.log.tail()
  return relay, (hits[0].group(1), int(hits[0].group(2)))


def metric(admin, name, **labels):
  """One sample of a scrape; 0 when the relay shows none."""
  return admin_support.Scrape(admin).value(name, **labels) or 0


def metric_sum(admin, name, **labels):
  """The sum of every sample of |name| whose labels include |labels|."""
  total = 0
  for (n, have), value in admin_support.Scrape(admin).samples.items():
    if n == name and set(labels.items()) <= set(have):
      total += value
  return total


def assert_metric(admin, expected, name, **labels):
  """Waits (counters are summed from the workers) until the sample is |expected|, and checks
  it stays there."""
  support.wait_until(lambda: metric(admin, name, **labels) >= expected, 3)
  time.sleep(0.1)
  got = metric(admin, name, **labels)
  assert got == expected, "%s%r is %s, expected %s" % (name, labels, got, expected)


def peer_errors(admin, peer, reason):
  return metric(admin, "grelay_peer_errors_total", peer=peer, reason=reason)


def warn_lines(relay):
  """The warn lines the relay logged so far (its whole log, from the copy on disk)."""
  with open(relay.log_path) as f:
    return [line for line in f.read().splitlines() if " level=warn " in line]


def fd_count(relay):
  return len(os.listdir("/proc/%d/fd" % relay.pid))


def legit_call(address, message=b"legit"):
  """A fresh grpcio channel gets an echo call answered."""
  ch = support.channel(address)
  try:
    assert support.unary(ch)(message, timeout=10) == message
  finally:
    ch.close()


def assert_relay_serves(relay):
  assert relay.alive(), "the relay died:\n" + relay.log.tail()
  legit_call(relay.address, b"after")


class LegitLoop:
  """legit_client.py in its own process: unary calls through the relay in a loop."""

  def __init__(self, address, method="/test.Echo/Unary"):
    self.stderr_ = tempfile.TemporaryFile()
    self.proc_ = subprocess.Popen([support.PYTHON, os.path.join(HERE, "legit_client.py"), address,
                                   method], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.stderr_)
    self.lines_ = []
    self.ready_ = threading.Event()
    self.thread_ = threading.Thread(target=self._read, daemon=True)
    self.thread_.start()
    if not self.ready_.wait(20):
      self.proc_.kill()
      self.stderr_.seek(0)
      raise AssertionError("the legitimate client never got its first call answered:\n%s" %
                           self.stderr_.read().decode(errors="replace")[-3000:])

  def _read(self):
    for raw in iter(self.proc_.stdout.readline, b""):
      line = raw.decode().strip()
      if line == "ready":
        self.ready_.set()
      elif line:
        code, latency, start = line.split()
        self.lines_.append((code, float(latency), float(start)))

  def stop(self):
    """Stops the loop (the call in flight finishes first); returns [(code, latency, start)]."""
    try:
      self.proc_.stdin.close()
    except OSError:
      pass
    try:
      self.proc_.wait(15)
    except subprocess.TimeoutExpired:
      self.proc_.kill()
      self.proc_.wait()
    self.thread_.join(5)
    return list(self.lines_)

  def calls(self):
    return list(self.lines_)


def check_legit(results, window=None, max_latency=None, min_calls=3):
  """Every call succeeded (and none took over |max_latency| s); with |window| (start, end), at
  least |min_calls| of them started within it, so the client did run while the attack did."""
  assert results, "the legitimate client made no call"
  failed = [r for r in results if r[0] != "OK"]
  assert not failed, "%d of %d legitimate calls failed, first: %r" % (len(failed), len(results),
                                                                      failed[:5])
  if max_latency is not None:
    slow = sorted((r for r in results if r[1] > max_latency), key=lambda r: -r[1])
    assert not slow, "%d of %d legitimate calls took over %.1f s; slowest %.2f s" % (
        len(slow), len(results), max_latency, slow[0][1])
  if window is not None:
    during = [r for r in results if window[0] <= r[2] <= window[1]]
    assert len(during) >= min_calls, (
        "only %d legitimate calls started during the attack (%.2f s): the client was stalled" %
        (len(during), window[1] - window[0]))


# --- backends -----------------------------------------------------------------------------


def padding(size):
  """Fields whose RFC 7541 size (name + value + 32 each) adds up to about |size| bytes."""
  fields = []
  i = 0
  while size >= 1000:
    fields.append(("x-pad-%04d" % i, "p" * (1000 - 10 - 32)))
    size -= 1000
    i += 1
  if size > 42:
    fields.append(("x-pad-%04d" % i, "p" * (size - 42)))
  return fields


class EdgeBackend(ScriptBackend):
  """ScriptBackend with answers whose metadata is as large as the request's x-metadata-size:

    HeavyHeaders   response headers of that size (no END_STREAM), then nothing: the relay has
                   to cancel the stream
    HeavyTrailers  normal headers, one message ("body"), then trailers of that size
  """

  def _on_request_end(self, conn, r):
    size = int(r.header("x-metadata-size") or 0)
    grpc_ok = [(":status", "200"), ("content-type", "application/grpc")]
    actions = conn.actions.setdefault(r.stream_id, [])
    if r.method == "HeavyHeaders":
      actions.append(("headers", grpc_ok + padding(size), False))
    elif r.method == "HeavyTrailers":
      actions += [("headers", grpc_ok, False), ("data", grpc_frame(b"body"), False),
                  ("headers", [("grpc-status", "0")] + padding(size), True)]
    else:
      super()._on_request_end(conn, r)


class FloodBackend:
  """An h2c backend written frame by frame. It answers every call with response headers and
  then a flood of DATA frames on that stream:

    "empty"  DATA frames without payload or END_STREAM, without end (until the relay hangs up,
             or 15 s)
    "tiny"   DATA frames of one byte (each five make an empty gRPC message), as fast as the
             relay's flow-control windows allow, for |seconds|; then trailers grpc-status 0

  It records what the relay did to it: GOAWAYs (last stream id, code, debug), RST_STREAMs, and
  whether the relay closed the connection.
  """

  def __init__(self, mode, seconds=3.0):
    self.mode = mode
    self.seconds = seconds
    self.sock_, self.address = support.loopback_listener(16)
    self.lock = threading.Lock()
    self.goaways = []
    self.resets = []
    self.connections = 0
    self.peer_closed = 0
    self.calls = 0
    self.frames_sent = 0
    self.bytes_sent = 0
    self.finished = threading.Event()
    self.closing_ = False
    self.socks_ = []
    threading.Thread(target=self._accept_loop, daemon=True).start()

  def close(self):
    self.closing_ = True
    for s in [self.sock_] + self.socks_:
      try:
        s.shutdown(socket.SHUT_RDWR)
      except OSError:
        pass
    self.sock_.close()

  def _accept_loop(self):
    while not self.closing_:
      try:
        sock, _ = self.sock_.accept()
      except OSError:
        return
      with self.lock:
        self.connections += 1
        self.socks_.append(sock)
      threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

  def _serve(self, sock):
    sock.setblocking(False)
    st = {"in": bytearray(), "preface": len(PREFACE), "conn_window": 65535, "initial": 65535,
          "windows": {}, "flood": None, "encoder": hpack.Encoder(), "eof": False}
    out = bytearray(frame(SETTINGS, 0, 0, struct.pack(">HI", SETTINGS_MAX_CONCURRENT_STREAMS,
                                                      100)))
    give_up = time.monotonic() + 30
    try:
      while not self.closing_ and not st["eof"] and time.monotonic() < give_up:
        busy = bool(out) or st["flood"] is not None
        readable, writable, _ = select.select([sock], [sock] if busy else [], [], 0.05)
        if readable and not self._receive(sock, st, out):
          break
        if st["flood"] is not None and len(out) < 65536:
          self._produce(st, out)
        if out and writable:
          try:
            del out[:sock.send(out)]
          except BlockingIOError:
            pass
          except OSError:
            # The relay hung up while we wrote: read what it said before.
            self._drain(sock, st, out)
            break
    finally:
      with self.lock:
        if st["eof"]:
          self.peer_closed += 1
      sock.close()

  def _drain(self, sock, st, out):
    end = time.monotonic() + 2
    while not st["eof"] and time.monotonic() < end:
      if select.select([sock], [], [], 0.1)[0] and not self._receive(sock, st, out):
        return

  def _receive(self, sock, st, out):
    """Reads and handles frames; False once the relay closed the connection."""
    try:
      data = sock.recv(1 << 20)
    except BlockingIOError:
      return True
    except OSError:
      data = b""
    if not data:
      st["eof"] = True
      return False
    buf = st["in"]
    buf += data
    if st["preface"]:
      n = min(st["preface"], len(buf))
      del buf[:n]
      st["preface"] -= n
    for ftype, flags, sid, payload in take_frames(buf):
      self._on_frame(st, out, ftype, flags, sid, payload)
    return True

  def _on_frame(self, st, out, ftype, flags, sid, payload):
    if ftype == SETTINGS and not flags & ACK:
      for i in range(0, len(payload), 6):
        key, value = struct.unpack(">HI", payload[i:i + 6])
        if key == SETTINGS_INITIAL_WINDOW_SIZE:
          for s in st["windows"]:
            st["windows"][s] += value - st["initial"]
          st["initial"] = value
      out += frame(SETTINGS, ACK, 0)
    elif ftype == PING and not flags & ACK:
      out += frame(PING, ACK, 0, payload)
    elif ftype == WINDOW_UPDATE:
      increment = struct.unpack(">I", payload)[0] & 0x7fffffff
      if sid == 0:
        st["conn_window"] += increment
      else:
        st["windows"][sid] = st["windows"].get(sid, st["initial"]) + increment
    elif ftype == GOAWAY:
      last, code = struct.unpack(">II", payload[:8])
      with self.lock:
        self.goaways.append((last & 0x7fffffff, code, payload[8:]))
    elif ftype == RST_STREAM:
      with self.lock:
        self.resets.append((sid, struct.unpack(">I", payload)[0]))
      if st["flood"] and st["flood"][0] == sid:
        st["flood"] = None
    elif ftype == DATA:
      if payload:
        out += frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", len(payload)))
      if flags & END_STREAM:
        self._answer(st, out, sid)
    elif ftype == HEADERS and flags & END_STREAM:
      self._answer(st, out, sid)

  def _answer(self, st, out, sid):
    with self.lock:
      self.calls += 1
    block = st["encoder"].encode([(":status", "200"), ("content-type", "application/grpc")])
    out += frame(HEADERS, END_HEADERS, sid, block)
    st["windows"].setdefault(sid, st["initial"])
    st["flood"] = [sid, time.monotonic()]

  def _produce(self, st, out):
    sid, started = st["flood"]
    elapsed = time.monotonic() - started
    if self.mode == "empty":
      if elapsed > 15:
        st["flood"] = None
        return
      out += frame(DATA, 0, sid) * 1000
      with self.lock:
        self.frames_sent += 1000
      return
    if elapsed >= self.seconds:
      out += frame(HEADERS, END_STREAM | END_HEADERS, sid,
                   st["encoder"].encode([("grpc-status", "0")]))
      st["flood"] = None
      self.finished.set()
      return
    n = min(st["conn_window"], st["windows"][sid], 5000) // 5 * 5
    if n:
      out += frame(DATA, 0, sid, b"\0") * n
      st["conn_window"] -= n
      st["windows"][sid] -= n
      with self.lock:
        self.frames_sent += n
        self.bytes_sent += n

