"""Malformed request header blocks from clients (RFC 9113 sections 8.2 and 8.3).

A malformed request is a stream error: RST_STREAM(PROTOCOL_ERROR) on its stream, nothing of it
reaches a backend, and its connection goes on serving other calls. grelay's own RequestCheck
gives these answers (nghttp2's HTTP messaging checks are off); where the answer is something
else (a field accepted, a relay-made status) the test asserts exactly that and says so.

Header blocks are built by hand from HPACK literals (h2_client.literal_header_block: never
indexed, no Huffman coding), so a test controls every byte of every name and value: the hpack
package would lowercase names. The backend is h2_backends.ScriptBackend; each request carries
an x-call-id to look up what the backend saw.
"""

import pytest

import support
from h2_backends import ScriptBackend, script_config
from h2_client import CANCEL, PROTOCOL_ERROR, STREAM_CLOSED, H2Client, grpc_frame, grpc_unframe

pytestmark = pytest.mark.relay_only

BODY = grpc_frame(b"malformed?")


def request(conn, fields, body=BODY):
  """A whole request: HEADERS (a literal header block), then |body| in one DATA frame with
  END_STREAM."""
  sid = conn.open(fields, end_stream=not body)
  if body:
    conn.data(sid, body, end_stream=True)
  return sid


def request_fields(conn, cid, method="Echo"):
  """A well-formed gRPC request to the ScriptBackend; tests break it one way at a time."""
  return [(":method", "POST"), (":scheme", "http"), (":path", "/test.Script/" + method),
          (":authority", conn.authority), ("content-type", "application/grpc"),
          ("te", "trailers"), ("x-call-id", cid)]


def replaced(fields, name, value):
  return [(n, value if n == name else v) for n, v in fields]


def without(fields, name):
  return [(n, v) for n, v in fields if n != name]


def with_pseudo(fields, name, value):
  """|fields| with one more pseudo-header, still ahead of every regular field."""
  return fields[:4] + [(name, value)] + fields[4:]


# --- fixtures and checks ------------------------------------------------------------------


@pytest.fixture(scope="module")
def script():
  backend = ScriptBackend()
  yield backend
  backend.close()


@pytest.fixture(scope="module")
def relay(module_relay_factory, script):
  return module_relay_factory(**script_config(script.address))


@pytest.fixture
def conn(relay):
  c = H2Client(relay.address)
  yield c
  c.close()


def records(script, cid):
  return [r for r in script.streams() if r.header("x-call-id") == cid]


def assert_stream_error(conn, sid):
  """|sid| was reset with PROTOCOL_ERROR before any response; the connection lives on."""
  st = conn.wait_stream(sid, 5)
  codes = conn.stream(sid).resets
  assert codes and codes[0] == PROTOCOL_ERROR, "expected RST_STREAM(PROTOCOL_ERROR): %s %r" % (
      st.describe(), codes)
  # Frames the client sent after the reset may draw a STREAM_CLOSED reset; nothing else.
  assert set(codes) <= {PROTOCOL_ERROR, STREAM_CLOSED}, codes
  assert st.headers is None and not st.data, st.describe()
  assert conn.goaway is None, "a stream error became a connection error: GOAWAY %r" % (
      conn.goaway,)


def good_call(conn, script, message=b"good"):
  """An Echo call on |conn| is answered intact, through the backend."""
  assert conn.goaway is None and not conn.closed, "connection gone: GOAWAY %r" % (conn.goaway,)
  cid = support.call_id()
  st = conn.wait_stream(conn.start("/test.Script/Echo", body=grpc_frame(message),
                                   headers=[("x-call-id", cid)]), 10)
  assert st.ended and st.reset_code is None, st.describe()
  assert st.grpc_status() == 0, st.describe()
  assert grpc_unframe(bytes(st.data)) == [(0, message)]
  assert records(script, cid), "the good call never reached the backend"


def assert_rejected(conn, script, sid, cid):
  """The whole contract for a malformed request header block."""
  assert_stream_error(conn, sid)
  # The good call goes over the same client and backend connections: had the malformed
  # request been forwarded, the backend would have seen it first.
  good_call(conn, script)
  assert not records(script, cid), "a malformed request reached the backend"


def assert_served(conn, script, sid, cid):
  """The request was answered by the backend; returns what the backend saw."""
  st = conn.wait_stream(sid, 10)
  assert st.ended and not conn.stream(sid).resets, st.describe()
  assert st.grpc_status() == 0, st.describe()
  assert bytes(st.data) == BODY
  seen = records(script, cid)
  assert len(seen) == 1 and seen[0].ended, "backend records: %r" % seen
  good_call(conn, script)
  return seen[0]


def check_rejected(conn, script, mutate):
  cid = support.call_id()
  sid = request(conn, mutate(request_fields(conn, cid)))
  assert_rejected(conn, script, sid, cid)


# --- 8.2.1: field names and values --------------------------------------------------------


@pytest.mark.parametrize("name", ["X-Foo", "x-fOo", "GRPC-TIMEOUT"])
def test_uppercase_field_name_is_a_stream_error(conn, script, name):
  check_rejected(conn, script, lambda f: f + [(name, "1")])


# RFC 9113 forbids 0x00-0x20, 0x7f-0xff and ':' in regular names; today's check goes further
# and takes only token characters (RFC 9110 section 5.6.2), so '(' and '"' are refused too.
BAD_NAMES = {
    "space": "x foo",
    "nul": "x\x00y",
    "colon": "x:y",
    "tab": "x\ty",
    "del": "x\x7fy",
    "high_byte": "x\xe9y",
    "paren_not_token": "x(y",
    "quote_not_token": "x\"y",
}


@pytest.mark.parametrize("name", list(BAD_NAMES.values()), ids=list(BAD_NAMES))
def test_invalid_field_name_character_is_a_stream_error(conn, script, name):
  check_rejected(conn, script, lambda f: f + [(name, "1")])


def test_empty_field_name_is_a_stream_error(conn, script):
  # HPACK carries it fine (no connection error); the name is what is malformed.
  check_rejected(conn, script, lambda f: f + [("", "1")])


# RFC 9113 forbids NUL, CR, LF and leading/trailing SP or HTAB; today's check also refuses the
# other controls (0x01-0x08, 0x0b-0x1f) and DEL.
BAD_VALUES = {
    "nul": "a\x00b",
    "cr": "a\rb",
    "lf": "a\nb",
    "crlf_injection": "a\r\nx-injected: 1",
    "leading_space": " a",
    "trailing_space": "a ",
    "leading_tab": "\ta",
    "trailing_tab": "a\t",
    "only_space": " ",
    "control_0x01": "a\x01b",
    "del": "a\x7fb",
}


@pytest.mark.parametrize("value", list(BAD_VALUES.values()), ids=list(BAD_VALUES))
def test_invalid_field_value_is_a_stream_error(conn, script, value):
  check_rejected(conn, script, lambda f: f + [("x-foo", value)])


GOOD_VALUES = {
    "empty": "",
    "inner_space_and_tab": "a b\tc",
    "obs_text_utf8": "caf\xc3\xa9",  # bytes 0x80-0xff are field-vchar (obs-text)
    "visible_ascii": "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
}


@pytest.mark.parametrize("value", list(GOOD_VALUES.values()), ids=list(GOOD_VALUES))
def test_valid_field_value_is_forwarded_unchanged(conn, script, value):
  # The other side of the check: what RFC 9113 allows must still pass, byte for byte.
  cid = support.call_id()
  sid = request(conn, request_fields(conn, cid) + [("x-foo", value)])
  seen = assert_served(conn, script, sid, cid)
  # The backend decodes values as UTF-8.
  raw = value if isinstance(value, bytes) else value.encode("latin-1")
  assert seen.header("x-foo") == raw.decode("utf-8")


# --- 8.3: pseudo-header fields ------------------------------------------------------------


BAD_PSEUDO = {
    "unknown": (":foo", "bar"),
    "status_in_request": (":status", "200"),
    # The relay does not send SETTINGS_ENABLE_CONNECT_PROTOCOL.
    "protocol_without_extended_connect": (":protocol", "websocket"),
    "uppercase": (":Path", "/test.Script/Echo"),
    "empty_name_after_colon": (":", "x"),
}


@pytest.mark.parametrize("field", list(BAD_PSEUDO.values()), ids=list(BAD_PSEUDO))
def test_bad_pseudo_header_is_a_stream_error(conn, script, field):
  check_rejected(conn, script, lambda f: with_pseudo(f, *field))


@pytest.mark.parametrize("name", [":method", ":scheme", ":path", ":authority"])
def test_pseudo_header_after_a_regular_field_is_a_stream_error(conn, script, name):
  def mutate(fields):
    value = dict(fields)[name]
    return without(fields, name) + [(name, value)]

  check_rejected(conn, script, mutate)


@pytest.mark.parametrize("name", [":method", ":scheme", ":path", ":authority"])
def test_duplicate_pseudo_header_is_a_stream_error(conn, script, name):
  # Even with the very same value.
  check_rejected(conn, script, lambda f: with_pseudo(f, name, dict(f)[name]))


@pytest.mark.parametrize("name", [":method", ":scheme", ":path", ":authority"])
def test_missing_pseudo_header_is_a_stream_error(conn, script, name):
  # :authority is required too unless a host field stands in for it (see below).
  check_rejected(conn, script, lambda f: without(f, name))


@pytest.mark.parametrize("name", [":method", ":scheme", ":path", ":authority"])
def test_empty_pseudo_header_is_a_stream_error(conn, script, name):
  check_rejected(conn, script, lambda f: replaced(f, name, ""))


BAD_PSEUDO_VALUES = {
    "path_without_slash": (":path", "foo"),
    "path_asterisk_with_post": (":path", "*"),
    "path_absolute_form": (":path", "http://example.com/test.Script/Echo"),
    "method_with_space": (":method", "PO ST"),
    "scheme_with_space": (":scheme", "ht tp"),
    "authority_with_space": (":authority", "example com"),
}


@pytest.mark.parametrize("field", list(BAD_PSEUDO_VALUES.values()), ids=list(BAD_PSEUDO_VALUES))
def test_invalid_pseudo_header_value_is_a_stream_error(conn, script, field):
  check_rejected(conn, script, lambda f: replaced(f, *field))


def test_host_instead_of_authority_is_forwarded_as_authority(conn, script):
  # RFC 9113 8.3.1 lets host stand in for :authority. HTTP/2 names the authority in
  # :authority, so that is what the backend gets.
  cid = support.call_id()
  fields = request_fields(conn, cid)
  sid = request(conn, without(fields, ":authority") + [("host", conn.authority)])
  seen = assert_served(conn, script, sid, cid)
  assert seen.header(":authority") == conn.authority and seen.header("host") is None, seen.headers


@pytest.mark.parametrize("host", ["same", "different"])
def test_host_next_to_authority_is_dropped(conn, script, host):
  # A host that differs from :authority is not refused today (RFC 9113 8.3.1: SHOULD treat it
  # as malformed); either way only :authority goes on to the backend.
  cid = support.call_id()
  value = conn.authority if host == "same" else "elsewhere.example:443"
  sid = request(conn, request_fields(conn, cid) + [("host", value)])
  seen = assert_served(conn, script, sid, cid)
  assert seen.header(":authority") == conn.authority and seen.header("host") is None


# --- 8.2.2: connection-specific fields ----------------------------------------------------


CONNECTION_SPECIFIC = {
    "connection": ("connection", "close"),
    "keep-alive": ("keep-alive", "timeout=5"),
    "proxy-connection": ("proxy-connection", "keep-alive"),
    "transfer-encoding": ("transfer-encoding", "chunked"),
    "upgrade": ("upgrade", "h2c"),
    "te_gzip": ("te", "gzip"),
    "te_trailers_and_gzip": ("te", "trailers, gzip"),
    "te_empty": ("te", ""),
}


@pytest.mark.parametrize("field", list(CONNECTION_SPECIFIC.values()),
                         ids=list(CONNECTION_SPECIFIC))
def test_connection_specific_field_is_a_stream_error(conn, script, field):
  name, value = field
  check_rejected(conn, script, lambda f: without(f, name) + [(name, value)])


@pytest.mark.parametrize("value", ["trailers", "Trailers"])
def test_te_trailers_is_accepted(conn, script, value):
  # The value compares case-insensitively; the backend gets the relay's own te: trailers.
  cid = support.call_id()
  sid = request(conn, replaced(request_fields(conn, cid), "te", value))
  seen = assert_served(conn, script, sid, cid)
  assert [v for n, v in seen.headers if n == "te"] == ["trailers"]


# --- 8.1.1: content-length ----------------------------------------------------------------


BAD_CONTENT_LENGTH = {
    "non_numeric": ["abc"],
    "empty": [""],
    "plus_sign": ["+%d" % len(BODY)],
    "negative": ["-1"],
    "trailing_space": ["%d " % len(BODY)],
    "two_different": [str(len(BODY)), "3"],
    # RFC 9110 8.6 would allow folding identical values; today's check refuses any repeat.
    "same_twice": [str(len(BODY))] * 2,
}


@pytest.mark.parametrize("values", list(BAD_CONTENT_LENGTH.values()), ids=list(BAD_CONTENT_LENGTH))
def test_malformed_content_length_is_a_stream_error(conn, script, values):
  check_rejected(conn, script, lambda f: f + [("content-length", v) for v in values])


@pytest.mark.parametrize("value", [str(len(BODY)), "0%d" % len(BODY)])
def test_content_length_matching_the_body_is_forwarded(conn, script, value):
  # Leading zeros are still 1*DIGIT: accepted, and forwarded as sent.
  cid = support.call_id()
  sid = request(conn, request_fields(conn, cid) + [("content-length", value)])
  seen = assert_served(conn, script, sid, cid)
  assert seen.header("content-length") == value


MISMATCHED_BODIES = {
    # (declared length, DATA payloads; the last one carries END_STREAM)
    "longer_in_one_frame": (len(BODY) - 2, [BODY]),
    "longer_over_two_frames": (len(BODY) - 2, [BODY[:6], BODY[6:]]),
    "shorter": (len(BODY) + 2, [BODY]),
}


@pytest.mark.parametrize("case", list(MISMATCHED_BODIES))
def test_body_that_does_not_match_content_length_is_not_forwarded(conn, script, case):
  declared, parts = MISMATCHED_BODIES[case]
  cid = support.call_id()
  sid = conn.open(request_fields(conn, cid) + [("content-length", str(declared))])
  # The header block is fine, so the call goes out; the mismatch shows only in the body.
  record = script.wait_record(lambda r: r.header("x-call-id") == cid, 5)
  assert record, "the well-formed header block never reached the backend"
  for i, part in enumerate(parts):
    conn.data(sid, part, end_stream=i == len(parts) - 1)
    conn.wait(lambda: False, 0.05)  # let each frame through on its own
  assert_stream_error(conn, sid)
  # The backend never gets a whole request: its stream is cancelled before END_STREAM, with
  # no more than the declared length (today: what came before the offending frame).
  assert support.wait_until(lambda: record.reset_code is not None, 5), \
      "the backend stream was not cancelled"
  assert record.reset_code == CANCEL and not record.ended
  assert record.received <= declared and bytes(record.body) == BODY[:record.received]
  good_call(conn, script)


def test_content_length_without_any_body_is_a_stream_error(conn, script):
  # Checked as the header block ends the stream, so the call never starts.
  cid = support.call_id()
  sid = conn.open(request_fields(conn, cid) + [("content-length", "10")], end_stream=True)
  assert_rejected(conn, script, sid, cid)


# --- 8.1: request trailers ----------------------------------------------------------------


BAD_TRAILERS = {
    # (trailer fields, END_STREAM on the trailers)
    "pseudo_and_regular": ([(":path", "/x"), ("x-t", "1")], True),
    "pseudo_only": ([(":method", "POST")], True),
    "uppercase_name": ([("X-T", "1")], True),
    "connection_specific": ([("connection", "close")], True),
    "without_end_stream": ([("x-t", "1")], False),
    "empty_without_end_stream": ([], False),
}


@pytest.mark.parametrize("case", list(BAD_TRAILERS))
def test_malformed_request_trailers_are_a_stream_error(conn, script, case):
  trailers, end_stream = BAD_TRAILERS[case]
  cid = support.call_id()
  sid = conn.open(request_fields(conn, cid))
  conn.data(sid, BODY)
  record = script.wait_record(lambda r: r.header("x-call-id") == cid and r.received == len(BODY),
                              5)
  assert record, "headers and body never reached the backend"
  conn.trailers(sid, trailers, end_stream=end_stream)
  assert_stream_error(conn, sid)
  # The request never ends at the backend: the relay cancels it.
  assert support.wait_until(lambda: record.reset_code is not None, 5), \
      "the backend stream was not cancelled"
  assert record.reset_code == CANCEL and not record.ended
  good_call(conn, script)


@pytest.mark.parametrize("trailers", [[("x-t", "1"), ("grpc-foo", "2")], []],
                         ids=["regular_fields", "empty_block"])
def test_valid_request_trailers_end_the_call(conn, script, trailers):
  # Well-formed trailers end the request; the relay keeps only the first header block.
  cid = support.call_id()
  sid = conn.open(request_fields(conn, cid))
  conn.data(sid, BODY)
  conn.trailers(sid, trailers, end_stream=True)
  assert_served(conn, script, sid, cid)


# --- 8.5: CONNECT -------------------------------------------------------------------------


def test_connect_with_authority_only_is_refused_by_the_relay(conn, script):
  # Well-formed HTTP/2, so no stream error: the relay answers it as it answers any method but
  # POST, HTTP 405 with grpc-status 13 (INTERNAL) in one HEADERS frame ending the stream.
  cid = support.call_id()
  sid = conn.open([(":method", "CONNECT"), (":authority", conn.authority), ("x-call-id", cid)],
                  end_stream=True)
  st = conn.wait_stream(sid, 5)
  assert st.ended and not conn.stream(sid).resets, st.describe()
  assert st.trailers_only, st.describe()
  assert st.header(":status") == "405" and st.grpc_status() == 13, st.describe()
  good_call(conn, script)
  assert not records(script, cid)


def test_connect_with_scheme_and_path_is_a_stream_error(conn, script):
  # Without :protocol, CONNECT must carry neither :scheme nor :path.
  check_rejected(conn, script, lambda f: replaced(f, ":method", "CONNECT"))


# --- many at once -------------------------------------------------------------------------


FLOOD_CASES = [
    lambda f: f + [("X-Foo", "1")],
    lambda f: f + [("x-foo", "a\nb")],
    lambda f: with_pseudo(f, ":foo", "1"),
    lambda f: without(f, ":authority") + [(":authority", "x")],
    lambda f: with_pseudo(f, ":path", "/test.Script/Echo"),
    lambda f: without(f, ":scheme"),
    lambda f: replaced(f, ":path", "foo"),
    lambda f: f + [("connection", "close")],
    lambda f: replaced(f, "te", "gzip"),
    lambda f: f + [("content-length", "abc")],
]


def test_200_malformed_streams_among_good_calls(relay, script):
  # 200 malformed requests, each followed by 96 KiB of DATA the relay must discard and hand
  # the window back for (18.75 MiB in all: more than its 16 MiB connection window), with a
  # good call after every tenth.
  conn = H2Client(relay.address)
  chunk = bytes(16384)
  bad, good = {}, {}
  try:
    for i in range(200):
      cid = support.call_id()
      sid = conn.open(FLOOD_CASES[i % len(FLOOD_CASES)](request_fields(conn, cid)))
      bad[sid] = cid
      for j in range(6):
        conn.data(sid, chunk, end_stream=j == 5)
      if i % 10 == 9:
        message = b"good %d" % i
        good[conn.start("/test.Script/Echo", body=grpc_frame(message))] = message
      conn.pump(0)
    for sid, message in good.items():
      st = conn.wait_stream(sid, 10)
      assert st.ended and st.grpc_status() == 0, "good call %d: %s" % (sid, st.describe())
      assert grpc_unframe(bytes(st.data)) == [(0, message)]
    for sid in bad:
      conn.wait_stream(sid, 5)
      assert (conn.stream(sid).resets or [None])[0] == PROTOCOL_ERROR, "stream %d: %r" % (
          sid, conn.stream(sid).resets)
    assert conn.goaway is None and not conn.closed, "GOAWAY %r" % (conn.goaway,)
    cids = set(bad.values())
    assert not [r for r in script.streams() if r.header("x-call-id") in cids], \
        "malformed requests reached the backend"
    good_call(conn, script, b"after the flood")
  finally:
    conn.close()
  assert relay.alive()
