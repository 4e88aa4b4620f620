"""TLS certificate rotation under load (SIGHUP and the file watch), and the config checks of
TLS files."""

import os
import signal
import subprocess
import threading

import pytest

import support
from support import GUARD_SECONDS
from tls_support import Pki, q, read, replace_file, serial_of, sighup, tls_channel, unary

pytestmark = pytest.mark.relay_only


@pytest.fixture(scope="module")
def pki(workdir):
  p = Pki(os.path.join(workdir, "tls-rotation-pki"))
  p.ca_main = p.ca("main-ca")
  p.relay = p.issue(p.ca_main, "relay", ["DNS:relay.test", "IP:127.0.0.1"], 11)
  p.sni_a = p.issue(p.ca_main, "a.test", ["DNS:a.test"], 12)
  return p


# Rotation.


def rotation_config(cert, key, echo_backend):
  return f"""\
log_level = "info"
workers = 2

[[listener]]
address = "127.0.0.1:0"
tls = {{ cert = {q(cert)}, key = {q(key)} }}

[[route]]
none = true
cluster = "echo"

[[cluster]]
name = "echo"
endpoints = ["{echo_backend.address}"]
"""


class Load:
  """Unary calls from several threads, each opening a new TLS connection every few calls."""

  def __init__(self, address, ca, threads=4, calls_per_channel=10):
    self.address_ = address
    self.ca_ = ca
    self.calls_per_channel_ = calls_per_channel
    self.stop_ = threading.Event()
    self.lock_ = threading.Lock()
    self.ok = 0
    self.failures = []
    self.threads_ = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
    for t in self.threads_:
      t.start()

  def _run(self):
    while not self.stop_.is_set():
      ch = tls_channel(self.address_, self.ca_)
      try:
        for _ in range(self.calls_per_channel_):
          try:
            response, _ = unary(ch, request=b"load")
            assert response == b"load"
            with self.lock_:
              self.ok += 1
          except Exception as e:  # noqa: BLE001 (every failure counts)
            with self.lock_:
              self.failures.append(repr(e))
      finally:
        ch.close()

  def wait_for(self, calls, timeout=60):
    start = self.ok
    return support.wait_until(lambda: self.ok >= start + calls, timeout)

  def stop(self):
    self.stop_.set()
    for t in self.threads_:
      t.join(GUARD_SECONDS)


def test_rotation_under_load(workdir, pki, echo_backend):
  d = os.path.join(workdir, "tls-rotation")
  cert, key = os.path.join(d, "live.pem"), os.path.join(d, "live.key")
  rot = Pki(d)
  first = rot.issue(pki.ca_main, "gen1", ["DNS:relay.test", "IP:127.0.0.1"], 100)
  replace_file(cert, read(first[0]))
  replace_file(key, read(first[1]))
  relay = support.RelayProcess(rotation_config(cert, key, echo_backend), d, name="relay")
  load = None
  try:
    address, ca = relay.address, pki.ca_main[0]
    assert serial_of(address, ca) == 100
    load = Load(address, ca)
    assert load.wait_for(40), load.failures

    # SIGHUP after the files were replaced: new connections get the new certificate.
    second = rot.issue(pki.ca_main, "gen2", ["DNS:relay.test", "IP:127.0.0.1"], 200)
    replace_file(cert, read(second[0]))
    replace_file(key, read(second[1]))
    sighup(relay)
    assert support.wait_until(lambda: serial_of(address, ca) == 200, 10)
    assert load.wait_for(40), load.failures

    # No signal: the file watch picks the change up.
    third = rot.issue(pki.ca_main, "gen3", ["DNS:relay.test", "IP:127.0.0.1"], 300)
    replace_file(cert, read(third[0]))
    replace_file(key, read(third[1]))
    assert support.wait_until(lambda: serial_of(address, ca) == 300, 10), relay.log.tail()
    assert load.wait_for(40), load.failures

    # A broken pair (this key belongs to another certificate) is refused; the old one stays.
    replace_file(key, read(first[1]))
    relay.signal(signal.SIGHUP)
    refused = relay.log.wait_for(
        lambda ls: [l for l in ls if "keeps its current certificates" in l], 10)
    assert refused, relay.log.tail()
    assert "does not match" in refused[0]
    assert serial_of(address, ca) == 300
    assert load.wait_for(40), load.failures
    load.stop()
    assert load.failures == []
    assert load.ok >= 160
  finally:
    if load:
      load.stop()
    relay.stop()


# Config errors.


@pytest.mark.parametrize("tls,message", [
    ('{ cert = "%(dir)s/missing.pem", key = "%(key)s" }',
     "cannot read certificate '%(dir)s/missing.pem': No such file or directory"),
    ('{ cert = "%(cert)s", key = "%(other_key)s" }', "does not match certificate"),
    ('{ cert = "%(cert)s", key = "%(cert)s" }', "is not a usable PEM private key"),
    ('{ cert = "%(key)s", key = "%(key)s" }', "is not a usable PEM certificate chain"),
    ('{ cert = "%(cert)s", key = "%(key)s", verify = "optional" }', "verify needs client_ca"),
    ('{ cert = "%(cert)s", key = "%(key)s", client_ca = "%(key)s" }', "holds no usable PEM"),
    ('{ cert = "%(cert)s", key = "%(key)s", verify = "maybe" }', "unknown [[listener]] tls verify"),
    ('{ cert = "%(cert)s" }', "is missing 'key'"),
    ('{ certs = [] }', "non-empty array"),
    ('{ certs = [{ names = ["a b"], cert = "%(cert)s", key = "%(key)s" }] }', "bad [[listener]] tls certs name"),
    ('{ cert = "%(cert)s", key = "%(key)s", ca = "x" }', "unknown key 'ca' in [[listener]] tls"),
])
def test_check_reports_tls_errors_with_file_and_line(grelay_bin, tmp_path, pki, tls, message):
  values = {"dir": str(tmp_path), "cert": pki.relay[0], "key": pki.relay[1],
            "other_key": pki.sni_a[1]}
  path = tmp_path / "tls.toml"
  path.write_text('[[listener]]\naddress = "127.0.0.1:0"\ntls = %s\n' % (tls % values))
  result = subprocess.run([grelay_bin, "--check", "-c", str(path)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=30)
  assert result.returncode == 2
  err = result.stderr.decode()
  assert err.startswith("%s:3: " % path), err
  assert (message % values) in err, err


def test_check_reports_cluster_tls_errors(grelay_bin, tmp_path, pki):
  text = ('[[listener]]\naddress = "127.0.0.1:0"\n[[cluster]]\nname = "c"\n'
          'endpoints = ["127.0.0.1:1"]\ntls = { ca = "%s", cert = "%s", key = "%s" }\n' %
          (pki.ca_main[0], pki.relay[0], pki.sni_a[1]))
  path = tmp_path / "cluster.toml"
  path.write_text(text)
  result = subprocess.run([grelay_bin, "--check", "-c", str(path)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=30)
  assert result.returncode == 2
  assert result.stderr.decode().startswith("%s:6: " % path)
  assert "does not match certificate" in result.stderr.decode()


def test_relative_tls_paths_are_relative_to_the_config(grelay_bin, tmp_path, pki):
  for src, name in ((pki.relay[0], "c.pem"), (pki.relay[1], "c.key")):
    (tmp_path / name).write_bytes(read(src))
  path = tmp_path / "rel.toml"
  path.write_text('[[listener]]\naddress = "127.0.0.1:0"\n'
                  'tls = { cert = "c.pem", key = "c.key" }\n')
  result = subprocess.run([grelay_bin, "--check", "-c", str(path)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=30, cwd="/")
  assert result.returncode == 0, result.stderr.decode()
