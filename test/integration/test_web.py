"""gRPC-Web and Connect calls on a `web = true` listener, over HTTP/2, with raw frames.

The relay translates each web call to plain gRPC toward backend.py (which echoes, streams and
fails as its request metadata asks) and back, without decoding a message: these tests check
the translation byte by byte, where real client libraries (test_web_clients.py) check that
those bytes are what browsers and Node clients expect. Every request here is built by hand
with h2_client, so the tests can also send what no library would: base64 split at every
offset, bodies cut inside a group, bad timeouts, oversized unary bodies, and preflights from
origins the config does not allow.
"""

import base64
import gzip
import json
import os
import struct

import pytest

import admin_support
import support
from backend import pattern_message
from h2_client import CANCEL, MIB, NO_ERROR, PROTOCOL_ERROR, H2Client, grpc_frame

pytestmark = pytest.mark.relay_only

PAGE = "http://page.example"
WEB_CT = "application/grpc-web+proto"


def trailer_frame(fields):
  block = "".join("%s:%s\r\n" % kv for kv in fields).encode()
  return b"\x80" + struct.pack(">I", len(block)) + block


def split_frames(data):
  """[(flags, payload)] of length-prefixed frames (gRPC-Web or Connect envelopes)."""
  out = []
  while data:
    assert len(data) >= 5, "a frame prefix is cut: %r" % data
    flags, length = data[0], struct.unpack(">I", data[1:5])[0]
    assert len(data) >= 5 + length, "a frame is cut: %r" % data
    out.append((flags, bytes(data[5:5 + length])))
    data = data[5 + length:]
  return out


def web_trailers(payload):
  """The fields of a gRPC-Web trailer frame's payload, as a dict."""
  fields = {}
  for line in payload.decode().split("\r\n"):
    if line:
      name, value = line.split(":", 1)
      fields[name] = value
  return fields


@pytest.fixture(scope="module")
def env(workdir):
  backend = support.BackendProcess(os.path.join(workdir, "web"), name="web-backend")
  listeners = [
      {"address": "127.0.0.1:0", "web": True, "max_web_unary_body": 4096,
       "cors": {"allow_origins": [PAGE, "https://*.example.org"], "allow_headers": ["x-custom"],
                "expose_headers": ["x-echo"], "max_age": "90s"}},
      {"address": "127.0.0.1:0"},
      {"address": "127.0.0.1:0", "web": True, "max_web_unary_body": 8 * 1024 * 1024},
  ]
  routes = [
      {"service": "cors.Route", "cluster": "down",
       "cors": {"allow_origins": ["https://other.example"]}},
      {"prefix": "/test.", "cluster": "b"},
  ]
  # "down" has no backend listening: a preflight answered without one proves none was asked.
  clusters = {"b": [backend.address], "down": ["127.0.0.1:%d" % support.free_port()]}
  text = support.render_config(routes, clusters, listeners=listeners,
                               extra='[admin]\naddress = "127.0.0.1:0"\n'
                                     '[access_log]\npath = "%s"\n'
                                     % os.path.join(workdir, "web", "access.log"))
  relay = support.RelayProcess(text, os.path.join(workdir, "web"), name="web-relay",
                               listeners=3)
  lines = relay.log.wait_for(lambda ls: [m for m in map(admin_support.ADMIN_RE.search, ls) if m],
                             10)
  admin = (lines[0].group(1), int(lines[0].group(2)))
  yield {"relay": relay, "backend": backend, "web": relay.addresses[0],
         "plain": relay.addresses[1], "big": relay.addresses[2], "admin": admin,
         "access_log": os.path.join(workdir, "web", "access.log")}
  relay.stop()
  backend.stop()


@pytest.fixture
def conn(env):
  with H2Client(env["web"]) as c:
    c.handshake()
    yield c


def web_call(conn, path, body, content_type=WEB_CT, headers=(), timeout=10):
  return conn.call(path, body=body, content_type=content_type, te=None, headers=list(headers),
                   timeout=timeout)


# --- gRPC-Web ---------------------------------------------------------------------------------


def test_grpc_web_unary_gets_its_trailers_as_the_last_frame(conn):
  st = web_call(conn, "/test.Echo/Unary", grpc_frame(b"hello"),
                headers=[("x-echo-metadata", "1"), ("x-tag", "seven")])
  assert st.header(":status") == "200"
  assert st.header("content-type") == WEB_CT
  assert st.header("x-tag") == "seven"
  # No HTTP/2 trailers: a browser cannot read them.
  assert st.trailers is None
  frames = split_frames(bytes(st.data))
  assert frames[0] == (0, b"hello")
  assert len(frames) == 2 and frames[1][0] == 0x80
  trailers = web_trailers(frames[1][1])
  assert trailers["grpc-status"] == "0"
  assert trailers["x-tag"] == "seven"
  assert trailers["x-backend-name"] == "web-backend"


def test_grpc_web_server_stream_flows_message_by_message(conn):
  sid = conn.start("/test.Echo/ServerStream", body=grpc_frame(b"go"), content_type=WEB_CT,
                   te=None, headers=[("x-count", "3"), ("x-size", "5"), ("x-interval-ms", "300")])
  st = conn.stream(sid)
  # The first message reaches the client while the backend still sleeps before the next:
  # nothing waits for the whole response.
  assert conn.wait(lambda: len(st.data) >= 10, 10)
  assert not st.ended
  assert split_frames(bytes(st.data)[:10]) == [(0, pattern_message(0, 5))]
  st = conn.wait_stream(sid)
  frames = split_frames(bytes(st.data))
  assert [f[0] for f in frames] == [0, 0, 0, 0x80]
  assert [f[1] for f in frames[:3]] == [pattern_message(i, 5) for i in range(3)]
  assert web_trailers(frames[3][1])["x-count"] == "3"


def test_grpc_web_error_status_is_trailers_only_headers(conn):
  st = web_call(conn, "/test.Echo/Unary", grpc_frame(b"x"),
                headers=[("x-status-code", "7"), ("x-status-message", "no entry")])
  assert st.header(":status") == "200"
  assert st.header("content-type") == WEB_CT
  assert st.header("grpc-status") == "7"
  assert st.header("grpc-message") == "no entry"
  assert bytes(st.data) == b""


def test_grpc_web_text_request_split_at_every_offset(conn):
  body = base64.b64encode(grpc_frame(b"split me anywhere"))
  for cut in range(1, len(body)):
    sid = conn.open(conn.request_fields("/test.Echo/Unary", content_type="application/grpc-web-text",
                                        te=None))
    conn.data(sid, body[:cut])
    conn.data(sid, body[cut:], end_stream=True)
    st = conn.wait_stream(sid)
    assert st.header("content-type") == "application/grpc-web-text+proto", cut
    frames = split_frames(_decode_pieces(bytes(st.data)))
    assert frames[0] == (0, b"split me anywhere"), cut
    assert web_trailers(frames[1][1])["grpc-status"] == "0", cut


def test_grpc_web_text_separately_padded_pieces(conn):
  # Two messages, each encoded on its own: padding in the middle of the body.
  body = base64.b64encode(grpc_frame(b"a")) + base64.b64encode(grpc_frame(b"bc"))
  assert body.count(b"=") >= 2
  st = web_call(conn, "/test.Echo/Bidi", body, content_type="application/grpc-web-text")
  frames = split_frames(_decode_pieces(bytes(st.data)))
  assert frames[:2] == [(0, b"a"), (0, b"bc")]
  assert web_trailers(frames[2][1])["x-count"] == "2"


def _decode_pieces(text):
  """Decodes a base64 text made of separately padded pieces."""
  out, i = b"", 0
  while i < len(text):
    out += base64.b64decode(text[i:i + 4])
    i += 4
  return out


def test_grpc_web_text_malformed_base64_is_internal(conn):
  st = web_call(conn, "/test.Echo/Unary", b"AAAA*AAA", content_type="application/grpc-web-text")
  assert st.header(":status") == "200"
  assert st.header("grpc-status") == "13"
  assert st.header("grpc-message") == "malformed grpc-web-text request body (base64)"


def test_grpc_web_text_body_cut_inside_a_group_is_internal(conn):
  body = base64.b64encode(grpc_frame(b"abc"))[:-1]
  st = web_call(conn, "/test.Echo/Unary", body, content_type="application/grpc-web-text")
  assert st.header("grpc-status") == "13"
  assert st.header("grpc-message") == "grpc-web-text request body ends inside a base64 group"


def test_client_reset_cancels_the_backend_call(env, conn):
  cid = support.call_id()
  sid = conn.start("/test.Echo/ServerStream", body=grpc_frame(b"go"), content_type=WEB_CT,
                   te=None, headers=[("x-call-id", cid), ("x-count", "1000"),
                                     ("x-interval-ms", "20")])
  conn.wait(lambda: len(conn.stream(sid).data) > 0, 10)
  conn.rst(sid, CANCEL)
  assert support.wait_until(lambda: "cancelled " + cid in open(env["backend"].events_path).read(),
                            10)


# --- Connect ------------------------------------------------------------------------------------


def test_connect_unary_body_has_no_prefix_and_trailers_become_fields(conn):
  st = web_call(conn, "/test.Echo/Unary", b"plain body", content_type="application/proto",
                headers=[("connect-protocol-version", "1"), ("x-echo-metadata", "1"),
                         ("x-tag", "t")])
  assert st.header(":status") == "200"
  assert st.header("content-type") == "application/proto"
  assert st.header("content-length") == str(len(b"plain body"))
  assert bytes(st.data) == b"plain body"
  assert st.header("x-tag") == "t"
  assert st.header("trailer-x-tag") == "t"
  assert st.header("trailer-x-backend-name") == "web-backend"
  assert st.header("grpc-status") is None and st.header("trailer-grpc-status") is None


def test_connect_unary_with_content_length_streams_the_prefix(conn):
  st = web_call(conn, "/test.Echo/Unary", b"sized", content_type="application/proto",
                headers=[("content-length", "5")])
  assert st.header(":status") == "200"
  assert bytes(st.data) == b"sized"


def test_connect_unary_error_is_http_status_and_json(conn):
  st = web_call(conn, "/test.Echo/Unary", b"x", content_type="application/proto",
                headers=[("x-status-code", "5"), ("x-status-message", "gone away")])
  assert st.header(":status") == "404"
  assert st.header("content-type") == "application/json"
  assert json.loads(bytes(st.data)) == {"code": "not_found", "message": "gone away"}


# google.rpc.Status{code: 5, message: "gone", details: [RetryInfo{retry_delay: 1s}]}.
STATUS_DETAILS = (b"\x08\x05\x12\x04gone\x1a\x30\x0a\x28type.googleapis.com/google.rpc.RetryInfo"
                  b"\x12\x04\x0a\x02\x08\x01")


def test_connect_errors_carry_typed_details(conn):
  fields = [("x-status-code", "5"), ("x-status-message", "gone"),
            ("x-status-details-bin", base64.b64encode(STATUS_DETAILS).decode())]
  detail = {"type": "google.rpc.RetryInfo", "value": "CgIIAQ"}
  st = web_call(conn, "/test.Echo/Unary", b"x", content_type="application/proto",
                headers=fields)
  assert st.header(":status") == "404"
  assert json.loads(bytes(st.data)) == {"code": "not_found", "message": "gone",
                                        "details": [detail]}
  st = web_call(conn, "/test.Echo/ServerStream", grpc_frame(b"go"),
                content_type="application/connect+proto", headers=fields + [("x-count", "1")])
  end = json.loads(split_frames(bytes(st.data))[-1][1])
  assert end["error"] == {"code": "not_found", "message": "gone", "details": [detail]}


def test_connect_unary_unknown_method_is_unimplemented(conn):
  st = web_call(conn, "/nowhere.Svc/Method", b"x", content_type="application/proto")
  assert st.header(":status") == "501"
  assert json.loads(bytes(st.data))["code"] == "unimplemented"


def test_connect_timeout_is_the_call_deadline(conn):
  st = web_call(conn, "/test.Echo/Unary", b"x", content_type="application/proto",
                headers=[("connect-timeout-ms", "100"), ("x-sleep-ms", "3000")])
  assert st.header(":status") == "504"
  assert json.loads(bytes(st.data))["code"] == "deadline_exceeded"


def test_connect_timeout_reaches_the_backend_as_grpc_timeout(conn):
  st = web_call(conn, "/test.Echo/Unary", b"x", content_type="application/proto",
                headers=[("connect-timeout-ms", "20000")])
  remaining = float(st.header("trailer-x-time-remaining"))
  assert 0 < remaining <= 20.0


def test_connect_invalid_timeout_is_invalid_argument(conn):
  st = web_call(conn, "/test.Echo/Unary", b"x", content_type="application/proto",
                headers=[("connect-timeout-ms", "soon")])
  assert st.header(":status") == "400"
  assert json.loads(bytes(st.data)) == {"code": "invalid_argument",
                                        "message": "invalid connect-timeout-ms"}


def test_connect_unary_body_over_the_limit_is_resource_exhausted(conn):
  st = web_call(conn, "/test.Echo/Unary", b"z" * 5000, content_type="application/proto")
  assert st.header(":status") == "429"
  body = json.loads(bytes(st.data))
  assert body["code"] == "resource_exhausted"
  assert "max_web_unary_body (4096 bytes)" in body["message"]


def test_connect_unary_answer_over_the_limit_is_resource_exhausted(conn):
  st = web_call(conn, "/test.Echo/ServerStream", b"x", content_type="application/proto",
                headers=[("x-count", "3"), ("x-size", "2000")])
  assert st.header(":status") == "429"
  assert json.loads(bytes(st.data))["code"] == "resource_exhausted"


def test_connect_unary_with_several_messages_is_internal(conn):
  st = web_call(conn, "/test.Echo/ServerStream", b"x", content_type="application/proto",
                headers=[("x-count", "2"), ("x-size", "3")])
  assert st.header(":status") == "500"
  assert json.loads(bytes(st.data)) == {
      "code": "internal", "message": "the backend answered other than one message"}


def test_connect_stream_ends_with_an_end_of_stream_message(conn):
  st = web_call(conn, "/test.Echo/ServerStream", grpc_frame(b"go"),
                content_type="application/connect+proto",
                headers=[("x-count", "2"), ("x-size", "4")])
  assert st.header(":status") == "200"
  assert st.header("content-type") == "application/connect+proto"
  frames = split_frames(bytes(st.data))
  assert [f[0] for f in frames] == [0, 0, 2]
  end = json.loads(frames[2][1])
  assert "error" not in end
  assert end["metadata"]["x-count"] == ["2"]


def test_connect_stream_error_is_in_the_end_of_stream_message(conn):
  st = web_call(conn, "/test.Echo/ServerStream", grpc_frame(b"go"),
                content_type="application/connect+proto",
                headers=[("x-count", "1"), ("x-size", "4"), ("x-status-code", "9"),
                         ("x-status-message", "not now")])
  assert st.header(":status") == "200"
  frames = split_frames(bytes(st.data))
  assert [f[0] for f in frames] == [0, 2]
  assert json.loads(frames[1][1])["error"] == {"code": "failed_precondition",
                                               "message": "not now"}


def test_connect_unary_compressed_both_ways(conn):
  # Long enough that compressing it pays: the backend compresses only then.
  message = b"squeezed " * 40
  st = web_call(conn, "/test.Echo/Unary", gzip.compress(message),
                content_type="application/proto",
                headers=[("content-encoding", "gzip"), ("accept-encoding", "gzip"),
                         ("x-compress-response", "gzip")])
  assert st.header(":status") == "200"
  assert st.header("content-encoding") == "gzip"
  assert gzip.decompress(bytes(st.data)) == message


def test_connect_json_codec_passes_by_name(conn):
  st = web_call(conn, "/test.Echo/Unary", b'{"name":"x"}', content_type="application/json",
                headers=[("x-echo-metadata", "1")])
  assert st.header(":status") == "200"
  assert st.header("content-type") == "application/json"
  assert bytes(st.data) == b'{"name":"x"}'


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "application/octet-stream"])
def test_simple_request_content_types_are_not_connect_calls(env, conn, content_type):
  """A page on any origin may POST these without a preflight: none is taken for a Connect
  unary call, so none reaches a backend."""
  cid = support.call_id()
  st = web_call(conn, "/test.Echo/Unary", b"x", content_type=content_type,
                headers=[("x-call-id", cid), ("origin", "http://evil.example")])
  assert st.header(":status") == "415"
  assert "started " + cid not in open(env["backend"].events_path).read()


# --- what a hostile client can make the relay hold -------------------------------------------


def test_held_connect_unary_bodies_are_bounded_by_the_connection_window(env):
  """A Connect unary body without content-length is held whole; its stream gets window as it
  comes, but what all the connection's streams hold stays within the connection's window
  (16 MiB), however many streams never end. Once they are reset the window comes back."""
  with H2Client(env["big"]) as c:
    c.handshake()
    # The backend waits for each body to end, which never comes.
    sids = [c.start("/test.Echo/Unary", body=b"h" * MIB, end_stream=False,
                    content_type="application/proto", te=None) for _ in range(24)]
    sent = c.wait_quiet(0.5)
    assert 16 * MIB - 64 * 1024 <= sent <= 16 * MIB
    for sid in sids:
      c.rst(sid, CANCEL)
    body = b"z" * (2 * MIB)
    st = web_call(c, "/test.Echo/Unary", body, content_type="application/proto")
    assert st.header(":status") == "200"
    assert bytes(st.data) == body


def test_text_bodies_refused_midway_give_their_window_back(conn):
  """Each refused grpc-web-text request returns the window of what it sent, so a connection
  whose requests keep failing still carries the next call."""
  bad = b"A" * 16383 + b"!"
  for _ in range(1100):
    st = web_call(conn, "/test.Echo/Unary", bad, content_type="application/grpc-web-text")
    assert st.header("grpc-status") == "13"
  st = web_call(conn, "/test.Echo/Unary", grpc_frame(b"after"))
  assert split_frames(bytes(st.data))[0] == (0, b"after")


def test_an_answered_web_stream_is_released(conn):
  """The relay answered while the client still sends: its stream is reset with NO_ERROR, as a
  gRPC answer's is, so it holds nothing."""
  sid = conn.start("/nowhere.Svc/Method", body=b"partial", end_stream=False,
                   content_type="application/proto", te=None)
  st = conn.wait_stream(sid)
  assert st.header(":status") == "501"
  assert st.reset_code == NO_ERROR


def test_connect_content_length_over_32_bits_is_not_framed(env, conn):
  cid = support.call_id()
  sid = conn.open(conn.request_fields("/test.Echo/Bidi", content_type="application/proto",
                                      te=None) + [("content-length", "4294967301"),
                                                  ("x-call-id", cid)])
  conn.data(sid, b"hello" + grpc_frame(b"smuggled"), end_stream=True)
  st = conn.wait_stream(sid)
  assert st.reset_code == PROTOCOL_ERROR
  assert "started " + cid not in open(env["backend"].events_path).read()


def test_the_first_connect_timeout_counts(conn):
  st = web_call(conn, "/test.Echo/Unary", b"x", content_type="application/proto",
                headers=[("connect-timeout-ms", "100"), ("connect-timeout-ms", "5000000"),
                         ("x-sleep-ms", "3000")])
  assert st.header(":status") == "504"
  assert json.loads(bytes(st.data))["code"] == "deadline_exceeded"


@pytest.mark.parametrize("flags", [0x80, 0x02])
def test_request_messages_with_reserved_flags_are_refused(env, conn, flags):
  cid = support.call_id()
  message = bytes([flags]) + struct.pack(">I", 3) + b"abc"
  st = web_call(conn, "/test.Echo/Unary", message, headers=[("x-call-id", cid)])
  assert st.header("grpc-status") == "3"
  assert st.header("grpc-message") == "request message with reserved flags set"
  st = web_call(conn, "/test.Echo/Bidi", message, content_type="application/connect+proto")
  frames = split_frames(bytes(st.data))
  assert frames[-1][0] == 2
  assert json.loads(frames[-1][1])["error"] == {
      "code": "invalid_argument", "message": "request message with reserved flags set"}


# --- CORS -----------------------------------------------------------------------------------------


def preflight(conn, path, origin, headers="content-type,x-grpc-web", method="POST"):
  fields = [("origin", origin), ("access-control-request-method", method)]
  if headers:
    fields.append(("access-control-request-headers", headers))
  return conn.call(path, method="OPTIONS", content_type=None, te=None, headers=fields)


def test_preflight_from_an_allowed_origin(conn):
  st = preflight(conn, "/test.Echo/Unary", PAGE, headers="content-type,x-grpc-web,x-custom")
  assert st.header(":status") == "204"
  assert st.header("access-control-allow-origin") == PAGE
  assert st.header("access-control-allow-methods") == "POST"
  assert st.header("access-control-allow-headers") == "content-type,x-grpc-web,x-custom"
  assert st.header("access-control-max-age") == "90"
  assert st.header("vary") == "origin, access-control-request-headers"


def test_preflight_wildcard_subdomain(conn):
  st = preflight(conn, "/test.Echo/Unary", "https://app.example.org")
  assert st.header(":status") == "204"
  assert st.header("access-control-allow-origin") == "https://app.example.org"
  st = preflight(conn, "/test.Echo/Unary", "https://example.org")
  assert st.header(":status") == "403"


def test_preflight_from_another_origin_is_refused(conn):
  st = preflight(conn, "/test.Echo/Unary", "http://evil.example")
  assert st.header(":status") == "403"
  assert st.header("access-control-allow-origin") is None


def test_preflight_asking_for_an_unlisted_header_is_refused(conn):
  st = preflight(conn, "/test.Echo/Unary", PAGE, headers="content-type,x-secret")
  assert st.header(":status") == "403"
  assert b"x-secret" in bytes(st.data)


def test_route_cors_replaces_the_listener_cors_and_needs_no_backend(conn):
  st = preflight(conn, "/cors.Route/Any", "https://other.example")
  assert st.header(":status") == "204"
  assert st.header("access-control-allow-origin") == "https://other.example"
  st = preflight(conn, "/cors.Route/Any", PAGE)
  assert st.header(":status") == "403"


def test_cors_fields_on_a_web_answer(conn):
  st = web_call(conn, "/test.Echo/Unary", grpc_frame(b"x"), headers=[("origin", PAGE)])
  assert st.header("access-control-allow-origin") == PAGE
  assert st.header("access-control-expose-headers") == \
      "grpc-status, grpc-message, grpc-status-details-bin, x-echo"
  st = web_call(conn, "/test.Echo/Unary", grpc_frame(b"x"),
                headers=[("origin", "http://evil.example")])
  assert st.header("access-control-allow-origin") is None


# --- the same listener, and listeners without web -------------------------------------------------


def test_plain_grpc_on_the_web_listener(env):
  with support.channel(env["web"]) as ch:
    assert support.unary(ch)(b"still grpc", timeout=10) == b"still grpc"


def test_grpc_web_on_a_listener_without_web_is_refused(env):
  with H2Client(env["plain"]) as c:
    c.handshake()
    st = web_call(c, "/test.Echo/Unary", grpc_frame(b"x"))
  assert st.header(":status") == "415"


def test_metrics_and_access_log_name_the_protocol(env, conn):
  names = ["grelay_listener_grpc_web_calls_total", "grelay_listener_grpc_web_text_calls_total",
           "grelay_listener_connect_calls_total", "grelay_listener_cors_preflights_total"]

  def totals():
    _, _, text = admin_support.get(env["admin"], "/metrics")
    samples = admin_support.parse(text)
    return [sum(v for (n, _), v in samples.items() if n == name) for name in names]

  before = totals()
  web_call(conn, "/test.Echo/Unary", grpc_frame(b"m"))
  web_call(conn, "/test.Echo/Unary", base64.b64encode(grpc_frame(b"m")),
           content_type="application/grpc-web-text")
  web_call(conn, "/test.Echo/Unary", b"m", content_type="application/proto")
  preflight(conn, "/test.Echo/Unary", PAGE)
  assert [a - b for a, b in zip(totals(), before)] == [1, 1, 1, 1]
  conn.call("/test.Echo/Unary", body=grpc_frame(b"m"))

  def protocols():
    try:
      with open(env["access_log"]) as f:
        return {json.loads(line)["protocol"] for line in f if line.strip()}
    except FileNotFoundError:
      return set()

  assert support.wait_until(
      lambda: protocols() == {"grpc", "grpc-web", "grpc-web-text", "connect"}, 10)
