#!/usr/bin/env bash
# Creates ./.venv with the pinned requirements (requirements-dev.txt: the runtime lock plus the
# test tools) and the package (idempotent; re-runs when requirements.txt,
# requirements-dev.txt or setup.cfg change). Sourced by train.sh and test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
# Procgen (envpool) loads Qt 5 at run time: install Debian's runtime where we can.
if ! ldconfig -p 2>/dev/null | grep -q libQt5Gui.so.5 && command -v apt-get >/dev/null \
    && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && apt-get install -y -qq libqt5gui5 >/dev/null) \
    || echo "warning: could not install libqt5gui5; Procgen tasks will not load" >&2
fi
stamp=.venv/.installed-$(cat requirements.txt requirements-dev.txt setup.cfg | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "Setting up .venv (pinned requirements; first run takes a few minutes)..." >&2
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r requirements-dev.txt
  .venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
  rm -f .venv/.installed-*
  touch "$stamp"
fi
