"""State gauges on /metrics: process_* (CPU, memory, file descriptors, start time), the state
of each resolved endpoint address (healthy, ejected, draining), and when each certificate
grelay presents expires. Every scrape passes `promtool check metrics`."""

import datetime
import os
import shutil
import subprocess
import time

import grpc
import pytest

import admin_support
import support
import tls_support
from dns_support import NAME, Dnsmasq

pytestmark = pytest.mark.relay_only

STATE = "grelay_endpoint_state"


def promtool_ok(text):
  promtool = shutil.which("promtool")
  assert promtool, "promtool not found (scripts/deps.sh test)"
  result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                          text=True)
  assert result.returncode == 0, result.stdout + result.stderr


def states(scrape, cluster):
  """{address: {state: value}} of |cluster|'s endpoint state series."""
  out = {}
  for (name, labels), value in scrape.samples.items():
    labels = dict(labels)
    if name == STATE and labels["cluster"] == cluster:
      out.setdefault(labels["address"], {})[labels["state"]] = value
  return out


def test_process_metrics(tmp_path, echo_backend):
  relay, admin = admin_support.start_relay(tmp_path, [{"prefix": "/", "cluster": "echo"}],
                                           {"echo": [echo_backend.address]})
  try:
    with support.channel(relay.address) as ch:
      support.unary(ch, "/test.Echo/Unary")(b"x", timeout=support.GUARD_SECONDS)
      scrape = admin_support.Scrape(admin)
    promtool_ok(scrape.text)
    with open("/proc/%d/limits" % relay.pid) as f:
      soft = [l.split()[3] for l in f if l.startswith("Max open files")][0]
    assert scrape.value("process_max_fds") == float(soft)
    fds = len(os.listdir("/proc/%d/fd" % relay.pid))
    # Listener, admin, loop, backend and client sockets; give or take the scrape's own.
    assert 5 <= scrape.value("process_open_fds") <= fds + 2
    with open("/proc/%d/status" % relay.pid) as f:
      rss_kib = [int(l.split()[1]) for l in f if l.startswith("VmRSS:")][0]
    assert 0.5 < scrape.value("process_resident_memory_bytes") / (rss_kib * 1024) < 2
    assert scrape.value("process_virtual_memory_bytes") > scrape.value(
        "process_resident_memory_bytes")
    started = os.stat("/proc/%d" % relay.pid).st_mtime  # close to the process's start
    assert abs(scrape.value("process_start_time_seconds") - started) < 5
    assert abs(scrape.value("process_start_time_seconds") - time.time()) < 120
    assert 0 <= scrape.value("process_cpu_seconds_total") < 60
    for family in ["process_cpu_seconds_total", "process_resident_memory_bytes",
                   "process_open_fds", "process_max_fds", "process_start_time_seconds"]:
      assert "# TYPE %s " % family in scrape.text
  finally:
    relay.stop()


def test_endpoint_state_per_resolved_address(tmp_path, workdir):
  dns = Dnsmasq(workdir)
  port = support.free_port()
  backends = [support.BackendProcess(str(tmp_path), name="state%d" % i, port=port,
                                     host="127.0.0.%d" % i) for i in (1, 2)]
  relay = None
  try:
    dns.set_records(["127.0.0.1", "127.0.0.2"])
    endpoint = "%s:%d" % (NAME, port)
    cluster = {"endpoints": [endpoint], "dns_server": dns.address, "resolve_interval": "100ms",
               "outlier": {"consecutive_failures": 3, "base_ejection": "30s",
                           "max_ejection_percent": 50}}
    relay, admin = admin_support.start_relay(tmp_path, [{"prefix": "/test.", "cluster": "pool"}],
                                             {"pool": cluster})
    one, two = "127.0.0.1:%d" % port, "127.0.0.2:%d" % port
    ch = support.channel(relay.address)
    support.unary(ch)(b"x", timeout=support.GUARD_SECONDS)
    scrape = admin_support.Scrape(admin)
    promtool_ok(scrape.text)
    assert states(scrape, "pool") == {
        one: {"healthy": 1, "ejected": 0, "draining": 0},
        two: {"healthy": 1, "ejected": 0, "draining": 0},
    }
    assert scrape.value(STATE, cluster="pool", endpoint=endpoint, address=one,
                        state="healthy") == 1

    # UNAVAILABLE answers from one address eject it (and only it: 50% at most).
    def eject_one():
      for _ in range(20):
        try:
          support.unary(ch)(b"x", metadata=(("x-status-code", "14"),),
                            timeout=support.GUARD_SECONDS)
        except grpc.RpcError:
          pass
      s = states(admin_support.Scrape(admin), "pool")
      return sum(v["ejected"] for v in s.values()) == 1 and s

    ejected = support.wait_until(eject_one, 20, interval=0.1)
    assert ejected, states(admin_support.Scrape(admin), "pool")
    assert all(v["draining"] == 0 and v["healthy"] == 1 for v in ejected.values())

    # An address DNS no longer lists drains while a call holds it, then goes away. New calls
    # avoid the ejected address, so the stream is on the other one.
    held = [a for a, v in ejected.items() if v["ejected"] == 0][0]
    kept = [a for a in ejected if a != held][0]
    stream = support.server_stream(ch)(
        b"", metadata=[("x-count", "40"), ("x-size", "8"), ("x-interval-ms", "100")],
        timeout=support.GUARD_SECONDS)
    next(stream)
    dns.set_records([kept.split(":")[0]])
    assert support.wait_until(
        lambda: states(admin_support.Scrape(admin), "pool").get(held, {}).get("draining") == 1,
        10), states(admin_support.Scrape(admin), "pool")
    assert states(admin_support.Scrape(admin), "pool")[kept] == {
        "healthy": 1, "ejected": 1, "draining": 0}
    stream.cancel()
    assert support.wait_until(lambda: held not in states(admin_support.Scrape(admin), "pool"),
                              15), states(admin_support.Scrape(admin), "pool")
    ch.close()
  finally:
    if relay:
      relay.stop()
    for b in backends:
      b.stop()
    dns.stop()


def test_unhealthy_address_from_active_checks(tmp_path, echo_backend):
  cluster = {"endpoints": [echo_backend.address],
             "health_check": {"interval": "100ms", "timeout": "1s", "unhealthy_threshold": 1}}
  relay, admin = admin_support.start_relay(tmp_path, [{"prefix": "/", "cluster": "echo"}],
                                           {"echo": cluster})
  try:
    assert support.wait_until(
        lambda: states(admin_support.Scrape(admin), "echo").get(echo_backend.address, {})
        .get("healthy") == 1, 5)
    with support.channel(echo_backend.address) as direct:
      direct.unary_unary("/grpc.health.v1.Health/SetHealth")(b"NOT_SERVING", timeout=5)
      try:
        assert support.wait_until(
            lambda: states(admin_support.Scrape(admin), "echo")[echo_backend.address]
            ["healthy"] == 0, 10)
      finally:
        direct.unary_unary("/grpc.health.v1.Health/SetHealth")(b"SERVING", timeout=5)
  finally:
    relay.stop()


def test_certificate_expiry(tmp_path, echo_backend):
  pki = tls_support.Pki(str(tmp_path / "pki"))
  ca = pki.ca("ca")
  cert, key = pki.issue(ca, "relay", ["DNS:%s" % tls_support.RELAY_NAME], serial=1)
  client_cert, client_key = pki.issue(ca, "client", [], serial=2, client=True)
  listener = {"address": "127.0.0.1:0", "tls": {"cert": cert, "key": key}}
  text = support.render_config(
      [{"prefix": "/", "cluster": "echo"}],
      {"echo": {"endpoints": [echo_backend.address]},
       "mtls": {"endpoints": ["127.0.0.1:1"],
                "tls": {"ca": ca[0], "cert": client_cert, "key": client_key}}},
      listeners=[listener], extra='[admin]\naddress = "127.0.0.1:0"\n')
  relay = support.RelayProcess(text, str(tmp_path), name="relay-certs")
  try:
    m = relay.log.wait_for(lambda ls: [x for x in map(admin_support.ADMIN_RE.search, ls) if x],
                           10)
    admin = (m[0].group(1), int(m[0].group(2)))
    scrape = admin_support.Scrape(admin)
    promtool_ok(scrape.text)

    def not_after(path):
      out = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", path],
                           capture_output=True, text=True, check=True).stdout
      when = datetime.datetime.strptime(out.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y %Z")
      return when.replace(tzinfo=datetime.timezone.utc).timestamp()

    name = "grelay_tls_certificate_expiry_timestamp_seconds"
    listener_series = [(dict(l), v) for (n, l), v in scrape.samples.items()
                       if n == name and dict(l)["kind"] == "listener"]
    assert len(listener_series) == 1
    assert listener_series[0][0]["file"] == cert
    assert listener_series[0][0]["name"] == "127.0.0.1:0"
    assert listener_series[0][1] == not_after(cert)
    cluster_series = [(dict(l), v) for (n, l), v in scrape.samples.items()
                      if n == name and dict(l)["kind"] == "cluster"]
    assert cluster_series == [({"kind": "cluster", "name": "mtls", "file": client_cert},
                               not_after(client_cert))]
  finally:
    relay.stop()
