#!/usr/bin/env bash
# The whole test suite: installs everything it needs at the locked versions (the .venv with every extra
# from uv.lock, Azurite from package-lock.json), then runs ruff, mypy (strict on src/adscore) and pytest
# (unit, contract, integration against moto server and Azurite, end-to-end through functions-framework).
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh aws,azure,gcp,cli,emulate,lake,gcs,sigma,dev
# npm ci installs exactly package-lock.json; skipped (offline) when node_modules was installed from it
npm_lock="$(sha256sum package-lock.json | cut -c1-16)"
if [ ! -x node_modules/.bin/azurite-table ] || [ "$(cat node_modules/.adscore-lock 2>/dev/null)" != "$npm_lock" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  printf '%s\n' "$npm_lock" > node_modules/.adscore-lock
fi
echo "== ruff"
.venv/bin/ruff check src tests functions bench
echo "== mypy (strict, src/adscore)"
.venv/bin/mypy
echo "== pytest"
exec .venv/bin/python -m pytest -q -n "${ADSCORE_TEST_WORKERS:-2}" "$@"
