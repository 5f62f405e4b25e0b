#!/usr/bin/env bash
# The whole test suite: set-up (idempotent), architecture contracts, lint, types, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export QT_QPA_PLATFORM=offscreen
.venv/bin/lint-imports
.venv/bin/ruff check core xfr_desktop tests benchmarks scripts
.venv/bin/ruff format --check core xfr_desktop tests benchmarks scripts
.venv/bin/python scripts/typecheck.py
.venv/bin/python -m pytest "$@"
