#!/usr/bin/env bash
# Update the one lock: re-resolve uv.lock (newest versions the pyproject ranges allow; extra arguments
# go to `uv lock`, e.g. --upgrade-package boto3), rewrite functions/*/requirements.txt from it, and
# sync .venv. Commit uv.lock and the requirements files together, after ./scripts/test.sh passes.
#   scripts/lock.sh                    # pick up pyproject.toml changes, keep other versions
#   scripts/lock.sh --upgrade          # move every package to its newest allowed release
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/uv.sh lock --python "${PYTHON:-python3}" "$@"
"${PYTHON:-python3}" scripts/gen_requirements.py
scripts/setup.sh
