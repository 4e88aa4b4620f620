"""The quick start: the demo backend's descriptors are the shipped .proto's, reflection lists,
describes and calls it through grelay (tools/grpc_reflect.py), and scripts/demo.sh stops with
a clear message on a taken port and drains on a single Ctrl-C."""

import os
import signal
import socket
import shutil
import subprocess
import sys

import pytest

import support

pytestmark = pytest.mark.relay_only

TOOLS = os.path.join(support.REPO, "tools")
sys.path.insert(0, TOOLS)

import demo_backend  # noqa: E402
from google.protobuf import descriptor_pb2  # noqa: E402

DEMO_PORTS = (50051, 50050, 9901)


def test_descriptors_match_the_proto_files(tmp_path):
  protoc = shutil.which("protoc")
  if not protoc:
    pytest.fail("protoc not found (scripts/deps.sh test installs protobuf-compiler)")
  out = str(tmp_path / "set.pb")
  subprocess.run([protoc, "--proto_path", os.path.join(support.REPO, "protos"),
                  "--descriptor_set_out", out, "helloworld.proto"], check=True)
  with open(out, "rb") as f:
    parsed = descriptor_pb2.FileDescriptorSet.FromString(f.read()).file[0]
  built = demo_backend.helloworld_file()
  assert built == parsed


@pytest.fixture
def demo(tmp_path):
  port = support.free_port()
  proc = subprocess.Popen([support.PYTHON, os.path.join(TOOLS, "demo_backend.py"), "--address",
                           "127.0.0.1:%d" % port], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)
  assert b"demo backend" in proc.stdout.readline()
  with open(os.path.join(support.REPO, "conf", "grelay.toml")) as f:
    text = f.read()
  text = text.replace("127.0.0.1:50051", "127.0.0.1:%d" % port)
  text = text.replace("127.0.0.1:50050", "127.0.0.1:0").replace("127.0.0.1:9901", "127.0.0.1:0")
  relay = support.RelayProcess(text, str(tmp_path), name="relay-demo")
  yield relay
  relay.stop()
  proc.terminate()
  proc.wait(10)


def reflect(relay, *args):
  result = subprocess.run([support.PYTHON, os.path.join(TOOLS, "grpc_reflect.py"), "--target",
                           relay.address] + list(args), capture_output=True, text=True,
                          timeout=60)
  return result.returncode, result.stdout, result.stderr


def test_reflection_through_the_relay(demo):
  code, out, err = reflect(demo, "list")
  assert code == 0, err
  assert out.split() == ["grpc.reflection.v1.ServerReflection",
                         "grpc.reflection.v1alpha.ServerReflection", "helloworld.Greeter"]
  code, out, err = reflect(demo, "describe", "helloworld.Greeter")
  assert code == 0, err
  assert "rpc SayHello (helloworld.HelloRequest) returns (helloworld.HelloReply);" in out
  code, out, err = reflect(demo, "call", "helloworld.Greeter/SayHello", '{"name": "relay"}')
  assert code == 0 and '"message": "Hello, relay!"' in out, err
  code, out, err = reflect(demo, "call", "helloworld.Greeter/SayHelloStream",
                           '{"name": "x", "count": 3}')
  assert code == 0 and out.count('"message"') == 3, err
  code, out, err = reflect(demo, "call", "helloworld.Greeter/Nope")
  assert code == 1 and "has no method Nope" in err


def test_demo_client_prints_the_greeting(demo):
  result = subprocess.run([support.PYTHON, os.path.join(TOOLS, "demo_client.py"), "--target",
                           demo.address], capture_output=True, text=True, timeout=60)
  assert result.returncode == 0, result.stderr
  assert '-> "Hello, grelay!"' in result.stdout


def free(port):
  with socket.socket() as s:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
      s.bind(("127.0.0.1", port))
      return True
    except OSError:
      return False


def test_demo_stops_on_a_taken_port():
  holder = None
  if free(9901):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 9901))
    holder.listen()
  try:
    result = subprocess.run([os.path.join(support.REPO, "scripts", "demo.sh"), "--once"],
                            capture_output=True, text=True, timeout=60)
  finally:
    if holder:
      holder.close()
  assert result.returncode == 1
  assert "port 9901 on 127.0.0.1 is in use" in result.stderr, result.stderr
  assert "== " not in result.stdout  # nothing was installed, built or started


def test_demo_names_a_port_held_by_an_outgoing_connection():
  # A port in the ephemeral range may be some program's outgoing connection rather than a
  # listener: the script still says which port, instead of stopping without a word.
  if not free(50051):
    pytest.fail("port 50051 is not free here")
  listener = socket.socket()
  listener.bind(("127.0.0.1", 0))
  listener.listen()
  client = socket.socket()
  try:
    client.bind(("127.0.0.1", 50051))
    client.connect(listener.getsockname())
    accepted, _ = listener.accept()
    result = subprocess.run([os.path.join(support.REPO, "scripts", "demo.sh"), "--once"],
                            capture_output=True, text=True, timeout=60)
    accepted.close()
  finally:
    client.close()
    listener.close()
  assert result.returncode == 1
  assert "port 50051 on 127.0.0.1 is in use." in result.stderr, result.stderr
  assert "== " not in result.stdout


def test_demo_drains_on_one_ctrl_c():
  assert all(free(p) for p in DEMO_PORTS), "the demo's ports %s are not all free here" % (
      DEMO_PORTS,)
  assert os.path.exists(os.path.join(support.REPO, "build", "build.ninja")), (
      "no build/ for the demo to use")
  # A session of its own, like a terminal's foreground job: Ctrl-C is SIGINT to the group.
  proc = subprocess.Popen([os.path.join(support.REPO, "scripts", "demo.sh")],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          start_new_session=True)
  lines = []
  try:
    for line in proc.stdout:
      lines.append(line)
      if "Ctrl-C drains and stops it." in line:
        break
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    lines.append(out)
  finally:
    if proc.poll() is None:
      os.killpg(proc.pid, signal.SIGKILL)
      proc.wait()
  text = "".join(lines)
  assert proc.returncode == 0, text
  assert "draining: no new connections" in text
  assert "second stop signal" not in text
  assert "== grelay stopped" in text
  assert all(free(p) for p in DEMO_PORTS), text
