#!/usr/bin/env bash
# Run checkov on the Terraform under infra/ with the repo's .checkov.yaml.
#
# checkov lives in its own virtualenv, .venv-checkov (gitignored), so its many pinned dependencies never
# meet the project's .venv. The venv is created on first use and rebuilt when CHECKOV_VERSION changes.
#
# Exit status: 0 no failed checks; 1 checkov reported failed checks (or crashed);
# 3 the checkov venv could not be created (no network to PyPI, no python): callers may skip on 3.
# Extra arguments go to checkov (e.g. `scripts/checkov.sh --compact` or `-o json`).
set -euo pipefail
cd "$(dirname "$0")/.."

CHECKOV_VERSION="3.3.30"
VENV=".venv-checkov"
STAMP="$VENV/.checkov-$CHECKOV_VERSION"
PYTHON="${CHECKOV_PYTHON:-}"
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3.12 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then PYTHON="$candidate"; break; fi
  done
fi

if [ ! -f "$STAMP" ]; then
  if [ -z "$PYTHON" ]; then
    echo "checkov.sh: no python3 found to create $VENV" >&2
    exit 3
  fi
  echo "checkov.sh: installing checkov==$CHECKOV_VERSION into $VENV (first run takes a few minutes)" >&2
  rm -rf "$VENV"
  if ! "$PYTHON" -m venv "$VENV" >&2; then
    echo "checkov.sh: cannot create $VENV with $PYTHON" >&2
    rm -rf "$VENV"
    exit 3
  fi
  if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION" >&2; then
    echo "checkov.sh: cannot install checkov==$CHECKOV_VERSION from the package index (offline?)" >&2
    rm -rf "$VENV"
    exit 3
  fi
  touch "$STAMP"
fi

# No Prisma Cloud account: do not try to download guidelines or policies from it (offline, quieter).
export BC_SKIP_MAPPING=TRUE
export CHECKOV_SKIP_DOWNLOAD=TRUE
# --quiet prints only failed checks; the summary line (Passed / Failed / Skipped) is always printed.
# checkov exits 1 when any check fails; that is passed through.
exec "$VENV/bin/checkov" --config-file .checkov.yaml "$@"
