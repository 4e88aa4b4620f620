#!/usr/bin/env bash
# Installs the npm packages of the test directories from their committed lockfiles, with npm ci.
# Usage: scripts/npm_deps.sh [DIR]...   (default: test/web test/kubernetes)
# npm ci runs only where node_modules is missing or was installed from another lockfile or
# another Node.js, so calling this before every test run costs nothing once installed. The
# packages come from the npm registry only; none of them downloads anything at install time (the
# browser of test/web/ is Debian's chromium, from scripts/deps.sh test).
set -euo pipefail
cd "$(dirname "$0")/.."

dirs=("$@")
[ ${#dirs[@]} -eq 0 ] && dirs=(test/web test/kubernetes)
for cmd in node npm; do
  command -v "$cmd" >/dev/null || { echo "npm_deps.sh: $cmd not found" >&2; exit 1; }
done
for dir in "${dirs[@]}"; do
  if [ ! -f "$dir/package-lock.json" ]; then
    echo "npm_deps.sh: no $dir/package-lock.json" >&2
    exit 2
  fi
  stamp="$dir/node_modules/.installed-from"
  want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1) node $(node --version)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "npm packages of $dir: up to date"
    continue
  fi
  echo "npm packages of $dir: npm ci from package-lock.json ..."
  start=$SECONDS
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=http)
  echo "$want" >"$stamp"
  echo "npm packages of $dir: installed in $((SECONDS - start)) s"
done
