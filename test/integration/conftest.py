"""Fixtures for grelay's integration tests.

Normal mode starts the real binary ($GRELAY_BIN, default build/grelay) in front of real
backends. Direct mode (GRELAY_DIRECT=1 or --direct) points clients straight at the backend a
route would reach, to validate the backends and clients themselves; tests marked relay_only
are skipped there and only there.

Environment: GRELAY_BIN (binary), GRELAY_DIRECT=1 (direct mode), GRELAY_LOG_LEVEL (log_level
of the relays the fixtures start; default info). Each relay's config and full log are kept
under pytest's basetemp (e.g. /tmp/pytest-of-$USER/pytest-N/grelay0/).
"""

import os

import pytest

import support
from h2_backends import GarbageBackend, H2Backend


def pytest_addoption(parser):
  parser.addoption("--direct", action="store_true", default=False,
                   help="talk to the backends directly instead of through grelay")


def pytest_configure(config):
  config.addinivalue_line("markers",
                          "relay_only: only meaningful through grelay; skipped in direct mode")


def pytest_collection_modifyitems(config, items):
  if not support.direct_mode(config):
    return
  skip = pytest.mark.skip(reason="needs grelay (direct mode)")
  for item in items:
    if "relay_only" in item.keywords:
      item.add_marker(skip)


def pytest_report_header(config):
  if support.direct_mode(config):
    return "grelay: direct mode (clients talk to the backends)"
  return "grelay: %s" % support.grelay_bin()


@pytest.fixture(scope="session")
def direct(pytestconfig):
  return support.direct_mode(pytestconfig)


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("grelay"))


@pytest.fixture(scope="session")
def grelay_bin(direct):
  path = support.grelay_bin()
  if not direct and not os.access(path, os.X_OK):
    pytest.fail("grelay binary not found at %s (set GRELAY_BIN)" % path)
  return path


# Backends shared by the whole session.


@pytest.fixture(scope="session")
def echo_backend(workdir):
  b = support.BackendProcess(workdir, name="echo")
  yield b
  b.stop()


@pytest.fixture(scope="session")
def other_backend(workdir):
  b = support.BackendProcess(workdir, name="other")
  yield b
  b.stop()


@pytest.fixture(scope="session")
def h2_backend():
  b = H2Backend()
  yield b
  b.close()


@pytest.fixture(scope="session")
def garbage_backend():
  b = GarbageBackend()
  yield b
  b.close()


# Relays.

_running = []


class RelayFactory:
  """Starts relays (or direct targets) and stops them when its scope ends."""

  def __init__(self, direct, workdir, label):
    self.direct_ = direct
    self.workdir_ = workdir
    self.label_ = label
    self.relays_ = []

  def __call__(self, routes, clusters, listeners=("127.0.0.1:0",), log_level=None, extra=""):
    if self.direct_:
      return support.DirectTarget(clusters)
    text = support.render_config(routes, clusters, listeners=listeners,
                                 log_level=log_level or os.environ.get("GRELAY_LOG_LEVEL", "info"),
                                 extra=extra)
    name = "%s-%d" % (self.label_, len(self.relays_))
    relay = support.RelayProcess(text, self.workdir_, name=name, listeners=len(listeners))
    self.relays_.append(relay)
    _running.append(relay)
    return relay

  def close(self):
    errors = []
    for relay in self.relays_:
      if relay in _running:
        _running.remove(relay)
      try:
        relay.stop()
      except support.RelayError as e:
        errors.append(str(e))
    if errors:
      pytest.fail("\n\n".join(errors), pytrace=False)


def _label(request):
  return request.node.name.replace("/", "_").replace("[", "_").replace("]", "")[:60]


@pytest.fixture(scope="module")
def module_relay_factory(direct, workdir, grelay_bin, request):
  factory = RelayFactory(direct, os.path.join(workdir, _label(request)), "relay")
  yield factory
  factory.close()


@pytest.fixture
def relay_factory(direct, workdir, grelay_bin, request):
  factory = RelayFactory(direct, os.path.join(workdir, _label(request)), "relay")
  yield factory
  factory.close()


@pytest.fixture(autouse=True)
def _relays_survive():
  """Fails the test during which a relay died, with its last log lines. A module's shared
  relay is restarted so that the tests after it still run against a live one."""
  yield
  dead = [r for r in _running if not r.stopped and not r.terminating and not r.alive()]
  reports = ["grelay (pid %d) died during this test with status %s; log:\n%s" %
             (r.pid, r.proc.returncode, r.log.tail()) for r in dead]
  for r in dead:
    try:
      r.restart()
    except support.RelayError as e:
      _running.remove(r)
      r.stopped = True
      reports.append("restarting it failed: %s" % e)
  if reports:
    pytest.fail("\n\n".join(reports), pytrace=False)


@pytest.fixture
def grpc_channel():
  """Opens channels and closes them after the test: grpc_channel(address, options=())."""
  opened = []

  def make(address, options=()):
    ch = support.channel(address, options)
    opened.append(ch)
    return ch

  yield make
  for ch in opened:
    ch.close()
