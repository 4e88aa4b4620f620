#!/usr/bin/env bash
# Fuzzes one libFuzzer target for a bounded time, as CI does (meson suite fuzz-run):
#   fuzz_bounded.sh FUZZER CORPUS WORK SECONDS [DICT]
# The run starts from a copy of the committed CORPUS in WORK (under the build directory), so
# the source tree is never written. A crash, timeout or leak fails the run; its reproducer
# stays in WORK/artifacts/ and is printed. GRELAY_FUZZ_SECONDS, if set, replaces SECONDS.
set -uo pipefail

fuzzer=$1
corpus=$2
work=$3
seconds=${GRELAY_FUZZ_SECONDS:-$4}
dict=${5:-}

# Each run starts again from the committed corpus: inputs a previous run found are not kept
# (the long local runs merge the worthwhile ones into the corpus by hand).
rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
cp -- "$corpus"/* "$work/corpus/"

args=("$work/corpus" -max_total_time="$seconds" -error_exitcode=1 -timeout_exitcode=1
      -timeout=25 -print_final_stats=1 -artifact_prefix="$work/artifacts/")
[ -n "$dict" ] && args+=(-dict="$dict")
echo "== $(basename "$fuzzer"): ${seconds}s from a copy of $corpus in $work"
"$fuzzer" "${args[@]}"
rc=$?

for f in "$work"/artifacts/*; do
  [ -f "$f" ] || continue
  echo "== reproducer $f ($(stat -c %s "$f") bytes); replay: $fuzzer $f"
  od -A x -t x1z -v "$f" | head -n 256
  # A slow unit (over 10 s, libFuzzer's -report_slow_units) is worth a look but is no failure
  # on a busy machine; a crash, leak, timeout or out-of-memory input is, even if libFuzzer's
  # exit code did not say so.
  case $(basename "$f") in
    slow-unit-*) ;;
    *) [ "$rc" -ne 0 ] || rc=1 ;;
  esac
done
exit "$rc"
