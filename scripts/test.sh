#!/usr/bin/env bash
# Set up (incl. test tools and chromium), then run every check and test: Python static checks
# (ruff, mypy --strict, import-linter contracts), frontend unit tests, the Electron build, and the
# Python suite (unit, real-server, Deepgram-SDK and real-browser tests). Any finding fails the run.
# Extra arguments go to pytest (e.g. -k server).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
echo "test: Python static checks (ruff, mypy --strict, import contracts)"
scripts/check-python.sh
echo "test: frontend (typecheck, vitest, electron-vite build, web build)"
scripts/check-frontend.sh
echo "test: Python suite"
exec .venv/bin/python -m pytest "$@"
