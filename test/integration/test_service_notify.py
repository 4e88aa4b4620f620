"""The sd_notify protocol over $NOTIFY_SOCKET, as a Type=notify systemd unit sees it: READY=1
once grelay listens, RELOADING=1 then READY=1 around a reload, STOPPING=1 with the drain
time as EXTEND_TIMEOUT_USEC when it drains."""

import os
import signal
import socket

import pytest

import support

pytestmark = pytest.mark.relay_only


class NotifySocket:
  """A datagram socket in the role of systemd's notify socket."""

  def __init__(self, path=None):
    self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if path is None:
      # An abstract name, as systemd itself uses: '@' in the variable, NUL on the wire.
      name = "grelay-test-%d-%d" % (os.getpid(), id(self))
      self.sock.bind("\0" + name)
      self.env = "@" + name
    else:
      self.sock.bind(path)
      self.env = path
    self.sock.settimeout(support.GUARD_SECONDS)

  def next(self):
    """The next message as a dict of its KEY=VALUE lines."""
    data = self.sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.split("\n") if line)

  def close(self):
    self.sock.close()


@pytest.mark.parametrize("kind", ["abstract", "path"])
def test_ready_reloading_stopping(tmp_path, echo_backend, kind):
  notify = NotifySocket(None if kind == "abstract" else str(tmp_path / "notify"))
  text = support.render_config([{"service": "test.Echo", "cluster": "echo"}],
                               {"echo": [echo_backend.address]}, extra='drain_timeout = "7s"')
  relay = support.RelayProcess(text, str(tmp_path), name="relay-notify",
                               env={"NOTIFY_SOCKET": notify.env})
  try:
    ready = notify.next()
    assert ready["READY"] == "1"
    # The listener is up when READY=1 arrives.
    with support.channel(relay.address) as ch:
      assert support.unary(ch)(b"x", timeout=support.GUARD_SECONDS) == b"x"

    relay.signal(signal.SIGHUP)
    reloading = notify.next()
    assert reloading["RELOADING"] == "1" and int(reloading["MONOTONIC_USEC"]) > 0
    assert notify.next()["READY"] == "1"

    # A reload of an invalid file ends with READY=1 too, and says why in STATUS.
    with open(relay.config_path, "a") as f:
      f.write("bogus_key = 1\n")
    relay.signal(signal.SIGHUP)
    assert notify.next()["RELOADING"] == "1"
    assert notify.next()["READY"] == "1"
    status = notify.next()
    assert "reload failed" in status["STATUS"] and "bogus_key" in status["STATUS"]

    relay.signal(signal.SIGTERM)
    stopping = notify.next()
    assert stopping["STOPPING"] == "1"
    # drain_timeout (7 s), the 2 s after it in which open calls are ended, and a margin.
    assert int(stopping["EXTEND_TIMEOUT_USEC"]) == (7 + 2 + 5) * 1000000
  finally:
    relay.stop()
    notify.close()


def test_no_notify_socket_no_message(tmp_path, echo_backend):
  """Without $NOTIFY_SOCKET grelay runs as usual (the other tests); a socket named but gone
  does not stop it either."""
  text = support.render_config([{"service": "test.Echo", "cluster": "echo"}],
                               {"echo": [echo_backend.address]})
  relay = support.RelayProcess(text, str(tmp_path), name="relay-nonotify",
                               env={"NOTIFY_SOCKET": str(tmp_path / "missing")})
  try:
    with support.channel(relay.address) as ch:
      assert support.unary(ch)(b"x", timeout=support.GUARD_SECONDS) == b"x"
  finally:
    relay.stop()
