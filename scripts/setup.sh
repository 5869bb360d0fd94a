#!/usr/bin/env bash
# Set up everything voxrelay needs on a fresh Debian machine; safe to run again (skips what is done).
#   scripts/setup.sh            Python venv + the web UI
#   scripts/setup.sh --dev      also test tools (the `test` extra: pytest, ruff, mypy, import-linter, ...),
#                               the frontend's dev dependencies and Debian chromium
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1
quiet() { "$@" > /tmp/voxrelay-setup.log 2>&1 || { cat /tmp/voxrelay-setup.log; return 1; }; }

# 1. Debian packages: chromium for the browser tests, nginx for `nginx -t` of deploy/, postgresql for the
#    usage tests' throwaway cluster (tests/usage/postgres.py starts its own; the service is not needed) (dev only).
if [ "$dev" = 1 ] && { ! command -v chromium > /dev/null || ! [ -x /usr/sbin/nginx ] \
    || ! compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null; }; then
  echo "setup: installing Debian chromium, nginx and postgresql (browser, deploy and usage tests)"
  sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  quiet $sudo_cmd apt-get update
  DEBIAN_FRONTEND=noninteractive quiet $sudo_cmd apt-get install -y --no-install-recommends chromium nginx postgresql
fi

# 2. Python: a venv with voxrelay and its engines (+ test tools for --dev).
extras="whisper,deepgram,bench"
[ "$dev" = 1 ] && extras="$extras,test"
stamp=".venv/.stamp-$(cat pyproject.toml | sha1sum | cut -c1-12)-$extras"
if [ ! -f "$stamp" ]; then
  echo "setup: installing Python packages ($extras)"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  quiet .venv/bin/pip install --upgrade pip
  quiet .venv/bin/pip install -e ".[$extras]"
  rm -f .venv/.stamp-*
  touch "$stamp"
fi

# 3. The web UI, built into the package (src/voxrelay/web) so `voxrelay serve` serves it.
if [ -f frontend/package.json ]; then
  scripts/build-web.sh
fi
