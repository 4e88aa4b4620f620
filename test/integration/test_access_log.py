"""The [access_log]: one JSON line per finished call with what happened to it, sampling,
only_errors, standard output, and reopening the file after logrotate (SIGUSR1, SIGHUP)."""

import json
import os
import re
import signal
import subprocess

import grpc
import pytest

import admin_support
import support
from h2_client import CANCEL, H2Client, rst_frame

pytestmark = pytest.mark.relay_only

FIELDS = ["time", "peer", "authority", "path", "protocol", "route", "cluster", "endpoint",
          "status", "grpc_code", "duration_ms", "request_bytes", "response_bytes",
          "request_messages", "response_messages", "retries", "error", "message"]
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def start(workdir, clusters, access_log, routes=None):
  body = "\n".join("%s = %s" % (k, repr(v) if isinstance(v, float) else support._toml_value(v))
                   for k, v in access_log.items())
  text = support.render_config(
      routes=routes or [{"service": "test.Echo", "cluster": "echo"},
                        {"service": "dead.Svc", "cluster": "dead"}],
      clusters=clusters, extra="[access_log]\n" + body + "\n")
  return support.RelayProcess(text, str(workdir), name="relay-access")


def read_lines(path):
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f.read().splitlines()]


def wait_lines(path, count):
  """The log's lines once there are |count| (the relay writes them within ~100 ms)."""
  lines = support.wait_until(lambda: len(read_lines(path)) >= count and read_lines(path), 10)
  return lines or read_lines(path)


@pytest.fixture
def clusters(echo_backend):
  return {"echo": [echo_backend.address], "dead": ["127.0.0.1:%d" % support.free_port()]}


def test_one_line_per_call_with_its_outcome(tmp_path, clusters, echo_backend):
  path = str(tmp_path / "access.log")
  relay = start(tmp_path, clusters, {"path": path})
  try:
    with support.channel(relay.address) as ch:
      assert support.unary(ch)(b"x" * 100, timeout=support.GUARD_SECONDS) == b"x" * 100
      with pytest.raises(grpc.RpcError) as e:
        support.unary(ch, "/dead.Svc/Get")(b"", timeout=support.GUARD_SECONDS)
      assert e.value.code() == grpc.StatusCode.UNAVAILABLE
      with pytest.raises(grpc.RpcError) as e:
        support.unary(ch, "/nope.Svc/Get")(b"", timeout=support.GUARD_SECONDS)
      assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
      replies = list(support.server_stream(ch)(
          b"", metadata=(("x-count", "4"), ("x-size", "10")), timeout=support.GUARD_SECONDS))
      assert len(replies) == 4
      with pytest.raises(grpc.RpcError) as e:
        support.unary(ch)(b"", metadata=(("x-status-code", "9"),), timeout=support.GUARD_SECONDS)
      assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    lines = wait_lines(path, 5)
    assert len(lines) == 5, lines
    for line in lines:
      assert list(line) == FIELDS
      assert TIME_RE.match(line["time"]), line
      assert re.match(r"^127\.0\.0\.1:\d+$", line["peer"]), line
      assert line["authority"] == relay.address
      assert line["duration_ms"] >= 0
      assert line["retries"] == 0
    ok, dead, unrouted, stream, failed = lines
    assert {k: ok[k] for k in FIELDS[3:] if k != "duration_ms"} == {
        "path": "/test.Echo/Unary", "protocol": "grpc", "route": "test.Echo", "cluster": "echo",
        "endpoint": echo_backend.address, "status": "OK", "grpc_code": 0,
        "request_bytes": 105, "response_bytes": 105, "request_messages": 1,
        "response_messages": 1, "retries": 0, "error": "", "message": ""}
    assert (dead["path"], dead["route"], dead["cluster"], dead["status"], dead["grpc_code"],
            dead["error"], dead["response_messages"]) == (
                "/dead.Svc/Get", "dead.Svc", "dead", "UNAVAILABLE", 14, "no_endpoint", 0)
    # The first dial of the dead endpoint is refused; the call has no other endpoint.
    assert dead["message"] == "connect to %s failed: connection refused" % (
        clusters["dead"][0]), dead
    assert (unrouted["route"], unrouted["cluster"], unrouted["endpoint"], unrouted["status"],
            unrouted["error"], unrouted["message"]) == (
                "", "", "", "UNIMPLEMENTED", "no_route", "no route for /nope.Svc/Get")
    assert (stream["path"], stream["status"], stream["request_messages"],
            stream["response_messages"], stream["response_bytes"]) == (
                "/test.Echo/ServerStream", "OK", 1, 4, 4 * 15)
    # A status the backend chose is no relay error.
    assert (failed["status"], failed["grpc_code"], failed["error"], failed["message"]) == (
        "FAILED_PRECONDITION", 9, "", "")
  finally:
    relay.stop()


def test_only_errors_and_sampling(tmp_path, clusters):
  errors_path = str(tmp_path / "errors.log")
  relay = start(tmp_path, clusters, {"path": errors_path, "only_errors": True})
  try:
    with support.channel(relay.address) as ch:
      for _ in range(3):
        support.unary(ch)(b"", timeout=support.GUARD_SECONDS)
      with pytest.raises(grpc.RpcError):
        support.unary(ch, "/nope.Svc/Get")(b"", timeout=support.GUARD_SECONDS)
      support.unary(ch)(b"", timeout=support.GUARD_SECONDS)
    # The OK call after the error was flushed with it (or before the stop below).
  finally:
    relay.stop()
  lines = read_lines(errors_path)
  assert [l["status"] for l in lines] == ["UNIMPLEMENTED"]

  sampled_path = str(tmp_path / "sampled.log")
  relay = start(tmp_path, clusters, {"path": sampled_path, "sample_rate": 0.25})
  try:
    with support.channel(relay.address) as ch:
      for i in range(12):
        support.unary(ch)(b"x" * i, timeout=support.GUARD_SECONDS)
  finally:
    relay.stop()
  # Sampling is spread evenly: every fourth call (calls 3, 7 and 11, counting from 0).
  lines = read_lines(sampled_path)
  assert [l["request_bytes"] - 5 for l in lines] == [3, 7, 11]


def test_stdout(tmp_path, clusters):
  relay = start(tmp_path, clusters, {"path": "-"})
  try:
    with support.channel(relay.address) as ch:
      support.unary(ch)(b"", timeout=support.GUARD_SECONDS)
    found = relay.log.wait_for(
        lambda ls: [l for l in ls if l.startswith("{") and '"/test.Echo/Unary"' in l], 10)
    assert found, relay.log.tail()
    assert json.loads(found[0])["status"] == "OK"
  finally:
    relay.stop()


@pytest.mark.parametrize("signum", [signal.SIGUSR1, signal.SIGHUP])
def test_reopens_the_file_after_logrotate(tmp_path, clusters, signum):
  path = str(tmp_path / "access.log")
  rotated = path + ".1"
  relay = start(tmp_path, clusters, {"path": path})
  try:
    with support.channel(relay.address) as ch:
      support.unary(ch)(b"before", timeout=support.GUARD_SECONDS)
      assert len(wait_lines(path, 1)) == 1
      os.rename(path, rotated)
      relay.signal(signum)
      assert relay.log.wait_for(lambda ls: [l for l in ls if "reopening the access log" in l], 10)
      # The file reopens at the next flush, which creates it anew.
      assert support.wait_until(lambda: os.path.exists(path), 10)
      support.unary(ch)(b"after-rotation", timeout=support.GUARD_SECONDS)
      lines = wait_lines(path, 1)
    # Each payload plus its 5-byte length prefix: the new file has only the later call.
    assert [l["request_bytes"] for l in lines] == [len("after-rotation") + 5]
    assert [l["request_bytes"] for l in read_lines(rotated)] == [len("before") + 5]
    assert relay.alive()
  finally:
    relay.stop()


def test_unwritable_path_fails_at_start(tmp_path, clusters):
  config = tmp_path / "unwritable.toml"
  log_path = tmp_path / "no-such-dir" / "calls.log"
  config.write_text(support.render_config(
      routes=[{"service": "test.Echo", "cluster": "echo"}], clusters=clusters,
      extra='[access_log]\npath = "%s"\n' % log_path))
  result = subprocess.run([support.grelay_bin(), "-c", str(config)], capture_output=True,
                          text=True, timeout=support.STOP_SECONDS)
  assert result.returncode == 1, result.stderr
  assert "cannot open access log %s: No such file or directory" % log_path in result.stderr
  assert "listening on" not in result.stderr


def test_retries_agree_with_the_metric(tmp_path, clusters):
  """A call that succeeds after 2 retries under the route's policy logs "retries": 2, and
  grelay_retries_total counts the same 2 (docs/config.md: attempts after the first, whether
  the route's policy or a transparent replay made them)."""
  flaky = support.BackendProcess(tmp_path, name="flaky")
  path = str(tmp_path / "access.log")
  policy = {"attempts": 3, "on": ["UNAVAILABLE"], "backoff": "10ms", "max_backoff": "50ms"}
  relay, admin = admin_support.start_relay(
      tmp_path, [{"prefix": "/test.", "cluster": "flaky", "retry": policy}],
      {"flaky": [flaky.address]}, extra='[access_log]\npath = "%s"\n' % path)
  try:
    with support.channel(relay.address) as ch:
      assert support.unary(ch)(b"x", metadata=(("x-fail-attempts", "2"),),
                               timeout=support.GUARD_SECONDS) == b"x"
    lines = wait_lines(path, 1)
    assert [(l["status"], l["retries"]) for l in lines] == [("OK", 2)]
    assert admin_support.Scrape(admin).value("grelay_retries_total", cluster="flaky") == 2
  finally:
    relay.stop()
    flaky.stop()


def test_utf8_passes_through_and_invalid_bytes_are_escaped(tmp_path, clusters):
  """Fields are written as they came when they are UTF-8 (café, not cafÃ©); a byte that is
  not part of valid UTF-8 is written as \\u00XX, its value, and never dropped."""
  path = str(tmp_path / "access.log")
  relay = start(tmp_path, clusters, {"path": path})
  try:
    conn = H2Client(relay.address)
    conn.start("/nope.Svc/café".encode())
    conn.start(b"/nope.Svc/x\xffy\xc3")
    lines = wait_lines(path, 2)
    conn.close()
    with open(path, "rb") as f:
      raw = f.read()
  finally:
    relay.stop()
  assert sorted(l["path"] for l in lines) == ["/nope.Svc/café", "/nope.Svc/x\u00ffy\u00c3"]
  assert sorted(l["message"] for l in lines) == ["no route for /nope.Svc/café",
                                                 "no route for /nope.Svc/x\u00ffy\u00c3"]
  assert "/nope.Svc/café".encode() in raw
  assert b"/nope.Svc/x\\u00ffy\\u00c3" in raw


def test_a_reset_at_the_deadline_is_the_deadline(tmp_path, clusters):
  """A client that resets its call once the deadline has passed (within the relay's timer
  resolution, 1 ms) gave up at the deadline: DEADLINE_EXCEEDED in metrics and the access
  log, whichever of its RST_STREAM and the relay's timer came first. The reset and the
  request arrive in one read here, so the relay's timer cannot have fired yet. A reset well
  before the deadline is a cancel."""
  path = str(tmp_path / "access.log")
  relay, admin = admin_support.start_relay(
      tmp_path, [{"service": "test.Echo", "cluster": "echo"}], {"echo": clusters["echo"]},
      extra='[access_log]\npath = "%s"\n' % path)
  try:
    conn = H2Client(relay.address)
    for timeout in ("1n", "1m", "100S"):
      sid = conn.new_stream()
      fields = conn.request_fields("/test.Echo/Unary",
                                   [("grpc-timeout", timeout), ("x-sleep-ms", "5000")])
      conn.send(conn.header_frames(sid, fields) + rst_frame(sid, CANCEL))
    lines = wait_lines(path, 3)
    conn.close()
    scrape = admin_support.Scrape(admin)
  finally:
    relay.stop()
  assert sorted(l["status"] for l in lines) == [
      "CANCELLED", "DEADLINE_EXCEEDED", "DEADLINE_EXCEEDED"], lines
  labels = scrape.call_labels("test.Echo", "echo", "test.Echo", "Unary")
  assert scrape.value("grelay_calls_total", **labels, grpc_code="DEADLINE_EXCEEDED") == 2
  assert scrape.value("grelay_calls_total", **labels, grpc_code="CANCELLED") == 1
