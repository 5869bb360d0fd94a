#!/usr/bin/env bash
# Python static checks (CI and before a commit); any finding fails the script:
#   ruff check      the lint rules of pyproject.toml [tool.ruff] over src, tests and scripts (no reformatting)
#   mypy            --strict over src/voxrelay, as configured in [tool.mypy]
#   lint-imports    the layer contracts of [tool.importlinter] (README, "How it is built")
# All three run even when one fails, so one run lists every finding.
# Needs the `test` extra (scripts/setup.sh --dev). VENV=path picks another virtualenv.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bin="${VENV:-.venv}/bin"
failed=()
"$bin/ruff" check --quiet --output-format concise src tests scripts || failed+=(ruff)
"$bin/mypy" || failed+=(mypy)
# PYTHONPATH=src: the contracts are checked against this checkout even if another one is installed.
log="$(mktemp)"
PYTHONPATH=src "$bin/lint-imports" --no-cache > "$log" 2>&1 || { cat "$log"; failed+=(lint-imports); }
rm -f "$log"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "check-python: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "check-python: ruff, mypy --strict and import contracts OK"
