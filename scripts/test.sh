#!/usr/bin/env bash
# Sets up and runs the whole test suite: lint, then every test on SQLite and again on a real
# PostgreSQL server that the tests start themselves (tests/pgserver.py).
set -euo pipefail
cd "$(dirname "$0")/.."
need_apt=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ] && [ "$(id -u)" = 0 ]; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}"
fi
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/ruff check .
echo "== tests on SQLite"
.venv/bin/python -m pytest -n 2 -q -p no:cacheprovider
echo "== tests on PostgreSQL"
KB_TEST_BACKEND=postgres .venv/bin/python -m pytest -n 2 -q -p no:cacheprovider
