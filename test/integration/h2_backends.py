"""Raw HTTP/2 helpers built on python-h2: a scriptable backend, a garbage backend, a raw client.

The backend runs in a thread of the test process, so tests read what it recorded
(request headers, resets received) directly.

H2Backend picks its answer from the method name of :path:
  Http<NNN>          answer :status NNN, text/plain, a body and no grpc-status
  Reset<Name>        RST_STREAM with that error code (RefusedStream, Cancel, EnhanceYourCalm,
                     InternalError) as soon as the request headers arrive
  TrailersOnly<N>    gRPC Trailers-Only answer with grpc-status N
  Hang               never answer (records the RST_STREAM it gets)
  Drip               gRPC response headers and one message ("drip"), then nothing more
  Echo               gRPC answer: the request body echoed verbatim, then grpc-status 0
anything else: Trailers-Only grpc-status 12. H2Backend(refuse_all=True) instead resets every
stream with REFUSED_STREAM.
"""

import re
import socket
import struct
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

RESET_CODES = {
    "RefusedStream": h2.errors.ErrorCodes.REFUSED_STREAM,
    "Cancel": h2.errors.ErrorCodes.CANCEL,
    "EnhanceYourCalm": h2.errors.ErrorCodes.ENHANCE_YOUR_CALM,
    "InternalError": h2.errors.ErrorCodes.INTERNAL_ERROR,
}


def grpc_frame(message, compressed=False):
  """One length-prefixed gRPC message."""
  return struct.pack(">BI", 1 if compressed else 0, len(message)) + message


def grpc_unframe(data):
  """[(compressed, message)] from a concatenation of length-prefixed messages."""
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


def _text(value):
  return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


@dataclass
class StreamRecord:
  """What the backend saw on one stream."""
  stream_id: int
  headers: list
  body: bytearray = field(default_factory=bytearray)
  ended: bool = False
  reset_code: object = None
  # (payload length, END_STREAM) of each DATA frame, in order.
  data_frames: list = field(default_factory=list)

  def header(self, name):
    for k, v in self.headers:
      if k == name:
        return v
    return None


class H2Backend:
  """A threaded HTTP/2 (h2c) server with the behaviours listed in the module docstring."""

  def __init__(self, refuse_all=False):
    self.refuse_all_ = refuse_all
    self.sock_ = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    self.sock_.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    self.sock_.bind(("127.0.0.1", 0))
    self.sock_.listen(128)
    self.port = self.sock_.getsockname()[1]
    self.address = "127.0.0.1:%d" % self.port
    self.lock_ = threading.Lock()
    self.streams_ = []
    self.connections_ = 0
    self.closing_ = False
    self.conns_ = []
    self.thread_ = threading.Thread(target=self._accept_loop, daemon=True)
    self.thread_.start()

  def close(self):
    self.closing_ = True
    try:
      self.sock_.shutdown(socket.SHUT_RDWR)
    except OSError:
      pass
    self.sock_.close()
    with self.lock_:
      conns = list(self.conns_)
    for c in conns:
      try:
        c.shutdown(socket.SHUT_RDWR)
      except OSError:
        pass

  # What was recorded.

  def streams(self, path=None):
    with self.lock_:
      return [s for s in self.streams_ if path is None or s.header(":path") == path]

  def wait_stream(self, predicate, timeout=10.0):
    """The first recorded stream matching |predicate|, waiting up to |timeout| for it."""
    end = time.monotonic() + timeout
    while True:
      with self.lock_:
        for s in self.streams_:
          if predicate(s):
            return s
      if time.monotonic() > end:
        return None
      time.sleep(0.02)

  # Server side.

  def _accept_loop(self):
    while not self.closing_:
      try:
        conn, _ = self.sock_.accept()
      except OSError:
        return
      with self.lock_:
        self.connections_ += 1
        self.conns_.append(conn)
      threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

  def _serve(self, conn):
    config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8",
                                       validate_inbound_headers=False)
    h2c = h2.connection.H2Connection(config=config)
    h2c.initiate_connection()
    records = {}
    try:
      conn.sendall(h2c.data_to_send())
      while True:
        data = conn.recv(65536)
        if not data:
          return
        try:
          events = h2c.receive_data(data)
        except h2.exceptions.ProtocolError:
          conn.sendall(h2c.data_to_send())
          return
        for event in events:
          self._on_event(h2c, records, event)
        out = h2c.data_to_send()
        if out:
          conn.sendall(out)
    except OSError:
      return
    finally:
      with self.lock_:
        if conn in self.conns_:
          self.conns_.remove(conn)
      conn.close()

  def _on_event(self, h2c, records, event):
    if isinstance(event, h2.events.RequestReceived):
      record = StreamRecord(event.stream_id, [(_text(k), _text(v)) for k, v in event.headers])
      records[event.stream_id] = record
      with self.lock_:
        self.streams_.append(record)
      method = (record.header(":path") or "").rsplit("/", 1)[-1]
      reset = RESET_CODES.get(method[len("Reset"):]) if method.startswith("Reset") else None
      if self.refuse_all_:
        reset = h2.errors.ErrorCodes.REFUSED_STREAM
      if reset is not None:
        h2c.reset_stream(event.stream_id, error_code=reset)
    elif isinstance(event, h2.events.DataReceived):
      record = records.get(event.stream_id)
      if record is not None:
        record.body += event.data
        record.data_frames.append((len(event.data), event.stream_ended is not None))
      h2c.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
    elif isinstance(event, h2.events.StreamEnded):
      record = records.get(event.stream_id)
      if record is not None:
        record.ended = True
        self._answer(h2c, record)
    elif isinstance(event, h2.events.StreamReset):
      record = records.get(event.stream_id)
      if record is not None:
        record.reset_code = event.error_code

  def _answer(self, h2c, record):
    sid = record.stream_id
    method = (record.header(":path") or "").rsplit("/", 1)[-1]
    try:
      match = re.fullmatch(r"Http(\d{3})", method)
      if match:
        h2c.send_headers(sid, [(":status", match.group(1)), ("content-type", "text/plain")])
        h2c.send_data(sid, b"not a grpc answer\n", end_stream=True)
      elif method.startswith("Reset") or method == "Hang" or self.refuse_all_:
        pass
      elif method == "Drip":
        h2c.send_headers(sid, [(":status", "200"), ("content-type", "application/grpc")])
        h2c.send_data(sid, grpc_frame(b"drip"))
      elif method.startswith("TrailersOnly"):
        code = method[len("TrailersOnly"):] or "0"
        h2c.send_headers(sid, [(":status", "200"), ("content-type", "application/grpc"),
                               ("grpc-status", code), ("grpc-message", "trailers%20only")],
                         end_stream=True)
      elif method == "Echo":
        h2c.send_headers(sid, [(":status", "200"), ("content-type", "application/grpc")])
        if record.body:
          h2c.send_data(sid, bytes(record.body))
        h2c.send_headers(sid, [("grpc-status", "0")], end_stream=True)
      else:
        h2c.send_headers(sid, [(":status", "200"), ("content-type", "application/grpc"),
                               ("grpc-status", "12")], end_stream=True)
    except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
      pass


class GarbageBackend:
  """Accepts TCP connections and answers bytes that are not HTTP/2, then closes."""

  def __init__(self):
    self.sock_ = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    self.sock_.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    self.sock_.bind(("127.0.0.1", 0))
    self.sock_.listen(128)
    self.port = self.sock_.getsockname()[1]
    self.address = "127.0.0.1:%d" % self.port
    self.connections = 0
    self.thread_ = threading.Thread(target=self._accept_loop, daemon=True)
    self.thread_.start()

  def close(self):
    try:
      self.sock_.shutdown(socket.SHUT_RDWR)
    except OSError:
      pass
    self.sock_.close()

  def _accept_loop(self):
    while True:
      try:
        conn, _ = self.sock_.accept()
      except OSError:
        return
      self.connections += 1
      threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

  @staticmethod
  def _serve(conn):
    try:
      conn.settimeout(2)
      try:
        conn.recv(65536)
      except socket.timeout:
        pass
      conn.sendall(b"HTTP/1.1 500 Garbage\r\n\r\n" + bytes(range(256)) * 16)
      time.sleep(0.2)
    except OSError:
      pass
    finally:
      conn.close()


class BlackholeEndpoint:
  """A listening port whose accept queue is full, so new connects hang in SYN_SENT."""

  def __init__(self):
    self.sock_ = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    self.sock_.bind(("127.0.0.1", 0))
    self.sock_.listen(0)
    self.port = self.sock_.getsockname()[1]
    self.address = "127.0.0.1:%d" % self.port
    self.fillers_ = []
    for _ in range(4):
      s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
      s.setblocking(False)
      s.connect_ex(("127.0.0.1", self.port))
      self.fillers_.append(s)

  def is_black(self):
    """True when a fresh connect indeed hangs."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.settimeout(0.5)
    try:
      probe.connect(("127.0.0.1", self.port))
      return False
    except socket.timeout:
      return True
    finally:
      probe.close()

  def close(self):
    for s in self.fillers_:
      s.close()
    self.sock_.close()


@dataclass
class RawResponse:
  """Everything a raw client saw on one stream."""
  events: list = field(default_factory=list)
  headers: list = None
  trailers: list = None
  data: bytearray = field(default_factory=bytearray)
  ended: bool = False
  reset_code: object = None
  connection_closed: bool = False

  def header(self, name, where=None):
    for k, v in (where if where is not None else self.headers) or []:
      if k == name:
        return v
    return None

  @property
  def trailers_only(self):
    """One HEADERS frame carrying END_STREAM, and nothing else on the stream."""
    return (len(self.events) == 1 and isinstance(self.events[0], h2.events.ResponseReceived)
            and self.events[0].stream_ended is not None)

  def final_headers(self):
    """The trailers, or the headers of a Trailers-Only answer."""
    return self.trailers if self.trailers is not None else self.headers

  def grpc_status(self):
    value = self.header("grpc-status", self.final_headers())
    return None if value is None else int(value)

  def grpc_message(self):
    value = self.header("grpc-message", self.final_headers())
    return None if value is None else urllib.parse.unquote(value)


class RawClient:
  """A blocking HTTP/2 (h2c) client that sends exactly the headers it is given."""

  def __init__(self, address, timeout=10.0):
    host, port = address.rsplit(":", 1)
    self.sock = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    self.sock.settimeout(timeout)
    config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    self.conn = h2.connection.H2Connection(config=config)
    self.conn.initiate_connection()
    self.responses_ = {}
    self.held_ = {}
    self.closed = False
    self.authority = address
    self._flush()

  def close(self):
    try:
      self.sock.close()
    except OSError:
      pass

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  def _flush(self):
    out = self.conn.data_to_send()
    if out and not self.closed:
      try:
        self.sock.sendall(out)
      except (BrokenPipeError, ConnectionResetError):
        self._on_closed()

  def _on_closed(self):
    self.closed = True
    for r in self.responses_.values():
      r.connection_closed = True

  def start(self, path, body=b"", headers=(), content_type="application/grpc", end_stream=True,
            method="POST"):
    """Opens a stream; returns its id. |headers| are extra (name, value) pairs."""
    sid = self.conn.get_next_available_stream_id()
    fields = [(":method", method), (":scheme", "http"), (":path", path),
              (":authority", self.authority)]
    if content_type is not None:
      fields.append(("content-type", content_type))
    fields.append(("te", "trailers"))
    fields += list(headers)
    self.responses_[sid] = RawResponse()
    self.conn.send_headers(sid, fields, end_stream=end_stream and not body)
    if body:
      self.conn.send_data(sid, body, end_stream=end_stream)
    self._flush()
    return sid

  def send(self, sid, data, end_stream=False):
    """Sends |data| on stream |sid| as one DATA frame."""
    self.conn.send_data(sid, data, end_stream=end_stream)
    self._flush()

  def hold(self, sid):
    """Stops granting stream window to |sid| (the connection window is still granted)."""
    self.held_.setdefault(sid, 0)

  def release(self, sid):
    """Grants |sid| the stream window it was held back, and acknowledges from then on."""
    held = self.held_.pop(sid, 0)
    if held:
      self.conn.increment_flow_control_window(held, stream_id=sid)
      self._flush()

  def reset(self, sid, code=h2.errors.ErrorCodes.CANCEL):
    self.conn.reset_stream(sid, error_code=code)
    self._flush()

  def pump(self):
    """Reads once from the socket; False when the connection is gone."""
    try:
      data = self.sock.recv(65536)
    except ConnectionResetError:
      data = b""
    if not data:
      self._on_closed()
      return False
    for event in self.conn.receive_data(data):
      self._on_event(event)
    self._flush()
    return True

  def _on_event(self, event):
    sid = getattr(event, "stream_id", None)
    r = self.responses_.get(sid)
    if isinstance(event, h2.events.ConnectionTerminated):
      for resp in self.responses_.values():
        resp.connection_closed = True
      return
    if r is None:
      return
    if isinstance(event, (h2.events.ResponseReceived, h2.events.DataReceived,
                          h2.events.TrailersReceived, h2.events.StreamEnded,
                          h2.events.StreamReset, h2.events.InformationalResponseReceived)):
      if not isinstance(event, h2.events.StreamEnded) or not r.events or \
         getattr(r.events[-1], "stream_ended", None) is not event:
        r.events.append(event)
    if isinstance(event, h2.events.ResponseReceived):
      r.headers = [(_text(k), _text(v)) for k, v in event.headers]
      if event.stream_ended is not None:
        r.ended = True
    elif isinstance(event, h2.events.DataReceived):
      r.data += event.data
      if sid in self.held_:
        self.held_[sid] += event.flow_controlled_length
        if event.flow_controlled_length:
          self.conn.increment_flow_control_window(event.flow_controlled_length)
      else:
        self.conn.acknowledge_received_data(event.flow_controlled_length, sid)
      if event.stream_ended is not None:
        r.ended = True
    elif isinstance(event, h2.events.TrailersReceived):
      r.trailers = [(_text(k), _text(v)) for k, v in event.headers]
      if event.stream_ended is not None:
        r.ended = True
    elif isinstance(event, h2.events.StreamEnded):
      r.ended = True
    elif isinstance(event, h2.events.StreamReset):
      r.reset_code = event.error_code

  def response(self, sid):
    return self.responses_[sid]

  def wait(self, sid):
    """Reads until stream |sid| ends, is reset or the connection closes."""
    r = self.responses_[sid]
    while not (r.ended or r.reset_code is not None or r.connection_closed or self.closed):
      if not self.pump():
        break
    return r

  def call(self, path, body=b"", **kwargs):
    return self.wait(self.start(path, body=body, **kwargs))


def read_until_closed(sock, limit_seconds=10.0):
  """Reads and discards until EOF; True if the peer closed within |limit_seconds|."""
  end = time.monotonic() + limit_seconds
  while time.monotonic() < end:
    sock.settimeout(max(0.05, end - time.monotonic()))
    try:
      data = sock.recv(65536)
    except socket.timeout:
      return False
    except (ConnectionResetError, BrokenPipeError):
      return True
    if not data:
      return True
  return False
