"""TLS on both sides: h2 with ALPN at the listeners (versions, SNI, session resumption,
client certificates, handshake timeout), and verified TLS and mTLS to backends. Certificates
are made by the tests with the openssl command line (tls_support.py)."""

import os
import re
import socket
import ssl
import time

import grpc
import h2.config
import h2.connection
import h2.events
import pytest

import support
from h2_client import grpc_frame, grpc_unframe
from support import GUARD_SECONDS, metadata_dict
from tls_support import (RELAY_NAME, Pki, common_name, peer_certificate, q, s_client, sighup,
                         tls_channel, unary)

pytestmark = pytest.mark.relay_only


@pytest.fixture(scope="module")
def pki(workdir):
  p = Pki(os.path.join(workdir, "tls-pki"))
  p.ca_main = p.ca("main-ca")
  p.ca_other = p.ca("other-ca")
  p.relay = p.issue(p.ca_main, "relay", ["DNS:relay.test", "IP:127.0.0.1"], 11)
  p.sni_a = p.issue(p.ca_main, "a.test", ["DNS:a.test"], 12)
  p.sni_b = p.issue(p.ca_main, "b.test", ["DNS:b.test", "DNS:*.b.test"], 13)
  p.client_a = p.issue(p.ca_main, "client-a", ["DNS:client-a.test", "URI:spiffe://test/a"], 21,
                       client=True)
  p.client_stranger = p.issue(p.ca_other, "stranger", ["DNS:client-a.test"], 22, client=True)
  p.relay_client = p.issue(p.ca_main, "relay-client", ["DNS:relay-client.test"], 23,
                           client=True)
  p.backend = p.issue(p.ca_main, "backend", ["DNS:backend.test", "IP:127.0.0.1"], 31)
  p.backend_other_ca = p.issue(p.ca_other, "backend-other-ca", ["DNS:backend.test"], 32)
  p.backend_wrong_name = p.issue(p.ca_main, "backend-wrong-name", ["DNS:elsewhere.test"], 33)
  p.backend_expired = p.issue_expired(p.ca_main, "backend-expired", ["DNS:backend.test"], 34)
  return p


def tls_backend(workdir, name, pair, client_ca=None):
  args = ["--tls-cert", pair[0], "--tls-key", pair[1]]
  if client_ca:
    args += ["--tls-client-ca", client_ca]
  return support.BackendProcess(os.path.join(workdir, "tls-backends"), name=name,
                                extra_args=args)


@pytest.fixture(scope="module")
def backends(workdir, pki):
  started = {}
  try:
    started["good"] = tls_backend(workdir, "tls-good", pki.backend)
    started["mtls"] = tls_backend(workdir, "tls-mtls", pki.backend, client_ca=pki.ca_main[0])
    started["other_ca"] = tls_backend(workdir, "tls-other-ca", pki.backend_other_ca)
    started["wrong_name"] = tls_backend(workdir, "tls-wrong-name", pki.backend_wrong_name)
    started["expired"] = tls_backend(workdir, "tls-expired", pki.backend_expired)
    yield started
  finally:
    for b in started.values():
      b.stop()


def main_config(pki, echo_backend, other_backend, backends):
  ca = q(pki.ca_main[0])
  b = backends
  return f"""\
log_level = "info"

[[listener]]
address = "127.0.0.1:0"
handshake_timeout = "1s"
tls = {{ cert = {q(pki.relay[0])}, key = {q(pki.relay[1])}, certs = [{{ names = ["a.test"], cert = {q(pki.sni_a[0])}, key = {q(pki.sni_a[1])} }}, {{ names = ["b.test", "*.b.test"], cert = {q(pki.sni_b[0])}, key = {q(pki.sni_b[1])} }}] }}

[[listener]]
address = "127.0.0.1:0"
tls = {{ cert = {q(pki.relay[0])}, key = {q(pki.relay[1])}, client_ca = {ca}, verify = "require" }}

[[listener]]
address = "127.0.0.1:0"
tls = {{ cert = {q(pki.relay[0])}, key = {q(pki.relay[1])}, client_ca = {ca}, verify = "optional" }}

[[route]]
service = "san.Echo"
client_san = "client-a.test"
cluster = "other"

[[route]]
service = "san.Echo"
cluster = "echo"

[[route]]
service = "test.Echo"
cluster = "echo"

[[route]]
service = "tls.Echo"
cluster = "tls-good"

[[route]]
service = "ip.Echo"
cluster = "tls-ip"

[[route]]
service = "mtls.Echo"
cluster = "tls-mtls"

[[route]]
service = "nocert.Echo"
cluster = "tls-nocert"

[[route]]
service = "otherca.Echo"
cluster = "tls-other-ca"

[[route]]
service = "wrongname.Echo"
cluster = "tls-wrong-name"

[[route]]
service = "expired.Echo"
cluster = "tls-expired"

[[cluster]]
name = "echo"
endpoints = ["{echo_backend.address}"]

[[cluster]]
name = "other"
endpoints = ["{other_backend.address}"]

[[cluster]]
name = "tls-good"
endpoints = ["{b['good'].address}"]
tls = {{ ca = {ca}, server_name = "backend.test" }}

[[cluster]]
name = "tls-ip"
endpoints = ["{b['good'].address}"]
tls = {{ ca = {ca} }}

[[cluster]]
name = "tls-mtls"
endpoints = ["{b['mtls'].address}"]
tls = {{ ca = {ca}, cert = {q(pki.relay_client[0])}, key = {q(pki.relay_client[1])}, server_name = "backend.test" }}

[[cluster]]
name = "tls-nocert"
endpoints = ["{b['mtls'].address}"]
tls = {{ ca = {ca}, server_name = "backend.test" }}

[[cluster]]
name = "tls-other-ca"
endpoints = ["{b['other_ca'].address}"]
tls = {{ ca = {ca}, server_name = "backend.test" }}

[[cluster]]
name = "tls-wrong-name"
endpoints = ["{b['wrong_name'].address}"]
tls = {{ ca = {ca}, server_name = "backend.test" }}

[[cluster]]
name = "tls-expired"
endpoints = ["{b['expired'].address}"]
tls = {{ ca = {ca}, server_name = "backend.test" }}
"""


@pytest.fixture(scope="module")
def relay(workdir, pki, echo_backend, other_backend, backends):
  text = main_config(pki, echo_backend, other_backend, backends)
  r = support.RelayProcess(text, os.path.join(workdir, "tls-main"), name="relay", listeners=3)
  yield r
  r.stop()


@pytest.fixture
def channels():
  opened = []

  def make(*args, **kwargs):
    ch = tls_channel(*args, **kwargs)
    opened.append(ch)
    return ch

  yield make
  for ch in opened:
    ch.close()


# Listeners.


def test_tls_client_message_in_one_byte_frames_written_at_once_arrives_whole(relay, pki,
                                                                            channels):
  # About 300 KB of 10-byte frames in one go over TLS: the relay decrypts up to 256 KiB at
  # once and handles at most a few thousand frames a loop turn, keeping the rest for the
  # turns after, in order. The message goes through whole, and another client is served.
  message = bytes(i % 251 for i in range(30000))
  framed = grpc_frame(message)
  context = ssl.create_default_context(cafile=pki.ca_main[0])
  context.set_alpn_protocols(["h2"])
  host, port = relay.addresses[0].rsplit(":", 1)
  raw = socket.create_connection((host, int(port)), timeout=GUARD_SECONDS)
  with context.wrap_socket(raw, server_hostname=RELAY_NAME) as sock:
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "POST"), (":scheme", "https"),
                            (":authority", RELAY_NAME), (":path", "/test.Echo/Unary"),
                            ("content-type", "application/grpc"), ("te", "trailers")])
    # Within the protocol's initial windows (64 KiB): no need to wait for the relay's.
    for i in range(len(framed)):
      conn.send_data(sid, framed[i:i + 1])
    conn.end_stream(sid)
    sock.sendall(conn.data_to_send())
    ch = channels(relay.addresses[0], pki.ca_main[0])
    assert unary(ch, request=b"meanwhile")[0] == b"meanwhile"
    body, trailers, ended = bytearray(), {}, False
    while not ended:
      chunk = sock.recv(65536)
      assert chunk, "the relay closed the connection before the answer ended"
      for event in conn.receive_data(chunk):
        if isinstance(event, h2.events.DataReceived) and event.stream_id == sid:
          body += event.data
          conn.acknowledge_received_data(event.flow_controlled_length, sid)
        elif isinstance(event, h2.events.TrailersReceived) and event.stream_id == sid:
          trailers = dict(event.headers)
        elif isinstance(event, h2.events.StreamEnded) and event.stream_id == sid:
          ended = True
      sock.sendall(conn.data_to_send())
  assert trailers.get(b"grpc-status") == b"0", trailers
  assert grpc_unframe(bytes(body)) == [(0, message)]


def test_tls_client_to_h2c_backend(relay, pki, channels):
  ch = channels(relay.addresses[0], pki.ca_main[0])
  response, call = unary(ch, request=b"over tls")
  assert response == b"over tls"
  assert metadata_dict(call.trailing_metadata())["x-backend-name"] == "echo"
  # Streams of every shape and a large body go through the TLS layer too.
  request = bytes(range(256)) * (3 * 1024 * 1024 // 256)
  assert ch.unary_unary("/test.Echo/Unary")(request, timeout=GUARD_SECONDS) == request
  md = [("x-count", "200"), ("x-size", "5000")]
  received = list(ch.unary_stream("/test.Echo/ServerStream")(b"", metadata=md,
                                                             timeout=GUARD_SECONDS))
  assert received == [support.pattern_message(i, 5000) for i in range(200)]
  messages = [b"m%d" % i * 100 for i in range(100)]
  assert list(ch.stream_stream("/test.Echo/Bidi")(iter(messages),
                                                  timeout=GUARD_SECONDS)) == messages


def test_alpn_h2_is_selected_and_tls_versions(relay, pki):
  cert, alpn = peer_certificate(relay.addresses[0], pki.ca_main[0])
  assert alpn == "h2"
  assert common_name(cert) == "relay"
  out = s_client(relay.addresses[0], "-alpn", "h2", "-tls1_2")
  assert "ALPN protocol: h2" in out
  assert re.search(r"New, TLSv1\.2, Cipher is ECDHE-ECDSA-", out), out
  out = s_client(relay.addresses[0], "-alpn", "h2", "-tls1_3")
  assert "ALPN protocol: h2" in out
  assert re.search(r"New, TLSv1\.3, Cipher is TLS_", out), out


def test_tls11_is_refused(relay):
  # The cipher option lets this OpenSSL offer TLS 1.1 at all; the relay must refuse it.
  out = s_client(relay.addresses[0], "-tls1_1", "-alpn", "h2", "-cipher", "DEFAULT@SECLEVEL=0")
  assert "alert protocol version" in out, out
  assert "ALPN protocol: h2" not in out


def test_alpn_http11_only_is_refused(relay):
  out = s_client(relay.addresses[0], "-alpn", "http/1.1")
  assert "alert no application protocol" in out, out


def test_no_alpn_is_refused(relay):
  out = s_client(relay.addresses[0])
  assert "alert no application protocol" in out, out


def tls_context(ca, version):
  ctx = ssl.create_default_context(cafile=ca)
  ctx.minimum_version = ctx.maximum_version = version
  ctx.set_alpn_protocols(["h2"])
  return ctx


def h2_session(address, ctx, session=None):
  """Connects with |ctx| (resuming |session| if given), exchanges HTTP/2 SETTINGS (so that
  TLS 1.3 tickets arrive) and returns (session, reused)."""
  host, port = address.rsplit(":", 1)
  with socket.create_connection((host, int(port)), timeout=GUARD_SECONDS) as raw:
    with ctx.wrap_socket(raw, server_hostname=RELAY_NAME, session=session) as s:
      s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
      assert s.recv(9)[3] == 4  # The relay's SETTINGS frame.
      return s.session, s.session_reused


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_sessions_resume_also_after_a_certificate_reload(relay, pki, version):
  ctx = tls_context(pki.ca_main[0], version)
  session, reused = h2_session(relay.addresses[0], ctx)
  assert not reused
  assert h2_session(relay.addresses[0], ctx, session)[1]
  # A reload keeps the ticket keys: a ticket from before it resumes after it.
  session, _ = h2_session(relay.addresses[0], ctx)
  sighup(relay)
  assert h2_session(relay.addresses[0], ctx, session)[1]


def test_sni_picks_the_certificate(relay, pki, channels):
  address = relay.addresses[0]
  assert common_name(peer_certificate(address, pki.ca_main[0], "a.test")[0]) == "a.test"
  assert common_name(peer_certificate(address, pki.ca_main[0], "b.test")[0]) == "b.test"
  assert common_name(peer_certificate(address, pki.ca_main[0], "x.b.test")[0]) == "b.test"
  # Unknown names and no SNI at all get the default certificate.
  assert common_name(peer_certificate(address, pki.ca_main[0], "unknown.test")[0]) == "relay"
  assert common_name(peer_certificate(address, pki.ca_main[0], None)[0]) == "relay"
  # grpcio checks the name it asked for: each call only works with the right certificate.
  for name in ("a.test", "b.test", RELAY_NAME):
    response, _ = unary(channels(address, pki.ca_main[0], name=name), request=name.encode())
    assert response == name.encode()


def test_plaintext_client_on_tls_listener_fails_cleanly(relay, pki, channels):
  ch = support.channel(relay.addresses[0])
  try:
    with pytest.raises(grpc.RpcError) as info:
      support.unary(ch)(b"x", timeout=5)
    # The relay takes the client's HTTP/2 preface for a bad TLS record and closes the
    # connection: the call fails UNAVAILABLE, well before its deadline.
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE, info.value
  finally:
    ch.close()
  response, _ = unary(channels(relay.addresses[0], pki.ca_main[0]))
  assert response == b"ping"


def test_stalled_handshake_is_closed(relay):
  host, port = relay.addresses[0].rsplit(":", 1)
  with socket.create_connection((host, int(port)), timeout=GUARD_SECONDS) as s:
    s.sendall(b"\x16\x03\x01")  # The start of a record header, then nothing.
    s.settimeout(GUARD_SECONDS)
    assert s.recv(100) == b""  # The relay closed it (handshake_timeout = 1s).


# Client certificates.


def test_mtls_required_accepts_a_client_certificate(relay, pki, channels):
  ch = channels(relay.addresses[1], pki.ca_main[0], client=pki.client_a)
  response, _ = unary(ch, request=b"with cert")
  assert response == b"with cert"
  # The verified identity is logged.
  line = relay.log.wait_for(
      lambda ls: [l for l in ls if "subject=CN=client-a" in l and "DNS:client-a.test" in l], 10)
  assert line, relay.log.tail()
  assert "URI:spiffe://test/a" in line[0]


def test_mtls_required_refuses_a_client_without_certificate(relay, pki, channels):
  ch = channels(relay.addresses[1], pki.ca_main[0])
  with pytest.raises(grpc.RpcError) as info:
    unary(ch)
  assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_mtls_refuses_a_certificate_from_another_ca(relay, pki, channels):
  for index in (1, 2):
    ch = channels(relay.addresses[index], pki.ca_main[0], client=pki.client_stranger)
    with pytest.raises(grpc.RpcError) as info:
      unary(ch)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_route_on_client_san(relay, pki, channels):
  # Optional client certificates: the route with client_san takes only the matching client.
  with_cert = channels(relay.addresses[2], pki.ca_main[0], client=pki.client_a)
  _, call = unary(with_cert, service="san.Echo")
  assert metadata_dict(call.trailing_metadata())["x-backend-name"] == "other"
  without = channels(relay.addresses[2], pki.ca_main[0])
  _, call = unary(without, service="san.Echo")
  assert metadata_dict(call.trailing_metadata())["x-backend-name"] == "echo"
  # No client certificate is asked for on a listener without client_ca.
  plain = channels(relay.addresses[0], pki.ca_main[0], client=pki.client_a)
  _, call = unary(plain, service="san.Echo")
  assert metadata_dict(call.trailing_metadata())["x-backend-name"] == "echo"


# Backends.


def test_tls_backend_verified_by_name(relay, pki, channels):
  ch = channels(relay.addresses[0], pki.ca_main[0])
  response, call = unary(ch, service="tls.Echo", request=b"to tls backend")
  assert response == b"to tls backend"
  assert metadata_dict(call.trailing_metadata())["x-backend-name"] == "tls-good"
  messages = [b"x" * 70000] * 20
  assert list(ch.stream_stream("/tls.Echo/Bidi")(iter(messages),
                                                 timeout=GUARD_SECONDS)) == messages


def test_tls_backend_verified_by_ip_san(relay, pki, channels):
  response, _ = unary(channels(relay.addresses[0], pki.ca_main[0]), service="ip.Echo")
  assert response == b"ping"


def test_mtls_to_backend(relay, pki, channels):
  ch = channels(relay.addresses[0], pki.ca_main[0])
  _, call = unary(ch, service="mtls.Echo")
  assert metadata_dict(call.trailing_metadata())["x-backend-name"] == "tls-mtls"
  # The same backend without a client certificate from the relay: calls fail, and as the
  # backend refuses the connection before it speaks HTTP/2, that is logged once.
  for _ in range(5):
    with pytest.raises(grpc.RpcError) as info:
      unary(ch, service="nocert.Echo")
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    time.sleep(0.15)
  address = relay.log.lines and [l for l in relay.log.lines
                                 if "closed the connection before its HTTP/2 SETTINGS" in l]
  assert len(address) == 1, relay.log.tail()


@pytest.mark.parametrize("service,backend,reason", [
    ("otherca.Echo", "other_ca", "unable to get local issuer certificate"),
    ("wrongname.Echo", "wrong_name", "hostname mismatch"),
    ("expired.Echo", "expired", "certificate has expired"),
])
def test_unverifiable_backend_is_never_used(relay, pki, channels, backends, service, backend,
                                            reason):
  ch = channels(relay.addresses[0], pki.ca_main[0])
  address = backends[backend].address
  # Calls spread over several redial periods: each fails, the reason is logged once.
  for _ in range(8):
    with pytest.raises(grpc.RpcError) as info:
      unary(ch, service=service)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    time.sleep(0.15)
  pattern = "backend %s: TLS handshake with %s failed" % (address, address)
  lines = [l for l in relay.log.lines if pattern in l]
  assert len(lines) == 1, "\n".join(lines) or relay.log.tail()
  assert reason in lines[0]
  assert "level=warn " in lines[0]
