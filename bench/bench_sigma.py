"""What Sigma rules cost a replay: the same records with and without a folder of rules.

Run: ``.venv/bin/python bench/bench_sigma.py [--sigma DIR] [--records N]`` (default 100,000 CloudTrail
records from ``generate_cloudtrail.py``, written once to ``bench/data``). ``DIR`` is any folder of
Sigma rules, e.g. SigmaHQ's ``rules/cloud`` and ``rules/application/kubernetes``; without it, the 186
SigmaHQ-shaped rules of ``generate_sigma_rules.py`` (written once to ``bench/data/sigma-rules``). Each
replay runs ``adscore replay FILE --output jsonl --no-progress`` under ``/usr/bin/time``; the script
prints the wall time, the CPU time (user + system: steadier than the wall time on a shared
machine), the peak memory and the events per second of each, how many rules loaded, and
the number and a hash of the alerts (every JSON line, sorted), to compare two versions.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from generate_cloudtrail import write  # noqa: E402
from generate_sigma_rules import write as write_rules  # noqa: E402


def _run(args: list[str]) -> tuple[float, float, float, int, str]:
    adscore = Path(sys.executable).parent / "adscore"
    cmd = ["/usr/bin/time", "-f", "%e %M %U %S", str(adscore), "replay", *args, "--output", "jsonl", "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = proc.stderr.strip().splitlines()
    seconds, rss_kb, user, system = lines[-1].split()
    alerts = sorted(line for line in proc.stdout.splitlines() if line.strip())  # whole alerts, as written
    digest = hashlib.sha256("\n".join(alerts).encode()).hexdigest()[:16]
    return float(seconds), int(rss_kb) / 1024, float(user) + float(system), len(alerts), digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sigma", type=Path, default=None)
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    data = ROOT / "bench" / "data" / f"cloudtrail-{args.records}.jsonl"
    if not data.exists():
        write(data, args.records)
    if args.sigma is None:
        args.sigma = ROOT / "bench" / "data" / "sigma-rules"
        if not args.sigma.exists():
            write_rules(args.sigma)
    check = subprocess.run([str(Path(sys.executable).parent / "adscore"), "sigma", "check", str(args.sigma)],
                           capture_output=True, text=True, check=False)  # fmt: skip
    print(f"rules: {check.stdout.strip().splitlines()[-1] if check.stdout.strip() else check.stderr.strip()}")
    print(f"{'run':<16} {'seconds':>8} {'CPU s':>6} {'peak RSS':>10} {'events/s':>10} {'alerts':>7}  alerts hash")
    for name, extra in (("built-in only", []), ("with the rules", ["--sigma", str(args.sigma)])):
        seconds, rss, cpu, n, digest = _run([str(data), *extra])
        print(f"{name:<16} {seconds:>8.1f} {cpu:>6.1f} {rss:>7.0f} MB {args.records / seconds:>10,.0f} {n:>7}  {digest}")


if __name__ == "__main__":
    main()
