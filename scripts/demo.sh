#!/usr/bin/env bash
# Quick start: installs what is needed, builds grelay, starts the bundled echo backend on
# 127.0.0.1:50051 and grelay on conf/grelay.toml (127.0.0.1:50050), and makes a gRPC call
# through it. The relay then keeps running until Ctrl-C; with --once the script stops there.
set -euo pipefail
cd "$(dirname "$0")/.."
once=false
[ "${1:-}" = "--once" ] && once=true

scripts/deps.sh build >/dev/null
scripts/build.sh build >/dev/null

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

build/bench/echo_backend --address 127.0.0.1 --port 50051 >/dev/null &
pids+=($!)
build/grelay -c conf/grelay.toml &
pids+=($!)

for _ in $(seq 50); do
  /usr/bin/python3 tools/demo_client.py --target 127.0.0.1:50050 >/dev/null 2>&1 && break
  sleep 0.1
done
/usr/bin/python3 tools/demo_client.py --target 127.0.0.1:50050

if ! $once; then
  echo "grelay is relaying on 127.0.0.1:50050 to the echo backend on 127.0.0.1:50051; Ctrl-C stops both."
  wait "${pids[1]}"
fi
