#!/usr/bin/env bash
# Install Lapse into .venv and run the demo on the embedded defaults (local broker, SQLite).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/lapse demo "$@"
