#!/usr/bin/env bash
# Installs what grelay needs from Debian. Usage: scripts/deps.sh [build|test|bench]...
# "build" is always included. Runs apt-get update once, only when something is missing.
set -euo pipefail

build_pkgs=(meson ninja-build g++ pkg-config libnghttp2-dev libuv1-dev libssl-dev
            libtomlplusplus-dev doctest-dev cmake python3-grpcio libc-ares-dev)
test_pkgs=(python3-grpcio python3-h2 python3-pytest clang libclang-rt-14-dev prometheus openssl
           dnsmasq)
bench_pkgs=(nghttp2-client nghttp2-proxy haproxy nginx-light gnuplot-nox heaptrack)

want=("${build_pkgs[@]}")
for kind in "$@"; do
  case "$kind" in
    build) ;;
    test) want+=("${test_pkgs[@]}") ;;
    bench) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
    *) echo "deps.sh: unknown set '$kind' (build, test, bench)" >&2; exit 2 ;;
  esac
done

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
