"""Size and cold import time of each cloud's deployment package, as the platform runs it.

Run: ``.venv/bin/python bench/bench_package.py [--runs N] [--zip CLOUD=PATH]...``. Without
``--zip`` it builds the three packages from this checkout (``adscore package``: pip downloads the
locked wheels, 30-60 s); with ``--zip aws=old/adscore-aws-lambda-x86_64.zip`` it measures a zip
built earlier, for a before/after comparison. For each package it prints the zipped and unzipped
size and the median (and minimum) of ``--runs`` fresh interpreters (default 7), in milliseconds,
each importing the function's entry module from the unpacked package with ``python -I -S`` (no
site-packages but what the package and the platform provide):

- aws: ``import handler`` from the unpacked zip, plus boto3/botocore/s3transfer/urllib3 (which
  the Lambda runtime provides) from this venv;
- azure: ``import function_app`` with ``.python_packages/lib/site-packages`` of the zip;
- gcp: ``import main`` from the unpacked source zip (its vendored ``adscore``), with this venv's
  site-packages standing in for what Cloud Build installs from its ``requirements.txt``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "urllib3", "jmespath", "dateutil", "six.py")
ENTRY = {"aws": "handler", "azure": "function_app", "gcp": "main"}
_TEMPLATE = """
import sys, time
sys.path[:0] = {paths!r}
t0 = time.perf_counter()
import {module}
print((time.perf_counter() - t0) * 1000)
"""


def build(cloud: str, out: Path) -> Path:
    """Build CLOUD's package from this checkout into ``out``."""
    from importlib import import_module

    return import_module(f"adscore.packaging.{cloud}").build(out)  # type: ignore[no-any-return]


def unpack(cloud: str, zip_path: Path, work: Path) -> list[str]:
    """Unpack the zip; return the import path the platform gives the function."""
    root = work / cloud
    zipfile.ZipFile(zip_path).extractall(root)
    site = sysconfig.get_paths()["purelib"]
    if cloud == "aws":
        runtime = work / "aws-runtime"
        runtime.mkdir()
        for name in RUNTIME_PROVIDED:
            if (Path(site) / name).exists() and not (root / name).exists():
                (runtime / name).symlink_to(Path(site) / name)
        return [str(root), str(runtime)]
    if cloud == "azure":
        return [str(root), str(root / ".python_packages" / "lib" / "site-packages")]
    return [str(root), site]


def measure(cloud: str, paths: list[str], runs: int) -> list[float]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "ADSCORE_STATE": "memory://",
        "ADSCORE_LOCAL": "1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    code = _TEMPLATE.format(paths=paths, module=ENTRY[cloud])
    times = []
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, env=env, check=False
        )
        if proc.returncode != 0:
            sys.exit(f"{cloud}: import failed:\n{proc.stderr[-2000:]}")
        times.append(float(proc.stdout.strip().splitlines()[-1]))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--zip", action="append", default=[], metavar="CLOUD=PATH")
    args = parser.parse_args()
    given = dict(item.split("=", 1) for item in args.zip)
    clouds = list(given) or list(ENTRY)
    print(f"Python {sys.version.split()[0]}, {args.runs} fresh interpreters per package (ms)")
    print(f"{'package':<8} {'zipped':>10} {'unzipped':>10} {'import median':>14} {'min':>8}")
    with tempfile.TemporaryDirectory(prefix="adscore-bench-") as tmp:
        work = Path(tmp)
        for cloud in clouds:
            zip_path = Path(given[cloud]) if cloud in given else build(cloud, work / "dist")
            zipped = zip_path.stat().st_size
            unzipped = sum(i.file_size for i in zipfile.ZipFile(zip_path).infolist())
            times = measure(cloud, unpack(cloud, zip_path, work), args.runs)
            print(
                f"{cloud:<8} {zipped / 2**20:>8.1f} MiB {unzipped / 2**20:>6.1f} MiB "
                f"{statistics.median(times):>14.1f} {min(times):>8.1f}"
            )


if __name__ == "__main__":
    main()
