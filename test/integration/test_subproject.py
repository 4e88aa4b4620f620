"""grelay as a meson subproject: a parent project (consumer/meson.build, with this source tree
as subprojects/grelay) gets grelay with dependency('grelay'), builds a C++17 program that
embeds it (consumer/relay_one.cc), and the program relays a grpcio call.

The parent builds grelay afresh, apart from the build under test, once per session: about a
minute on two cores (-O0, only the static library and the program), with the sanitizers of
the build under test, so that the sanitized suite runs the program sanitized too."""

import json
import os
import shutil
import subprocess

import pytest

import embed_support
import support

pytestmark = pytest.mark.relay_only

BUILD = os.path.dirname(support.grelay_bin())
MESON = shutil.which("meson") or "/usr/bin/meson"
NINJA = shutil.which("ninja") or "/usr/bin/ninja"


def sanitizer_options():
  """The parent's meson options for the sanitizers of the build under test (none: [])."""
  out = subprocess.run([MESON, "introspect", BUILD, "--buildoptions"], check=True,
                       capture_output=True, text=True).stdout
  options = {o["name"]: o["value"] for o in json.loads(out)}
  sanitize = options.get("b_sanitize", "none")
  if isinstance(sanitize, list):
    sanitize = ",".join(sanitize)
  if sanitize in ("none", ""):
    return []
  return ["-Db_sanitize=" + sanitize, "-Db_lundef=false"]


@pytest.fixture(scope="session")
def subproject_program(tmp_path_factory):
  parent = tmp_path_factory.mktemp("parent")
  for name in ("meson.build", "relay_one.cc"):
    shutil.copy(os.path.join(embed_support.CONSUMER_DIR, name), str(parent / name))
  (parent / "subprojects").mkdir()
  os.symlink(support.REPO, str(parent / "subprojects" / "grelay"))
  build = str(parent / "build")
  # --force-fallback-for: the subproject, even where a grelay.pc is installed.
  setup = subprocess.run([MESON, "setup", build, str(parent), "--buildtype=plain",
                          "--wrap-mode=nodownload", "--force-fallback-for=grelay"] +
                         sanitizer_options(),
                         capture_output=True, text=True)
  assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr
  # Two jobs: the machines this runs on have two cores, shared.
  result = subprocess.run([NINJA, "-C", build, "-j2", "relay_one"], capture_output=True,
                          text=True)
  assert result.returncode == 0, result.stdout[-5000:] + result.stderr
  return os.path.join(build, "relay_one")


def test_subproject_builds_a_program_that_relays(subproject_program, echo_backend, tmp_path):
  # The program links grelay statically: it needs no libgrelay.so.
  needed = subprocess.run(["readelf", "-d", subproject_program], check=True,
                          capture_output=True, text=True).stdout
  assert "libgrelay" not in needed
  embed_support.relay_one_call(subproject_program, echo_backend, str(tmp_path))
