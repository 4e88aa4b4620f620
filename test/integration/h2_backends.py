"""HTTP/2 backends for the tests, run in threads of the test process so that tests read what
they recorded (request headers and bodies, resets received) directly. Clients are h2_client.py.

H2Backend (python-h2) picks its answer from the method name of :path:
  Http<NNN>          answer :status NNN, text/plain, a body and no grpc-status
  Reset<Name>        RST_STREAM with that error code (RefusedStream, Cancel, EnhanceYourCalm,
                     InternalError) as soon as the request headers arrive
  TrailersOnly<N>    gRPC Trailers-Only answer with grpc-status N
  Hang               never answer (records the RST_STREAM it gets)
  Drip               gRPC response headers and one message ("drip"), then nothing more
  Echo               gRPC answer: the request body echoed verbatim, then grpc-status 0
anything else: Trailers-Only grpc-status 12. H2Backend(refuse_all=True) instead resets every
stream with REFUSED_STREAM.

ScriptBackend (python-h2 too) misbehaves on purpose and follows flow control to the byte; its
methods are listed in its docstring. GarbageBackend answers bytes that are not HTTP/2, and
BlackholeEndpoint never completes a TCP handshake.
"""

import hashlib
import re
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

import support
from h2_client import CANCEL, DATA, GOAWAY, MAX_WINDOW, MIB, NO_ERROR, frame, grpc_frame

RESET_CODES = {
    "RefusedStream": h2.errors.ErrorCodes.REFUSED_STREAM,
    "Cancel": h2.errors.ErrorCodes.CANCEL,
    "EnhanceYourCalm": h2.errors.ErrorCodes.ENHANCE_YOUR_CALM,
    "InternalError": h2.errors.ErrorCodes.INTERNAL_ERROR,
}


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


def blob(size, seed=0):
  """|size| bytes that differ from call to call and from offset to offset."""
  block = hashlib.sha256(b"grelay-adversarial-%d" % seed).digest() * 2048
  return (block * (size // len(block) + 1))[:size]


def script_config(backend_address, echo_address=None):
  """Relay routes and clusters: test.Script to |backend_address|, test.Echo to
  |echo_address| when given."""
  routes = [{"service": "test.Script", "cluster": "script"}]
  clusters = {"script": [backend_address]}
  if echo_address:
    routes.append({"service": "test.Echo", "cluster": "echo"})
    clusters["echo"] = [echo_address]
  return {"routes": routes, "clusters": clusters}


@dataclass
class BackendStream:
  connection: int
  stream_id: int
  headers: list
  body: bytearray = field(default_factory=bytearray)
  received: int = 0
  digest: object = field(default_factory=hashlib.sha256)
  withheld: int = 0
  ended: bool = False
  reset_code: object = None
  sent: int = 0
  reset_queued: bool = False
  reset_sent: threading.Event = field(default_factory=threading.Event)

  def header(self, name):
    for k, v in self.headers:
      if k == name:
        return v
    return None

  @property
  def method(self):
    return (self.header(":path") or "").rsplit("/", 1)[-1]


class _BackendConn:
  def __init__(self, index, sock, h2c):
    self.index = index
    self.sock = sock
    self.h2c = h2c
    self.records = {}
    self.actions = {}  # stream id -> [action], run in order as flow control allows
    self.silent = False  # set after a hand-made GOAWAY: ignore the relay from then on


class ScriptBackend:
  """A threaded h2c backend. The method name of :path picks the behaviour:

    Echo           answer the request body back, then grpc-status 0
    Digest         Trailers-Only grpc-status 0 with x-bytes / x-sha256 of the request body
    Hold           like Digest, but grants no window for request DATA until release()
    Hang           never answer
    ResetHalf      RST_STREAM(CANCEL) once 512 KiB of request body arrived
    SendHalf       response headers and the first 512 KiB of a 1 MiB message, then
                   RST_STREAM(CANCEL)
    Download       one message of x-size bytes, then grpc-status 0
    EarlyData      a DATA frame before any HEADERS
    UpperHeader    an Echo answer whose response headers carry the name "X-Upper"
    Informational  a 100 (Continue) HEADERS, then an Echo answer
    GoawayFirst    the first such stream gets GOAWAY(last-stream-id 0, NO_ERROR) and no answer;
                   later ones are answered as Echo

  With |big_windows| it grants 2^31-1 of window, so only the relay limits what it sends.
  |max_concurrent_streams| is the SETTINGS_MAX_CONCURRENT_STREAMS it announces.
  stall() stops reading every connection (the relay's writes back up); resume() restarts.
  """

  def __init__(self, big_windows=False, max_concurrent_streams=1000):
    self.big_windows = big_windows
    self.max_concurrent_streams = max_concurrent_streams
    self.sock_, self.address = support.loopback_listener(128)
    self.lock = threading.Lock()
    self.records = []
    self.connections = 0
    self.protocol_errors = []
    self.reading = threading.Event()
    self.reading.set()
    self.released = threading.Event()
    self.goaway_sent = threading.Event()
    self.closing_ = False
    self.socks_ = []
    threading.Thread(target=self._accept_loop, daemon=True).start()

  def close(self):
    self.closing_ = True
    self.reading.set()
    for s in [self.sock_] + self.socks_:
      try:
        s.shutdown(socket.SHUT_RDWR)
      except OSError:
        pass
    self.sock_.close()

  def stall(self):
    self.reading.clear()

  def resume(self):
    self.reading.set()

  def release(self):
    self.released.set()

  def streams(self, method=None):
    with self.lock:
      return [r for r in self.records if method is None or r.method == method]

  def wait_record(self, predicate, timeout=10.0):
    return support.wait_until(lambda: next((r for r in self.streams() if predicate(r)), None),
                              timeout)

  def _accept_loop(self):
    while not self.closing_:
      try:
        sock, _ = self.sock_.accept()
      except OSError:
        return
      with self.lock:
        self.connections += 1
        index = self.connections
        self.socks_.append(sock)
      threading.Thread(target=self._serve, args=(sock, index), daemon=True).start()

  def _serve(self, sock, index):
    config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8",
                                       validate_inbound_headers=False,
                                       normalize_outbound_headers=False,
                                       validate_outbound_headers=False)
    h2c = h2.connection.H2Connection(config=config)
    window = MAX_WINDOW if self.big_windows else 65535
    h2c.local_settings = h2.settings.Settings(client=False, initial_values={
        h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.max_concurrent_streams,
        h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 1 << 20,
        h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
    h2c.decoder.max_header_list_size = 1 << 20  # large metadata is the relay's call to make
    h2c.initiate_connection()
    if self.big_windows:
      h2c.increment_flow_control_window(MAX_WINDOW - 65535)
    conn = _BackendConn(index, sock, h2c)
    try:
      sock.sendall(h2c.data_to_send())
      while not self.closing_:
        if not self.reading.is_set():
          self.reading.wait(0.05)
          continue
        readable, _, _ = select.select([sock], [], [], 0.02)
        if readable:
          data = sock.recv(1 << 20)
          if not data:
            return
          if conn.silent:
            continue
          try:
            events = h2c.receive_data(data)
          except h2.exceptions.ProtocolError as e:
            with self.lock:
              self.protocol_errors.append("connection %d: %r" % (index, e))
            sock.sendall(h2c.data_to_send())
            return
          for event in events:
            self._on_event(conn, event)
        if conn.silent:
          continue
        self._run_actions(conn)
        out = h2c.data_to_send()
        if out:
          sock.sendall(out)
    except OSError:
      return
    except Exception as e:  # a bug here must show in the test, not vanish with the thread
      with self.lock:
        self.protocol_errors.append("connection %d: backend failed: %r" % (index, e))
    finally:
      sock.close()

  def _on_event(self, conn, event):
    h2c = conn.h2c
    if isinstance(event, h2.events.RequestReceived):
      r = BackendStream(conn.index, event.stream_id, [(k, v) for k, v in event.headers])
      conn.records[event.stream_id] = r
      with self.lock:
        self.records.append(r)
      self._on_request(conn, r)
      return
    r = conn.records.get(getattr(event, "stream_id", None))
    if r is None:
      return
    if isinstance(event, h2.events.DataReceived):
      r.received += len(event.data)
      r.digest.update(event.data)
      if r.method in ("Echo", "UpperHeader", "Informational", "GoawayFirst", "Keep"):
        r.body += event.data
      if r.method == "Hold" and not self.released.is_set():
        r.withheld += event.flow_controlled_length
      elif event.flow_controlled_length:
        h2c.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
      if r.method == "ResetHalf" and r.received >= 512 * 1024 and not r.reset_queued:
        r.reset_queued = True
        conn.actions.setdefault(r.stream_id, []).append(("rst", CANCEL))
    elif isinstance(event, h2.events.StreamEnded):
      r.ended = True
      self._on_request_end(conn, r)
    elif isinstance(event, h2.events.StreamReset):
      r.reset_code = event.error_code
      conn.actions.pop(r.stream_id, None)

  def _on_request(self, conn, r):
    sid = r.stream_id
    if r.method == "EarlyData":
      conn.actions[sid] = [("raw", frame(DATA, 0, sid, grpc_frame(b"too early")))]
    elif r.method == "SendHalf":
      half = grpc_frame(blob(MIB - 5))[:512 * 1024]
      conn.actions[sid] = [("headers", [(":status", "200"), ("content-type", "application/grpc")],
                            False), ("data", half, False), ("rst", CANCEL)]
    elif r.method == "GoawayFirst" and not self.goaway_sent.is_set():
      self.goaway_sent.set()
      conn.sock.sendall(conn.h2c.data_to_send())
      conn.sock.sendall(frame(GOAWAY, 0, 0, struct.pack(">II", 0, NO_ERROR)))
      conn.silent = True

  def _on_request_end(self, conn, r):
    grpc_ok = [(":status", "200"), ("content-type", "application/grpc")]
    trailers = [("grpc-status", "0")]
    actions = conn.actions.setdefault(r.stream_id, [])
    if r.method in ("Echo", "GoawayFirst", "Informational", "UpperHeader"):
      if r.method == "Informational":
        actions.append(("headers", [(":status", "100")], False))
      extra = [("X-Upper", "yes")] if r.method == "UpperHeader" else []
      actions += [("headers", grpc_ok + extra, False), ("data", bytes(r.body), False),
                  ("headers", trailers, True)]
    elif r.method in ("Digest", "Hold", "Keep"):
      actions.append(("headers", grpc_ok + trailers + [("x-bytes", str(r.received)),
                                                       ("x-sha256", r.digest.hexdigest())], True))
    elif r.method == "Download":
      message = grpc_frame(blob(int(r.header("x-size")) - 5, seed=1))
      actions += [("headers", grpc_ok, False), ("data", message, False),
                  ("headers", trailers, True)]

  def _run_actions(self, conn):
    h2c = conn.h2c
    if self.released.is_set():
      for r in conn.records.values():
        if r.withheld:
          h2c.acknowledge_received_data(r.withheld, r.stream_id)
          r.withheld = 0
    for sid in list(conn.actions):
      actions = conn.actions[sid]
      try:
        while actions:
          kind = actions[0][0]
          if kind == "headers":
            h2c.send_headers(sid, actions[0][1], end_stream=actions[0][2])
          elif kind == "data":
            data, end_stream = actions[0][1], actions[0][2]
            while True:
              n = min(len(data), h2c.local_flow_control_window(sid), h2c.max_outbound_frame_size)
              if n == 0 and data:
                break
              h2c.send_data(sid, data[:n], end_stream=end_stream and n == len(data))
              conn.records[sid].sent += n
              data = data[n:]
              if not data:
                break
            if data:
              actions[0] = ("data", data, end_stream)
              break
          elif kind == "rst":
            h2c.reset_stream(sid, error_code=actions[0][1])
            conn.records[sid].reset_sent.set()
          elif kind == "raw":
            conn.sock.sendall(h2c.data_to_send())
            conn.sock.sendall(actions[0][1])
          actions.pop(0)
      except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
        actions.clear()
      if not actions:
        del conn.actions[sid]
