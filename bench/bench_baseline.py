"""Alerts on the last synthetic day, with and without per-identity baselines and snapshot schedules.

Replays the days written by ``generate_days.py`` through the ``adscore replay`` code path (files
unwrapped and cut into ``batch_size`` chunks, ``runtime.run_delivery`` on an engine with a SQLite
state store, no sink): days 1..N-1 as history, then day N. Twice: with the default settings
("after") and with ``baseline_days: 0`` / ``schedule_days: 0`` on the changed detections ("before").
For day N it prints the attacks caught and missed (an alert of one of the attack's detections on the
attack's principal between its start - 1 h and end + 1 h), the CI and scanner roles that raise an
alert that is not an attack, and the alerts per detection (distinct alert ids: a burst that keeps
growing over several batches is one alert, as the engine sends it once).

Usage::

    python bench/bench_baseline.py [--data bench/data/days] [--config FILE] [--only after|before]

Generates the days first (3 days, seed 7) when the manifest is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

if TYPE_CHECKING:
    from adscore.alerts import Alert

BASELINED = ("discovery.api_burst", "discovery.access_denied_burst", "discovery.registry_enumeration", "discovery.k8s_namespace_sweep")
SCHEDULED = ("snapshot.off_hours", "snapshot.burst")
OFF: dict[str, Any] = {
    "detections": {
        **{d: {"baseline_days": 0} for d in BASELINED},
        **{d: {"schedule_days": 0} for d in SCHEDULED},
    }
}


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def replay(files: list[Path], config: str | None, overrides: dict[str, Any]) -> tuple[list[list[Alert]], float]:
    """Alerts of each file, replayed in order into one engine and SQLite store, and the seconds it took."""
    from itertools import islice

    from adscore.deliveries.files import unwrap_files
    from adscore.engine import paused_gc
    from adscore.runtime import build_engine, run_delivery
    from adscore.settings import load_settings

    per_file: list[list[Alert]] = []
    with tempfile.TemporaryDirectory(prefix="adscore-bench-") as tmp:
        settings = load_settings(config, state=f"sqlite:///{Path(tmp) / 'state.db'}", **overrides)
        engine = build_engine(settings, sinks=[])
        t0 = time.perf_counter()
        for path in files:
            alerts: list[Alert] = []
            items = iter(unwrap_files([str(path)]))
            while True:
                with paused_gc():
                    chunk = list(islice(items, settings.batch_size))
                    if not chunk:
                        break
                    report = run_delivery(chunk, source="bench.baseline", engine=engine).report
                alerts += report.alerts
            # a burst that grows over several batches is reported by each (one alert id): count it once
            per_file.append(list({a.id: a for a in alerts}.values()))
        took = time.perf_counter() - t0
        engine.store.close()
    return per_file, took


def score(alerts: list[Alert], manifest: dict[str, Any]) -> dict[str, Any]:
    """Attacks caught and missed, the CI and scanner roles alerting on something that is not an attack."""
    caught: dict[str, list[str]] = {}
    attack_alerts: set[str] = set()
    for attack in manifest["attacks"]:
        lo = _time(attack["start"]) - timedelta(hours=1)
        hi = _time(attack["end"]) + timedelta(hours=1)
        hits = [
            a
            for a in alerts
            if a.detection in attack["detections"]
            and a.principal.get("id") == attack["principal"]
            and lo <= a.last_seen
            and a.first_seen <= hi
        ]
        if hits:
            caught[attack["id"]] = sorted({a.detection for a in hits})
            attack_alerts |= {a.id for a in hits}
    roles = set(manifest["ci_scanner_roles"])
    noisy: dict[str, Counter[str]] = defaultdict(Counter)
    others: Counter[tuple[str, str]] = Counter()
    for a in alerts:
        pid = str(a.principal.get("id"))
        if a.id in attack_alerts:
            continue
        if pid in roles:
            noisy[pid][a.detection] += 1
        else:
            others[(a.detection, pid.rsplit("/", 1)[-1] or a.entity[:60])] += 1
    return {
        "caught": caught,
        "missed": [a["id"] for a in manifest["attacks"] if a["id"] not in caught],
        "noisy_roles": noisy,
        "others": others,
        "by_detection": Counter(a.detection for a in alerts),
        "alerts": len(alerts),
    }


def show(label: str, result: dict[str, Any], n_attacks: int, n_roles: int, took: float, history: list[int]) -> None:
    print(f"== {label}: {took:.0f} s for the replay; history days raised {history} alerts")
    print(f"attacks caught: {len(result['caught'])}/{n_attacks}   missed: {', '.join(result['missed']) or 'none'}")
    for aid, dets in sorted(result["caught"].items()):
        print(f"  caught {aid:<40} by {', '.join(dets)}")
    noisy = result["noisy_roles"]
    print(f"CI/scanner roles alerting (not an attack): {len(noisy)}/{n_roles}")
    for pid, dets in sorted(noisy.items()):
        print(f"  {pid.rsplit('/', 1)[-1]:<28} {dict(dets)}")
    others = result["others"]
    print(f"other alerts, not an attack: {sum(others.values())}")
    for (det, who), n in sorted(others.items(), key=lambda kv: -kv[1])[:10]:
        print(f"  {det:<36} {who:<40} {n}")
    print(f"alerts on the last day: {result['alerts']}")
    for det, n in sorted(result["by_detection"].items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {det:<36} {n}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("bench/data/days"))
    ap.add_argument("--config", default=None, help="settings file laid under both runs")
    ap.add_argument("--only", choices=("before", "after"), default=None)
    args = ap.parse_args(argv)
    manifest_path = args.data / "manifest.json"
    if not manifest_path.exists():
        import generate_days

        generate_days.main(["--out", str(args.data)])
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    files = [args.data / d["file"] for d in manifest["days"]]
    records = sum(d["records"] for d in manifest["days"])
    print(f"{len(files)} days, {records} records, {len(manifest['attacks'])} attacks on day {len(files)}; "
          f"history: days 1-{len(files) - 1}; SQLite state; config {args.config or 'defaults'}")
    runs = [("before (baselines and schedules off)", OFF), ("after (default settings)", {})]
    for label, overrides in runs:
        if args.only and not label.startswith(args.only):
            continue
        per_file, took = replay(files, args.config, overrides)
        result = score(per_file[-1], manifest)
        show(label, result, len(manifest["attacks"]), len(manifest["ci_scanner_roles"]), took, [len(a) for a in per_file[:-1]])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
