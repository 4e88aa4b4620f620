"""A raw HTTP/1.1 client for the tests of listeners with web = true: requests go out as the
test writes them, byte for byte, and answers are read and taken apart here (status line,
fields, a content-length, chunked or close-delimited body, the chunked trailers), so that every
byte the relay sends is seen and none is fixed up on the way."""

import socket
import ssl
import time


class Response:
  """One answer: |status| (int), |fields| and |trailers| ([(lowercase name, value)]), |body|
  (bytes, de-chunked)."""

  def __init__(self):
    self.status = 0
    self.reason = ""
    self.fields = []
    self.trailers = []
    self.body = b""

  def field(self, name):
    for n, v in self.fields:
      if n == name:
        return v
    return None

  def trailer(self, name):
    for n, v in self.trailers:
      if n == name:
        return v
    return None


class H1Conn:
  """One connection to |address| ("host:port"); over TLS with |tls| (an ssl.SSLContext)."""

  def __init__(self, address, tls=None, server_hostname="relay.test", timeout=10.0):
    host, port = address.rsplit(":", 1)
    raw = socket.create_connection((host, int(port)), timeout=timeout)
    self.sock = tls.wrap_socket(raw, server_hostname=server_hostname) if tls else raw
    self.timeout = timeout
    self.buf = b""
    self.closed = False

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  def close(self):
    try:
      self.sock.close()
    except OSError:
      pass

  def send(self, data):
    self.sock.sendall(data)

  def _fill(self, deadline):
    """Reads more into buf; False once the relay closed (or the time is up)."""
    if self.closed:
      return False
    left = deadline - time.monotonic()
    if left <= 0:
      return False
    self.sock.settimeout(left)
    try:
      data = self.sock.recv(65536)
    except socket.timeout:
      return False
    except (ConnectionResetError, ssl.SSLError, OSError):
      data = b""
    if not data:
      self.closed = True
      return False
    self.buf += data
    return True

  def _line(self, deadline):
    while b"\r\n" not in self.buf:
      if not self._fill(deadline):
        raise AssertionError("no complete line (%r so far; closed=%s)" % (self.buf[:200],
                                                                         self.closed))
    line, self.buf = self.buf.split(b"\r\n", 1)
    return line

  def _take(self, n, deadline):
    while len(self.buf) < n:
      if not self._fill(deadline):
        raise AssertionError("%d of %d body bytes before the end (closed=%s)" % (
            len(self.buf), n, self.closed))
    out, self.buf = self.buf[:n], self.buf[n:]
    return out

  def _fields(self, deadline):
    fields = []
    while True:
      line = self._line(deadline)
      if not line:
        return fields
      name, value = line.split(b":", 1)
      fields.append((name.decode().lower(), value.strip().decode("latin-1")))

  def read_response(self, head=False, timeout=None):
    """The next answer; interim (1xx) ones are skipped. |head|: it answers a HEAD request."""
    deadline = time.monotonic() + (timeout or self.timeout)
    while True:
      response = Response()
      status_line = self._line(deadline).decode("latin-1")
      version, code, *reason = status_line.split(" ", 2)
      assert version == "HTTP/1.1", "status line %r" % status_line
      response.status = int(code)
      response.reason = reason[0] if reason else ""
      response.fields = self._fields(deadline)
      if response.status >= 200:
        break
    te = response.field("transfer-encoding")
    length = response.field("content-length")
    if head or response.status in (204, 304):
      pass
    elif te is not None:
      assert te == "chunked", "transfer-encoding %r" % te
      body = b""
      while True:
        size = int(self._line(deadline).split(b";")[0], 16)
        if size == 0:
          break
        body += self._take(size, deadline)
        assert self._line(deadline) == b"", "chunk not followed by CRLF"
      response.body = body
      response.trailers = self._fields(deadline)
    elif length is not None:
      response.body = self._take(int(length), deadline)
    else:
      while self._fill(deadline):
        pass
      assert self.closed, "a close-delimited body, and the connection is still open"
      response.body, self.buf = self.buf, b""
    return response

  def read_until_closed(self, timeout=None):
    """Everything the relay sends until it closes; raises if it is still open by then."""
    deadline = time.monotonic() + (timeout or self.timeout)
    while self._fill(deadline):
      pass
    assert self.closed, "the relay did not close the connection within %.1f s" % (
        timeout or self.timeout)
    out, self.buf = self.buf, b""
    return out

  def is_open_after(self, seconds):
    """True when the relay neither sent anything nor closed within |seconds|."""
    deadline = time.monotonic() + seconds
    before = len(self.buf)
    while self._fill(deadline):
      pass
    return not self.closed and len(self.buf) == before


def parse_error_answer(data):
  """(status, fields, body) of an answer the relay made itself (content-length body)."""
  head, _, body = data.partition(b"\r\n\r\n")
  lines = head.decode("latin-1").split("\r\n")
  version, code, _ = (lines[0] + " ").split(" ", 2)
  assert version == "HTTP/1.1", "status line %r" % lines[0]
  fields = [(n.strip().lower(), v.strip()) for n, v in (l.split(":", 1) for l in lines[1:])]
  return int(code), fields, body
