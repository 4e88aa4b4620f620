"""Clients that misbehave lose their own stream or connection, never the relay."""

import os
import random

import grpc
import pytest

import support
from h2_client import (CANCEL, COMPRESSION_ERROR, DATA, END_STREAM, PREFACE, H2Client, frame,
                       grpc_frame, grpc_unframe)
from support import GUARD_SECONDS

@pytest.fixture(scope="module")
def relay(module_relay_factory, echo_backend):
  return module_relay_factory(routes=[{"service": "test.Echo", "cluster": "echo"}],
                              clusters={"echo": [echo_backend.address]})


def _connect(address):
  """A connection that sends nothing by itself: not even the HTTP/2 preface."""
  return H2Client(address, preface=False)


def _normal_call_works(relay):
  ch = support.channel(relay.addr("echo"))
  try:
    assert support.unary(ch)(b"healthy", timeout=GUARD_SECONDS) == b"healthy"
  finally:
    ch.close()


def test_http1_request_gets_connection_closed(relay):
  with _connect(relay.addr("echo")) as s:
    s.send(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n")
    assert s.read_until_closed(10), "the HTTP/1.1 connection was not closed within 10 s"
  _normal_call_works(relay)


def test_garbage_bytes_get_connection_closed(relay):
  junk = random.Random(1234).randbytes(4096)
  with _connect(relay.addr("echo")) as s:
    s.send(junk)
    assert s.read_until_closed(10), "the garbage connection was not closed within 10 s"
  _normal_call_works(relay)


def test_preface_then_garbage_frames_get_connection_closed(relay):
  # A valid preface, then a frame header announcing an unknown-size SETTINGS frame on stream 1.
  junk = PREFACE + b"\x00\x00\x07\x04\x00\x00\x00\x00\x01" + os.urandom(7) + b"\xff" * 64
  with _connect(relay.addr("echo")) as s:
    s.send(junk)
    assert s.read_until_closed(10), "the connection was not closed within 10 s"
  _normal_call_works(relay)


def test_silent_connection_does_not_block_others(relay):
  with _connect(relay.addr("echo")), _connect(relay.addr("echo")) as half:
    half.send(PREFACE[:10])
    _normal_call_works(relay)


@pytest.mark.relay_only
@pytest.mark.parametrize("content_type", ["text/plain", "application/json", "application/grpcx",
                                          None])
def test_non_grpc_content_type_is_415(relay, content_type):
  with H2Client(relay.addr("echo")) as client:
    r = client.call("/test.Echo/Unary", body=grpc_frame(b"x"), content_type=content_type)
    assert r.reset_code is None
    assert r.header(":status") == "415"
    # The connection keeps serving gRPC.
    ok = client.call("/test.Echo/Unary", body=grpc_frame(b"after"))
  assert ok.grpc_status() == 0
  assert grpc_unframe(bytes(ok.data)) == [(0, b"after")]


def test_grpc_content_type_variants_are_accepted(relay):
  with H2Client(relay.addr("echo")) as client:
    for content_type in ["application/grpc", "application/grpc+proto"]:
      r = client.call("/test.Echo/Unary", body=grpc_frame(b"v"), content_type=content_type)
      assert r.header(":status") == "200"
      assert r.grpc_status() == 0, content_type
      assert grpc_unframe(bytes(r.data)) == [(0, b"v")]


def test_rapid_reset_streams_leave_the_relay_serving(relay, echo_backend):
  # Streams opened and reset at once, some before the relay has even sent them upstream.
  for _ in range(20):
    with H2Client(relay.addr("echo")) as client:
      for _ in range(200):
        sid = client.start("/test.Echo/Unary", body=grpc_frame(b"r"),
                           headers=[("x-sleep-ms", "1000")], end_stream=False)
        client.rst(sid, CANCEL)
    _normal_call_works(relay)


def test_truncated_message_is_an_error_not_a_hang(relay):
  # The header announces 100 bytes; 10 arrive, then END_STREAM. The relay passes bytes on
  # unparsed, so the backend's verdict comes back: grpcio finds no whole request message and
  # answers Trailers-Only UNIMPLEMENTED.
  body = grpc_frame(b"x" * 100)[:15]
  with H2Client(relay.addr("echo")) as client:
    r = client.call("/test.Echo/Unary", body=body)
  assert r.reset_code is None and r.trailers_only, r.describe()
  assert r.grpc_status() == 12, r.describe()
  assert "requires exactly one request message" in r.grpc_message(), r.grpc_message()
  _normal_call_works(relay)


@pytest.mark.relay_only
def test_oversized_header_block_leaves_the_relay_serving(relay):
  # One field of 100,000 bytes is past what nghttp2's HPACK decoder takes (64 KiB a field):
  # a connection error COMPRESSION_ERROR (RFC 9113 section 4.3) naming the stream, then the
  # close; other connections are served.
  with H2Client(relay.addr("echo")) as client:
    sid = client.start("/test.Echo/Unary", body=grpc_frame(b"big"),
                       headers=[("x-huge", "h" * 100000)])
    r = client.wait_stream(sid)
    assert client.read_until_closed(5), "connection still open: %s" % client.describe_frames()
    assert client.goaway_codes() == [(sid, COMPRESSION_ERROR)], client.describe_frames()
    assert r.received == [] and r.reset_code is None, r.describe()
  _normal_call_works(relay)


def test_stream_for_unknown_method_with_body_still_drains(relay):
  # The backend rejects the call without reading the request; the client's body must not wedge
  # the connection.
  ch = support.channel(relay.addr("echo"))
  try:
    with pytest.raises(grpc.RpcError) as info:
      support.client_stream(ch, "/test.Echo/Nope")(iter([b"z" * 65536] * 64),
                                                   timeout=GUARD_SECONDS)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert support.unary(ch)(b"next", timeout=GUARD_SECONDS) == b"next"
  finally:
    ch.close()


def test_message_split_into_one_byte_data_frames(relay):
  message = bytes(range(100))
  framed = grpc_frame(message)
  with H2Client(relay.addr("echo")) as client:
    sid = client.start("/test.Echo/Unary", end_stream=False)
    for i in range(len(framed)):
      client.data(sid, framed[i:i + 1])
    client.data(sid, b"", end_stream=True)
    r = client.wait_stream(sid)
  assert r.grpc_status() == 0, r.grpc_message()
  assert grpc_unframe(bytes(r.data)) == [(0, message)]


def test_a_message_in_60000_one_byte_frames_written_at_once_arrives_whole(relay):
  # 600 KB of 10-byte frames in one write: the relay reads up to 256 KiB at once but handles
  # at most a few thousand frames a loop turn, keeping the rest of a read for the turns after,
  # in order. The message goes through whole, and another client is served meanwhile.
  message = bytes(i % 251 for i in range(60000))
  framed = grpc_frame(message)
  with H2Client(relay.addr("echo")) as client:
    sid = client.start("/test.Echo/Unary", end_stream=False)
    burst = b"".join(frame(DATA, 0, sid, framed[i:i + 1]) for i in range(len(framed)))
    client.send(burst + frame(DATA, END_STREAM, sid))
    _normal_call_works(relay)
    r = client.wait_stream(sid, 30)
  assert r.grpc_status() == 0, r.describe()
  assert grpc_unframe(bytes(r.data)) == [(0, message)]


def test_several_messages_in_one_data_frame(relay):
  messages = [b"one", b"", b"three" * 1000, b"four"]
  with H2Client(relay.addr("echo")) as client:
    r = client.call("/test.Echo/Bidi", body=b"".join(grpc_frame(m) for m in messages))
  assert r.grpc_status() == 0, r.grpc_message()
  assert grpc_unframe(bytes(r.data)) == [(0, m) for m in messages]


@pytest.mark.relay_only
@pytest.mark.parametrize("path", ["/", "/test.Echo", "//Unary", "/nope"])
def test_malformed_path_is_unimplemented(relay, path):
  with H2Client(relay.addr("echo")) as client:
    r = client.call(path, body=grpc_frame(b"p"))
  assert r.grpc_status() == 12, (r.headers, r.trailers, r.reset_code)
  _normal_call_works(relay)


def test_get_request_is_not_served_as_a_call(relay):
  with H2Client(relay.addr("echo")) as client:
    r = client.call("/test.Echo/Unary", method="GET")
    served = r.header(":status") == "200" and r.grpc_status() == 0
    assert not served, "a GET was answered as a successful call"
    ok = client.call("/test.Echo/Unary", body=grpc_frame(b"post"))
  assert ok.grpc_status() == 0
