#!/usr/bin/env bash
# The whole test suite: lint, then every test (the slow learning tests included), on
# GTRXL_TEST_WORKERS pytest-xdist workers (default 2: this project's machines have 2 cores;
# most tests are single-threaded XLA compiles). `-n 0` runs them in this process. On a GPU
# host the same command runs the tests on the GPU, skipping (with the reason) those that need
# more devices than exist (tests/conftest.py).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/python -m pytest -n "${GTRXL_TEST_WORKERS:-2}" "$@"
