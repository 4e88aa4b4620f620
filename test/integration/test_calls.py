"""Well-formed calls of every shape pass through the relay intact."""

import gzip
import hashlib
import queue
import threading

import grpc
import pytest

import support
from h2_client import H2Client, grpc_frame, grpc_unframe
from support import GUARD_SECONDS, metadata_dict, pattern_message


@pytest.fixture(scope="module")
def relay(module_relay_factory, echo_backend, h2_backend):
  return module_relay_factory(
      routes=[{"service": "test.Echo", "cluster": "echo"},
              {"service": "test.Raw", "cluster": "raw"}],
      clusters={"echo": [echo_backend.address], "raw": [h2_backend.address]})


@pytest.fixture
def ch(relay, grpc_channel):
  return grpc_channel(relay.addr("echo"))


def test_empty_unary(ch):
  response, call = support.unary(ch).with_call(b"", timeout=GUARD_SECONDS)
  assert response == b""
  assert call.code() == grpc.StatusCode.OK


def test_large_unary_8mib_each_way(ch):
  request = bytes(range(256)) * (8 * 1024 * 1024 // 256)
  response = support.unary(ch)(request, timeout=GUARD_SECONDS)
  assert len(response) == len(request)
  assert hashlib.sha256(response).digest() == hashlib.sha256(request).digest()


def test_client_streaming(ch):
  messages = [bytes([i % 256]) * (i * 37 % 5000) for i in range(100)]
  response, call = support.client_stream(ch).with_call(iter(messages), timeout=GUARD_SECONDS)
  assert response == b"".join(messages)
  trailers = metadata_dict(call.trailing_metadata())
  assert trailers["x-count"] == "100"
  assert trailers["x-sha256"] == hashlib.sha256(b"".join(messages)).hexdigest()


def test_server_streaming(ch):
  md = [("x-count", "100"), ("x-size", "3000")]
  call = support.server_stream(ch)(b"", metadata=md, timeout=GUARD_SECONDS)
  received = list(call)
  assert len(received) == 100
  for i, message in enumerate(received):
    assert message == pattern_message(i, 3000), "message %d differs" % i
  assert call.code() == grpc.StatusCode.OK
  assert metadata_dict(call.trailing_metadata())["x-count"] == "100"


def test_many_tiny_messages_each_way(ch):
  messages = [b"%d" % i for i in range(5000)]
  response, call = support.client_stream(ch).with_call(iter(messages), timeout=GUARD_SECONDS)
  assert response == b"".join(messages)
  assert metadata_dict(call.trailing_metadata())["x-count"] == "5000"
  call = support.server_stream(ch)(b"", metadata=[("x-count", "5000"), ("x-size", "9")],
                                   timeout=GUARD_SECONDS)
  received = list(call)
  assert received == [pattern_message(i, 9) for i in range(5000)]


def test_bidi_streaming(ch):
  messages = [("message %d " % i).encode() * (i + 1) for i in range(50)]
  call = support.bidi(ch)(iter(messages), timeout=GUARD_SECONDS)
  assert list(call) == messages
  assert call.code() == grpc.StatusCode.OK
  assert metadata_dict(call.trailing_metadata())["x-count"] == "50"


def test_ping_pong_100_rounds(ch):
  outbox = queue.Queue()
  done = object()

  def requests():
    while True:
      item = outbox.get()
      if item is done:
        return
      yield item

  call = support.bidi(ch)(requests(), timeout=GUARD_SECONDS)
  for i in range(100):
    ping = b"ping %d" % i
    outbox.put(ping)
    assert next(call) == ping
  outbox.put(done)
  assert list(call) == []
  assert call.code() == grpc.StatusCode.OK


def test_client_stream_with_zero_messages(ch):
  response, call = support.client_stream(ch).with_call(iter([]), timeout=GUARD_SECONDS)
  assert response == b""
  assert call.code() == grpc.StatusCode.OK
  assert metadata_dict(call.trailing_metadata())["x-count"] == "0"


def test_server_stream_with_zero_responses(ch):
  call = support.server_stream(ch)(b"", metadata=[("x-count", "0")], timeout=GUARD_SECONDS)
  assert list(call) == []
  assert call.code() == grpc.StatusCode.OK
  assert metadata_dict(call.trailing_metadata())["x-count"] == "0"


def test_bidi_with_zero_messages(ch):
  call = support.bidi(ch)(iter([]), timeout=GUARD_SECONDS)
  assert list(call) == []
  assert call.code() == grpc.StatusCode.OK


def test_metadata_both_ways_with_binary_headers_and_trailers(ch):
  sent = [("x-echo-metadata", "1"), ("x-text", "plain value"),
          ("x-blob-bin", b"\x00\x01\x02\xfe\xff"), ("x-empty-bin", b""),
          ("x-utf8-bin", "héllo ✓ 世界".encode())]
  response, call = support.unary(ch).with_call(b"hi", metadata=sent, timeout=GUARD_SECONDS)
  assert response == b"hi"
  initial = metadata_dict(call.initial_metadata())
  trailers = metadata_dict(call.trailing_metadata())
  for key, value in sent:
    assert initial.get(key) == value, "initial metadata %s" % key
    assert trailers.get(key) == value, "trailer %s" % key
  assert "x-trailer-only" not in initial
  assert trailers["x-trailer-only"] == "yes"
  assert trailers["x-trailer-only-bin"] == b"\xff\x00trailer\x80"
  assert trailers["x-backend-name"] == "echo"


def test_many_metadata_entries(ch):
  sent = [("x-echo-metadata", "1")] + [("x-entry-%02d" % i, "v" * 60 + str(i)) for i in range(60)]
  _, call = support.unary(ch).with_call(b"", metadata=sent, timeout=GUARD_SECONDS)
  initial = metadata_dict(call.initial_metadata())
  trailers = metadata_dict(call.trailing_metadata())
  for key, value in sent:
    assert initial.get(key) == value
    assert trailers.get(key) == value


def test_unicode_status_message_passes_through(ch):
  message = "héllo ✓ 世界 100%"
  md = [("x-status-code", "9"), ("x-status-message-bin", message.encode())]
  with pytest.raises(grpc.RpcError) as info:
    support.unary(ch)(b"", metadata=md, timeout=GUARD_SECONDS)
  assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
  assert info.value.details() == message


@pytest.mark.parametrize("code", [c for c in grpc.StatusCode if c != grpc.StatusCode.OK],
                         ids=lambda c: c.name)
def test_backend_status_code_passes_through(ch, code):
  md = [("x-status-code", str(code.value[0])), ("x-status-message", "from backend")]
  with pytest.raises(grpc.RpcError) as info:
    support.unary(ch)(b"", metadata=md, timeout=GUARD_SECONDS)
  assert info.value.code() == code
  assert info.value.details() == "from backend"


def test_error_status_after_streamed_messages(ch):
  md = [("x-count", "3"), ("x-size", "100"), ("x-status-code", "10"),
        ("x-status-message", "aborted after three")]
  call = support.server_stream(ch)(b"", metadata=md, timeout=GUARD_SECONDS)
  received = []
  with pytest.raises(grpc.RpcError) as info:
    for message in call:
      received.append(message)
  assert received == [pattern_message(i, 100) for i in range(3)]
  assert info.value.code() == grpc.StatusCode.ABORTED
  assert info.value.details() == "aborted after three"


def test_trailers_only_from_backend_is_one_headers_frame(relay):
  with H2Client(relay.addr("echo")) as client:
    r = client.call("/test.Echo/Unary", body=grpc_frame(b"x"),
                    headers=[("x-status-code", "9"), ("x-status-message", "precondition")])
  assert r.reset_code is None
  assert r.trailers_only, "expected a single HEADERS frame with END_STREAM, got %s" % r.describe()
  assert r.header(":status") == "200"
  assert r.header("content-type").startswith("application/grpc")
  assert r.grpc_status() == 9
  assert r.grpc_message() == "precondition"
  assert not r.data


def test_gzip_compressed_messages(ch):
  request = b"compress me " * 10000
  md = [("x-compress-response", "gzip")]
  response = support.unary(ch)(request, metadata=md, compression=grpc.Compression.Gzip,
                               timeout=GUARD_SECONDS)
  assert response == request
  messages = [b"stream %d " % i * 500 for i in range(20)]
  call = support.bidi(ch)(iter(messages), metadata=md, compression=grpc.Compression.Gzip,
                          timeout=GUARD_SECONDS)
  assert list(call) == messages


def test_compressed_frames_reach_the_client_untouched(relay):
  # The relay splices bytes: the backend's compressed flag and grpc-encoding arrive as sent.
  request = b"squeeze " * 4000
  with H2Client(relay.addr("echo")) as client:
    r = client.call("/test.Echo/Unary", body=grpc_frame(gzip.compress(request), compressed=True),
                    headers=[("grpc-encoding", "gzip"), ("grpc-accept-encoding", "gzip"),
                             ("x-compress-response", "gzip")])
  assert r.grpc_status() == 0, r.grpc_message()
  assert r.header("grpc-encoding") == "gzip"
  [(flag, payload)] = grpc_unframe(bytes(r.data))
  assert flag == 1
  assert gzip.decompress(payload) == request


def test_200_concurrent_streams_on_one_connection(ch):
  method = support.unary(ch)
  futures = [
      method.future(b"payload %d " % i * (i + 1), metadata=[("x-sleep-ms", "300")],
                    timeout=GUARD_SECONDS) for i in range(200)
  ]
  for i, future in enumerate(futures):
    assert future.result() == b"payload %d " % i * (i + 1)


def test_concurrent_streams_of_every_kind(ch):
  errors = []

  def run(i):
    try:
      if i % 3 == 0:
        call = support.server_stream(ch)(b"", metadata=[("x-count", "20"), ("x-size", "5000")],
                                         timeout=GUARD_SECONDS)
        assert list(call) == [pattern_message(j, 5000) for j in range(20)]
      elif i % 3 == 1:
        messages = [b"%d-%d" % (i, j) * 100 for j in range(20)]
        assert support.client_stream(ch)(iter(messages),
                                         timeout=GUARD_SECONDS) == b"".join(messages)
      else:
        messages = [b"%d-%d" % (i, j) * 100 for j in range(20)]
        assert list(support.bidi(ch)(iter(messages), timeout=GUARD_SECONDS)) == messages
    except Exception as e:  # collected for the main thread
      errors.append("call %d: %r" % (i, e))

  threads = [threading.Thread(target=run, args=(i,)) for i in range(60)]
  for t in threads:
    t.start()
  for t in threads:
    t.join(GUARD_SECONDS)
  assert not errors


def test_many_client_connections(relay):
  channels = [support.channel(relay.addr("echo")) for _ in range(50)]
  try:
    futures = [(i, j, support.unary(c).future(b"conn %d call %d" % (i, j), timeout=GUARD_SECONDS))
               for i, c in enumerate(channels) for j in range(4)]
    for i, j, future in futures:
      assert future.result() == b"conn %d call %d" % (i, j)
  finally:
    for c in channels:
      c.close()


def test_request_headers_reach_the_backend(relay, h2_backend):
  headers = [("x-custom", "value-1"), ("x-blob-bin", "AAEC"), ("grpc-accept-encoding", "gzip"),
             ("user-agent", "raw-h2-test")]
  with H2Client(relay.addr("raw")) as client:
    r = client.call("/test.Raw/Echo", body=grpc_frame(b"hello"), headers=headers,
                    content_type="application/grpc+proto")
  assert r.grpc_status() == 0
  assert grpc_unframe(bytes(r.data)) == [(0, b"hello")]
  seen = h2_backend.streams("/test.Raw/Echo")[-1]
  assert seen.header(":method") == "POST"
  assert seen.header("content-type") == "application/grpc+proto"
  assert seen.header("te") == "trailers"
  for name, value in headers:
    assert seen.header(name) == value, name
  assert grpc_unframe(bytes(seen.body)) == [(0, b"hello")]


def test_last_body_bytes_carry_end_stream_each_way(relay, h2_backend):
  # The relay ends each body on the DATA frame that carries its last bytes: no empty DATA
  # frame follows for END_STREAM (to the backend) or before the trailers (to the client).
  message = grpc_frame(b"framing")
  with H2Client(relay.addr("raw")) as client:
    r = client.call("/test.Raw/Echo", body=message)
  assert r.grpc_status() == 0
  seen = h2_backend.streams("/test.Raw/Echo")[-1]
  assert seen.data_frames == [(len(message), True)]
  assert r.data_frames == [(len(message), False)]
  assert r.trailers is not None and r.ended
