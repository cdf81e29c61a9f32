#!/usr/bin/env bash
# Creates .venv and installs the project with its test tools. Safe to run again: it reinstalls
# only when pyproject.toml changed. torch is pinned to the CPU build (2.13.0); on machines whose
# pip has no CPU wheel at hand, point PIP_EXTRA_INDEX_URL at PyTorch's CPU package index first.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$(command -v python3.11 || command -v python3)
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi
if [ -d /opt/wheels ]; then export PIP_FIND_LINKS=/opt/wheels; fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q torch==2.13.0
  .venv/bin/pip install -q -e '.[dev]'
  rm -f .venv/.installed-*
  touch "$stamp"
fi
