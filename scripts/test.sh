#!/usr/bin/env bash
# The whole test suite: installs everything it needs (the .venv with every extra, Azurite from npm),
# then runs ruff, mypy (strict on src/adscore) and pytest (unit, contract, integration against moto server
# and Azurite, end-to-end through functions-framework). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh aws,azure,gcp,dev
if [ -f package.json ]; then
  if [ ! -x node_modules/.bin/azurite-table ] || [ package.json -nt node_modules/.package-lock.json ]; then
    npm install --no-audit --no-fund --loglevel=error
  fi
fi
echo "== ruff"
.venv/bin/ruff check src tests functions bench
echo "== mypy (strict, src/adscore)"
.venv/bin/mypy
echo "== pytest"
exec .venv/bin/python -m pytest -q -n "${ADSCORE_TEST_WORKERS:-2}" "$@"
