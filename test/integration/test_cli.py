"""The command line: --check, --version and the SIGTERM drain (docs/config.md, "Checking a
file" and "Drain")."""

import os
import re
import signal
import subprocess

import grpc
import pytest

import support
from support import GUARD_SECONDS

pytestmark = pytest.mark.relay_only

VALID = """\
log_level = "debug"
workers = 1

[[listener]]
address = "127.0.0.1:0"

[[route]]
service = "test.Echo"
cluster = "echo"
timeout = "250ms"

[[route]]
prefix = "/test."
authority = "api.example.com"
cluster = "echo"

[[route]]
path = "/pkg.Svc/Method"
cluster = "echo"

[[route]]
none = true
cluster = "echo"

[[cluster]]
name = "echo"
endpoints = ["127.0.0.1:50051", "localhost:50052"]
connect_timeout = "5s"
"""

# Each case marks with "# <" the lines an error may point at; the first error must be there.
INVALID = {
    "toml_syntax": """\
[[listener]]
address = "127.0.0.1:0"
bad = "unterminated  # <
""",
    "unknown_cluster": """\
[[listener]]
address = "127.0.0.1:0"

[[route]]  # <
service = "test.Echo"
cluster = "nope"  # <

[[cluster]]
name = "echo"
endpoints = ["127.0.0.1:1"]
""",
    "two_matchers": """\
[[listener]]
address = "127.0.0.1:0"

[[route]]  # <
service = "test.Echo"  # <
path = "/test.Echo/Unary"  # <
cluster = "echo"

[[cluster]]
name = "echo"
endpoints = ["127.0.0.1:1"]
""",
    "no_matcher": """\
[[listener]]
address = "127.0.0.1:0"

[[route]]  # <
cluster = "echo"  # <

[[cluster]]
name = "echo"
endpoints = ["127.0.0.1:1"]
""",
    "bad_duration": """\
[[listener]]
address = "127.0.0.1:0"

[[route]]
service = "test.Echo"
cluster = "echo"
timeout = "5 parsecs"  # <

[[cluster]]
name = "echo"
endpoints = ["127.0.0.1:1"]
""",
    "bad_endpoint": """\
[[listener]]
address = "127.0.0.1:0"

[[route]]
service = "test.Echo"
cluster = "echo"

[[cluster]]
name = "echo"
endpoints = ["no-port-here"]  # <
""",
    "bad_port": """\
[[listener]]
address = "127.0.0.1:99999"  # <

[[route]]
none = true
cluster = "echo"

[[cluster]]
name = "echo"
endpoints = ["127.0.0.1:1"]
""",
    "bad_log_level": """\
log_level = "loud"  # <

[[listener]]
address = "127.0.0.1:0"

[[route]]
none = true
cluster = "echo"

[[cluster]]
name = "echo"
endpoints = ["127.0.0.1:1"]
""",
    "duplicate_cluster": """\
[[listener]]
address = "127.0.0.1:0"

[[route]]
none = true
cluster = "echo"

[[cluster]]
name = "echo"
endpoints = ["127.0.0.1:1"]

[[cluster]]  # <
name = "echo"  # <
endpoints = ["127.0.0.1:2"]  # <
""",
    "unknown_key": """\
[[listener]]
address = "127.0.0.1:0"

[[route]]
none = true
cluster = "echo"
colour = "blue"  # <

[[cluster]]
name = "echo"
endpoints = ["127.0.0.1:1"]
""",
}


def _run(args, timeout=30):
  return subprocess.run([support.grelay_bin()] + args, stdin=subprocess.DEVNULL,
                        capture_output=True, text=True, timeout=timeout)


def _write(tmp_path, name, text):
  path = tmp_path / name
  path.write_text(text)
  return str(path)


def test_check_accepts_a_valid_config(grelay_bin, tmp_path):
  path = _write(tmp_path, "valid.toml", VALID)
  result = _run(["--check", "-c", path])
  assert result.returncode == 0, result.stderr
  assert "listening on" not in result.stderr + result.stdout


@pytest.mark.parametrize("case", sorted(INVALID))
def test_check_rejects_an_invalid_config_with_file_and_line(grelay_bin, tmp_path, case):
  text = INVALID[case]
  path = _write(tmp_path, case + ".toml", text)
  allowed = {n for n, line in enumerate(text.splitlines(), start=1) if line.endswith("# <")}
  result = _run(["--check", "-c", path])
  assert result.returncode == 2, "exit %d, stderr: %s" % (result.returncode, result.stderr)
  located = re.findall(r"^%s:(\d+): (\S.*)$" % re.escape(path), result.stderr, re.MULTILINE)
  assert located, "no '%s:LINE: message' line in stderr: %r" % (path, result.stderr)
  line = int(located[0][0])
  assert line in allowed, "error points at line %d, expected one of %s: %r" % (
      line, sorted(allowed), result.stderr)


def test_check_on_a_missing_file_fails(grelay_bin, tmp_path):
  path = str(tmp_path / "does-not-exist.toml")
  result = _run(["--check", "-c", path])
  assert result.returncode == 2, result.stderr
  assert path in result.stderr


def test_version(grelay_bin):
  with open(os.path.join(support.REPO, "meson.build")) as f:
    version = re.search(r"version\s*:\s*'([^']+)'", f.read()).group(1)
  result = _run(["--version"])
  assert result.returncode == 0, result.stderr
  assert version in result.stdout + result.stderr


def test_sigterm_drains_an_in_flight_call(relay_factory, echo_backend, grpc_channel):
  relay = relay_factory(routes=[{"service": "test.Echo", "cluster": "echo"}],
                        clusters={"echo": [echo_backend.address]})
  ch = grpc_channel(relay.addr())
  cid = support.call_id()
  future = support.unary(ch).future(b"drain me", metadata=[("x-sleep-ms", "1500"),
                                                            ("x-call-id", cid)],
                                    timeout=GUARD_SECONDS)
  assert echo_backend.saw_start(cid), "the call never reached the backend"
  relay.signal(signal.SIGTERM)
  assert future.result() == b"drain me"
  assert future.code() == grpc.StatusCode.OK
  relay.stop()  # Waits for the exit the SIGTERM started and checks its status.


def test_sigterm_with_open_idle_connection_exits(relay_factory, echo_backend, grpc_channel):
  relay = relay_factory(routes=[{"service": "test.Echo", "cluster": "echo"}],
                        clusters={"echo": [echo_backend.address]})
  ch = grpc_channel(relay.addr())
  assert support.unary(ch)(b"x", timeout=GUARD_SECONDS) == b"x"
  # The client keeps its connection open; the drain must still finish.
  relay.stop()
