"""What Sigma rules cost a replay: the same records with and without a folder of rules.

Run: ``.venv/bin/python bench/bench_sigma.py --sigma DIR [--records N]`` (default 100,000 CloudTrail
records from ``generate_cloudtrail.py``, written once to ``bench/data``). ``DIR`` is any folder of
Sigma rules, e.g. SigmaHQ's ``rules/cloud`` and ``rules/application/kubernetes``. Each replay runs
``adscore replay FILE --output jsonl --no-progress`` under ``/usr/bin/time``; the script prints the
wall time, the peak memory and the events per second of each, and how many rules loaded.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from generate_cloudtrail import write  # noqa: E402


def _run(args: list[str]) -> tuple[float, float, str]:
    adscore = Path(sys.executable).parent / "adscore"
    cmd = ["/usr/bin/time", "-f", "%e %M", str(adscore), "replay", *args, "--output", "jsonl", "--no-progress"]
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    lines = proc.stderr.strip().splitlines()
    seconds, rss_kb = lines[-1].split()
    summary = next((line for line in lines if line.startswith("adscore replay:")), "")
    return float(seconds), int(rss_kb) / 1024, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sigma", type=Path, required=True)
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    data = ROOT / "bench" / "data" / f"cloudtrail-{args.records}.jsonl"
    if not data.exists():
        write(data, args.records)
    check = subprocess.run([str(Path(sys.executable).parent / "adscore"), "sigma", "check", str(args.sigma)],
                           capture_output=True, text=True, check=False)  # fmt: skip
    print(f"rules: {check.stdout.strip().splitlines()[-1] if check.stdout.strip() else check.stderr.strip()}")
    print(f"{'run':<16} {'seconds':>8} {'peak RSS':>10} {'events/s':>10}")
    for name, extra in (("built-in only", []), ("with the rules", ["--sigma", str(args.sigma)])):
        seconds, rss, _ = _run([str(data), *extra])
        print(f"{name:<16} {seconds:>8.1f} {rss:>7.0f} MB {args.records / seconds:>10,.0f}")


if __name__ == "__main__":
    main()
