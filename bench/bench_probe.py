"""Issue 22, route before building: per input family, parse-all vs probe-then-parse, and the alerts' hash.

Usage::

    python bench/bench_probe.py [--records 5000] [--batch 500] [--repeat 3] [--families docker,k8s_audit]

Per family of ``generate_families.py`` (most records reach no detection), in one process, the same
JSON lines are decoded and run through one engine (default settings, in-memory state) in batches of
``--batch`` records, twice: with the probe off (every record's event is built) and on (a record whose
one event reaches no detection costs its decode and the probe only). Printed: the decode floor, the
CPU µs per record of each run (the best of ``--repeat``, process time), how many records the probe
answered and how many events were routed, and the SHA-256 of each run's sorted alerts (they must match).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate_families
from adscore.engine import BatchReport, Engine, paused_gc
from adscore.settings import load_settings
from adscore.sources import Hinted, probe_record
from adscore.state.memory import MemoryStateStore
from bench_fastpath import alerts_digest


def _decoded(lines: list[bytes], hint: str | None) -> list[Any]:
    out = [orjson.loads(line) for line in lines]
    return [Hinted(r, hint) for r in out] if hint else out


def run(lines: list[bytes], hint: str | None, batch: int, probing: bool) -> tuple[float, BatchReport]:
    """CPU seconds of decode + engine over ``lines`` (fresh engine and state), and the merged report."""
    engine = Engine(load_settings(None, state="memory://"), MemoryStateStore(), sink=None)
    engine._probing = probing
    total = BatchReport()
    t0 = time.process_time()
    for start in range(0, len(lines), batch):
        records = _decoded(lines[start : start + batch], hint)
        report = engine.run([(f"line:{start + i + 1}", r) for i, r in enumerate(records)], send=False)
        total.merge(report)
    return time.process_time() - t0, total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=5000, help="records per family")
    ap.add_argument("--batch", type=int, default=500, help="records per engine batch")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each kind; the best CPU time is shown")
    ap.add_argument("--families", default=",".join(generate_families.FAMILIES))
    ap.add_argument("--seed", type=int, default=22)
    args = ap.parse_args(argv)
    print(f"{args.records} records per family, batches of {args.batch}, default settings, in-memory state; "
          f"CPU µs/record (process time, best of {args.repeat}), decode included")
    print(f"{'family':<16}{'decode':>8}{'parse-all':>11}{'probe':>9}{'saved':>8}{'answered':>10}{'routed':>8}"
          f"{'alerts':>8}  alert hash (parse-all / probe)")
    for family in args.families.split(","):
        hint = generate_families.HINTS[family]
        lines = [orjson.dumps(r) for r in generate_families.generate(family, args.records, args.seed)]
        n = len(lines)
        with paused_gc():
            t0 = time.process_time()
            decoded = _decoded(lines, hint)
            decode = time.process_time() - t0
        answered = sum(probe_record(r) is not None for r in decoded)
        best: dict[bool, float] = {}
        reports: dict[bool, BatchReport] = {}
        for _ in range(args.repeat):
            for probing in (False, True):
                cpu, report = run(lines, hint, args.batch, probing)
                best[probing] = min(best.get(probing, cpu), cpu)
                reports[probing] = report
        h_all, _ = alerts_digest(reports[False].alerts)
        h_probe, _ = alerts_digest(reports[True].alerts)
        same = "same" if h_all == h_probe and reports[False].counts == reports[True].counts else "DIFFERENT"
        us = {k: v * 1e6 / n for k, v in best.items()}
        print(f"{family:<16}{decode * 1e6 / n:>8.1f}{us[False]:>11.1f}{us[True]:>9.1f}"
              f"{1 - us[True] / us[False]:>8.0%}{answered / n:>10.0%}{reports[True].counts['routed'] / n:>8.0%}"
              f"{len(reports[True].alerts):>8}  {h_all} / {h_probe} ({same})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
