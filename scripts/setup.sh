#!/usr/bin/env bash
# Create .venv and install adscore with the given extras at exactly the versions of uv.lock.
# Usage: scripts/setup.sh [extras]    e.g. scripts/setup.sh aws,azure,gcp,cli,emulate,dev
# The extras already in .venv are kept (`setup.sh aws` after the tests uninstalls nothing). Quick and
# offline when .venv already matches the lock; otherwise `uv sync --frozen` installs what the lock
# says (from uv's cache when it has them) and removes what the lock does not list.
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PYTHON:-python3}"
had=""
[ -f .venv/.adscore-extras ] && had="$(cat .venv/.adscore-extras)"
requested="${1:-}"
extras="$(printf '%s\n' ${requested//,/ } ${had//,/ } | sed '/^$/d' | sort -u | paste -sd, -)"
want="$(sha256sum uv.lock pyproject.toml | sha256sum | cut -c1-16) ${extras:-core} $("$py" -c 'import sys; print(sys.version.split()[0])')"
if [ -x .venv/bin/python ] && [ -f .venv/.adscore-lock ] && [ "$(cat .venv/.adscore-lock)" = "$want" ]; then
  exit 0
fi
args=(sync --frozen --quiet --python "$py")
for extra in ${extras//,/ }; do args+=(--extra "$extra"); done
UV_PROJECT_ENVIRONMENT=.venv scripts/uv.sh "${args[@]}"
printf '%s\n' "$extras" > .venv/.adscore-extras
printf '%s\n' "$want" > .venv/.adscore-lock
