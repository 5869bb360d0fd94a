#!/usr/bin/env bash
# Frontend checks (CI and before a commit): dependencies from the lockfile (Electron's
# binary download skipped), type-check and unit tests of the app and of the workspace
# packages (@voxrelay/client, @voxrelay/react), their package builds (tsup: ESM +
# declarations), `electron-vite build`, and the web build into src/voxrelay/web/
# (via build-web.sh, which installs only when needed).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/build-web.sh"
cd "$root/frontend"
export ELECTRON_SKIP_BINARY_DOWNLOAD=1
quiet() { "$@" 2> >(grep -v 'Unknown user config' >&2); }
quiet npm run --silent typecheck
quiet npm run --silent test
quiet npm run --silent build:packages >/dev/null
quiet npm run --silent build >/dev/null
echo "check-frontend: typecheck, unit tests, package builds, electron-vite build and web build OK"
