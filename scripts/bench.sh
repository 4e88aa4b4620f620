#!/usr/bin/env bash
# The whole benchmark in one command: installs the bench tools from Debian (scripts/deps.sh
# bench), builds grelay, the echo backend and the load client optimized (release) in
# build-release/ (or $BENCH_BUILD), and runs bench/bench.py, which writes
# bench/results/latest.md and bench/results/latest.png.
#
#   scripts/bench.sh                          # the full run: every workload, 3 rounds x 10 s
#   scripts/bench.sh --duration 3 --rounds 1  # a quick look; any bench.py option works
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BENCH_BUILD:-build-release}
scripts/deps.sh bench
[ -f "$dir/build.ninja" ] || meson setup "$dir" --wrap-mode=nodownload --buildtype=release
# Only what the benchmark runs, so a half-written test elsewhere cannot stop it.
ninja -C "$dir" grelay bench/echo_backend bench/load_client examples/embed/embed_server \
  bench/copy_count_preload.so bench/frame_count_preload.so bench/rapid_reset
exec /usr/bin/python3 bench/bench.py --build "$dir" "$@"
