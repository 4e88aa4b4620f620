"""HTTP/1.1 on listeners with web = true (docs/config.md, "HTTP/1.1"): the same port serves
gRPC clients over HTTP/2 and HTTP/1.1 clients; each malformed or oversized request gets its
status and the connection closes while grpcio clients on the port go on; keep-alive,
pipelining, chunked request bodies, the head and idle timeouts, a client that never reads, the
connection counts; TLS with ALPN; and a listener without web = true, unchanged.

Every answer the relay makes itself (4xx, 5xx) is the session's. Successful exchanges are
gRPC-Web calls (application/grpc-web+proto), answered with a chunked body whose last frame
carries the trailers (grpc_post() and assert_echoed() build and read them); plain gRPC over
HTTP/1.1 gets 505.
"""

import os
import socket
import ssl
import struct
import time

import pytest

import support
from edge_support import (ADMIN, ECHO_ROUTE, LegitLoop, assert_metric, check_legit, legit_call,
                          metric, metric_sum, peer_errors, start_relay)
from h1_client import H1Conn, parse_error_answer
from h2_client import GOAWAY, SETTINGS, grpc_frame, grpc_unframe, take_frames
from support import GUARD_SECONDS
from tls_support import Pki, tls_channel

pytestmark = pytest.mark.relay_only

RSS_LIMIT_KIB = 64 * 1024


def _web(relay_factory, echo_backend, **listener):
  """A relay with one web listener (and an admin endpoint); returns (relay, admin)."""
  return start_relay(relay_factory, [ECHO_ROUTE], {"echo": [echo_backend.address]},
                     listener=dict({"web": True}, **listener))


def _answer(address, request, timeout=10):
  """Sends |request| on a new connection; returns (status, fields, body) of the relay's answer
  and checks that the relay closed the connection after it."""
  with H1Conn(address, timeout=timeout) as conn:
    conn.send(request)
    data = conn.read_until_closed(timeout)
  assert data, "the relay closed without an answer"
  return parse_error_answer(data)


# --- the relay's own answers -----------------------------------------------------------------

# A content-type whose request the handler takes without answering before its body ends.
WAITS_FOR_BODY = b"application/grpc-web+proto"

MANY_FIELDS = (b"GET / HTTP/1.1\r\nHost: h\r\n" +
               b"".join(b"X-%d: v\r\n" % i for i in range(100)) + b"\r\n")

# (name, request, status, reason counted in grelay_peer_errors_total)
MALFORMED = [
    ("content-length and transfer-encoding",
     b"POST /test.Echo/Unary HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400, "bad_request"),
    ("two different content-lengths",
     b"POST /test.Echo/Unary HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n"
     b"\r\nabcd", 400, "bad_request"),
    # Found in the body, after the handler has the request: one it does not refuse on its head
    # alone, so that no answer went out before the 400.
    ("bad chunk size",
     b"POST /test.Echo/Unary HTTP/1.1\r\nHost: h\r\nContent-Type: " + WAITS_FOR_BODY +
     b"\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n", 400, "bad_request"),
    ("obs-fold", b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400, "bad_request"),
    ("bare LF", b"GET / HTTP/1.1\nHost: h\n\n", 400, "bad_request"),
    ("no Host", b"GET / HTTP/1.1\r\nX: y\r\n\r\n", 400, "bad_request"),
    ("request line over 8 KiB", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: h\r\n\r\n", 414,
     "head_too_large"),
    ("header section over max_request_metadata",
     b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"v" * 5000 + b"\r\n\r\n", 431, "head_too_large"),
    ("more than 100 fields", MANY_FIELDS, 431, "head_too_large"),
    ("HTTP/2.0 request line", b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, "bad_request"),
    ("an expectation other than 100-continue",
     b"POST / HTTP/1.1\r\nHost: h\r\nExpect: fly\r\nContent-Length: 1\r\n\r\nx", 417,
     "bad_request"),
]


def test_malformed_requests_get_their_status_and_close_while_grpc_goes_on(relay_factory,
                                                                          echo_backend):
  relay, admin = _web(relay_factory, echo_backend, max_request_metadata=4096)
  legit = LegitLoop(relay.address)
  start = time.monotonic()
  counted = {"bad_request": 0, "head_too_large": 0}
  try:
    for name, request, status, reason in MALFORMED:
      got, fields, body = _answer(relay.address, request)
      assert got == status, "%s: answered %d, expected %d" % (name, got, status)
      assert ("content-type", "text/plain") in fields, name
      assert ("connection", "close") in fields, name
      # One line saying why.
      assert body.endswith(b"\n") and body.count(b"\n") == 1 and len(body) > 1, (name, body)
      assert ("content-length", str(len(body))) in fields, name
      counted[reason] += 1
      # A gRPC client on the same port, on a connection of its own, is served meanwhile.
      legit_call(relay.address, name.encode())
  finally:
    results = legit.stop()
  check_legit(results, window=(start, time.monotonic()), min_calls=1)
  for reason, count in counted.items():
    assert_metric(admin, count, "grelay_peer_errors_total", peer="client", reason=reason)
  # One rate-limited warn line per reason and second: at least one of each kind.
  with open(relay.log_path) as f:
    log = f.read()
  assert "(bad_request)" in log and "(head_too_large)" in log


def test_header_timeout_answers_408_and_closes(relay_factory, echo_backend):
  relay, admin = _web(relay_factory, echo_backend, request_headers_timeout="1s")
  with H1Conn(relay.address) as conn:
    conn.send(b"GET /test.Echo/Unary HTTP/1.1\r\nHost: h\r\nX-Half: ")
    started = time.monotonic()
    data = conn.read_until_closed(5)
    took = time.monotonic() - started
  status, fields, body = parse_error_answer(data)
  assert status == 408
  assert ("connection", "close") in fields
  assert body == b"request headers timeout\n"
  assert 0.9 <= took <= 3.0, "answered %.2f s after the head began; the timeout is 1 s" % took
  assert_metric(admin, 1, "grelay_peer_errors_total", peer="client", reason="headers_timeout")
  legit_call(relay.address)


def test_a_client_that_sends_nothing_is_closed_after_preface_timeout(relay_factory,
                                                                     echo_backend):
  relay, admin = _web(relay_factory, echo_backend, preface_timeout="1s")
  with H1Conn(relay.address) as conn:
    started = time.monotonic()
    conn.read_until_closed(5)
    took = time.monotonic() - started
  # Its protocol is not known yet: it is closed as an HTTP/2 client without a preface is.
  assert 0.9 <= took <= 3.0, "closed %.2f s after connecting; preface_timeout is 1 s" % took
  assert_metric(admin, 1, "grelay_peer_errors_total", peer="client", reason="preface_timeout")
  legit_call(relay.address)


def test_a_web_false_listener_treats_http1_bytes_as_before(relay_factory, echo_backend):
  relay = relay_factory(routes=[ECHO_ROUTE], clusters={"echo": [echo_backend.address]})
  with H1Conn(relay.address) as conn:
    conn.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    data = bytearray(conn.read_until_closed(5))
  # SETTINGS first, as it always did, then GOAWAY for the bad preface; no HTTP/1.1 answer.
  assert not data.startswith(b"HTTP/1.1")
  frames = take_frames(data)
  assert frames and frames[0][0] == SETTINGS, frames[:3]
  assert any(f[0] == GOAWAY for f in frames), frames
  legit_call(relay.address)


def test_http2_clients_on_a_web_listener_are_served(relay_factory, echo_backend, grpc_channel):
  relay, _ = _web(relay_factory, echo_backend)
  ch = grpc_channel(relay.address)
  for i in range(3):
    assert support.unary(ch)(b"h2 %d" % i, timeout=GUARD_SECONDS) == b"h2 %d" % i
  stream = support.server_stream(ch)(b"", metadata=[("x-count", "50"), ("x-size", "1000")],
                                     timeout=GUARD_SECONDS)
  assert list(stream) == [support.pattern_message(i, 1000) for i in range(50)]


def test_http1_connections_count_against_max_connections(relay_factory, echo_backend):
  """A connection that moves to HTTP/1.1 keeps its one count: two of them fill a listener of
  max_connections = 2, and its gauge of open connections drops back to 0 when they close."""
  relay, admin = _web(relay_factory, echo_backend, max_connections=2)
  a = H1Conn(relay.address)
  b = H1Conn(relay.address)
  try:
    # Half a head each: both connections are HTTP/1.1 ones now, waiting for the rest.
    a.send(b"GET / HTTP/1.1\r\n")
    b.send(b"GET / HTTP/1.1\r\n")
    assert support.wait_until(
        lambda: metric_sum(admin, "grelay_listener_active_connections") == 2, 5)
    with H1Conn(relay.address) as c:
      # Closed at once.
      assert c.read_until_closed(5) == b""
    # The two still work: each gets its own answer.
    for conn in (a, b):
      conn.send(b"X: y\r\n\r\n")
      assert conn.read_until_closed(5).startswith(b"HTTP/1.1 400 ")
  finally:
    a.close()
    b.close()
  assert support.wait_until(
      lambda: metric_sum(admin, "grelay_listener_active_connections") == 0, 5)
  assert metric_sum(admin, "grelay_listener_connections_total") == 2
  # Their slots are free again.
  legit_call(relay.address)


# --- TLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(workdir):
  p = Pki(os.path.join(workdir, "h1-pki"))
  p.ca_main = p.ca("h1-ca")
  p.relay = p.issue(p.ca_main, "h1-relay", ["DNS:relay.test", "IP:127.0.0.1"], 41)
  return p


@pytest.fixture
def tls_relay(relay_factory, echo_backend, pki):
  """Two TLS listeners: web = true first, then web = false."""
  tls = {"cert": pki.relay[0], "key": pki.relay[1]}
  return relay_factory(routes=[ECHO_ROUTE], clusters={"echo": [echo_backend.address]},
                       listeners=({"address": "127.0.0.1:0", "tls": tls, "web": True},
                                  {"address": "127.0.0.1:0", "tls": tls}), extra=ADMIN)


def _alpn_context(pki, protocols):
  ctx = ssl.create_default_context(cafile=pki.ca_main[0])
  ctx.set_alpn_protocols(list(protocols))
  return ctx


def test_tls_alpn_h2_still_works_with_grpcio(tls_relay, pki):
  for address in tls_relay.addresses:
    ch = tls_channel(address, pki.ca_main[0])
    try:
      assert support.unary(ch)(b"over h2", timeout=GUARD_SECONDS) == b"over h2"
    finally:
      ch.close()
  # A client that offers both gets h2 on either listener.
  for address in tls_relay.addresses:
    with H1Conn(address, tls=_alpn_context(pki, ["http/1.1", "h2"])) as conn:
      assert conn.sock.selected_alpn_protocol() == "h2"


def test_tls_alpn_http11_gets_an_http11_answer_only_where_web_is_on(tls_relay, pki):
  web, plain = tls_relay.addresses
  with H1Conn(web, tls=_alpn_context(pki, ["http/1.1"])) as conn:
    assert conn.sock.selected_alpn_protocol() == "http/1.1"
    conn.send(b"GET /test.Echo/Unary HTTP/1.1\r\nX: no host\r\n\r\n")
    status, fields, _ = parse_error_answer(conn.read_until_closed(5))
  assert status == 400
  assert ("content-type", "text/plain") in fields
  with pytest.raises(ssl.SSLError, match="NO_APPLICATION_PROTOCOL|no application protocol"):
    H1Conn(plain, tls=_alpn_context(pki, ["http/1.1"])).close()
  # grpcio still gets through on both.
  for address in tls_relay.addresses:
    ch = tls_channel(address, pki.ca_main[0])
    try:
      assert support.unary(ch)(b"after", timeout=GUARD_SECONDS) == b"after"
    finally:
      ch.close()


# --- gRPC-Web calls ------------------------------------------------------------------------
# A POST with content-type application/grpc-web+proto and a gRPC-framed body is echoed by the
# echo backend, in a chunked body whose last frame (flag 0x80) carries the trailers.


def grpc_post(message, path="/test.Echo/Unary", extra=b"", chunked=None):
  """A POST of one gRPC-framed |message| (a content-length body, or chunked in pieces of the
  sizes in |chunked|)."""
  body = grpc_frame(message)
  head = (b"POST %s HTTP/1.1\r\nHost: relay.test\r\nContent-Type: application/grpc-web+proto\r\n"
          % path.encode()) + extra
  if chunked is None:
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body
  out = head + b"Transfer-Encoding: chunked\r\n\r\n"
  pos = 0
  for size in chunked:
    piece = body[pos:pos + size]
    pos += len(piece)
    if piece:
      out += b"%x\r\n" % len(piece) + piece + b"\r\n"
  assert pos == len(body), "the chunk sizes do not cover the body"
  return out + b"0\r\n\r\n"


def web_trailers(frames):
  """The messages of a gRPC-Web body and the fields of its trailer frame, as a dict."""
  assert frames and frames[-1][0] == 0x80, frames
  fields = dict(line.split(":", 1) for line in frames[-1][1].decode().split("\r\n") if line)
  return frames[:-1], fields


def assert_echoed(response, message):
  assert response.status == 200, (response.status, response.fields, response.body)
  assert response.field("content-type") == "application/grpc-web+proto"
  assert response.field("transfer-encoding") == "chunked"
  messages, trailers = web_trailers(grpc_unframe(response.body))
  assert messages == [(0, message)]
  assert trailers["grpc-status"] == "0", trailers


def test_grpc_web_call_over_http1(relay_factory, echo_backend, pki):
  relay, _ = _web(relay_factory, echo_backend)
  with H1Conn(relay.address) as conn:
    conn.send(grpc_post(b"hello"))
    assert_echoed(conn.read_response(), b"hello")
  # Over TLS with ALPN http/1.1 too.
  tls = {"cert": pki.relay[0], "key": pki.relay[1]}
  tls_relay = relay_factory(routes=[ECHO_ROUTE], clusters={"echo": [echo_backend.address]},
                            listeners=({"address": "127.0.0.1:0", "tls": tls, "web": True},))
  with H1Conn(tls_relay.address, tls=_alpn_context(pki, ["http/1.1"])) as conn:
    conn.send(grpc_post(b"over tls"))
    assert_echoed(conn.read_response(), b"over tls")


@pytest.mark.parametrize("content_type, status", [(b"application/grpc", 505),
                                                  (b"application/grpc+proto", 505),
                                                  (b"text/plain", 415)])
def test_what_is_no_web_call_is_refused_clearly(relay_factory, echo_backend, content_type,
                                                status):
  """Plain gRPC needs HTTP/2 (505); a content-type of no web protocol is not a call (415).
  The answer says why, and the connection serves the next request."""
  relay, _ = _web(relay_factory, echo_backend)
  body = grpc_frame(b"x")
  with H1Conn(relay.address) as conn:
    conn.send(b"POST /test.Echo/Unary HTTP/1.1\r\nHost: h\r\nContent-Type: %s\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (content_type, len(body), body))
    response = conn.read_response()
    assert response.status == status
    assert response.field("content-type") == "text/plain; charset=utf-8"
    assert response.body == (
        b"gRPC needs HTTP/2; over HTTP/1.1 this listener serves gRPC-Web and Connect calls\n"
        if status == 505 else b"not a gRPC-Web or Connect content-type\n")
    conn.send(grpc_post(b"next"))
    assert_echoed(conn.read_response(), b"next")


def test_keep_alive_two_requests_on_one_socket(relay_factory, echo_backend):
  relay, admin = _web(relay_factory, echo_backend)
  with H1Conn(relay.address) as conn:
    for message in (b"first", b"second"):
      conn.send(grpc_post(message))
      response = conn.read_response()
      assert_echoed(response, message)
      assert response.field("connection") is None
    assert conn.is_open_after(0.3)
  assert metric_sum(admin, "grelay_listener_connections_total") == 1


def test_pipelined_requests_are_answered_in_order(relay_factory, echo_backend):
  relay, _ = _web(relay_factory, echo_backend)
  messages = [b"one", b"two" * 1000, b"three"]
  with H1Conn(relay.address) as conn:
    conn.send(b"".join(grpc_post(m) for m in messages))
    for message in messages:
      assert_echoed(conn.read_response(), message)
    assert conn.is_open_after(0.3)


def test_chunked_request_body(relay_factory, echo_backend):
  relay, _ = _web(relay_factory, echo_backend)
  message = bytes(range(256)) * 40
  with H1Conn(relay.address) as conn:
    # Pieces of odd sizes, one of them splitting the gRPC frame header.
    conn.send(grpc_post(message, chunked=[3, 1, 4000, 1, 5000, 10000]))
    assert_echoed(conn.read_response(), message)


def test_idle_connection_is_closed_after_idle_timeout(relay_factory, echo_backend):
  relay, _ = _web(relay_factory, echo_backend, idle_timeout="1s")
  with H1Conn(relay.address) as conn:
    conn.send(grpc_post(b"then idle"))
    assert_echoed(conn.read_response(), b"then idle")
    started = time.monotonic()
    assert conn.read_until_closed(5) == b""
    took = time.monotonic() - started
  assert 0.9 <= took <= 3.0, "closed %.2f s after the answer; idle_timeout is 1 s" % took


def test_client_that_never_reads_keeps_relay_memory_bounded(relay_factory, echo_backend):
  """A client asks for 256 MiB over HTTP/1.1 and reads none of it: the relay pulls the body
  only while the socket takes it and the backend is held back by flow control, so its RSS
  stays under 64 MiB while grpcio calls on other connections go on."""
  relay, _ = _web(relay_factory, echo_backend)
  with H1Conn(relay.address) as conn:
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    conn.send(grpc_post(b"", path="/test.Echo/ServerStream",
                        extra=b"X-Count: 4096\r\nX-Size: 65536\r\n"))
    deadline = time.monotonic() + 3
    peak = 0
    while time.monotonic() < deadline:
      peak = max(peak, relay.rss_kib())
      legit_call(relay.address, b"meanwhile")
      time.sleep(0.1)
    # The relay has not closed the connection: the answer is only held back.
    assert not conn.closed
  assert peak < RSS_LIMIT_KIB, "relay VmRSS peaked at %d KiB" % peak
  legit_call(relay.address)


def test_drain_lets_the_exchange_in_flight_finish_then_closes(relay_factory,
                                                                     echo_backend):
  relay, _ = _web(relay_factory, echo_backend)
  with H1Conn(relay.address) as conn:
    conn.send(grpc_post(b"", path="/test.Echo/ServerStream",
                        extra=b"X-Count: 10\r\nX-Size: 100\r\nX-Interval-Ms: 100\r\n"))
    time.sleep(0.3)
    relay.stop()
    response = conn.read_response()
    assert response.status == 200
    messages, trailers = web_trailers(grpc_unframe(response.body))
    assert messages == [(0, support.pattern_message(i, 100)) for i in range(10)]
    assert trailers["grpc-status"] == "0"
    assert conn.read_until_closed(5) == b""


def test_closing_the_connection_cancels_the_backend_call(relay_factory, echo_backend):
  """A browser that navigates away closes its HTTP/1.1 connection: the backend stream of the
  call in progress is cancelled."""
  relay, _ = _web(relay_factory, echo_backend)
  cid = support.call_id()
  with H1Conn(relay.address) as conn:
    conn.send(grpc_post(b"", path="/test.Echo/ServerStream",
                        extra=b"X-Call-Id: %s\r\nX-Count: 1000\r\nX-Interval-Ms: 20\r\n" %
                        cid.encode()))
    assert echo_backend.saw_start(cid)
  assert echo_backend.saw_cancel(cid)
