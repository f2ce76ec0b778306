#!/usr/bin/env bash
# Install everything the tests need (into .venv, plus Debian packages) and run them all:
# ruff, mypy, pytest. Works from a clean clone on a fresh machine; CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
. .venv/bin/activate
echo "== ruff"; ruff check . ; ruff format --check .
echo "== mypy"; mypy .
# Two test processes (pytest-xdist), one per core of CI's machine: 12 minutes alone, 7 in two
# (2026-12-06). Arguments pass on to pytest; `-n 0` runs in one process (a later -n wins).
echo "== pytest"; python -m pytest -q -p no:cacheprovider -n 2 "$@"
