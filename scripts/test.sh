#!/usr/bin/env bash
# Set up (incl. test tools and chromium), then run every test: frontend unit tests, the Electron
# build, and the Python suite (unit, real-server, Deepgram-SDK and real-browser tests).
# Extra arguments go to pytest (e.g. -k server).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
echo "test: frontend (typecheck, vitest, electron-vite build, web build)"
scripts/check-frontend.sh
echo "test: Python suite"
exec .venv/bin/python -m pytest "$@"
