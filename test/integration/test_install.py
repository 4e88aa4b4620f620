"""`meson install`: the binary, the default config under sysconfdir (compiled in as the
default path), the man page, the systemd unit and the logrotate snippet; the unit passes
`systemd-analyze verify`, the man page renders without warnings and documents every option,
and the logrotate snippet rotates a running relay's access log through SIGUSR1. And the
library: its headers, libgrelay.so and libgrelay.a and grelay.pc, with which a C++17 program
builds (`pkg-config --cflags --libs grelay`) and relays a call; the shared library exports
grelay's API and nothing else."""

import glob
import json
import os
import re
import shlex
import shutil
import signal
import subprocess

import pytest

import embed_support
import support
from h2_client import H2Client

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


def public_headers():
  """The names of the public headers, from the source tree."""
  return sorted(os.path.basename(p) for p in glob.glob(os.path.join(support.REPO, "include",
                                                                     "grelay", "*.h")))


def library_files(prefix, opts):
  """What the library installs under |prefix|: headers, the static and the shared library
  (libgrelay.so -> libgrelay.so.SOVERSION -> libgrelay.so.VERSION) and grelay.pc."""
  includedir = os.path.join(prefix, opts["includedir"], "grelay")
  libdir = os.path.join(prefix, opts["libdir"])
  return ([os.path.join(includedir, h) for h in public_headers()] +
          [os.path.join(libdir, name) for name in ("libgrelay.a", "libgrelay.so")] +
          [os.path.join(libdir, "pkgconfig", "grelay.pc")])


def test_install_layout(installed):
  dest, opts, prefix, sysconfdir = installed
  expect = [
      os.path.join(prefix, opts["bindir"], "grelay"),
      os.path.join(sysconfdir, "grelay", "grelay.toml"),
      os.path.join(prefix, opts["mandir"], "man8", "grelay.8"),
      os.path.join(prefix, "lib", "systemd", "system", "grelay.service"),
      os.path.join(sysconfdir, "logrotate.d", "grelay"),
      os.path.join(prefix, opts["datadir"], "doc", "grelay", "LICENSE"),
  ] + library_files(prefix, opts)
  for path in expect:
    assert os.path.isfile(under(dest, path)), path
  assert os.access(under(dest, expect[0]), os.X_OK)
  # libgrelay.so links to the soname's file, which links to the versioned library.
  libdir = under(dest, os.path.join(prefix, opts["libdir"]))
  soname = os.readlink(os.path.join(libdir, "libgrelay.so"))
  version = introspect(BUILD, "--projectinfo")["version"]
  assert os.readlink(os.path.join(libdir, soname)) == "libgrelay.so." + version
  assert os.path.isfile(os.path.join(libdir, "libgrelay.so." + version))
  dynamic = subprocess.run(["readelf", "-d", os.path.join(libdir, soname)], check=True,
                           capture_output=True, text=True).stdout
  assert "Library soname: [%s]" % soname in dynamic
  expect += [os.path.join(prefix, opts["libdir"], name)
             for name in (soname, "libgrelay.so." + version)]
  # Nothing else: no test, benchmark or internal header is installed.
  files = sorted(os.path.relpath(os.path.join(d, f), dest)
                 for d, _, names in os.walk(dest) for f in names)
  assert files == sorted(p.lstrip("/") for p in expect)


def test_binary_links_grelay_and_nghttp2_statically(installed):
  """The installed binary does not use libgrelay.so, and with static_nghttp2 (the default) no
  libnghttp2.so either: direct calls on the hot path (bench/README.md)."""
  dest, opts, prefix, _ = installed
  dynamic = subprocess.run(["readelf", "-d", under(dest, os.path.join(prefix, opts["bindir"],
                                                                      "grelay"))],
                           check=True, capture_output=True, text=True).stdout
  assert "libgrelay" not in dynamic
  if opts["static_nghttp2"]:
    assert "libnghttp2" not in dynamic


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
  # The versioned names of the shared library, checked in test_install_layout.
  versioned = [p for p in installed if re.search(r"/libgrelay\.so\.[0-9.]+$", p)]
  assert len(versioned) == 2
  opts = options(build)
  assert installed == sorted(["/etc/grelay/grelay.toml", "/etc/logrotate.d/grelay",
                              "/usr/bin/grelay", "/usr/lib/systemd/system/grelay.service",
                              "/usr/share/doc/grelay/LICENSE", "/usr/share/man/man8/grelay.8"] +
                             library_files("/usr", opts) + versioned)
  with open(os.path.join(build, "src", "app", "app_paths.h")) as f:
    assert '#define GRELAY_DEFAULT_CONFIG "/etc/grelay/grelay.toml"' in f.read()
  with open(os.path.join(build, "deploy", "grelay.service")) as f:
    unit = f.read()
  assert "ExecStart=/usr/bin/grelay -c /etc/grelay/grelay.toml\n" in unit


def cpp_compiler(build):
  """The C++ compiler command of |build|, as meson runs it."""
  for target in introspect(build, "--targets"):
    for sources in target["target_sources"]:
      if sources.get("language") == "cpp" and sources.get("compiler"):
        return sources["compiler"]
  return ["c++"]


def sanitize_flags(opts):
  """A program that links a sanitized libgrelay is built with the same sanitizers (their
  runtime must come first)."""
  sanitize = opts.get("b_sanitize", "none")
  if isinstance(sanitize, list):
    sanitize = ",".join(sanitize)
  return [] if sanitize in ("none", "") else ["-fsanitize=" + sanitize]


@pytest.fixture(scope="module")
def installed_pkg_config(installed):
  """pkg-config on the installed grelay.pc, and the installed libdir. The tree is where
  `meson install --destdir` put it, so PKG_CONFIG_SYSROOT_DIR puts the destdir before the
  paths grelay.pc names."""
  dest, opts, prefix, _ = installed
  libdir = under(dest, os.path.join(prefix, opts["libdir"]))
  env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(libdir, "pkgconfig"),
             PKG_CONFIG_SYSROOT_DIR=dest)

  def pkg_config(*args):
    out = subprocess.run(["pkg-config"] + list(args) + ["grelay"], env=env, check=True,
                         capture_output=True, text=True).stdout
    return shlex.split(out)

  return pkg_config, libdir


def build_relay_one(installed, pkg_config, output, libs, source=embed_support.RELAY_ONE_SOURCE):
  """Builds |source| (consumer/relay_one.cc) as C++17 with grelay.pc's cflags and |libs|."""
  opts = installed[1]
  command = (cpp_compiler(BUILD) + ["-std=c++17", "-Wall", "-Wextra", "-Werror"] +
             sanitize_flags(opts) + pkg_config("--cflags") + [source, "-o", output] + libs)
  result = subprocess.run(command, capture_output=True, text=True)
  assert result.returncode == 0, " ".join(command) + "\n" + result.stderr
  return subprocess.run(["readelf", "-d", output], check=True, capture_output=True,
                        text=True).stdout


def test_program_built_with_pkg_config_relays_through_libgrelay_so(
    installed, installed_pkg_config, echo_backend, tmp_path):
  pkg_config, libdir = installed_pkg_config
  program = str(tmp_path / "relay_one")
  dynamic = build_relay_one(installed, pkg_config, program, pkg_config("--libs"))
  assert re.search(r"NEEDED.*\[libgrelay\.so\.", dynamic), dynamic
  # The run loads the installed library, not one the system may have.
  env = {"LD_LIBRARY_PATH": libdir}
  ldd = subprocess.run(["ldd", program], env=dict(os.environ, **env), check=True,
                       capture_output=True, text=True).stdout
  assert re.search(r"libgrelay\.so\.\S+ => %s/" % re.escape(libdir), ldd), ldd
  embed_support.relay_one_call(program, echo_backend, str(tmp_path), env=env)


def test_program_links_libgrelay_a_with_pkg_config_static(installed, installed_pkg_config,
                                                           echo_backend, tmp_path):
  """`pkg-config --static --libs grelay`, with -lgrelay turned into -l:libgrelay.a, links the
  static library: grelay.pc's private requirements are what it needs."""
  pkg_config, _ = installed_pkg_config
  libs = ["-l:libgrelay.a" if flag == "-lgrelay" else flag
          for flag in pkg_config("--static", "--libs")]
  program = str(tmp_path / "relay_one_static")
  dynamic = build_relay_one(installed, pkg_config, program, libs)
  assert "libgrelay" not in dynamic
  embed_support.relay_one_call(program, echo_backend, str(tmp_path))


def test_embedding_host_built_with_pkg_config_relays_its_grpc_streams(
    installed, installed_pkg_config, echo_backend, tmp_path):
  """examples/embed (a host's own nghttp2 server handing its gRPC streams to
  grelay::StreamRelay) builds against the installed tree alone and relays through
  libgrelay.so, while answering /healthz itself on the same connection."""
  pkg_config, libdir = installed_pkg_config
  program = str(tmp_path / "embed_server")
  dynamic = build_relay_one(installed, pkg_config, program, pkg_config("--libs"),
                            source=embed_support.EMBED_SERVER_SOURCE)
  assert re.search(r"NEEDED.*\[libgrelay\.so\.", dynamic), dynamic
  config = support.render_config([{"service": "test.Echo", "cluster": "echo"}],
                                 {"echo": [echo_backend.address]})
  server = embed_support.EmbedServer(config, str(tmp_path), binary=program,
                                     env={"LD_LIBRARY_PATH": libdir})
  try:
    with support.channel(server.address) as ch:
      assert support.unary(ch)(b"embedded", timeout=support.GUARD_SECONDS) == b"embedded"
    with H2Client(server.address) as client:
      health = client.call("/healthz", method="GET", content_type=None, te=None,
                           timeout=support.GUARD_SECONDS)
      assert health.header(":status") == "200"
      assert bytes(health.data) == b"ok\n"
  finally:
    server.stop()


def public_names():
  """The names the public headers declare in namespace grelay: classes, structs, functions
  and variables."""
  names = set()
  for path in glob.glob(os.path.join(support.REPO, "include", "grelay", "*.h")):
    with open(path) as f:
      text = f.read()
    names |= set(re.findall(r"^\s*(?:class|struct)\s+(?:GRELAY_API\s+)?(\w+)\b(?!;)", text, re.M))
    names |= set(re.findall(r"^GRELAY_API\s[^;{]*?\b(\w+)\(", text, re.M))
    names |= set(re.findall(r"^inline constexpr [^=;]*?\b(\w+)\s*=", text, re.M))
  return names


def test_shared_library_exports_the_api_only(installed):
  """libgrelay.so's dynamic symbols are the names of the public headers (with their members,
  typeinfo and vtables): none of nghttp2, libuv, std:: or grelay's internal classes."""
  dest, opts, prefix, _ = installed
  library = under(dest, os.path.join(prefix, opts["libdir"], "libgrelay.so"))
  out = subprocess.run(["nm", "-D", "--defined-only", "--demangle", library], check=True,
                       capture_output=True, text=True).stdout
  symbols = [line.split(" ", 2)[2] for line in out.splitlines() if line.count(" ") >= 2]
  public = public_names()
  assert {"Relay", "Config", "ConfigError", "parse_config", "load_config"} <= public
  strays = []
  for symbol in symbols:
    name = re.sub(r"^(typeinfo name for|typeinfo for|vtable for|guard variable for|"
                  r"(non-)?virtual thunk to) ", "", symbol)
    m = re.match(r"grelay::(\w+)(?:$|::|\(|\[|<)", name)
    if not m or m.group(1) not in public:
      strays.append(symbol)
  assert strays == [], "exported but not grelay's API:\n" + "\n".join(strays[:50])
  for expected in ["grelay::Relay::listen()", "typeinfo for grelay::ConfigError",
                   "grelay::status_name(grelay::StatusCode)"]:
    assert expected in symbols, expected
  assert any(s.startswith("grelay::parse_config(") for s in symbols)


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
