#!/usr/bin/env bash
# The main job: sets up .venv if needed, then runs the default experiment.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
exec .venv/bin/gtrxl-train --config experiments/configs/tmaze.py "$@"
