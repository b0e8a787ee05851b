#!/usr/bin/env bash
# The whole test suite: lint, then every test (the slow learning tests included).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
