"""The [admin] endpoint: /healthz and /ready through the real binary, /ready flipping to 503
when SIGTERM starts a drain."""

import http.client
import re
import signal
import socket
import time

import grpc
import pytest

import support

pytestmark = pytest.mark.relay_only

ADMIN_RE = re.compile(r"admin endpoint at http://([\d.]+):(\d+)/")


def _start(workdir, backend_addr):
  text = support.render_config(
      routes=[{"none": True, "cluster": "echo"}],
      clusters={"echo": [backend_addr]},
      extra='[admin]\naddress = "127.0.0.1:0"\n')
  relay = support.RelayProcess(text, str(workdir), name="admin")
  lines = relay.log.wait_for(lambda ls: [m for m in map(ADMIN_RE.search, ls) if m], 10)
  if not lines:
    relay.kill()
    pytest.fail("grelay did not log its admin address:\n" + relay.log.tail())
  return relay, (lines[0].group(1), int(lines[0].group(2)))


def _get(admin, path, method="GET"):
  conn = http.client.HTTPConnection(admin[0], admin[1], timeout=5)
  try:
    conn.request(method, path)
    response = conn.getresponse()
    return response.status, response.read().decode()
  finally:
    conn.close()


@pytest.fixture
def relay_with_admin(tmp_path, echo_backend):
  relay, admin = _start(tmp_path, echo_backend.address)
  yield relay, admin
  if relay.alive():
    relay.stop()


def test_healthz_and_ready_answer_ok(relay_with_admin):
  _, admin = relay_with_admin
  assert _get(admin, "/healthz") == (200, "ok\n")
  assert _get(admin, "/ready") == (200, "ready\n")


def test_unknown_path_is_404_and_other_methods_405(relay_with_admin):
  _, admin = relay_with_admin
  assert _get(admin, "/metrics-nope")[0] == 404
  assert _get(admin, "/healthz", method="POST")[0] == 405


def test_oversized_request_head_is_refused(relay_with_admin):
  _, admin = relay_with_admin
  with socket.create_connection(admin, timeout=5) as s:
    s.sendall(b"GET /healthz HTTP/1.1\r\nX-Pad: " + b"a" * 20000)
    reply = s.recv(200)
  assert reply.startswith(b"HTTP/1.1 431")


def test_ready_turns_503_while_draining(relay_with_admin, echo_backend):
  relay, admin = relay_with_admin
  ch = support.channel(relay.addr())
  # A call held open keeps the drain going while /ready is asked.
  call = support.server_stream(ch)(b"", metadata=(("x-sleep-ms", "3000"),), timeout=20)
  time.sleep(0.3)
  relay.signal(signal.SIGTERM)
  assert support.wait_until(lambda: _get(admin, "/ready")[0] == 503, 5)
  assert _get(admin, "/ready") == (503, "draining\n")
  assert _get(admin, "/healthz") == (200, "ok\n")
  list(call)
  ch.close()
