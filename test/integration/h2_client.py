"""The integration tests' one raw HTTP/2 client, and the frame builders it and the tests use.

H2Client writes every frame by hand, so a test can send what a conforming library refuses to
(DATA on a reset stream, zero or overflowing WINDOW_UPDATEs, floods, header blocks with
uppercase names) as easily as a well-formed gRPC call. It keeps flow control only where told
to: DATA queued by start() or queue() waits for window, data() waits only for the
connection's, send() writes whatever bytes it is given.

What it receives it keeps three ways: every frame in |frames| (type, flags, stream id, payload)
for tests that watch connection-level frames (GOAWAY, PING, SETTINGS), each stream's answer in
a Stream record, and each GOAWAY in |goaways| as (last stream id, code, debug data). SETTINGS
are acknowledged, and PINGs unless told not to; DATA gets its window back at once, except on a
stream held with hold().

It speaks h2c (prior knowledge) over TCP; tests of TLS use grpcio or openssl instead.
"""

import select
import socket
import struct
import time
import urllib.parse
from dataclasses import dataclass, field

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types (RFC 9113 section 6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
# Flags.
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY_FLAG = 0x4, 0x8, 0x20
# Error codes (RFC 9113 section 7).
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, STREAM_CLOSED, \
    FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR, CONNECT_ERROR, \
    ENHANCE_YOUR_CALM = range(12)
CODE_NAMES = {0x0: "NO_ERROR", 0x1: "PROTOCOL_ERROR", 0x2: "INTERNAL_ERROR",
              0x3: "FLOW_CONTROL_ERROR", 0x5: "STREAM_CLOSED", 0x7: "REFUSED_STREAM",
              0x8: "CANCEL", 0xb: "ENHANCE_YOUR_CALM"}
FRAME_NAMES = {DATA: "DATA", HEADERS: "HEADERS", PRIORITY: "PRIORITY", RST_STREAM: "RST_STREAM",
               SETTINGS: "SETTINGS", PUSH_PROMISE: "PUSH_PROMISE", PING: "PING",
               GOAWAY: "GOAWAY", WINDOW_UPDATE: "WINDOW_UPDATE", CONTINUATION: "CONTINUATION"}
# Settings.
SETTINGS_HEADER_TABLE_SIZE, SETTINGS_ENABLE_PUSH, SETTINGS_MAX_CONCURRENT_STREAMS, \
    SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_FRAME_SIZE, SETTINGS_MAX_HEADER_LIST_SIZE = \
    range(1, 7)
MAX_WINDOW = 2**31 - 1
MIB = 1024 * 1024


def code_name(code):
  return CODE_NAMES.get(code, "0x%x" % code)


# --- frame builders -----------------------------------------------------------------------


def frame(ftype, flags, sid, payload=b""):
  """One frame, byte for byte as given: nothing is checked."""
  return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags, sid) + payload


def rst_frame(sid, code=CANCEL):
  return frame(RST_STREAM, 0, sid, struct.pack(">I", code))


def window_update_frame(sid, increment):
  return frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", increment))


def settings_frame(settings=()):
  return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in settings))


def grpc_frame(message, compressed=False):
  """One length-prefixed gRPC message."""
  return struct.pack(">BI", 1 if compressed else 0, len(message)) + message


def grpc_unframe(data):
  """[(compressed, message)] from a concatenation of length-prefixed messages; raises on a
  cut one."""
  out = []
  pos = 0
  while pos < len(data):
    if len(data) - pos < 5:
      raise ValueError("truncated gRPC frame header")
    flag, length = struct.unpack(">BI", data[pos:pos + 5])
    if len(data) - pos - 5 < length:
      raise ValueError("truncated gRPC message")
    out.append((flag, data[pos + 5:pos + 5 + length]))
    pos += 5 + length
  return out


def _hpack_int(value, prefix_bits):
  """An HPACK integer with a |prefix_bits|-bit prefix (RFC 7541 section 5.1), flags zero."""
  limit = (1 << prefix_bits) - 1
  if value < limit:
    return bytes([value])
  out = bytearray([limit])
  value -= limit
  while value >= 128:
    out.append(value & 0x7f | 0x80)
    value >>= 7
  out.append(value)
  return bytes(out)


def _bytes(text):
  return text if isinstance(text, bytes) else text.encode("latin-1")


def literal_header_block(fields):
  """A header block that controls every byte: each field as a literal without indexing, new
  name (0x00), raw (non-Huffman) strings; str names and values are taken byte for byte
  (latin-1). The hpack encoder would lowercase names."""
  out = bytearray()
  for name, value in fields:
    name, value = _bytes(name), _bytes(value)
    out += b"\x00" + _hpack_int(len(name), 7) + name + _hpack_int(len(value), 7) + value
  return bytes(out)


# --- what the client saw on one stream ----------------------------------------------------


@dataclass
class Stream:
  """What an H2Client saw on one stream."""
  headers: list = None
  trailers: list = None
  informational: list = field(default_factory=list)
  data: bytearray = field(default_factory=bytearray)
  # (payload length, END_STREAM) of each DATA frame, in order.
  data_frames: list = field(default_factory=list)
  # Each header block and DATA frame as ("HEADERS" or "DATA", END_STREAM), in order.
  received: list = field(default_factory=list)
  ended: bool = False
  reset_code: int = None
  # Every RST_STREAM code received on the stream, in order.
  resets: list = field(default_factory=list)
  sent: int = 0

  def header(self, name, block=None):
    for k, v in (block if block is not None else self.headers) or []:
      if k == name:
        return v
    return None

  @property
  def trailers_only(self):
    """One HEADERS frame carrying END_STREAM, and nothing else on the stream."""
    return self.received == [("HEADERS", True)]

  def final_headers(self):
    """The trailers, or the headers of a Trailers-Only answer."""
    return self.trailers if self.trailers is not None else self.headers

  def grpc_status(self):
    value = self.header("grpc-status", self.final_headers())
    return None if value is None else int(value)

  def grpc_message(self):
    value = self.header("grpc-message", self.final_headers())
    return None if value is None else urllib.parse.unquote(value)

  def describe(self):
    """The stream in one line, long header values cut short."""
    cut = lambda block: None if block is None else [
        (k, v if len(v) <= 40 else v[:20] + "...(%d bytes)" % len(v)) for k, v in block]
    return "headers=%r trailers=%r data=%d bytes ended=%s reset=%r" % (
        cut(self.headers), cut(self.trailers), len(self.data), self.ended, self.reset_code)


def assert_relay_made(st, code):
  """|st| is a relay-made error before response headers: Trailers-Only (README.md, "gRPC
  status of relay-made errors") with grpc-status |code|."""
  # When the answer ends while the client is still sending, RST_STREAM(NO_ERROR) follows it
  # (RFC 9113 section 8.1): the rest of the request is not wanted. No other reset is.
  assert st.reset_code is None or (st.reset_code == NO_ERROR and st.ended), (
      "stream reset with %r: %s" % (st.reset_code, st.describe()))
  assert st.trailers_only, "expected one HEADERS frame with END_STREAM: %s" % st.describe()
  assert st.header(":status") == "200" and st.header("content-type") == "application/grpc"
  assert st.grpc_status() == code, st.describe()


# --- the client ---------------------------------------------------------------------------


def take_frames(buf):
  """The whole frames at the front of bytearray |buf|, as (type, flags, stream id, payload),
  removed from it; a partial frame stays for the next read."""
  frames, pos = [], 0
  while len(buf) - pos >= 9:
    length = int.from_bytes(buf[pos:pos + 3], "big")
    if len(buf) - pos < 9 + length:
      break
    sid = int.from_bytes(buf[pos + 5:pos + 9], "big") & 0x7fffffff
    frames.append((buf[pos + 3], buf[pos + 4], sid, bytes(buf[pos + 9:pos + 9 + length])))
    pos += 9 + length
  del buf[:pos]
  return frames


class H2Client:
  """An h2c client connection made of hand-built frames.

  |settings| go in the client's first SETTINGS frame (the default grants 16 MiB stream windows;
  () keeps the protocol's 64 KiB), and a WINDOW_UPDATE raises the connection window to
  |connection_window|. |preface|=False sends nothing at connect; |silent| never writes at all
  (not even acknowledgements). |ack_pings|=False leaves PINGs unanswered. |timeout| is the
  default wait of wait_stream() and call().
  """

  def __init__(self, address, settings=((SETTINGS_INITIAL_WINDOW_SIZE, 16 * MIB),),
               connection_window=1 << 30, preface=True, silent=False, ack_pings=True,
               rcvbuf=None, sndbuf=None, timeout=10.0):
    host, port = address.rsplit(":", 1)
    self.authority = address
    self.timeout = timeout
    self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    if rcvbuf:
      self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if sndbuf:
      self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    self.sock.settimeout(10)
    self.sock.connect((host.strip("[]"), int(port)))
    self.encoder = hpack.Encoder()
    self.decoder = hpack.Decoder()
    self.silent = silent
    self.ack_pings = ack_pings
    self.streams = {}
    self.pending = {}
    self.held = {}  # stream id -> bytes of stream window held back
    self.inbuf = bytearray()
    self.out = bytearray()
    self.block = None  # (stream id, fragments, end_stream) while CONTINUATIONs are due
    self.send_window = 65535
    self.peer_initial_window = 65535
    self.stream_windows = {}
    self.peer_settings = {}
    self.frames = []  # every frame received: (type, flags, stream id, payload)
    self.read_pos = 0  # frames before this index were returned by read_frame()
    self.goaways = []  # (last stream id, code, debug data) of each GOAWAY received
    self.got_settings = False
    self.settings_acks = 0
    self.ping_acks = 0
    self.closed = False  # the peer closed the connection (or this side did)
    self.closed_at = None
    self.write_failed = False
    self.next_sid = 1
    self.received = 0
    # When set, streams this client did not start() are parsed but not recorded.
    self.forget_others = False
    if preface:
      self.out += PREFACE + settings_frame(settings)
      if connection_window > 65535:
        self.out += window_update_frame(0, connection_window - 65535)
      self.flush()

  def close(self):
    self.closed = True
    try:
      self.sock.close()
    except OSError:
      pass

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  def stream(self, sid):
    st = self.streams.get(sid)
    if st is None:
      st = Stream()
      if not self.forget_others:
        self.streams[sid] = st
    return st

  @property
  def goaway(self):
    """(last stream id, code) of the latest GOAWAY, or None."""
    return self.goaways[-1][:2] if self.goaways else None

  def goaway_codes(self):
    """(last stream id, code) of each GOAWAY received, in order."""
    return [(last, code) for last, code, _ in self.goaways]

  def reset_codes(self):
    return [st.reset_code for st in self.streams.values() if st.reset_code is not None]

  def pings(self):
    """The payloads of the PINGs received (not acknowledgements)."""
    return [p for t, flags, _, p in self.frames if t == PING and not flags & ACK]

  # Output.

  def send(self, data):
    """Writes |data| as it is (frames built by hand, or anything else)."""
    self.out += data
    self.flush()

  def flush(self):
    """Writes the output; on a non-blocking socket what does not fit stays queued. After a
    failed write the client writes no more but keeps reading: the relay's GOAWAY may be
    waiting in the socket when it hangs up on a client still sending."""
    if self.silent:
      self.out.clear()
      return
    while self.out and not self.closed and not self.write_failed:
      try:
        del self.out[:self.sock.send(self.out)]
      except BlockingIOError:
        return
      except OSError:
        self.write_failed = True
    if self.write_failed or self.closed:
      self.out.clear()

  def header_frames(self, sid, fields, end_stream=False):
    """HEADERS (and CONTINUATIONs past 16 KiB) with |fields| HPACK-encoded."""
    block = self.encoder.encode(fields)
    chunks = [block[i:i + 16384] for i in range(0, len(block), 16384)] or [b""]
    flags = END_STREAM if end_stream else 0
    out = []
    for i, chunk in enumerate(chunks):
      last = END_HEADERS if i == len(chunks) - 1 else 0
      out.append(frame(HEADERS if i == 0 else CONTINUATION, (flags if i == 0 else 0) | last, sid,
                       chunk))
    return b"".join(out)

  def request_fields(self, path, headers=(), method="POST", content_type="application/grpc",
                     te="trailers"):
    """A gRPC request's fields; |content_type| or |te| None leaves that field out."""
    fields = [(":method", method), (":scheme", "http"), (":path", path),
              (":authority", self.authority)]
    if content_type is not None:
      fields.append(("content-type", content_type))
    if te is not None:
      fields.append(("te", te))
    return fields + list(headers)

  def new_stream(self):
    sid = self.next_sid
    self.next_sid += 2
    self.streams[sid] = Stream()
    return sid

  def start(self, path, body=b"", headers=(), end_stream=True, **fields):
    """Opens a stream with request_fields(path, headers, **fields); |body| is queued under
    flow control. Returns the stream id."""
    sid = self.new_stream()
    self.out += self.header_frames(sid, self.request_fields(path, headers, **fields),
                                   end_stream=end_stream and not body)
    if body:
      self.queue(sid, body, end_stream)
    self.pump(0)
    return sid

  def open(self, fields, end_stream=False):
    """HEADERS with |fields| as a literal_header_block() on a new stream; returns its id."""
    sid = self.new_stream()
    self.send(frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), sid,
                    literal_header_block(fields)))
    return sid

  def trailers(self, sid, fields, end_stream=True):
    """A literal_header_block() HEADERS on |sid|, whatever its state."""
    self.send(frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), sid,
                    literal_header_block(fields)))

  def queue(self, sid, data, end_stream):
    """|data| for |sid|, sent as stream and connection windows allow."""
    self.pending[sid] = [memoryview(bytes(data)), end_stream]

  def data(self, sid, payload, end_stream=False, timeout=10.0):
    """One DATA frame on |sid| whatever its state; waits only for connection window."""
    assert self.wait(lambda: self.send_window >= len(payload), timeout), (
        "no connection window for %d bytes of DATA on stream %d within %.0f s" % (
            len(payload), sid, timeout))
    self.send_window -= len(payload)
    self.send(frame(DATA, END_STREAM if end_stream else 0, sid, payload))

  def rst(self, sid, code=CANCEL):
    self.pending.pop(sid, None)
    self.send(rst_frame(sid, code))

  def window_update(self, sid, increment):
    self.send(window_update_frame(sid, increment))

  def hold(self, sid):
    """Stops granting stream window to |sid| (the connection window is still granted)."""
    self.held.setdefault(sid, 0)

  def release(self, sid):
    """Grants |sid| the stream window it was held back, and acknowledges from then on."""
    held = self.held.pop(sid, 0)
    if held:
      self.window_update(sid, held)

  def _send_pending(self):
    for sid in list(self.pending):
      view, end_stream = self.pending[sid]
      if self.stream(sid).reset_code is not None:
        del self.pending[sid]
        continue
      window = self.stream_windows.setdefault(sid, self.peer_initial_window)
      max_frame = self.peer_settings.get(SETTINGS_MAX_FRAME_SIZE, 16384)
      while len(view) and min(window, self.send_window) > 0:
        n = min(len(view), window, self.send_window, max_frame)
        last = n == len(view)
        self.out += frame(DATA, END_STREAM if last and end_stream else 0, sid, view[:n].tobytes())
        view = view[n:]
        window -= n
        self.send_window -= n
        self.stream(sid).sent += n
      self.stream_windows[sid] = window
      if len(view):
        self.pending[sid][0] = view
      else:
        del self.pending[sid]

  # Input.

  def pump(self, timeout=0.05):
    """Sends what windows allow, reads once (waiting up to |timeout|); False once closed."""
    self._send_pending()
    self.flush()
    if self.closed:
      return False
    try:
      readable, _, _ = select.select([self.sock], [], [], timeout)
      data = self.sock.recv(1 << 20) if readable else None
    except OSError:
      data = b""
    if data == b"":
      self.closed = True
      self.closed_at = time.monotonic()
      return False
    if data:
      self.received += len(data)
      self.inbuf += data
      self._parse()
    self._send_pending()
    self.flush()
    return True

  def wait(self, predicate, timeout):
    """Pumps until |predicate| holds, the connection closes or |timeout| passes; returns
    |predicate|'s last value."""
    end = time.monotonic() + timeout
    while not predicate() and time.monotonic() < end:
      # Short waits: |predicate| may depend on a backend thread, not on this socket.
      if not self.pump(0.002) and not predicate():
        break
    return predicate()

  def wait_stream(self, sid, timeout=None):
    """Pumps until |sid| ended or was reset, or the connection closed; returns its Stream."""
    st = self.stream(sid)
    self.wait(lambda: st.ended or st.reset_code is not None or self.closed,
              self.timeout if timeout is None else timeout)
    return st

  def call(self, path, body=b"", timeout=None, **kwargs):
    """A whole call: start(path, body, **kwargs), then wait_stream()."""
    return self.wait_stream(self.start(path, body=body, **kwargs), timeout)

  def handshake(self, timeout=5.0):
    """Waits for the relay's SETTINGS."""
    assert self.wait(lambda: self.got_settings, timeout), "the relay sent no SETTINGS"

  def read_frame(self, deadline):
    """The next frame not yet returned by read_frame() (type, flags, stream id, payload), or
    None once the peer closed or |deadline| (monotonic) passed."""
    while self.read_pos >= len(self.frames):
      left = deadline - time.monotonic()
      if left <= 0 or not self.pump(min(left, 0.05)):
        if self.read_pos < len(self.frames):
          break
        return None
    self.read_pos += 1
    return self.frames[self.read_pos - 1]

  def read_until_closed(self, timeout):
    """Reads until the peer closes; True if it did within |timeout| seconds."""
    return self.wait(lambda: self.closed, timeout)

  def wait_quiet(self, seconds, limit=15.0):
    """Pumps until no queued byte went out for |seconds|; returns the bytes sent in all."""
    end = time.monotonic() + limit
    last, since = -1, time.monotonic()
    while time.monotonic() < end and self.pump(0.002):
      sent = sum(s.sent for s in self.streams.values())
      if sent != last:
        last, since = sent, time.monotonic()
      elif time.monotonic() - since >= seconds:
        break
    return sum(s.sent for s in self.streams.values())

  def describe_frames(self, start=0):
    """The frames received from index |start| on, in one line."""
    out = []
    for t, flags, s, p in self.frames[start:]:
      extra = ""
      if t == RST_STREAM:
        extra = " code=%d" % int.from_bytes(p[:4], "big")
      elif t == GOAWAY:
        extra = " last=%d code=%d" % (int.from_bytes(p[:4], "big") & 0x7FFFFFFF,
                                      int.from_bytes(p[4:8], "big"))
      out.append("%s(%d, flags=%#x%s)" % (FRAME_NAMES.get(t, t), s, flags, extra))
    return "[%s]%s" % (", ".join(out), " closed" if self.closed else "")

  def _parse(self):
    for f in take_frames(self.inbuf):
      self.frames.append(f)
      self._on_frame(*f)

  def _on_frame(self, ftype, flags, sid, payload):
    if ftype in (DATA, HEADERS) and flags & PADDED:
      payload = payload[1:len(payload) - payload[0]]
    if ftype == DATA:
      st = self.stream(sid)
      st.data += payload
      st.data_frames.append((len(payload), bool(flags & END_STREAM)))
      st.received.append(("DATA", bool(flags & END_STREAM)))
      st.ended = st.ended or bool(flags & END_STREAM)
      if payload:
        self.out += window_update_frame(0, len(payload))
        if sid in self.held:
          self.held[sid] += len(payload)
        else:
          self.out += window_update_frame(sid, len(payload))
    elif ftype == HEADERS:
      if flags & PRIORITY_FLAG:
        payload = payload[5:]
      self.block = (sid, [payload], bool(flags & END_STREAM))
      if flags & END_HEADERS:
        self._end_block()
    elif ftype == CONTINUATION and self.block:
      self.block[1].append(payload)
      if flags & END_HEADERS:
        self._end_block()
    elif ftype == RST_STREAM:
      st = self.stream(sid)
      st.reset_code = struct.unpack(">I", payload)[0]
      st.resets.append(st.reset_code)
      self.pending.pop(sid, None)
    elif ftype == SETTINGS:
      if flags & ACK:
        self.settings_acks += 1
        return
      self.got_settings = True
      for i in range(0, len(payload), 6):
        key, value = struct.unpack(">HI", payload[i:i + 6])
        self.peer_settings[key] = value
        if key == SETTINGS_INITIAL_WINDOW_SIZE:
          for s in self.stream_windows:
            self.stream_windows[s] += value - self.peer_initial_window
          self.peer_initial_window = value
      self.out += frame(SETTINGS, ACK, 0)
    elif ftype == PING:
      if flags & ACK:
        self.ping_acks += 1
      elif self.ack_pings:
        self.out += frame(PING, ACK, 0, payload)
    elif ftype == GOAWAY:
      last, code = struct.unpack(">II", payload[:8])
      self.goaways.append((last & 0x7fffffff, code, bytes(payload[8:])))
    elif ftype == WINDOW_UPDATE:
      increment = struct.unpack(">I", payload)[0] & 0x7fffffff
      if sid == 0:
        self.send_window += increment
      else:
        window = self.stream_windows.get(sid, self.peer_initial_window)
        self.stream_windows[sid] = window + increment

  def _end_block(self):
    sid, fragments, end_stream = self.block
    self.block = None
    fields = [(k, v) for k, v in self.decoder.decode(b"".join(fragments))]
    st = self.stream(sid)
    if any(k == ":status" and v.startswith("1") for k, v in fields):
      st.informational.append(fields)
    elif st.headers is None:
      st.headers = fields
    else:
      st.trailers = fields
    st.received.append(("HEADERS", end_stream))
    st.ended = st.ended or end_stream

