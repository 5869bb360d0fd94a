#!/usr/bin/env bash
# Build the web UI (frontend/src/renderer) into src/voxrelay/web/, where
# `voxrelay serve` mounts it at `/`. frontend/ is an npm workspace root: the app and
# the packages it builds from source (frontend/packages/client = @voxrelay/client,
# frontend/packages/react = @voxrelay/react) install together with one `npm ci`.
# Idempotent and quick when nothing changed: dependencies are reinstalled only when
# a package*.json changes, and the build is skipped when its inputs (the app's and
# the packages' sources) hash to the stamp left by the last build.
#
# Usage: scripts/build-web.sh [--force]      (needs Node ^20.19 or >=22.12 and npm)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
frontend="$root/frontend"
out="$root/src/voxrelay/web"
force=0
[[ "${1:-}" == "--force" ]] && force=1

if ! command -v npm >/dev/null 2>&1; then
  echo "build-web: npm is required (Node ^20.19 or >=22.12)" >&2
  exit 1
fi

export ELECTRON_SKIP_BINARY_DOWNLOAD=1 npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
cd "$frontend"

# Hash of the given files/folders (relative to frontend/), stable across runs.
hash_of() {
  find "$@" -type f ! -name '.DS_Store' -print0 2>/dev/null | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}

# npm prints "Unknown user config" warnings for some global npmrc settings; hide just those.
quiet_npm() {
  npm "$@" --loglevel=error 2> >(grep -v 'Unknown user config' >&2)
}

deps_hash="$(hash_of package.json package-lock.json packages/client/package.json packages/react/package.json)"
if [[ $force == 1 || ! -f node_modules/.stamp-deps || "$(cat node_modules/.stamp-deps)" != "$deps_hash" ]]; then
  echo "build-web: installing frontend dependencies"
  if [[ -f package-lock.json ]]; then quiet_npm ci >/dev/null; else quiet_npm install >/dev/null; fi
  echo "$deps_hash" > node_modules/.stamp-deps
fi

src_hash="$(hash_of package-lock.json vite.web.config.mts workspace-packages.mts tsconfig.web.json src/renderer \
  packages/client/src packages/client/package.json packages/react/src packages/react/package.json)"
stamp="$out/.stamp-web"
if [[ $force == 0 && -f "$out/index.html" && -f "$stamp" && "$(cat "$stamp")" == "$src_hash" ]]; then
  echo "build-web: $out is up to date"
  exit 0
fi

echo "build-web: building the web UI into $out"
./node_modules/.bin/vite build --config vite.web.config.mts --logLevel warn
echo "$src_hash" > "$stamp"
echo "build-web: done"
