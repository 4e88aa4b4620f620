"""A raw HTTP/2 client connection for tests that watch connection-level frames (GOAWAY, PING)
the way a gRPC client library hides them."""

import socket
import struct
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY = 0x0, 0x1, 0x3, 0x4, 0x6, 0x7
ACK = 0x1


def frame(ftype, flags, sid, payload=b""):
  return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags, sid) + payload


class RawConnection:
  """Connects, sends the preface and SETTINGS, and reads frames. Every frame read is kept in
  |frames| as (type, flags, stream id, payload); PINGs are acknowledged when |ack_pings|."""

  def __init__(self, address, ack_pings=True, timeout=10.0):
    host, port = address.rsplit(":", 1)
    self.sock = socket.create_connection((host, int(port)), timeout=timeout)
    self.ack_pings = ack_pings
    self.frames = []
    self.closed = False
    self.buffer_ = b""
    self.sock.sendall(PREFACE + frame(SETTINGS, 0, 0))

  def close(self):
    self.sock.close()

  def send(self, data):
    self.sock.sendall(data)

  def read_frame(self, deadline):
    """The next frame, or None once the peer closed or |deadline| (monotonic) passed."""
    while True:
      if len(self.buffer_) >= 9:
        length = int.from_bytes(self.buffer_[:3], "big")
        if len(self.buffer_) >= 9 + length:
          ftype, flags, sid = struct.unpack(">BBI", self.buffer_[3:9])
          payload = self.buffer_[9:9 + length]
          self.buffer_ = self.buffer_[9 + length:]
          f = (ftype, flags, sid & 0x7FFFFFFF, payload)
          self.frames.append(f)
          if ftype == SETTINGS and not flags & ACK:
            self.sock.sendall(frame(SETTINGS, ACK, 0))
          if ftype == PING and not flags & ACK and self.ack_pings:
            self.sock.sendall(frame(PING, ACK, 0, payload))
          return f
      left = deadline - time.monotonic()
      if left <= 0 or self.closed:
        return None
      self.sock.settimeout(left)
      try:
        chunk = self.sock.recv(65536)
      except socket.timeout:
        return None
      except OSError:
        chunk = b""
      if not chunk:
        self.closed = True
        return None
      self.buffer_ += chunk

  def read_until_closed(self, timeout):
    """Reads frames until the peer closes; True if it did within |timeout| seconds."""
    deadline = time.monotonic() + timeout
    while self.read_frame(deadline) is not None:
      pass
    return self.closed

  def goaways(self):
    """(last stream id, error code) of each GOAWAY received, in order."""
    return [(int.from_bytes(p[:4], "big") & 0x7FFFFFFF, int.from_bytes(p[4:8], "big"))
            for t, _, _, p in self.frames if t == GOAWAY]

  def pings(self):
    return [p for t, flags, _, p in self.frames if t == PING and not flags & ACK]
