#!/usr/bin/env bash
# Run one cloud's function locally against emulators (see README "Run it locally"):
#   scripts/emulate.sh aws|azure|gcp [PATH...] [--config F] [--keep] [--json]
# Sets up .venv with that cloud's extra and the emulators (moto; Azurite from package.json), then
# runs `adscore emulate`.
set -euo pipefail
cd "$(dirname "$0")/.."
cloud="${1:-}"
case "$cloud" in
  aws) extras="aws,cli,emulate" ;;
  azure) extras="azure,cli" ;;
  gcp) extras="gcp,cli" ;;
  *) echo "usage: scripts/emulate.sh aws|azure|gcp [PATH...] [--config F] [--keep] [--json]" >&2; exit 2 ;;
esac
scripts/setup.sh "$extras"
if [ "$cloud" = azure ] && [ ! -x node_modules/.bin/azurite-table ]; then
  npm ci --silent --no-audit --no-fund
fi
exec .venv/bin/adscore emulate "$@"
