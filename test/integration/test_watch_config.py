"""watch_config = true: the relay reloads its file when it changes, including the way a
Kubernetes ConfigMap volume changes it (an atomic swap of the ..data symlink the file's own
symlink points through), with no signal from anyone."""

import os

import grpc
import pytest

import support

pytestmark = pytest.mark.relay_only


class ConfigMapDir:
  """A directory laid out as the kubelet lays out a ConfigMap volume."""

  def __init__(self, root, files):
    self.root = root
    self.version = 0
    os.makedirs(root, exist_ok=True)
    self.update(files)
    for name in files:
      os.symlink(os.path.join("..data", name), os.path.join(root, name))

  def update(self, files):
    self.version += 1
    target = "..2026_12_07_00_00_%02d.%d" % (self.version, os.getpid())
    os.makedirs(os.path.join(self.root, target))
    for name, text in files.items():
      with open(os.path.join(self.root, target, name), "w") as f:
        f.write(text)
    # The kubelet's swap: a new link, renamed over ..data in one step.
    tmp = os.path.join(self.root, "..data_tmp")
    os.symlink(target, tmp)
    os.rename(tmp, os.path.join(self.root, "..data"))


def test_configmap_update_reloads(tmp_path, echo_backend, grpc_channel):
  def config(service):
    return support.render_config([{"service": service, "cluster": "echo"}],
                                 {"echo": [echo_backend.address]}, extra="watch_config = true")

  cm = ConfigMapDir(str(tmp_path / "cm"), {"grelay.toml": config("test.Echo")})
  relay = support.RelayProcess(config("test.Echo"), str(tmp_path), name="relay-watch")
  # Run it on the ConfigMap's file rather than the one RelayProcess wrote.
  relay.stop()
  relay.config_path = os.path.join(cm.root, "grelay.toml")
  relay.restart()
  try:
    ch = grpc_channel(relay.address)
    assert support.unary(ch)(b"x", timeout=support.GUARD_SECONDS) == b"x"
    cm.update({"grelay.toml": config("other.Svc")})
    assert relay.log.wait_for(lambda ls: [l for l in ls if "changed: reloading" in l], 10)
    assert relay.log.wait_for(lambda ls: [l for l in ls if "reloaded " in l], 10)
    with pytest.raises(grpc.RpcError) as err:
      support.unary(ch)(b"x", timeout=support.GUARD_SECONDS)
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    # An invalid version changes nothing; the next valid one applies.
    cm.update({"grelay.toml": "bogus = 1\n"})
    assert relay.log.wait_for(lambda ls: [l for l in ls if "reload failed" in l], 10)
    cm.update({"grelay.toml": config("test.Echo")})
    assert support.wait_until(lambda: len([l for l in relay.log.lines if "reloaded " in l]) >= 2,
                              10)
    assert support.unary(ch)(b"y", timeout=support.GUARD_SECONDS) == b"y"
  finally:
    relay.stop()
