#!/usr/bin/env bash
# Run the project's pinned uv: `scripts/uv.sh ARGS...`. The first call installs it from PyPI into
# .tools/uv-<version>/ (a venv of its own, outside the project's .venv); later calls need no network.
# uv never downloads a Python here: it uses $PYTHON or python3.
set -euo pipefail
UV_VERSION=0.13.10
root="$(cd "$(dirname "$0")/.." && pwd)"
tool="$root/.tools/uv-$UV_VERSION"
if [ ! -x "$tool/bin/uv" ]; then
  rm -rf "$tool"
  "${PYTHON:-python3}" -m venv "$tool"
  "$tool/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
export UV_PYTHON_DOWNLOADS=never
exec "$tool/bin/uv" "$@"
