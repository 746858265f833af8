#!/usr/bin/env bash
# The main job: replay the bundled attack and benign logs (examples/) through every detection on the
# embedded SQLite state and print the alerts. Extra arguments go to `adscore replay`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh cli
exec .venv/bin/adscore replay examples/ --config examples/config.yaml "$@"
