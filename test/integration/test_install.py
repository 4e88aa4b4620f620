"""`meson install`: the binary, the default config under sysconfdir (compiled in as the
default path), the man page, the systemd unit and the logrotate snippet; the unit passes
`systemd-analyze verify`, the man page renders without warnings and documents every option,
and the logrotate snippet rotates a running relay's access log through SIGUSR1."""

import json
import os
import re
import shutil
import signal
import subprocess

import pytest

import support

pytestmark = pytest.mark.relay_only

BUILD = os.path.dirname(support.grelay_bin())
MESON = shutil.which("meson") or "/usr/bin/meson"


def introspect(build, what):
  out = subprocess.run([MESON, "introspect", build, what], check=True, capture_output=True,
                       text=True).stdout
  return json.loads(out)


def options(build):
  return {o["name"]: o["value"] for o in introspect(build, "--buildoptions")}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
  """The build's `meson install --destdir`; returns (destdir, prefix, sysconfdir)."""
  assert os.path.exists(os.path.join(BUILD, "build.ninja")), (
      "%s is not a meson build directory (the binary under test comes from one)" % BUILD)
  dest = str(tmp_path_factory.mktemp("destdir"))
  subprocess.run([MESON, "install", "-C", BUILD, "--destdir", dest, "--no-rebuild", "--quiet"],
                 check=True, capture_output=True)
  opts = options(BUILD)
  prefix = opts["prefix"]
  sysconfdir = os.path.join(prefix, opts["sysconfdir"])
  return dest, opts, prefix, sysconfdir


def under(dest, path):
  return os.path.join(dest, path.lstrip("/"))


def test_install_layout(installed):
  dest, opts, prefix, sysconfdir = installed
  expect = [
      os.path.join(prefix, opts["bindir"], "grelay"),
      os.path.join(sysconfdir, "grelay", "grelay.toml"),
      os.path.join(prefix, opts["mandir"], "man8", "grelay.8"),
      os.path.join(prefix, "lib", "systemd", "system", "grelay.service"),
      os.path.join(sysconfdir, "logrotate.d", "grelay"),
      os.path.join(prefix, opts["datadir"], "doc", "grelay", "LICENSE"),
  ]
  for path in expect:
    assert os.path.isfile(under(dest, path)), path
  assert os.access(under(dest, expect[0]), os.X_OK)
  # Nothing else: no test, benchmark or library file is installed.
  files = sorted(os.path.relpath(os.path.join(d, f), dest)
                 for d, _, names in os.walk(dest) for f in names)
  assert files == sorted(p.lstrip("/") for p in expect)


def test_default_config_path_is_the_installed_one(installed):
  dest, _, prefix, sysconfdir = installed
  binary = under(dest, os.path.join(prefix, "bin", "grelay"))
  config = os.path.join(sysconfdir, "grelay", "grelay.toml")
  out = subprocess.run([binary, "--help"], check=True, capture_output=True, text=True).stdout
  assert "(default FILE: %s)" % config in out
  # The installed config is valid, and -c still overrides the default.
  check = subprocess.run([binary, "--check", "-c", under(dest, config)], capture_output=True,
                         text=True)
  assert check.returncode == 0, check.stderr
  # Run from /, without -c, it names the absolute default (not conf/grelay.toml) when it is
  # missing.
  if not os.path.exists(config):
    missing = subprocess.run([binary, "--check"], cwd="/", capture_output=True, text=True)
    assert missing.returncode == 2
    assert missing.stderr.startswith(config + ": cannot read")


def test_prefix_usr_puts_the_config_in_etc(tmp_path):
  """A distribution's layout: configured (not built) with prefix /usr."""
  build = str(tmp_path / "build-usr")
  subprocess.run([MESON, "setup", build, support.REPO, "--prefix=/usr", "-Dtests=false",
                  "--wrap-mode=nodownload"], check=True, capture_output=True)
  installed = sorted(introspect(build, "--installed").values())
  assert installed == ["/etc/grelay/grelay.toml", "/etc/logrotate.d/grelay", "/usr/bin/grelay",
                       "/usr/lib/systemd/system/grelay.service",
                       "/usr/share/doc/grelay/LICENSE", "/usr/share/man/man8/grelay.8"]
  with open(os.path.join(build, "src", "app", "app_paths.h")) as f:
    assert '#define GRELAY_DEFAULT_CONFIG "/etc/grelay/grelay.toml"' in f.read()
  with open(os.path.join(build, "deploy", "grelay.service")) as f:
    unit = f.read()
  assert "ExecStart=/usr/bin/grelay -c /etc/grelay/grelay.toml\n" in unit


def unit_settings(text):
  settings = {}
  for line in text.splitlines():
    if "=" in line and not line.startswith("#"):
      key, value = line.split("=", 1)
      settings.setdefault(key, []).append(value)
  return settings


def test_systemd_unit(installed, tmp_path):
  dest, _, prefix, _ = installed
  with open(under(dest, os.path.join(prefix, "lib", "systemd", "system", "grelay.service"))) as f:
    text = f.read()
  s = unit_settings(text)
  assert s["Type"] == ["notify"]
  assert s["ExecReload"][-1] == "/bin/kill -HUP $MAINPID"
  assert s["KillSignal"] == ["SIGTERM"]
  assert s["DynamicUser"] == ["yes"] and s["ProtectSystem"] == ["strict"]
  assert int(s["LimitNOFILE"][0]) >= 65536
  # The stop timeout covers the default drain_timeout (30 s) and the 2 s after it.
  assert int(s["TimeoutStopSec"][0].rstrip("s")) > 32
  analyze = shutil.which("systemd-analyze")
  assert analyze, "systemd-analyze not found: scripts/deps.sh test installs systemd"
  # verify checks that ExecStart's binary exists: point it at the installed copy.
  binary = os.path.join(prefix, "bin", "grelay")
  unit = tmp_path / "grelay.service"
  unit.write_text(text.replace(binary, under(dest, binary)))
  env = dict(os.environ, MANPATH=under(dest, os.path.join(prefix, "share", "man")),
             SYSTEMD_LOG_LEVEL="notice")
  result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                          env=env, cwd=str(tmp_path))
  assert result.returncode == 0 and result.stderr == "", result.stderr
  security = subprocess.run([analyze, "security", "--offline=true", "--threshold=30",
                             str(unit)], capture_output=True, text=True, env=env,
                            cwd=str(tmp_path))
  assert security.returncode == 0, security.stdout[-2000:] + security.stderr


def test_man_page_renders_and_documents_every_option(installed):
  assert shutil.which("man"), "man not found: scripts/deps.sh test installs man-db"
  dest, opts, prefix, _ = installed
  page = under(dest, os.path.join(prefix, opts["mandir"], "man8", "grelay.8"))
  result = subprocess.run(["man", "--warnings", "-l", page], capture_output=True, text=True,
                          env=dict(os.environ, MANWIDTH="100", MAN_KEEP_FORMATTING="0"))
  assert result.returncode == 0 and result.stderr == "", result.stderr
  text = re.sub(r".\x08", "", result.stdout)
  help_text = subprocess.run([support.grelay_bin(), "--help"], capture_output=True,
                             text=True).stdout
  flags = set(re.findall(r"(?<![\w-])(-c|--\w+)", help_text)) | {"-h", "--help", "--config"}
  for flag in sorted(flags):
    assert flag in text, flag
  for word in ["SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1", "EXIT STATUS", "NOTIFY_SOCKET",
               "/etc/grelay/grelay.toml", "grpc.health.v1.Health"]:
    assert word in text, word
  version = introspect(BUILD, "--projectinfo")["version"]
  with open(page) as f:
    assert '"grelay %s"' % version in f.read().split("\n.SH", 1)[0]


def test_logrotate_snippet_rotates_through_sigusr1(installed, tmp_path, echo_backend):
  logrotate = shutil.which("logrotate") or "/usr/sbin/logrotate"
  assert os.path.exists(logrotate), "logrotate not found: scripts/deps.sh test installs it"
  dest, _, _, sysconfdir = installed
  with open(under(dest, os.path.join(sysconfdir, "logrotate.d", "grelay"))) as f:
    snippet = f.read()
  logdir = tmp_path / "log"
  logdir.mkdir()
  path = str(logdir / "access.log")
  text = support.render_config([{"service": "test.Echo", "cluster": "echo"}],
                               {"echo": [echo_backend.address]},
                               extra='[access_log]\npath = "%s"' % path)
  relay = support.RelayProcess(text, str(tmp_path), name="relay-logrotate")
  try:
    # The shipped snippet, on this test's directory, signalling this relay.
    snippet = snippet.replace("/var/log/grelay/", str(logdir) + "/")
    snippet = re.sub(r"systemctl kill [^\n]*", "kill -USR1 %d" % relay.pid, snippet)
    conf = tmp_path / "logrotate.conf"
    conf.write_text(snippet)
    with support.channel(relay.address) as ch:
      support.unary(ch)(b"before", timeout=support.GUARD_SECONDS)
      assert support.wait_until(lambda: os.path.exists(path) and os.path.getsize(path) > 0, 10)
      subprocess.run([logrotate, "--force", "--state", str(tmp_path / "state"), str(conf)],
                     check=True, capture_output=True)
      assert os.path.exists(path + ".1")
      assert relay.log.wait_for(lambda ls: [l for l in ls if "reopening the access log" in l], 10)
      support.unary(ch)(b"after", timeout=support.GUARD_SECONDS)
      assert support.wait_until(lambda: os.path.exists(path) and os.path.getsize(path) > 0, 10)
    with open(path + ".1") as f:
      assert [json.loads(l)["request_bytes"] for l in f] == [len("before") + 5]
    with open(path) as f:
      assert [json.loads(l)["request_bytes"] for l in f] == [len("after") + 5]
  finally:
    relay.stop()
