"""deploy/kubernetes/: every manifest passes a schema check that needs no cluster
(test/kubernetes/validate.mjs: the Kubernetes OpenAPI schemas from kubernetes-models, and
unknown field names, installed with npm ci from the committed lockfile), and the shipped
grelay.toml, rendered for localhost, relays through a backend set that scales up and down
under load, found by the headless Service's DNS name on a local dnsmasq, with no failed
call."""

import os
import re
import shutil
import subprocess
import tomllib

import pytest

import admin_support
import support
from dns_support import Dnsmasq, Load

pytestmark = pytest.mark.relay_only

K8S = os.path.join(support.REPO, "deploy", "kubernetes")
CHECKER = os.path.join(support.REPO, "test", "kubernetes")
SERVICE = "greeter.default.svc.cluster.local"


@pytest.fixture(scope="module")
def validator():
  node, npm = shutil.which("node"), shutil.which("npm")
  if not node or not npm:
    pytest.fail("node and npm are needed for the manifest check")
  if not os.path.isdir(os.path.join(CHECKER, "node_modules")):
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=CHECKER,
                   check=True, capture_output=True, timeout=600)
  return lambda directory: subprocess.run(
      [node, "--no-warnings", "validate.mjs", directory], cwd=CHECKER, capture_output=True,
      text=True, timeout=120)


def test_manifests_pass_the_schema_check(validator):
  result = validator(K8S)
  assert result.returncode == 0, result.stdout + result.stderr
  for kind in ["Deployment grelay", "Service grelay", "PodDisruptionBudget grelay",
               "ConfigMap grelay", "Deployment greeter", "Service greeter"]:
    assert "ok   " in result.stdout and kind in result.stdout, result.stdout


@pytest.mark.parametrize("change,error", [
    (("readinessProbe:", "readinesProbe:"), "readinesProbe: unknown field"),
    (("replicas: 2", "replicas: two"), "replicas must be integer"),
    (("configMap: {name: grelay}", "configMap: {name: grelay-typo}"), "grelay-typo"),
    (("maxUnavailable: 1\n", "maxUnavailable: 1\n  minAvailable: 1\n  selectr: {}\n"),
     "selectr: unknown field"),
])
def test_the_check_catches_mistakes(validator, tmp_path, change, error):
  copy = str(tmp_path / "k8s")
  shutil.copytree(K8S, copy)
  path = os.path.join(copy, "grelay.yaml")
  with open(path) as f:
    text = f.read()
  assert change[0] in text
  with open(path, "w") as f:
    f.write(text.replace(change[0], change[1], 1))
  result = validator(copy)
  assert result.returncode == 1
  assert error in result.stderr, result.stdout + result.stderr


def test_manifests_agree_with_the_config():
  """The ports, probes and grace period of grelay.yaml fit grelay.toml."""
  with open(os.path.join(K8S, "grelay.toml"), "rb") as f:
    config = tomllib.load(f)
  with open(os.path.join(K8S, "grelay.yaml")) as f:
    manifest = f.read()
  assert config["watch_config"] is True
  assert config["admin"]["address"] == "0.0.0.0:9901" and "grpc: {port: 9901}" in manifest
  assert config["listener"][0]["address"] == "0.0.0.0:50050"
  assert "max_connection_age" in config["listener"][0]
  cluster = config["cluster"][0]
  assert cluster["endpoints"] == [SERVICE + ":50051"]
  # Re-resolved at least as often as CoreDNS's default cache (30 s) expires.
  assert int(cluster["resolve_interval"].rstrip("s")) <= 30
  grace = int(re.search(r"terminationGracePeriodSeconds: (\d+)", manifest).group(1))
  pre_stop = int(re.search(r'"/bin/sleep", "(\d+)"', manifest).group(1))
  drain = int(config["drain_timeout"].rstrip("s"))
  assert grace >= pre_stop + drain + 2


def render_for_localhost(dns, port):
  """The shipped grelay.toml with loopback addresses, the backends' port, and the local DNS
  server (in a cluster the pod's resolver is used). Nothing else changes."""
  with open(os.path.join(K8S, "grelay.toml")) as f:
    text = f.read()
  text = text.replace('"0.0.0.0:50050"', '"127.0.0.1:0"').replace('"0.0.0.0:9901"',
                                                                   '"127.0.0.1:0"')
  text = text.replace(SERVICE + ":50051", "%s:%d" % (SERVICE, port))
  text = re.sub(r'(?m)^(resolve_interval = .*)$', r'\1\ndns_server = "%s"' % dns.address, text,
                count=1)
  with open(os.path.join(K8S, "grelay.toml"), "rb") as f:
    shipped = tomllib.load(f)
  rendered = tomllib.loads(text)
  rendered["admin"]["address"] = shipped["admin"]["address"]
  rendered["listener"][0]["address"] = shipped["listener"][0]["address"]
  rendered["cluster"][0]["endpoints"] = shipped["cluster"][0]["endpoints"]
  del rendered["cluster"][0]["dns_server"]
  assert rendered == shipped
  return text


def test_shipped_config_follows_the_backend_set_under_load(tmp_path):
  dns = Dnsmasq(str(tmp_path), name=SERVICE)
  port = support.free_port()
  backends = {}

  def scale(hosts):
    """Adds backends for new hosts, then points DNS at exactly |hosts|."""
    for host in hosts:
      if host not in backends:
        backends[host] = support.BackendProcess(str(tmp_path), name="pod-%s" % host, port=port,
                                                host=host)
    dns.set_records(hosts)

  relay = load = None
  try:
    scale(["127.0.0.11", "127.0.0.12"])
    text = render_for_localhost(dns, port)
    relay = support.RelayProcess(text, str(tmp_path), name="relay-k8s")
    m = relay.log.wait_for(lambda ls: [x for x in map(admin_support.ADMIN_RE.search, ls) if x],
                           10)
    admin = (m[0].group(1), int(m[0].group(2)))
    load = Load(relay.address, threads=4)

    def serving(hosts, calls=20):
      """Every backend of |hosts| answered |calls| more calls."""
      base = {h: load.count(backends[h].name) for h in hosts}
      return support.wait_until(
          lambda: all(load.count(backends[h].name) >= base[h] + calls for h in hosts), 30)

    def addresses():
      scrape = admin_support.Scrape(admin)
      return sorted(dict(l)["address"] for (n, l), v in scrape.samples.items()
                    if n == "grelay_endpoint_state" and dict(l)["state"] == "draining" and
                    v == 0)

    assert serving(["127.0.0.11", "127.0.0.12"]), load.counts
    # Scale up: the new pods get calls once grelay re-resolves (resolve_interval 5 s).
    scale(["127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14"])
    assert serving(["127.0.0.13", "127.0.0.14"]), load.counts
    assert addresses() == ["127.0.0.%d:%d" % (i, port) for i in (11, 12, 13, 14)]
    # Scale down, as a Deployment does: the pods leave DNS, keep serving through their
    # preStop sleep while grelay drains them, then stop.
    scale(["127.0.0.11"])
    for host in ["127.0.0.12", "127.0.0.13", "127.0.0.14"]:
      assert relay.log.wait_for(
          lambda ls, h=host: any("(%s:%d) drained" % (h, port) in l for l in ls), 30), host
    for host in ["127.0.0.12", "127.0.0.13", "127.0.0.14"]:
      backends.pop(host).stop()
    assert serving(["127.0.0.11"]), load.counts
    assert addresses() == ["127.0.0.11:%d" % port]
    # And up again, with a new pod address.
    scale(["127.0.0.11", "127.0.0.15"])
    assert serving(["127.0.0.15"]), load.counts
    load.stop()
    assert load.failures == []
    load = None
  finally:
    if load:
      load.stop()
    if relay:
      relay.stop()
    for b in backends.values():
      b.stop()
    dns.stop()
