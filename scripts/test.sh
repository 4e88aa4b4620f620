#!/usr/bin/env bash
# Runs every test: installs what is needed, builds grelay (and once more with AddressSanitizer
# and UndefinedBehaviorSanitizer), runs the unit and integration suites on both builds, and
# replays the fuzz corpora on a clang libFuzzer build.
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh build test || exit 1
# The npm packages of the web client tests and the manifests' check, from their lockfiles.
scripts/npm_deps.sh || exit 1
status=0
for dir in build build-sanitize; do
  opts=()
  [ "$dir" = build-sanitize ] && opts=(-Db_sanitize=address,undefined -Dbuildtype=debug -Db_lundef=false)
  if ! scripts/build.sh "$dir" "${opts[@]}"; then
    echo "build failed: $dir"
    status=1
    continue
  fi
  echo "== meson test ($dir)"
  # A smaller quarantine keeps RSS-bounded tests meaningful under AddressSanitizer.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:quarantine_size_mb=16 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    meson test -C "$dir" --no-suite fuzz --print-errorlogs --num-processes 1 || status=1
done
# The fuzz targets replay their committed corpora (seeds and every crash once found) and then
# fuzz for a minute each from a copy of them (suite fuzz-run), built with clang's libFuzzer;
# see test/fuzz/README.md.
logs=(build/meson-logs/testlog.json build-sanitize/meson-logs/testlog.json)
if CC=clang CXX=clang++ scripts/build.sh build-fuzz -Dfuzz=enabled \
    -Db_sanitize=address,undefined -Db_lundef=false; then
  echo "== meson test --suite fuzz --suite fuzz-run (build-fuzz)"
  fuzz_start=$SECONDS
  meson test -C build-fuzz --suite fuzz --suite fuzz-run --print-errorlogs || status=1
  echo "== fuzz tests took $((SECONDS - fuzz_start)) s"
  logs+=(build-fuzz/meson-logs/testlog.json)
else
  echo "build failed: build-fuzz"
  status=1
fi
/usr/bin/python3 scripts/test_summary.py "${logs[@]}" || status=1
exit $status
