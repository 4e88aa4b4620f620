"""Helpers of the TLS tests: certificates made with the openssl command line (CAs, server
and client certificates with chosen names and serials, expired ones), TLS clients (grpcio,
Python's ssl module, openssl s_client) and SIGHUP handling."""

import os
import signal
import socket
import ssl
import subprocess

import grpc

from support import GUARD_SECONDS

RELAY_NAME = "relay.test"


class Pki:
  """Writes keys and certificates (PEM, EC P-256) under |directory|."""

  def __init__(self, directory):
    self.dir = directory
    os.makedirs(directory, exist_ok=True)

  def path(self, name):
    return os.path.join(self.dir, name)

  def _run(self, *args):
    subprocess.run(["openssl"] + list(args), check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)

  def _key_and_csr(self, name, cn):
    key, csr = self.path(name + ".key"), self.path(name + ".csr")
    self._run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
              "-keyout", key, "-out", csr, "-subj", "/CN=%s" % cn)
    return key, csr

  def ca(self, name):
    """A self-signed CA; returns (cert, key)."""
    cert, key = self.path(name + ".pem"), self.path(name + ".key")
    self._run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
              "-keyout", key, "-out", cert, "-subj", "/CN=%s" % name, "-days", "3",
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return cert, key

  def _extensions(self, name, sans, client):
    ext = self.path(name + ".ext")
    with open(ext, "w") as f:
      f.write("basicConstraints=CA:FALSE\n")
      f.write("extendedKeyUsage=%s\n" % ("clientAuth" if client else "serverAuth"))
      if sans:
        f.write("subjectAltName=%s\n" % ",".join(sans))
    return ext

  def issue(self, ca, name, sans, serial, cn=None, client=False):
    """A certificate signed by |ca| ((cert, key) of a CA) with subjectAltNames |sans|
    ("DNS:x", "IP:1.2.3.4", "URI:..."); returns (cert, key)."""
    key, csr = self._key_and_csr(name, cn or name)
    cert = self.path(name + ".pem")
    self._run("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-set_serial",
              str(serial), "-days", "2", "-extfile", self._extensions(name, sans, client),
              "-out", cert)
    return cert, key

  def issue_expired(self, ca, name, sans, serial):
    """Like issue(), valid for one day in 2020 only (made with `openssl ca`, which takes
    explicit start and end dates)."""
    key, csr = self._key_and_csr(name, name)
    base = self.path(name + "-ca")
    os.makedirs(base, exist_ok=True)
    open(os.path.join(base, "index.txt"), "w").close()
    with open(os.path.join(base, "serial"), "w") as f:
      f.write("%04X\n" % serial)
    config = os.path.join(base, "ca.cnf")
    with open(config, "w") as f:
      f.write("[ca]\ndefault_ca = test_ca\n[test_ca]\n"
              "database = %s/index.txt\nnew_certs_dir = %s\nserial = %s/serial\n"
              "default_md = sha256\npolicy = anything\nunique_subject = no\n"
              "[anything]\ncommonName = supplied\n" % (base, base, base))
    cert = self.path(name + ".pem")
    self._run("ca", "-batch", "-config", config, "-cert", ca[0], "-keyfile", ca[1], "-in", csr,
              "-out", cert, "-startdate", "20200101000000Z", "-enddate", "20200102000000Z",
              "-extfile", self._extensions(name, sans, False), "-notext")
    return cert, key


def read(path):
  with open(path, "rb") as f:
    return f.read()


def replace_file(path, content):
  """Writes |content| to |path| the way a rotation does: a new file renamed over the old."""
  tmp = path + ".new"
  with open(tmp, "wb") as f:
    f.write(content)
  os.rename(tmp, path)


def q(path):
  return '"%s"' % path


def tls_channel(address, ca, name=RELAY_NAME, client=None):
  """A grpcio channel over TLS to |address|, checking the certificate for |name|."""
  credentials = grpc.ssl_channel_credentials(
      root_certificates=read(ca),
      private_key=read(client[1]) if client else None,
      certificate_chain=read(client[0]) if client else None)
  options = [("grpc.ssl_target_name_override", name), ("grpc.enable_retries", 0),
             ("grpc.max_reconnect_backoff_ms", 500)]
  return grpc.secure_channel(address, credentials, options=options)


def unary(ch, service="test.Echo", request=b"ping", metadata=()):
  return ch.unary_unary("/%s/Unary" % service).with_call(request, metadata=metadata,
                                                          timeout=GUARD_SECONDS)


def peer_certificate(address, ca=None, server_name=RELAY_NAME, alpn=("h2",)):
  """Handshakes with Python's ssl module; returns the server's certificate (dict) and the
  ALPN protocol selected."""
  ctx = ssl.create_default_context(cafile=ca)
  # The tests look at which certificate came; grpcio clients check names.
  ctx.check_hostname = False
  if not ca:
    ctx.verify_mode = ssl.CERT_NONE
  if alpn:
    ctx.set_alpn_protocols(list(alpn))
  host, port = address.rsplit(":", 1)
  with socket.create_connection((host, int(port)), timeout=GUARD_SECONDS) as raw:
    with ctx.wrap_socket(raw, server_hostname=server_name) as s:
      return s.getpeercert(), s.selected_alpn_protocol()


def serial_of(address, ca):
  return int(peer_certificate(address, ca)[0]["serialNumber"], 16)


def common_name(cert):
  return dict(item[0] for item in cert["subject"])["commonName"]


def s_client(address, *args):
  """`openssl s_client` against |address|; returns its whole output."""
  result = subprocess.run(["openssl", "s_client", "-connect", address] + list(args),
                          input=b"", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=GUARD_SECONDS)
  return result.stdout.decode("utf-8", "replace")


def sighup(relay):
  """Sends SIGHUP and waits until the relay reloaded its first TLS listener (the first
  "TLS reload:" line of each reload)."""
  def handled(lines):
    return len([l for l in lines if "TLS reload:" in l])
  before = handled(relay.log.lines)
  relay.signal(signal.SIGHUP)
  assert relay.log.wait_for(lambda ls: handled(ls) > before, 10), relay.log.tail()
