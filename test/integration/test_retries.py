"""Route retry policies (gRPC A6 semantics): attempts, statuses, pushback, replay buffer,
commitment and the retry budget."""

import grpc
import pytest

import support

pytestmark = pytest.mark.relay_only

RETRY = {"attempts": 3, "on": ["UNAVAILABLE"], "backoff": "10ms", "max_backoff": "50ms"}


@pytest.fixture(scope="module")
def flaky(workdir):
  b = support.BackendProcess(workdir, name="flaky")
  yield b
  b.stop()


def relay_with(relay_factory, backend, **retry):
  policy = dict(RETRY, **retry)
  return relay_factory([{"prefix": "/test.", "cluster": "pool", "retry": policy}],
                       {"pool": [backend.address]})


def attempts_of(backend, cid):
  """grpc-previous-rpc-attempts of every attempt of call |cid|, in order."""
  return [int(rest.split(":")[1]) for kind, rest in backend.events()
          if kind == "attempt" and rest.split(":")[0] == cid]


def call(ch, cid, body=b"x", **md):
  metadata = [("x-call-id", cid)] + [(k.replace("_", "-"), v) for k, v in md.items()]
  return support.unary(ch)(body, metadata=metadata, timeout=support.GUARD_SECONDS)


def test_retries_turn_a_flaky_backend_into_success(relay_factory, grpc_channel, flaky):
  ch = grpc_channel(relay_with(relay_factory, flaky).addr())
  cid = support.call_id()
  assert call(ch, cid, b"hello", x_fail_attempts="2") == b"hello"
  assert attempts_of(flaky, cid) == [0, 1, 2]


def test_retries_stop_at_the_attempt_limit(relay_factory, grpc_channel, flaky):
  ch = grpc_channel(relay_with(relay_factory, flaky).addr())
  cid = support.call_id()
  with pytest.raises(grpc.RpcError) as err:
    call(ch, cid, x_fail_attempts="10")
  assert err.value.code() == grpc.StatusCode.UNAVAILABLE
  assert attempts_of(flaky, cid) == [0, 1, 2]


def test_status_not_listed_is_not_retried(relay_factory, grpc_channel, flaky):
  ch = grpc_channel(relay_with(relay_factory, flaky).addr())
  cid = support.call_id()
  with pytest.raises(grpc.RpcError) as err:
    call(ch, cid, x_fail_attempts="1", x_fail_code="13")
  assert err.value.code() == grpc.StatusCode.INTERNAL
  assert attempts_of(flaky, cid) == [0]


def test_without_a_policy_nothing_is_retried(relay_factory, grpc_channel, flaky):
  relay = relay_factory([{"prefix": "/test.", "cluster": "pool"}], {"pool": [flaky.address]})
  ch = grpc_channel(relay.addr())
  cid = support.call_id()
  with pytest.raises(grpc.RpcError) as err:
    call(ch, cid, x_fail_attempts="1")
  assert err.value.code() == grpc.StatusCode.UNAVAILABLE
  assert attempts_of(flaky, cid) == [0]


def test_pushback_is_honoured(relay_factory, grpc_channel, flaky):
  ch = grpc_channel(relay_with(relay_factory, flaky).addr())
  cid = support.call_id()
  assert call(ch, cid, x_fail_attempts="1", x_pushback_ms="50") == b"x"
  assert attempts_of(flaky, cid) == [0, 1]
  # A negative pushback means "do not retry".
  cid = support.call_id()
  with pytest.raises(grpc.RpcError) as err:
    call(ch, cid, x_fail_attempts="1", x_pushback_ms="-1")
  assert err.value.code() == grpc.StatusCode.UNAVAILABLE
  assert attempts_of(flaky, cid) == [0]


def test_request_larger_than_the_buffer_is_not_retried(relay_factory, grpc_channel, flaky):
  ch = grpc_channel(relay_with(relay_factory, flaky, buffer="1KiB").addr())
  small, large = support.call_id(), support.call_id()
  assert call(ch, small, b"s" * 500, x_fail_attempts="1") == b"s" * 500
  assert attempts_of(flaky, small) == [0, 1]
  with pytest.raises(grpc.RpcError) as err:
    call(ch, large, b"l" * 8192, x_fail_attempts="1")
  assert err.value.code() == grpc.StatusCode.UNAVAILABLE
  assert attempts_of(flaky, large) == [0]


def test_committed_response_is_not_retried(relay_factory, grpc_channel, flaky):
  ch = grpc_channel(relay_with(relay_factory, flaky).addr())
  cid = support.call_id()
  stream = support.server_stream(ch)(
      b"", metadata=[("x-call-id", cid), ("x-count", "2"), ("x-size", "5"),
                     ("x-status-code", "14")], timeout=support.GUARD_SECONDS)
  got = []
  with pytest.raises(grpc.RpcError) as err:
    for m in stream:
      got.append(m)
  assert err.value.code() == grpc.StatusCode.UNAVAILABLE
  assert len(got) == 2
  started = [rest for kind, rest in flaky.events() if kind == "started" and rest == cid]
  assert len(started) == 1


def test_retry_budget_caps_retries(relay_factory, grpc_channel, flaky):
  # Four tokens; each failed attempt takes one; retries go only while more than two are left.
  # Call 1: fails (3 left), retried, fails (2 left), not retried. Later calls: one attempt.
  ch = grpc_channel(relay_with(relay_factory, flaky, attempts=5, budget_tokens=4,
                               budget_ratio=0.1).addr())
  ids = [support.call_id() for _ in range(6)]
  for cid in ids:
    with pytest.raises(grpc.RpcError) as err:
      call(ch, cid, x_fail_attempts="100")
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
  assert [len(attempts_of(flaky, cid)) for cid in ids] == [2, 1, 1, 1, 1, 1]
