"""Process and client helpers shared by the integration tests (fixtures live in conftest.py)."""

import collections
import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid

import grpc

from backend import pattern_message  # noqa: F401 (re-exported for the tests)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PYTHON = "/usr/bin/python3"
MAX_MESSAGE = 64 * 1024 * 1024
# Upper bound on any single call that is not about deadlines; it only keeps a broken relay
# from hanging the suite.
GUARD_SECONDS = 60
STOP_SECONDS = 10

LISTENING_RE = re.compile(r"listening on (\[[^\]]*\]|[^\s:\]]+):(\d+)")


def grelay_bin():
  return os.environ.get("GRELAY_BIN") or os.path.join(REPO, "build", "grelay")


def direct_mode(config=None):
  if config is not None and config.getoption("--direct"):
    return True
  return os.environ.get("GRELAY_DIRECT", "") not in ("", "0")


def free_port():
  """A port nothing listens on (bound then released)."""
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def loopback_listener(backlog):
  """A TCP socket listening on a free loopback port, and its "127.0.0.1:port"."""
  sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
  sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
  sock.bind(("127.0.0.1", 0))
  sock.listen(backlog)
  return sock, "127.0.0.1:%d" % sock.getsockname()[1]


def end_process(proc):
  """Terminates |proc| if it still runs (stopped ones are continued first), kills it after
  5 s, and reaps it."""
  if proc.poll() is not None:
    return
  proc.send_signal(signal.SIGCONT)
  proc.terminate()
  try:
    proc.wait(5)
  except subprocess.TimeoutExpired:
    proc.kill()
    proc.wait()


def wait_until(predicate, timeout, interval=0.02):
  """Polls |predicate| until true or |timeout| seconds pass; returns its last value."""
  end = time.monotonic() + timeout
  while True:
    value = predicate()
    if value or time.monotonic() > end:
      return value
    time.sleep(interval)


def call_id():
  return uuid.uuid4().hex


# Config.


def _toml_value(value):
  if isinstance(value, bool):
    return "true" if value else "false"
  if isinstance(value, int):
    return str(value)
  if isinstance(value, float):
    return repr(value)
  if isinstance(value, (list, tuple)):
    return "[" + ", ".join(_toml_value(v) for v in value) + "]"
  if isinstance(value, dict):
    return "{ " + ", ".join("%s = %s" % (k, _toml_value(v)) for k, v in value.items()) + " }"
  return '"%s"' % str(value).replace("\\", "\\\\").replace('"', '\\"')


def render_config(routes, clusters, listeners=("127.0.0.1:0",), log_level="info", extra=""):
  """TOML text. |listeners|: addresses, or dicts of [[listener]] keys. |routes|: list of
  dicts (service/path/prefix/none, cluster, authority, timeout). |clusters|: {name: [endpoints]} or {name: {"endpoints": [...], key: value}}."""
  lines = ['log_level = "%s"' % log_level]
  if extra:
    lines.append(extra)
  for address in listeners:
    # A listener is its address, or a dict of its keys.
    spec = address if isinstance(address, dict) else {"address": address}
    lines += ["", "[[listener]]"]
    for key, value in spec.items():
      lines.append("%s = %s" % (key, _toml_value(value)))
  for route in routes:
    lines += ["", "[[route]]"]
    for key, value in route.items():
      lines.append("%s = %s" % (key, _toml_value(value)))
  for name, spec in clusters.items():
    if not isinstance(spec, dict):
      spec = {"endpoints": list(spec)}
    lines += ["", "[[cluster]]", "name = %s" % _toml_value(name)]
    for key, value in spec.items():
      lines.append("%s = %s" % (key, _toml_value(value)))
  return "\n".join(lines) + "\n"


# Processes.


class LogPump:
  """Drains a child's output in a thread, keeping a tail and watching for a pattern."""

  def __init__(self, stream, keep=3000, copy_path=None):
    self.lines = collections.deque(maxlen=keep)
    self.cond_ = threading.Condition()
    self.eof = False
    self.copy_ = open(copy_path, "w") if copy_path else None
    self.thread_ = threading.Thread(target=self._run, args=(stream,), daemon=True)
    self.thread_.start()

  def _run(self, stream):
    for raw in iter(stream.readline, b""):
      line = raw.decode("utf-8", "replace").rstrip("\n")
      if self.copy_:
        self.copy_.write(line + "\n")
        self.copy_.flush()
      with self.cond_:
        self.lines.append(line)
        self.cond_.notify_all()
    with self.cond_:
      self.eof = True
      self.cond_.notify_all()
    if self.copy_:
      self.copy_.close()

  def wait_for(self, predicate, timeout):
    """Waits until |predicate(lines)| is truthy; returns it, or None at EOF/timeout."""
    end = time.monotonic() + timeout
    with self.cond_:
      while True:
        value = predicate(list(self.lines))
        if value or self.eof:
          return value
        left = end - time.monotonic()
        if left <= 0:
          return None
        self.cond_.wait(left)

  def tail(self, n=60):
    with self.cond_:
      return "\n".join(list(self.lines)[-n:])


class RelayError(AssertionError):
  pass


class RelayProcess:
  """A running grelay. |addresses| are the listeners' real host:port, in log order.
  |command|: a program run as `command CONFIG` instead of `grelay -c CONFIG` (one that embeds
  libgrelay and logs "listening on" the same way)."""

  def __init__(self, config_text, workdir, name="relay", listeners=1, start_timeout=15, env=None,
               command=None):
    os.makedirs(workdir, exist_ok=True)
    # Extra environment variables of the process (e.g. NOTIFY_SOCKET).
    self.env_ = dict(os.environ, **env) if env else None
    self.command_ = list(command) if command else [grelay_bin(), "-c"]
    self.config_text_ = config_text
    self.config_path = os.path.join(workdir, name + ".toml")
    with open(self.config_path, "w") as f:
      f.write(config_text)
    self.workdir_ = workdir
    self.name_ = name
    self.listeners_ = listeners
    self.start_timeout_ = start_timeout
    self.runs_ = 0
    self._spawn()

  def _spawn(self):
    suffix = "" if self.runs_ == 0 else "-restart%d" % self.runs_
    self.runs_ += 1
    self.log_path = os.path.join(self.workdir_, self.name_ + suffix + ".log")
    self.proc = subprocess.Popen(self.command_ + [self.config_path], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self.env_)
    self.pid = self.proc.pid
    self.log = LogPump(self.proc.stdout, copy_path=self.log_path)
    self.stopped = False
    # Set once the test asked it to exit (SIGTERM/SIGINT), so an exit is no crash.
    self.terminating = False
    listeners = self.listeners_

    def found(lines):
      hits = [m for m in (LISTENING_RE.search(l) for l in lines) if m]
      return hits if len(hits) >= listeners else None

    hits = self.log.wait_for(found, self.start_timeout_)
    if not hits:
      self.kill()
      raise RelayError("grelay did not report %d listener(s) (exit %s); config:\n%s\nlog:\n%s" %
                       (listeners, self.proc.poll(), self.config_text_, self.log.tail()))
    self.addresses = ["%s:%s" % (m.group(1), m.group(2)) for m in hits[:listeners]]
    self.address = self.addresses[0]

  def restart(self):
    """Starts a fresh process on the same config after this one died (new ports)."""
    self._spawn()

  def addr(self, cluster=None):
    """Where a client connects; every route goes through the relay."""
    return self.address

  def alive(self):
    return self.proc.poll() is None

  def rss_kib(self):
    """VmRSS of the relay in KiB, or None once it is gone."""
    try:
      with open("/proc/%d/status" % self.pid) as f:
        for line in f:
          if line.startswith("VmRSS:"):
            return int(line.split()[1])
    except OSError:
      return None
    return None

  def signal(self, signum):
    if signum in (signal.SIGTERM, signal.SIGINT):
      self.terminating = True
    self.proc.send_signal(signum)

  def kill(self):
    if self.proc.poll() is None:
      self.proc.kill()
      self.proc.wait()
    self.stopped = True

  def stop(self):
    """SIGTERM and wait for a clean exit; raises RelayError when it does not come."""
    if self.stopped:
      return
    self.stopped = True
    if not self.terminating:
      if self.proc.poll() is not None:
        raise RelayError("grelay exited on its own with status %s before the end of the test;"
                         " log:\n%s" % (self.proc.returncode, self.log.tail()))
      self.signal(signal.SIGTERM)
    try:
      self.proc.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
      self.proc.kill()
      self.proc.wait()
      raise RelayError("grelay still running %ds after SIGTERM (killed); log:\n%s" %
                       (STOP_SECONDS, self.log.tail()))
    if self.proc.returncode != 0:
      raise RelayError("grelay exited with status %s after SIGTERM (expected 0); log:\n%s" %
                       (self.proc.returncode, self.log.tail()))


class DirectTarget:
  """GRELAY_DIRECT stand-in for a relay: each cluster name maps to its first backend."""

  pid = None

  def __init__(self, clusters):
    self.clusters_ = {}
    for name, spec in clusters.items():
      endpoints = spec["endpoints"] if isinstance(spec, dict) else list(spec)
      self.clusters_[name] = endpoints[0]

  def addr(self, cluster="echo"):
    return self.clusters_[cluster]

  def alive(self):
    return True

  def rss_kib(self):
    return None

  def stop(self):
    pass


class BackendProcess:
  """backend.py in its own process."""

  def __init__(self, workdir, name="backend", port=0, host="127.0.0.1", args=(), extra_args=()):
    os.makedirs(workdir, exist_ok=True)
    self.name = name
    self.host_ = host
    self.args_ = list(args) + list(extra_args)
    self.events_path = os.path.join(workdir, "%s-%s.events" % (name, uuid.uuid4().hex[:8]))
    open(self.events_path, "w").close()
    self.workdir_ = workdir
    self._start(port)

  def _start(self, port):
    self.proc = subprocess.Popen(
        [PYTHON, os.path.join(HERE, "backend.py"), "--port", str(port), "--name", self.name,
         "--events", self.events_path, "--host", self.host_] + self.args_,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=open(os.path.join(self.workdir_, self.name + ".stderr"), "ab"))
    line = self.proc.stdout.readline()
    if not line.strip().isdigit():
      self.proc.kill()
      raise RuntimeError("backend %s did not start (port %s): %r" % (self.name, port, line))
    self.port = int(line)
    self.address = "%s:%d" % (self.host_, self.port)

  def restart(self, timeout=10.0):
    """Starts a new process on the same port (after kill()), retrying while it is taken."""
    end = time.monotonic() + timeout
    while True:
      try:
        self._start(self.port)
        return
      except RuntimeError:
        if time.monotonic() > end:
          raise
        time.sleep(0.2)

  def kill(self, signum=signal.SIGKILL):
    if self.proc.poll() is None:
      self.proc.send_signal(signum)
      if signum in (signal.SIGKILL, signal.SIGTERM):
        self.proc.wait(10)

  def pause(self):
    os.kill(self.proc.pid, signal.SIGSTOP)

  def resume(self):
    os.kill(self.proc.pid, signal.SIGCONT)

  def stop(self):
    end_process(self.proc)

  def events(self):
    with open(self.events_path) as f:
      return [tuple(line.split(" ", 1)) for line in f.read().splitlines() if line]

  def saw_start(self, cid, timeout=10.0):
    """True once call |cid| reached a handler, waiting up to |timeout|."""
    return wait_until(lambda: ("started", cid) in self.events(), timeout)

  def saw_cancel(self, cid, timeout=10.0):
    """True once the backend recorded call |cid| as cancelled, waiting up to |timeout|."""
    return wait_until(lambda: ("cancelled", cid) in self.events(), timeout)


# gRPC clients.


def channel(address, options=()):
  opts = [
      ("grpc.max_receive_message_length", MAX_MESSAGE),
      ("grpc.max_send_message_length", MAX_MESSAGE),
      ("grpc.enable_http_proxy", 0),
      ("grpc.enable_retries", 0),
      ("grpc.initial_reconnect_backoff_ms", 100),
      ("grpc.min_reconnect_backoff_ms", 100),
      ("grpc.max_reconnect_backoff_ms", 500),
  ] + list(options)
  return grpc.insecure_channel(address, options=opts)


def unary(ch, method="/test.Echo/Unary"):
  return ch.unary_unary(method)


def client_stream(ch, method="/test.Echo/ClientStream"):
  return ch.stream_unary(method)


def server_stream(ch, method="/test.Echo/ServerStream"):
  return ch.unary_stream(method)


def bidi(ch, method="/test.Echo/Bidi"):
  return ch.stream_stream(method)


def metadata_dict(md):
  return {item.key: item.value for item in (md or ())}


