#!/usr/bin/env python3
"""Write ``functions/<cloud>/requirements.txt`` from ``uv.lock`` (the one lock of every install).

Each file is ``uv export`` of the core dependencies plus that cloud's extra (no ``cli``, no
``emulate``, no ``dev``): the exact versions the test suite runs against, so AWS, Azure and GCP
ship the same version of every shared package. ``adscore package <cloud>`` installs exactly
these lines (``pip install --no-deps``), and the GCP zip carries its file as the function's
``requirements.txt``.

Usage::

    scripts/lock.sh                                   # update: relock, then rewrite these files
    .venv/bin/python scripts/gen_requirements.py          # rewrite the files from uv.lock
    .venv/bin/python scripts/gen_requirements.py --check  # exit 1 when a file is out of date

``tests/unit/test_lock.py`` runs the check in CI.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLOUDS = ("aws", "azure", "gcp")

_HEADER = """\
# GENERATED from uv.lock by scripts/gen_requirements.py: do not edit. Update with scripts/lock.sh.
# The {cloud} function's runtime dependencies: adscore's core plus its [{cloud}] extra, at the exact
# versions the test suite runs against (the same version of every package shared with the other clouds).
# `adscore package {cloud}` installs exactly these lines (pip --no-deps) beside the adscore wheel.
"""


def export(cloud: str) -> str:
    """``uv export`` of the core plus ``cloud``'s extra, as pinned requirement lines (markers kept)."""
    proc = subprocess.run(
        [
            str(ROOT / "scripts" / "uv.sh"),
            "export",
            "--frozen",
            "--no-emit-project",
            "--no-dev",
            "--no-hashes",
            "--no-header",
            "--no-annotate",
            "--extra",
            cloud,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(f"uv export failed for {cloud}:\n{proc.stderr}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return _HEADER.format(cloud=cloud) + "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for cloud in CLOUDS:
        path = ROOT / "functions" / cloud / "requirements.txt"
        text = export(cloud)
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        if check:
            stale.append(str(path.relative_to(ROOT)))
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(
            "out of date with uv.lock (run scripts/gen_requirements.py): " + ", ".join(stale), file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
