#!/usr/bin/env bash
# Sets up and runs the main job on the embedded SQLite default: `kb demo` creates ./.kb, loads
# the fictional demo corpus and tracker, creates demo logins and serves http://127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/kb demo "$@"
