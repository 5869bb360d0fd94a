#!/usr/bin/env bash
# Quick start: set up, then run the gateway with the offline local engine and the web UI.
# Extra arguments go to `voxrelay serve` (e.g. --port 9000). Open http://127.0.0.1:8765
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/voxrelay serve "$@"
