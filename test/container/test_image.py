"""The container image (scripts/container.sh builds it): it runs as a non-root user with the
config at /etc/grelay/grelay.toml, relays a real grpcio call to a backend, answers the gRPC
health probe on its admin port, and drains and exits 0 on `podman stop`.

The container uses the host's network namespace (--network=host): every address stays on
127.0.0.1, and no bridge or firewall rule is needed on this machine."""

import os
import shlex
import subprocess
import sys
import time
import uuid

import grpc
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import support  # noqa: E402

IMAGE = os.environ.get("GRELAY_IMAGE", "localhost/grelay:latest")
# podman's global options (e.g. --runtime runc) and `podman run`'s (e.g. --ulimit), as
# scripts/container.sh sets them for this machine.
GLOBAL = shlex.split(os.environ.get("GRELAY_PODMAN_GLOBAL", ""))
RUN_OPTS = shlex.split(os.environ.get("GRELAY_PODMAN_RUN", ""))


def podman(*args, check=True, timeout=120):
  return subprocess.run(["podman"] + GLOBAL + list(args), capture_output=True, text=True,
                        check=check, timeout=timeout)


@pytest.fixture(scope="module")
def image():
  if podman("image", "exists", IMAGE, check=False).returncode != 0:
    pytest.fail("image %s not found: run scripts/container.sh" % IMAGE)
  return IMAGE


def test_image_runs_as_non_root_with_the_config_in_etc(image):
  inspect = podman("image", "inspect", "--format", "{{.Config.User}} {{.Config.Entrypoint}} "
                   "{{.Config.Cmd}}", image).stdout.strip()
  assert inspect == "65532:65532 [/usr/bin/grelay] [-c /etc/grelay/grelay.toml]"
  check = podman("run", "--rm", "--network=none", *RUN_OPTS, image, "--check")
  assert check.stdout.strip() == "/etc/grelay/grelay.toml: ok"
  version = podman("run", "--rm", "--network=none", *RUN_OPTS, image, "--version")
  assert version.stdout.startswith("grelay ")
  uid = podman("run", "--rm", "--network=none", "--entrypoint", "/usr/bin/id", *RUN_OPTS, image,
               "-u")
  assert uid.stdout.strip() == "65532"


def test_call_through_the_container(image, tmp_path, echo_backend):
  port, admin = support.free_port(), support.free_port()
  config = tmp_path / "grelay.toml"
  config.write_text(support.render_config(
      [{"prefix": "/", "cluster": "echo"}], {"echo": [echo_backend.address]},
      listeners=["127.0.0.1:%d" % port],
      extra='[admin]\naddress = "127.0.0.1:%d"\n' % admin))
  os.chmod(config, 0o644)
  name = "grelay-test-%s" % uuid.uuid4().hex[:8]
  podman("run", "-d", "--name", name, "--network=host", *RUN_OPTS,
         "-v", "%s:/etc/grelay/grelay.toml:ro" % config, image)
  try:
    def logs():
      return podman("logs", name, check=False).stderr + podman("logs", name,
                                                               check=False).stdout

    assert support.wait_until(lambda: "listening on 127.0.0.1:%d" % port in logs(), 20), logs()
    with support.channel("127.0.0.1:%d" % port) as ch:
      assert support.unary(ch)(b"through the container", timeout=support.GUARD_SECONDS) == \
          b"through the container"
    # Kubernetes' gRPC probe asks grpc.health.v1.Health/Check on the admin port.
    with grpc.insecure_channel("127.0.0.1:%d" % admin) as ch:
      check = ch.unary_unary("/grpc.health.v1.Health/Check")
      assert check(b"", timeout=5) == b"\x08\x01"  # SERVING
    stop = podman("stop", "-t", "30", name)
    assert stop.returncode == 0
    state = podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
    assert state == "0", logs()
    assert "draining" in logs()
  finally:
    podman("rm", "-f", name, check=False)


@pytest.fixture
def echo_backend(tmp_path):
  b = support.BackendProcess(str(tmp_path), name="echo")
  yield b
  b.stop()
