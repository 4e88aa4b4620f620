#!/usr/bin/env bash
# Quick start: installs what is needed, builds grelay, starts the demo backend
# (tools/demo_backend.py: helloworld.Greeter with server reflection) on 127.0.0.1:50051 and
# grelay on conf/grelay.toml (127.0.0.1:50050, admin 127.0.0.1:9901), and makes a gRPC call
# through it. The relay then keeps running until Ctrl-C, which drains it (a second Ctrl-C
# closes at once); with --once the script stops after the call.
set -euo pipefail
cd "$(dirname "$0")/.."
once=false
[ "${1:-}" = "--once" ] && once=true

start=$SECONDS
step() { printf '\n== [%ss] %s\n' "$((SECONDS - start))" "$*"; }

# Every port the demo needs, checked before anything is installed or started.
ports=(50051 50050 9901)
taken=$(/usr/bin/python3 - "${ports[@]}" <<'EOF' 2>/dev/null || true
import socket, sys
for port in sys.argv[1:]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", int(port)))
    except OSError:
        print(port)
    finally:
        s.close()
EOF
)
if [ -n "$taken" ]; then
  for port in $taken; do
    who=""
    # A port held by a socket that is not listening (another program's outgoing connection)
    # names no program; under pipefail grep's no-match must not end the script here.
    command -v ss >/dev/null && who=$(ss -ltnpH "sport = :$port" 2>/dev/null | grep -o 'users:(([^)]*' | head -1 | cut -d'"' -f2 || true)
    echo "demo.sh: port $port on 127.0.0.1 is in use${who:+ by $who}." >&2
  done
  echo "demo.sh: it needs 50051 (backend), 50050 (relay) and 9901 (admin); stop what holds them" \
       "(an earlier demo still running?) and run it again." >&2
  exit 1
fi

step "installing the build dependencies from Debian (first run: a few minutes; nothing to do later)"
scripts/deps.sh build

step "building grelay into build/ (first run: about 3 minutes on 2 cores; seconds after that)"
[ -f build/build.ninja ] || meson setup build --wrap-mode=nodownload
ninja -C build grelay

pids=()
grelay_pid=""
stopping=false
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
# Ctrl-C reaches only this script: the relay and the backend run in sessions of their own,
# so the terminal's SIGINT does not reach them too (a second signal would make grelay close
# every connection at once). The first Ctrl-C drains grelay, a second one closes it now.
on_interrupt() {
  if $stopping; then
    echo " closing now"
    [ -n "$grelay_pid" ] && kill -INT "$grelay_pid" 2>/dev/null || true
    return
  fi
  stopping=true
  echo
  echo "== draining grelay (open calls may finish; Ctrl-C again to close at once)"
  [ -n "$grelay_pid" ] && kill -TERM "$grelay_pid" 2>/dev/null || true
}
trap on_interrupt INT TERM

step "starting the demo backend on 127.0.0.1:50051 and grelay on 127.0.0.1:50050"
setsid /usr/bin/python3 tools/demo_backend.py --address 127.0.0.1:50051 &
pids+=($!)
setsid build/grelay -c conf/grelay.toml &
grelay_pid=$!
pids+=($grelay_pid)

for _ in $(seq 50); do
  /usr/bin/python3 tools/demo_client.py --target 127.0.0.1:50050 >/dev/null 2>&1 && break
  sleep 0.1
done
step "calling /helloworld.Greeter/SayHello through grelay"
/usr/bin/python3 tools/demo_client.py --target 127.0.0.1:50050

if ! $once; then
  # Builtins only from here: an external command killed by the Ctrl-C would end the script
  # (set -e) before grelay has drained.
  echo
  echo "grelay is relaying on 127.0.0.1:50050 to the demo backend on 127.0.0.1:50051. Try:"
  echo "  /usr/bin/python3 tools/grpc_reflect.py list"
  echo "  /usr/bin/python3 tools/grpc_reflect.py call helloworld.Greeter/SayHello '{\"name\": \"you\"}'"
  echo "  curl -s 127.0.0.1:9901/metrics | head"
  echo "Ctrl-C drains and stops it."
  # wait returns early when a signal arrives; go on waiting until grelay has exited.
  while kill -0 "$grelay_pid" 2>/dev/null; do
    wait "$grelay_pid" 2>/dev/null || true
  done
  echo "== grelay stopped"
fi
