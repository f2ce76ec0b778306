#!/usr/bin/env bash
# Install everything the tests need (into .venv, plus Debian packages) and run them all:
# ruff, mypy, pytest. Works from a clean clone on a fresh machine; CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
. .venv/bin/activate
echo "== ruff"; ruff check . ; ruff format --check .
echo "== mypy"; mypy .
echo "== pytest"; python -m pytest -q -p no:cacheprovider "$@"
