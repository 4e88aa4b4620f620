#!/usr/bin/env python3
"""Builds each public header alone, as a program that includes only it would: C++17,
-Wall -Wextra -Werror, with only include/ and the cflags of grelay.pc's public requirements
(pkg-config). Each header is included twice, so a missing include guard fails too. Also fails
when a header of include/grelay/ is missing from the installed list (include/grelay/meson.build).

Usage: public_headers.py --include DIR [--pkg NAME]... [--header PATH]... -- CXX [ARG]...
"""

import argparse
import os
import shlex
import subprocess
import sys
import tempfile

FLAGS = ["-std=c++17", "-Wall", "-Wextra", "-Werror"]


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--include", required=True, help="the directory holding grelay/")
  parser.add_argument("--pkg", action="append", default=[], help="a pkg-config Requires")
  parser.add_argument("--header", action="append", default=[], help="an installed header")
  parser.add_argument("cxx", nargs="+", help="the compiler command")
  args = parser.parse_args()

  public_dir = os.path.join(args.include, "grelay")
  present = sorted(f for f in os.listdir(public_dir) if f.endswith(".h"))
  installed = sorted(os.path.basename(h) for h in args.header)
  missing = [h for h in present if h not in installed]
  if missing:
    print("not in include/grelay/meson.build's grelay_public_headers (so not installed): %s" %
          ", ".join(missing))

  cflags = []
  if args.pkg:
    out = subprocess.run(["pkg-config", "--cflags"] + args.pkg, check=True, capture_output=True,
                         text=True).stdout
    cflags = shlex.split(out)

  failed = []
  with tempfile.TemporaryDirectory() as tmp:
    for name in present:
      source = os.path.join(tmp, name.replace(".h", "_alone.cc"))
      with open(source, "w") as f:
        f.write('#include "grelay/%s"\n#include "grelay/%s"\n' % (name, name))
      command = args.cxx + FLAGS + ["-I" + args.include] + cflags + [
          "-c", source, "-o", os.path.join(tmp, name + ".o")]
      result = subprocess.run(command, capture_output=True, text=True)
      if result.returncode != 0:
        failed.append(name)
        print("FAIL grelay/%s: %s\n%s" % (name, " ".join(command), result.stderr))
      else:
        print("ok   grelay/%s" % name)
  if failed:
    print("%d of %d public headers do not build alone as C++17: %s" %
          (len(failed), len(present), ", ".join(failed)))
  return 1 if failed or missing else 0


if __name__ == "__main__":
  sys.exit(main())
