"""Backpressure: slow readers bound the relay's memory and stall only their own stream."""

import hashlib
import threading
import time

import grpc
import pytest

import support
from h2_client import H2Client, grpc_frame, grpc_unframe
from support import GUARD_SECONDS, metadata_dict, pattern_message

RSS_LIMIT_KIB = 64 * 1024
MESSAGE = 64 * 1024


class RssSampler:
  """Samples the relay's VmRSS every 100 ms in a thread; |peak_kib| is the highest seen."""

  def __init__(self, relay):
    self.relay_ = relay
    self.peak_kib = 0
    self.samples = 0
    self.stop_ = threading.Event()
    self.thread_ = threading.Thread(target=self._run, daemon=True)
    self.thread_.start()

  def _run(self):
    while not self.stop_.is_set():
      rss = self.relay_.rss_kib()
      if rss is not None:
        self.peak_kib = max(self.peak_kib, rss)
        self.samples += 1
      self.stop_.wait(0.1)

  def stop(self):
    self.stop_.set()
    self.thread_.join()

  def check(self):
    """Asserts the peak stayed under the limit (only when there is a relay to sample)."""
    if self.relay_.pid is None:
      return
    assert self.samples > 0, "could not read the relay's VmRSS"
    assert self.peak_kib < RSS_LIMIT_KIB, "relay VmRSS peaked at %d KiB (limit %d KiB)" % (
        self.peak_kib, RSS_LIMIT_KIB)


@pytest.fixture(scope="module")
def relay(module_relay_factory, echo_backend):
  return module_relay_factory(routes=[{"service": "test.Echo", "cluster": "echo"}],
                              clusters={"echo": [echo_backend.address]})


@pytest.fixture
def ch(relay, grpc_channel):
  return grpc_channel(relay.addr("echo"))


def test_256mib_server_stream_to_slow_reader_keeps_relay_rss_bounded(relay, ch):
  count = 256 * 1024 * 1024 // MESSAGE
  sampler = RssSampler(relay)
  try:
    call = support.server_stream(ch)(b"", metadata=[("x-count", str(count)),
                                                    ("x-size", str(MESSAGE))],
                                     timeout=GUARD_SECONDS * 2)
    digest = hashlib.sha256()
    received = 0
    for i, message in enumerate(call):
      if message != pattern_message(i, MESSAGE):
        pytest.fail("message %d differs (%d bytes)" % (i, len(message)))
      digest.update(message)
      received += len(message)
      time.sleep(0.003)
    assert call.code() == grpc.StatusCode.OK
  finally:
    sampler.stop()
  assert received == count * MESSAGE
  assert metadata_dict(call.trailing_metadata())["x-sha256"] == digest.hexdigest()
  sampler.check()


def test_128mib_upload_to_slow_backend_keeps_relay_rss_bounded(relay, ch):
  count = 128 * 1024 * 1024 // MESSAGE
  digest = hashlib.sha256()

  def requests():
    for i in range(count):
      message = pattern_message(i, MESSAGE)
      digest.update(message)
      yield message

  sampler = RssSampler(relay)
  try:
    md = [("x-read-delay-ms", "2"), ("x-digest-only", "1")]
    response, call = support.client_stream(ch).with_call(requests(), metadata=md,
                                                         timeout=GUARD_SECONDS * 2)
  finally:
    sampler.stop()
  assert response == b""
  trailers = metadata_dict(call.trailing_metadata())
  assert trailers["x-count"] == str(count)
  assert trailers["x-total-bytes"] == str(count * MESSAGE)
  assert trailers["x-sha256"] == digest.hexdigest()
  sampler.check()


def test_large_messages_both_ways_at_once(ch):
  messages = [pattern_message(i, 1024 * 1024) for i in range(32)]
  call = support.bidi(ch)(iter(messages), timeout=GUARD_SECONDS)
  for i, message in enumerate(call):
    assert message == messages[i], "message %d differs" % i
  assert call.code() == grpc.StatusCode.OK
  assert metadata_dict(call.trailing_metadata())["x-count"] == "32"


def test_stalled_stream_does_not_block_other_streams(relay):
  # One client connection: stream A's window is never replenished (its reader is stuck) while
  # the connection window is; streams B on the same connection must still complete, and A
  # must resume intact once its window opens.
  count = 256
  md = [("x-count", str(count)), ("x-size", str(MESSAGE))]
  body = grpc_frame(b"")
  # The protocol's 64 KiB stream windows: the relay can send the stalled stream that much.
  with H2Client(relay.addr("echo"), settings=(), timeout=GUARD_SECONDS) as client:
    stalled = client.start("/test.Echo/ServerStream", body=body, headers=md)
    client.hold(stalled)
    a = client.stream(stalled)
    assert client.wait(lambda: a.data, GUARD_SECONDS), a.describe()
    for _ in range(2):
      r = client.wait_stream(client.start("/test.Echo/ServerStream", body=body, headers=md))
      assert r.grpc_status() == 0, r.grpc_message()
      _check_stream(r.data, count)
    assert not a.ended, "the stalled stream finished without stream window"
    assert a.reset_code is None
    r = client.call("/test.Echo/Unary", body=grpc_frame(b"unary too"))
    assert grpc_unframe(bytes(r.data)) == [(0, b"unary too")]
    client.release(stalled)
    client.wait_stream(stalled)
  assert a.grpc_status() == 0, a.grpc_message()
  _check_stream(a.data, count)


def _check_stream(data, count):
  messages = grpc_unframe(bytes(data))
  assert len(messages) == count
  for i, (flag, message) in enumerate(messages):
    assert flag == 0 and message == pattern_message(i, MESSAGE), "message %d differs" % i


@pytest.mark.relay_only
def test_long_server_streams_on_one_connection_share_it(relay):
  """Four endless server streams on one client connection all make progress: the relay
  interleaves their DATA rather than sending one stream after another."""
  size = 64 * 1024
  md = [("x-count", "100000"), ("x-size", str(size))]
  with H2Client(relay.addr(), timeout=GUARD_SECONDS) as client:
    sids = [client.start("/test.Echo/ServerStream", body=grpc_frame(b""), headers=md)
            for _ in range(4)]
    received = lambda: [len(client.stream(s).data) for s in sids]
    assert client.wait(lambda: sum(received()) >= 16 * 1024 * 1024, GUARD_SECONDS), (
        "16 MiB did not arrive (connection closed: %s): %r" % (client.closed, received()))
    counts = received()
    assert min(counts) > 0, "a stream got nothing while the others got %r" % counts
    # Fair within a wide margin: no stream below a tenth of the average.
    assert min(counts) * 10 > sum(counts) / len(counts), "unfair split: %r" % counts
