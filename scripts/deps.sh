#!/usr/bin/env bash
# Installs what grelay needs from Debian. Usage: scripts/deps.sh [build|test|bench|container]...
# "build" is always included. Runs apt-get update once, only when something is missing.
# "container" is what test/container/ needs to make a Debian base with mmdebstrap and build
# and run the image with podman (rootful, no daemon).
set -euo pipefail

# node-llhttp: the C sources of llhttp (HTTP/1.1 parsing), compiled into grelay.
build_pkgs=(meson ninja-build g++ pkg-config libnghttp2-dev libuv1-dev libssl-dev
            libtomlplusplus-dev doctest-dev cmake python3-grpcio libc-ares-dev node-llhttp)
# dnsmasq-base is the DNS server binary the tests start on a free port, without the system
# service; prometheus is only there for promtool, systemd for systemd-analyze (units the
# install enables are disabled below); chromium is the browser that the web client tests
# (test/web/) drive headless, so that no tool downloads a browser of its own.
test_pkgs=(python3-grpcio python3-h2 python3-pytest clang libclang-rt-14-dev prometheus openssl
           dnsmasq-base man-db groff-base logrotate protobuf-compiler systemd chromium)
container_pkgs=(podman buildah mmdebstrap uidmap runc)
bench_pkgs=(nghttp2-client nghttp2-proxy haproxy nginx-light gnuplot-nox heaptrack strace)

want=("${build_pkgs[@]}")
for kind in "$@"; do
  case "$kind" in
    build) ;;
    test) want+=("${test_pkgs[@]}") ;;
    bench) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
    container) want+=("${container_pkgs[@]}") ;;
    *) echo "deps.sh: unknown set '$kind' (build, test, bench, container)" >&2; exit 2 ;;
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
# Packages such as prometheus and podman enable system units when installed; grelay needs
# only their programs, so every unit the install enabled is disabled (and stopped) again.
enabled_units() { find /etc/systemd/system -path '*.wants/*' -type l -printf '%f\n' 2>/dev/null | sort -u; }
before=$(enabled_units)
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
new_units=$(comm -13 <(echo "$before") <(enabled_units))
if [ -n "$new_units" ]; then
  echo "disabling units the install enabled: $(echo $new_units)"
  # shellcheck disable=SC2086
  $sudo systemctl disable --now $new_units >/dev/null 2>&1 || $sudo systemctl disable $new_units
fi
