#!/usr/bin/python3
"""A grpcio test backend that speaks raw bytes (no protobuf).

Run as its own process so tests can kill, freeze and restart it:

    /usr/bin/python3 backend.py --port 0 [--host 127.0.0.1] [--name NAME] [--events FILE]
        [--max-connection-age-ms N] [--permit-pings]
        [--tls-cert PEM --tls-key PEM [--tls-client-ca PEM]]

It prints the bound port on stdout once it serves. With --tls-cert it serves over TLS (and
requires client certificates signed by --tls-client-ca, when given). Every service name is accepted; the
method name picks the behaviour (Unary, ClientStream, ServerStream, Bidi; anything else is
UNIMPLEMENTED). Request metadata steers each call:

  x-call-id            id written to the events file when the call ends early
  x-sleep-ms           sleep before answering (watching for cancellation)
  x-interval-ms        sleep between streamed responses
  x-count, x-size      ServerStream: number and size of the responses
  x-read-delay-ms      ClientStream: sleep after reading each request message
  x-digest-only        ClientStream: answer an empty message (the digest is in trailers)
  x-status-code        finish with this status (after any streamed responses)
  x-status-message     its message (ASCII), or x-status-message-bin (UTF-8 bytes)
  x-status-details-bin sent back as grpc-status-details-bin (a google.rpc.Status) with it
  x-echo-metadata      echo every x-* request entry as initial metadata and trailers
  x-compress-response  "gzip": compress this call's responses
  x-fail-attempts      Unary: fail (Trailers-Only) while grpc-previous-rpc-attempts < N
  x-fail-code          ...with this status (default 14 UNAVAILABLE)
  x-pushback-ms        ...and this grpc-retry-pushback-ms trailer
  x-record-peer        record "peer CALL_ID PEER" (the relay's connection) in the events

grpc.health.v1.Health/Check answers a hand-encoded HealthCheckResponse; its status starts
SERVING and test.Control/SetHealth (request body b"SERVING" or b"NOT_SERVING") changes it.
Unary records "attempt CALL_ID:PREVIOUS" (PREVIOUS: grpc-previous-rpc-attempts or 0).

Every call's trailers carry x-backend-name. Unary's trailers carry x-time-remaining (the
call's deadline as seen here, in seconds, or "none").

The events file gets "started CALL_ID" when a call with an x-call-id reaches its handler, and
"cancelled CALL_ID" when such a call ends before its handler finished (client cancel, reset,
deadline).
"""

import argparse
import hashlib
import os
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

MAX_MESSAGE = 64 * 1024 * 1024
STATUS_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}
# Finite deadlines further out than this are reported as "none" (grpcio reports no deadline
# as a far-future time).
NO_DEADLINE_SECONDS = 10 * 365 * 24 * 3600


def pattern_message(index, size):
  """Deterministic content of streamed message |index|; both sides can rebuild it."""
  if size == 0:
    return b""
  head = index.to_bytes(8, "big")
  block = _pattern_block(size)
  return (head + block[8:])[:size] if size >= 8 else head[-size:]


_blocks = {}


def _pattern_block(size):
  block = _blocks.get(size)
  if block is None:
    seed = hashlib.sha256(b"grelay-pattern").digest()
    block = (seed * (size // len(seed) + 1))[:size]
    _blocks[size] = block
  return block


class Events:
  """Appends one line per event to a file the test polls."""

  def __init__(self, path):
    self.path_ = path
    self.lock_ = threading.Lock()

  def record(self, kind, call_id):
    if not self.path_ or not call_id:
      return
    with self.lock_:
      with open(self.path_, "a") as f:
        f.write("%s %s\n" % (kind, call_id))
        f.flush()


class Call:
  """Per-call view of the request metadata plus early-termination bookkeeping."""

  def __init__(self, backend, context):
    self.backend_ = backend
    self.context_ = context
    self.md_ = {}
    self.md_list_ = []
    for item in context.invocation_metadata():
      self.md_[item.key] = item.value
      self.md_list_.append((item.key, item.value))
    self.call_id_ = self.text("x-call-id", "")
    self.finished_ = False
    backend.events.record("started", self.call_id_)
    context.add_callback(self._on_done)
    if self.text("x-compress-response", "") == "gzip":
      context.set_compression(grpc.Compression.Gzip)

  def text(self, key, default):
    value = self.md_.get(key)
    if value is None:
      return default
    return value.decode() if isinstance(value, bytes) else value

  def number(self, key, default=0):
    return int(self.text(key, str(default)))

  def _on_done(self):
    # Runs when the RPC terminates. grpcio keeps whether the client side ended in a
    # cancellation (RST_STREAM, deadline) in its private call state; a handler that ends its
    # request loop normally may not have seen it, as a cancelled stream also ends the request
    # iterator. Without that state, an unfinished handler is the sign.
    client = getattr(getattr(self.context_, "_state", None), "client", None)
    if client == "cancelled" or (client is None and not self.finished_):
      self.backend_.events.record("cancelled", self.call_id_)

  def cancelled(self):
    if self.context_.is_active():
      return False
    self.backend_.events.record("cancelled", self.call_id_)
    return True

  def sleep(self, ms):
    """Sleeps |ms|; returns False when the call was cancelled meanwhile."""
    end = time.monotonic() + ms / 1000.0
    while True:
      if self.cancelled():
        return False
      left = end - time.monotonic()
      if left <= 0:
        return True
      time.sleep(min(left, 0.01))

  def echoed(self):
    return [(k, v) for k, v in self.md_list_ if k.startswith("x-")]

  def start(self):
    """Sends echoed initial metadata when asked to; returns False if cancelled first."""
    if not self.sleep(self.number("x-sleep-ms")):
      return False
    if self.text("x-echo-metadata", ""):
      self.context_.send_initial_metadata(self.echoed())
    return True

  def trailers(self, extra=()):
    md = [("x-backend-name", self.backend_.name)] + list(extra)
    details = self.md_.get("x-status-details-bin")
    if details is not None and self.number("x-status-code"):
      md.append(("grpc-status-details-bin", details))
    if self.text("x-echo-metadata", ""):
      md += self.echoed()
      md += [("x-trailer-only", "yes"), ("x-trailer-only-bin", b"\xff\x00trailer\x80")]
    return md

  def status(self):
    """(StatusCode, message) requested by x-status-code, or None."""
    code = self.number("x-status-code")
    if code == 0:
      return None
    message = self.md_.get("x-status-message-bin")
    if message is not None:
      message = message.decode("utf-8")
    else:
      message = self.text("x-status-message", "")
    return STATUS_BY_VALUE[code], message

  def finish(self, extra_trailers=()):
    """Sets trailers and the requested status; the handler returns right after."""
    self.context_.set_trailing_metadata(self.trailers(extra_trailers))
    status = self.status()
    if status is not None:
      self.context_.set_code(status[0])
      self.context_.set_details(status[1])
    self.finished_ = True

  def abort_if_asked(self):
    """Unary: fails before any response or initial metadata, giving a Trailers-Only answer."""
    status = self.status()
    if status is None:
      return
    self.context_.set_trailing_metadata(self.trailers())
    self.finished_ = True
    self.context_.abort(status[0], status[1])


class Backend(grpc.GenericRpcHandler):

  def __init__(self, name, events):
    self.name = name
    self.events = events
    self.handlers_ = {
        "Unary": grpc.unary_unary_rpc_method_handler(self.unary),
        "ClientStream": grpc.stream_unary_rpc_method_handler(self.client_stream),
        "ServerStream": grpc.unary_stream_rpc_method_handler(self.server_stream),
        "Bidi": grpc.stream_stream_rpc_method_handler(self.bidi),
        "Check": grpc.unary_unary_rpc_method_handler(self.health_check),
        "SetHealth": grpc.unary_unary_rpc_method_handler(self.set_health),
    }
    self.serving_ = 1
    self.health_checks = 0

  def service(self, handler_call_details):
    return self.handlers_.get(handler_call_details.method.rsplit("/", 1)[-1])

  def health_check(self, request, context):
    # HealthCheckResponse { status = 1 }: field 1, varint.
    self.health_checks += 1
    return bytes([0x08, self.serving_])

  def set_health(self, request, context):
    self.serving_ = {b"SERVING": 1, b"NOT_SERVING": 2}[bytes(request)]
    return b""

  def unary(self, request, context):
    call = Call(self, context)
    remaining = context.time_remaining()
    if remaining is None or remaining > NO_DEADLINE_SECONDS:
      remaining_text = "none"
    else:
      remaining_text = repr(remaining)
    if not call.sleep(call.number("x-sleep-ms")):
      return b""
    previous = call.number("grpc-previous-rpc-attempts")
    self.events.record("attempt", "%s:%d" % (call.text("x-call-id", ""), previous))
    if call.text("x-record-peer", ""):
      self.events.record("peer", "%s %s" % (call.text("x-call-id", ""), context.peer()))
    if previous < call.number("x-fail-attempts"):
      call.finished_ = True
      pushback = call.text("x-pushback-ms", "")
      trailers = [("x-backend-name", self.name)]
      if pushback:
        trailers.append(("grpc-retry-pushback-ms", pushback))
      context.set_trailing_metadata(trailers)
      context.abort(STATUS_BY_VALUE[call.number("x-fail-code", 14)], "flaky attempt")
    call.abort_if_asked()
    if call.text("x-echo-metadata", ""):
      context.send_initial_metadata(call.echoed())
    call.finish([("x-time-remaining", remaining_text)])
    return request

  def client_stream(self, request_iterator, context):
    call = Call(self, context)
    if not call.start():
      return b""
    delay = call.number("x-read-delay-ms")
    digest = hashlib.sha256()
    count = 0
    total = 0
    keep = not call.text("x-digest-only", "")
    parts = []
    for message in request_iterator:
      count += 1
      total += len(message)
      digest.update(message)
      if keep:
        parts.append(message)
      if delay and not call.sleep(delay):
        return b""
    call.finish([("x-count", str(count)), ("x-total-bytes", str(total)),
                 ("x-sha256", digest.hexdigest())])
    return b"".join(parts)

  def server_stream(self, request, context):
    call = Call(self, context)
    if not call.start():
      return
    count = call.number("x-count")
    size = call.number("x-size")
    interval = call.number("x-interval-ms")
    digest = hashlib.sha256()
    for i in range(count):
      if i and interval and not call.sleep(interval):
        return
      if call.cancelled():
        return
      message = pattern_message(i, size)
      digest.update(message)
      yield message
    call.finish([("x-count", str(count)), ("x-sha256", digest.hexdigest())])

  def bidi(self, request_iterator, context):
    call = Call(self, context)
    if not call.start():
      return
    interval = call.number("x-interval-ms")
    count = 0
    for message in request_iterator:
      if interval and not call.sleep(interval):
        return
      count += 1
      yield message
    call.finish([("x-count", str(count))])


def _read(path):
  with open(path, "rb") as f:
    return f.read()


def serve(port, name, events_path, host="127.0.0.1", max_age_ms=0, permit_pings=False,
          tls_cert=None, tls_key=None, tls_client_ca=None):
  options = [
      ("grpc.max_receive_message_length", MAX_MESSAGE),
      ("grpc.max_send_message_length", MAX_MESSAGE),
  ]
  if max_age_ms:
    options += [("grpc.max_connection_age_ms", max_age_ms),
                ("grpc.max_connection_age_grace_ms", 60000)]
  if permit_pings:
    options += [("grpc.http2.min_ping_interval_without_data_ms", 10),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.max_ping_strikes", 0)]
  server = grpc.server(futures.ThreadPoolExecutor(max_workers=400),
                       handlers=[Backend(name, Events(events_path))],
                       options=options)
  if tls_cert:
    credentials = grpc.ssl_server_credentials(
        [(_read(tls_key), _read(tls_cert))],
        root_certificates=_read(tls_client_ca) if tls_client_ca else None,
        require_client_auth=bool(tls_client_ca))
    bound = server.add_secure_port("%s:%d" % (host, port), credentials)
  else:
    bound = server.add_insecure_port("%s:%d" % (host, port))
  return run_until_stopped(server, bound, "backend", host, port)


def run_until_stopped(server, bound, name, host, port):
  """Starts |server|, bound to port |bound| (0: the bind failed), prints the port on stdout and
  serves until SIGTERM or SIGINT. Returns the process's exit status."""
  if bound == 0:
    print("%s: cannot bind %s:%d" % (name, host, port), file=sys.stderr)
    return 1
  server.start()
  stop = threading.Event()
  signal.signal(signal.SIGTERM, lambda *_: stop.set())
  signal.signal(signal.SIGINT, lambda *_: stop.set())
  sys.stdout.write("%d\n" % bound)
  sys.stdout.flush()
  while not stop.wait(0.5):
    pass
  server.stop(0).wait(5)
  return 0


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--port", type=int, default=0)
  parser.add_argument("--name", default="backend")
  parser.add_argument("--events", default=os.environ.get("BACKEND_EVENTS", ""))
  parser.add_argument("--host", default="127.0.0.1")
  parser.add_argument("--max-connection-age-ms", type=int, default=0)
  parser.add_argument("--permit-pings", action="store_true")
  parser.add_argument("--tls-cert")
  parser.add_argument("--tls-key")
  parser.add_argument("--tls-client-ca")
  args = parser.parse_args()
  return serve(args.port, args.name, args.events, args.host, args.max_connection_age_ms,
               args.permit_pings, args.tls_cert, args.tls_key, args.tls_client_ca)


if __name__ == "__main__":
  sys.exit(main())
