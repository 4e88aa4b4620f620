#!/usr/bin/env bash
# Builds grelay's container image (deploy/container/Containerfile) with podman, from Debian
# 12 bases the project makes itself with mmdebstrap (no image registry is needed), then runs
# test/container/: a real gRPC call through the running container.
#
#   scripts/container.sh            # bases (once), image, test
#   scripts/container.sh --build    # bases and image only
#
# Bases and their logs are kept in build-container/ (delete it to remake them). The image
# is localhost/grelay:VERSION and localhost/grelay:latest.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build-container
mkdir -p "$dir"
scripts/deps.sh container
version=$(sed -n "s/^ *version : '\\(.*\\)',/\\1/p" meson.build)

# This machine's podman needs two things a usual host does not: runc, since crun refuses a
# hybrid cgroup v1/v2 hierarchy ("cgroups in hybrid mode not supported"), and container
# rlimits no higher than the process's own hard limits, since there is no CAP_SYS_RESOURCE
# to raise them (podman's defaults, nofile 1048576 and a high nproc, fail with "setrlimit:
# Operation not permitted"). Both are harmless elsewhere.
podman=(podman)
[ -x /usr/bin/runc ] && podman+=(--runtime runc)
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] || [ "$nofile" -gt 65536 ] && nofile=65536
limits=(--ulimit "nofile=$nofile:$nofile" --ulimit nproc=4096:4096)

# The bases: Debian 12 from the Debian mirror, with the build and runtime packages in them,
# so that the image build itself needs no network. Documentation is left out.
base() {  # NAME VARIANT PACKAGES
  # Named after its package list too, so a base made before the list changed is made again.
  local tar
  tar="$dir/$1-$(echo "$3" | md5sum | cut -c1-8).tar"
  if [ ! -s "$tar" ]; then
    echo "== mmdebstrap $1 (a few minutes; log: $dir/$1.log)"
    nice -n 19 mmdebstrap --variant="$2" --include="$3" \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      bookworm "$dir/$1.partial.tar" >"$dir/$1.log" 2>&1
    mv "$dir/$1.partial.tar" "$tar"
    "${podman[@]}" rmi -f "localhost/grelay-$1:bookworm" >/dev/null 2>&1 || true
  fi
  if ! "${podman[@]}" image exists "localhost/grelay-$1:bookworm"; then
    "${podman[@]}" import --change 'CMD ["/bin/sh"]' "$tar" "localhost/grelay-$1:bookworm" >/dev/null
  fi
}
base build-base minbase meson,ninja-build,g++,pkg-config,libnghttp2-dev,libuv1-dev,libssl-dev,libtomlplusplus-dev,libc-ares-dev,node-llhttp
base runtime-base minbase libuv1,libssl3,libc-ares2,libtomlplusplus3,ca-certificates

echo "== podman build localhost/grelay:$version (compiles grelay: several minutes on 2 cores)"
nice -n 19 "${podman[@]}" build --network=none "${limits[@]}" \
  --build-arg BUILD_BASE=localhost/grelay-build-base:bookworm \
  --build-arg RUNTIME_BASE=localhost/grelay-runtime-base:bookworm \
  -f deploy/container/Containerfile -t "localhost/grelay:$version" -t localhost/grelay:latest . \
  >"$dir/podman-build.log" 2>&1 || { tail -30 "$dir/podman-build.log"; exit 1; }
"${podman[@]}" image ls localhost/grelay
[ "${1:-}" = "--build" ] && exit 0

echo "== test/container"
GRELAY_IMAGE="localhost/grelay:$version" GRELAY_PODMAN_GLOBAL="${podman[*]:1}" \
  GRELAY_PODMAN_RUN="${limits[*]}" \
  exec /usr/bin/python3 -m pytest test/container -p no:cacheprovider -q
