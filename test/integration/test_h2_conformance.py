"""RFC 9113 §5.1 on the client side: frames a client sends on streams that are half-closed
(remote) or closed, and HEADERS on a stream id it skipped.

Each test rebuilds one h2spec 2.6 case (named in its docstring) from raw frames, and asks for
what the RFC asks, which is stricter than h2spec: the right error code, a GOAWAY with the right
last-stream-id before the close, and nothing at all where the RFC says a frame is ignored.

The relay answers most requests at once (GET gets an HTTP 405, an unrouted POST a Trailers-Only
UNIMPLEMENTED), so the stream is often closed before the client's next frame arrives; a request
routed to /test.H2/Hang instead stays open (half-closed (remote)) at the relay. Each case runs
with its frames sent in one write ("together": the relay usually reads them in one go) and with
the follow-up frame sent only once the relay has answered or forwarded the request ("apart": the
stream is then closed, or held open by the backend, when the frame arrives).
"""

import struct
import time

import pytest

import support
from h2_client import (ACK, CANCEL, CONTINUATION, DATA, END_HEADERS, END_STREAM, HEADERS, NO_ERROR,
                       PING, PRIORITY, PROTOCOL_ERROR, RST_STREAM, STREAM_CLOSED, H2Client,
                       frame, rst_frame, window_update_frame)

pytestmark = pytest.mark.relay_only

WAIT = 5.0


@pytest.fixture(scope="module")
def relay(module_relay_factory, h2_backend):
  return module_relay_factory(routes=[{"service": "test.H2", "cluster": "h2"}],
                              clusters={"h2": [h2_backend.address]})


class Peer(H2Client):
  """A client that has finished the SETTINGS exchange, as h2spec's Handshake() does."""

  def __init__(self, address):
    super().__init__(address, timeout=WAIT)
    self.address = address
    self.pos = 0  # frames before this index were looked at by an expect_* call
    self.pings_sent = 0
    assert self.wait(lambda: self.got_settings and self.settings_acks, WAIT), (
        "no SETTINGS exchange: %s" % self.describe_frames())

  def fields(self, kind, cid):
    """Request fields: "get" as h2spec sends (GET /), "post" as h2spec's 6.1 case (POST /, no
    content-type), "unrouted" a gRPC call no route takes, "hang" a gRPC call the backend
    holds open."""
    if kind in ("get", "post"):
      return [(":method", kind.upper()), (":scheme", "http"), (":path", "/"),
              (":authority", self.address), ("x-call-id", cid)]
    path = "/test.H2/Hang" if kind == "hang" else "/test.Nowhere/Call"
    return [(":method", "POST"), (":scheme", "http"), (":path", path),
            (":authority", self.address), ("content-type", "application/grpc"),
            ("te", "trailers"), ("x-call-id", cid)]

  def headers(self, sid, fields, end_stream, end_headers=True):
    flags = (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0)
    return frame(HEADERS, flags, sid, self.encoder.encode(fields))

  def answered(self, sid, reset=False):
    """Reads until the relay ended |sid| (END_STREAM or RST_STREAM; with |reset|, RST_STREAM
    only); False on timeout."""
    deadline = time.monotonic() + WAIT
    i = 0
    while True:
      for t, flags, s, _ in self.frames[i:]:
        if s == sid and (t == RST_STREAM or
                         (not reset and t in (HEADERS, DATA) and flags & END_STREAM)):
          return True
      i = len(self.frames)
      if self.read_frame(deadline) is None:
        return False

  def ping_round_trip(self):
    """A PING the relay acknowledges: every frame sent before it has been processed."""
    self.pings_sent += 1
    payload = struct.pack(">Q", self.pings_sent)
    self.send(frame(PING, 0, 0, payload))
    deadline = time.monotonic() + WAIT
    while True:
      if any(t == PING and flags & ACK and p == payload for t, flags, _, p in self.frames):
        return True
      if self.read_frame(deadline) is None:
        return False

  def errors(self):
    """RST_STREAM frames other than NO_ERROR (stream id, code) and GOAWAYs (last id, code)."""
    resets = [(s, int.from_bytes(p[:4], "big")) for t, _, s, p in self.frames[self.pos:]
              if t == RST_STREAM and int.from_bytes(p[:4], "big") != NO_ERROR]
    return resets, self.goaway_codes()

  def expect_stream_error(self, sid, code):
    """RST_STREAM(|code|) on |sid|, and the connection stays usable."""
    deadline = time.monotonic() + WAIT
    while not any(t == RST_STREAM and s == sid and int.from_bytes(p[:4], "big") == code
                  for t, _, s, p in self.frames[self.pos:]):
      assert self.read_frame(deadline) is not None, (
          "no RST_STREAM(%d) on stream %d; got %s" % (code, sid, self.describe()))
    assert not self.goaways, self.describe()
    assert self.ping_round_trip(), "connection unusable after the stream error: %s" % (
        self.describe())

  def expect_connection_error(self, code, last_stream_id):
    """GOAWAY(|last_stream_id|, |code|), then the relay closes the connection."""
    assert self.read_until_closed(WAIT), "connection not closed: %s" % self.describe()
    assert self.goaway_codes() == [(last_stream_id, code)], self.describe()

  def expect_ignored(self, sid):
    """The relay neither reset |sid| with an error nor ended the connection, and a new request
    on the connection is answered."""
    assert self.ping_round_trip(), self.describe()
    self.pos = len(self.frames)
    new_sid = max(s for _, _, s, _ in self.frames) + 2
    new_sid = max(new_sid, sid + 2) | 1
    self.send(self.headers(new_sid, self.fields("get", "after"), end_stream=True))
    assert self.answered(new_sid), "no answer on a later stream: %s" % self.describe()
    resets, goaways = self.errors()
    assert not goaways and not [r for r in resets if r[0] == sid], self.describe()

  def describe(self):
    return self.describe_frames()


@pytest.fixture
def peer(relay):
  peers = []

  def make():
    p = Peer(relay.address)
    peers.append(p)
    return p

  yield make
  for p in peers:
    p.close()


def data(sid, end_stream=True, payload=b"test"):
  return frame(DATA, END_STREAM if end_stream else 0, sid, payload)


def rst(sid, code=CANCEL):
  return rst_frame(sid, code)


def _open(p, h2_backend, kind, end_stream, timing):
  """Sends the request on stream 1; with "apart" timing, waits until the relay answered it (or,
  for "hang", forwarded it to the backend). Returns the request's HEADERS frame when "together":
  the caller sends it with its next frames in one write."""
  cid = support.call_id()
  request = p.headers(1, p.fields(kind, cid), end_stream=end_stream)
  if timing == "together":
    return request
  p.send(request)
  if kind == "hang":
    assert h2_backend.wait_stream(lambda s: s.header("x-call-id") == cid), "not forwarded"
  else:
    assert p.answered(1), "no answer: %s" % p.describe()
  p.pos = len(p.frames)
  return b""


KINDS = ["get", "unrouted", "hang"]
TIMINGS = ["together", "apart"]


# --- half-closed (remote) --------------------------------------------------------------------


@pytest.mark.parametrize("timing", TIMINGS)
@pytest.mark.parametrize("kind", KINDS)
def test_5_1_5_data_after_end_stream(peer, h2_backend, kind, timing):
  """h2spec http2/5.1/5: half closed (remote): Sends a DATA frame. The stream is half-closed
  (remote), or closed after the relay's answer: STREAM_CLOSED, as a connection error (RFC 9113
  §5.4.1 lets an endpoint treat a stream error as one; §5.1 asks for one on a closed stream
  after END_STREAM)."""
  p = peer()
  p.send(_open(p, h2_backend, kind, True, timing) + data(1))
  p.expect_connection_error(STREAM_CLOSED, 1)


@pytest.mark.parametrize("timing", TIMINGS)
@pytest.mark.parametrize("kind", KINDS)
def test_5_1_6_headers_after_end_stream(peer, h2_backend, kind, timing):
  """h2spec http2/5.1/6: half closed (remote): Sends a HEADERS frame."""
  p = peer()
  p.send(_open(p, h2_backend, kind, True, timing) +
         p.headers(1, p.fields(kind, "again"), end_stream=True))
  p.expect_connection_error(STREAM_CLOSED, 1)


@pytest.mark.parametrize("timing", TIMINGS)
def test_5_1_7_continuation_after_end_stream(peer, h2_backend, timing):
  """h2spec http2/5.1/7: half closed (remote): Sends a CONTINUATION frame. No header block is
  open, so this is a PROTOCOL_ERROR whatever the stream's state."""
  p = peer()
  p.send(_open(p, h2_backend, "get", True, timing) +
         frame(CONTINUATION, END_HEADERS, 1, p.encoder.encode([("x-more", "1")])))
  p.expect_connection_error(PROTOCOL_ERROR, 1)


# --- closed after the client's RST_STREAM ------------------------------------------------------


@pytest.mark.parametrize("timing", TIMINGS)
@pytest.mark.parametrize("kind", KINDS)
def test_5_1_8_data_after_client_reset(peer, h2_backend, kind, timing):
  """h2spec http2/5.1/8: closed: Sends a DATA frame after sending RST_STREAM frame. A frame after
  the client's own RST_STREAM is a stream error STREAM_CLOSED, even when the relay had reset the
  stream first (its answer ended the stream while the client was still sending)."""
  p = peer()
  p.send(_open(p, h2_backend, kind, False, timing) + rst(1) + data(1))
  p.expect_stream_error(1, STREAM_CLOSED)


@pytest.mark.parametrize("timing", TIMINGS)
@pytest.mark.parametrize("kind", KINDS)
def test_5_1_9_headers_after_client_reset(peer, h2_backend, kind, timing):
  """h2spec http2/5.1/9: closed: Sends a HEADERS frame after sending RST_STREAM frame."""
  p = peer()
  p.send(_open(p, h2_backend, kind, False, timing) + rst(1) +
         p.headers(1, p.fields(kind, "again"), end_stream=True))
  p.expect_stream_error(1, STREAM_CLOSED)


@pytest.mark.parametrize("timing", TIMINGS)
def test_5_1_10_continuation_after_client_reset(peer, h2_backend, timing):
  """h2spec http2/5.1/10: closed: Sends a CONTINUATION frame after sending RST_STREAM frame."""
  p = peer()
  p.send(_open(p, h2_backend, "get", False, timing) + rst(1) +
         frame(CONTINUATION, END_HEADERS, 1, p.encoder.encode([("x-more", "1")])))
  p.expect_connection_error(PROTOCOL_ERROR, 1)


def test_only_the_first_frame_after_a_client_reset_is_answered(peer, h2_backend):
  """Each stream costs the client at most one RST_STREAM from the relay: after answering, the
  relay has reset the stream itself, and frames after that are ignored (RFC 9113 §5.1)."""
  p = peer()
  p.send(_open(p, h2_backend, "hang", False, "apart") + rst(1) + data(1, False) * 3 +
         p.headers(1, p.fields("hang", "again"), end_stream=True))
  p.expect_stream_error(1, STREAM_CLOSED)
  p.expect_ignored(1)
  p.pos = 0
  resets, _ = p.errors()
  assert resets == [(1, STREAM_CLOSED)], p.describe()


# --- closed after END_STREAM both ways ------------------------------------------------------


@pytest.mark.parametrize("kind", ["get", "unrouted"])
def test_5_1_11_data_on_closed_stream(peer, h2_backend, kind):
  """h2spec http2/5.1/11: closed: Sends a DATA frame (after the response ended the stream)."""
  p = peer()
  _open(p, h2_backend, kind, True, "apart")
  p.send(data(1))
  p.expect_connection_error(STREAM_CLOSED, 1)


@pytest.mark.parametrize("kind", ["get", "unrouted"])
def test_5_1_12_headers_on_closed_stream(peer, h2_backend, kind):
  """h2spec http2/5.1/12: closed: Sends a HEADERS frame."""
  p = peer()
  _open(p, h2_backend, kind, True, "apart")
  p.send(p.headers(1, p.fields(kind, "again"), end_stream=True))
  p.expect_connection_error(STREAM_CLOSED, 1)


def test_5_1_13_continuation_on_closed_stream(peer, h2_backend):
  """h2spec http2/5.1/13: closed: Sends a CONTINUATION frame."""
  p = peer()
  _open(p, h2_backend, "get", True, "apart")
  p.send(frame(CONTINUATION, END_HEADERS, 1, p.encoder.encode([("x-more", "1")])))
  p.expect_connection_error(PROTOCOL_ERROR, 1)


@pytest.mark.parametrize("what", ["window_update", "priority", "rst_stream"])
def test_frames_allowed_on_a_closed_stream_are_ignored(peer, h2_backend, what):
  """RFC 9113 §5.1: WINDOW_UPDATE and RST_STREAM may follow the relay's END_STREAM for a short
  while, and PRIORITY may come on any closed stream; none of them is an error."""
  p = peer()
  _open(p, h2_backend, "get", True, "apart")
  sent = {"window_update": window_update_frame(1, 100),
          "priority": frame(PRIORITY, 0, 1, struct.pack(">IB", 0, 15)),
          "rst_stream": rst(1)}[what]
  p.send(sent)
  p.expect_ignored(1)


# --- closed by the relay's RST_STREAM -----------------------------------------------------


@pytest.mark.parametrize("what", ["data", "headers", "window_update"])
def test_frames_after_the_relays_reset_are_ignored(peer, h2_backend, what):
  """RFC 9113 §5.1: "An endpoint MUST ignore frames that it receives on closed streams after it
  has sent a RST_STREAM frame": the client may have sent them before it saw the reset. An
  unrouted call still sending its body gets Trailers-Only UNIMPLEMENTED and RST_STREAM
  (NO_ERROR); its DATA in flight must not cost it the connection."""
  p = peer()
  _open(p, h2_backend, "unrouted", False, "apart")
  assert p.answered(1, reset=True), p.describe()
  sent = {"data": data(1, False) * 3 + data(1, True),
          "headers": p.headers(1, [("grpc-trailer", "x")], end_stream=True),
          "window_update": window_update_frame(1, 100)}[what]
  p.send(sent)
  p.expect_ignored(1)


# --- DATA on a stream that is not open ----------------------------------------------------


@pytest.mark.parametrize("timing", TIMINGS)
def test_6_1_2_data_on_a_stream_not_open(peer, h2_backend, timing):
  """h2spec http2/6.1/2: Sends a DATA frame on the stream that is not in "open" or "half-closed
  (local)" state (POST / with END_STREAM, then DATA)."""
  p = peer()
  p.send(_open(p, h2_backend, "post", True, timing) + data(1))
  p.expect_connection_error(STREAM_CLOSED, 1)


# --- stream identifiers -----------------------------------------------------------------------


@pytest.mark.parametrize("timing", TIMINGS)
def test_5_1_1_2_headers_on_a_smaller_stream_id(peer, h2_backend, timing):
  """h2spec http2/5.1.1/2: Sends stream identifier that is numerically smaller than previous.
  Stream 3 was never opened: opening 5 closed it (RFC 9113 §5.1.1), and a HEADERS on it is a
  connection error PROTOCOL_ERROR; the GOAWAY names 5, the last stream the relay took."""
  p = peer()
  first = p.headers(5, p.fields("get", "five"), end_stream=True)
  if timing == "apart":
    p.send(first)
    assert p.answered(5), p.describe()
    first = b""
  p.send(first + p.headers(3, p.fields("get", "three"), end_stream=True))
  p.expect_connection_error(PROTOCOL_ERROR, 5)


def test_data_on_a_skipped_stream_id(peer):
  """DATA on a stream id the client skipped: that stream is closed without ever having been
  open (RFC 9113 §5.1.1), so nothing may arrive on it."""
  p = peer()
  p.send(p.headers(5, p.fields("get", "five"), end_stream=True))
  assert p.answered(5), p.describe()
  p.send(data(3))
  p.expect_connection_error(STREAM_CLOSED, 5)


def test_headers_on_an_old_closed_stream_after_many_calls(peer):
  """A stream closed long before (further back than the 32 closed streams the relay
  remembers, h2/closed_streams.h) is not mistaken for one never opened: a late HEADERS on it
  is no PROTOCOL_ERROR. The relay has forgotten how it ended, so nghttp2 ignores the frame."""
  p = peer()
  for sid in range(1, 400, 2):
    p.send(p.headers(sid, p.fields("get", "many"), end_stream=True))
    assert p.answered(sid), p.describe()
  p.pos = len(p.frames)
  p.send(p.headers(1, p.fields("get", "late"), end_stream=False))
  p.expect_ignored(1)


def test_normal_calls_on_one_connection_keep_working(peer, h2_backend):
  """Interleaved calls, one held open: no frame of a legitimate client is taken for one on a
  closed stream."""
  p = peer()
  hang = p.headers(1, p.fields("hang", support.call_id()), end_stream=False)
  p.send(hang)
  for sid in range(3, 61, 2):
    p.send(p.headers(sid, p.fields("unrouted", "x"), end_stream=False) + data(1, False) +
           data(sid, True, b"\0\0\0\0\0"))
  for sid in range(3, 61, 2):
    assert p.answered(sid), p.describe()
  p.send(data(1, True))
  assert p.ping_round_trip(), p.describe()
  resets, goaways = p.errors()
  assert not goaways and not resets, p.describe()
