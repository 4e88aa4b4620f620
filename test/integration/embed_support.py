"""Programs that embed grelay. consumer/relay_one.cc, built against an installed tree
(test_install.py) and with grelay as a meson subproject (test_subproject.py), relays one
grpcio call to the echo backend. examples/embed's server (EmbedServer) relays the gRPC
streams of its own nghttp2 sessions through grelay::StreamRelay (test_embed.py, and built
against an installed tree in test_install.py)."""

import os
import re
import subprocess

import pytest

import support

CONSUMER_DIR = os.path.join(support.HERE, "consumer")
RELAY_ONE_SOURCE = os.path.join(CONSUMER_DIR, "relay_one.cc")
EMBED_SERVER_SOURCE = os.path.join(support.HERE, "..", "..", "examples", "embed",
                                   "embed_server.cc")
LISTENING_RE = re.compile(r"listening on ([0-9.]+):(\d+)")


def relay_one_call(program, echo_backend, workdir, env=None):
  """Runs |program| (a relay_one build) in front of |echo_backend|, makes one unary call
  through it, stops it with SIGTERM (it must exit 0) and returns its output lines."""
  text = support.render_config([{"service": "test.Echo", "cluster": "echo"}],
                               {"echo": [echo_backend.address]})
  relay = support.RelayProcess(text, workdir, name="relay_one", env=env, command=[program])
  try:
    with support.channel(relay.address) as ch:
      payload = b"through a program that embeds grelay"
      assert support.unary(ch)(payload, timeout=support.GUARD_SECONDS) == payload
  finally:
    relay.stop()
  relay.log.wait_for(lambda lines: "stopped" in lines, 10)
  lines = list(relay.log.lines)
  # A ConfigError thrown in the library was caught by its type in the program.
  assert "caught grelay::ConfigError at bad.toml:1" in lines, relay.log.tail()
  assert "stopped" in lines, relay.log.tail()
  return lines


def embed_server_bin():
  path = os.environ.get("EMBED_SERVER_BIN") or os.path.join(
      os.path.dirname(support.grelay_bin()), "examples", "embed", "embed_server")
  if not os.path.exists(path):
    pytest.fail("embed_server not found at %s (set EMBED_SERVER_BIN)" % path)
  return path


class EmbedServer:
  """A running examples/embed server on |config_text|."""

  def __init__(self, config_text, workdir, binary=None, env=None):
    os.makedirs(workdir, exist_ok=True)
    self.config_path = os.path.join(workdir, "embed.toml")
    with open(self.config_path, "w") as f:
      f.write(config_text)
    self.proc = subprocess.Popen([binary or embed_server_bin(), self.config_path, "127.0.0.1",
                                  "0"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT,
                                 env=dict(os.environ, **env) if env else None)
    self.pid = self.proc.pid
    self.log = support.LogPump(self.proc.stdout,
                               copy_path=os.path.join(workdir, "embed.log"))
    hit = self.log.wait_for(
        lambda lines: next((m for m in map(LISTENING_RE.search, lines) if m), None), 15)
    if not hit:
      self.proc.kill()
      raise AssertionError("embed_server did not start:\n" + self.log.tail())
    self.address = "%s:%s" % (hit.group(1), hit.group(2))

  def rss_kib(self):
    with open("/proc/%d/status" % self.pid) as f:
      for line in f:
        if line.startswith("VmRSS:"):
          return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % self.pid)

  def stop(self):
    self.proc.terminate()
    code = self.proc.wait(timeout=support.STOP_SECONDS)
    assert code == 0, "embed_server exited with %d:\n%s" % (code, self.log.tail())
