#!/usr/bin/env bash
# Runs every test: installs what is needed, builds grelay (and once more with AddressSanitizer
# and UndefinedBehaviorSanitizer), and runs the unit and integration suites on both builds.
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh build test || exit 1
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
    meson test -C "$dir" --print-errorlogs --num-processes 1 || status=1
done
/usr/bin/python3 scripts/test_summary.py build/meson-logs/testlog.json \
  build-sanitize/meson-logs/testlog.json || status=1
exit $status
