"""``adscore tune`` over several days of CloudTrail: what its proposals remove, what they keep, how long it takes.

Usage::

    python bench/bench_tune.py [--days DIR] [--truth FILE] [--config FILE] [--records 200000] [--noise GLOB ...]

With ``--days DIR`` (one or more CloudTrail files, e.g. one per day of a multi-day generator, and
``--manifest`` for ``generate_days.py``'s list of attacks and CI / scanner roles), it runs
``adscore tune --write`` over them, then ``adscore replay`` without and with the written proposal,
and prints: records, the time tune and replay take, alerts per detection before and after, the
proposals by kind, the attack alerts kept (alerts whose evidence names an event id listed in
``--truth``, one per line) and, per ``--noise`` glob (principal ids, e.g. ``*role/ci-*``), the
alerts before and after.

Without ``--days`` it writes three days from ``generate_cloudtrail.py`` (seeds 7, 8, 9, the same
principals each day, shifted by one day each) and keeps its two embedded scenarios (the jenkins
discovery sweep, the snapshot-then-share) on the third day only: those are the attacks, and
their event ids are the truth.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate_cloudtrail as gen

ADSCORE = str(Path(sys.executable).with_name("adscore"))


def _special_ids(seed: int) -> set[str]:
    """Event ids of the generator's two embedded scenarios for ``seed`` (drawn first from its rng)."""
    rng = random.Random(seed)
    principals = gen._principals()
    sweeper = next(p for p in principals if p.name == "jenkins")
    sharer = next(p for p in principals if p.name == "alice.admin")
    return {r["eventID"] for r in gen._discovery_sweep(rng, sweeper) + gen._snapshot_then_share(rng, sharer)}


def _shift(ts: str, days: int) -> str:
    t = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ") + timedelta(days=days)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def write_days(folder: Path, records: int) -> tuple[list[Path], set[str]]:
    """Three days of the generator's mix; the embedded scenarios only on the last. Returns files and truth."""
    folder.mkdir(parents=True, exist_ok=True)
    paths, truth = [], set()
    for day, seed in enumerate((7, 8, 9)):
        special = _special_ids(seed)
        path = folder / f"day{day + 1}.jsonl"
        with path.open("wb") as f:
            for rec in gen.generate(records, seed):
                if rec["eventID"] in special:
                    if day < 2:
                        continue
                    truth.add(f"{rec['eventID']}")
                rec["eventTime"] = _shift(rec["eventTime"], day)
                rec["eventID"] = f"d{day}-{rec['eventID']}"
                f.write(orjson.dumps(rec) + b"\n")
        paths.append(path)
    return paths, {f"d2-{t}" for t in truth}


def _run(args: list[str]) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.perf_counter()
    res = subprocess.run([ADSCORE, *args], capture_output=True, text=True, check=False)
    return res, time.perf_counter() - start


def _replay(paths: list[str], config: str | None) -> tuple[list[dict[str, Any]], float]:
    res, secs = _run(["replay", "--output", "jsonl", "--no-progress", *(["--config", config] if config else []), *paths])
    if res.returncode != 0:
        sys.exit(f"replay failed: {res.stderr[-2000:]}")
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()], secs


def _caught(attack: dict[str, Any], alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The alerts an attack of the manifest raised: its principal, one of its detections, within its hour."""
    start = datetime.fromisoformat(attack["start"].replace("Z", "+00:00")) - timedelta(hours=1)
    end = datetime.fromisoformat(attack["end"].replace("Z", "+00:00")) + timedelta(hours=1)
    return [
        a for a in alerts
        if a["principal"]["id"] == attack["principal"] and a["detection"] in attack["detections"]
        and start <= datetime.fromisoformat(a["first_seen"].replace("Z", "+00:00")) <= end
    ]  # fmt: skip


def _manifest_figures(
    manifest: dict[str, Any], before: list[dict[str, Any]], after: list[dict[str, Any]]
) -> set[str]:
    """Print the attacks caught and the CI / scanner roles alerting; return the ids of the attacks' alerts."""
    attacks = manifest["attacks"]
    attack_ids = {a["id"] for atk in attacks for alerts in (before, after) for a in _caught(atk, alerts)}
    print(f"attacks caught: before {sum(bool(_caught(a, before)) for a in attacks)} of {len(attacks)}, "
          f"after {sum(bool(_caught(a, after)) for a in attacks)} of {len(attacks)}")
    for atk in attacks:
        b, a = _caught(atk, before), _caught(atk, after)
        print(f"  {'kept' if a else ('LOST' if b else 'none')}  {atk['id']:<40} {len(b)} -> {len(a)}")
    roles = set(manifest["ci_scanner_roles"])
    for label, alerts in (("before", before), ("after", after)):
        noise = [x for x in alerts if x["principal"]["id"] in roles and x["id"] not in attack_ids]
        who = Counter(x["principal"]["id"].rsplit("/", 1)[-1] for x in noise)
        print(f"CI/scanner alerts (not attacks) {label}: {len(noise)} from {len(who)} of {len(roles)} roles"
              + (f" ({', '.join(f'{k}={v}' for k, v in who.most_common(6))})" if who else ""))
    return attack_ids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=Path, default=None, help="folder (or file) of CloudTrail logs over several days")
    ap.add_argument("--truth", type=Path, default=None, help="event ids of the attacks, one per line")
    ap.add_argument("--manifest", type=Path, default=None,
                    help="generate_days.py's manifest.json: its attacks and its CI and scanner roles")
    ap.add_argument("--config", default=None, help="settings the run starts from (tune's proposal is added)")
    ap.add_argument("--records", type=int, default=200_000, help="records per generated day (without --days)")
    ap.add_argument("--noise", action="append", default=[], help="principal id glob of a known noisy identity")
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="bench-tune-")
    if args.days is None:
        folder = Path(__file__).parent / "data" / f"tune-3days-{args.records}"
        print(f"writing 3 days of {args.records} records into {folder} ...", file=sys.stderr)
        files, truth = write_days(folder, args.records)  # deterministic: the same bytes every time
        paths = [str(p) for p in files]
        noise = args.noise or ["*role/github-actions-deploy", "*role/terraform-ci", "*role/packer-builder",
                               "*jenkins*", "*scanner*", "*prowler*", "*security-audit*"]
    else:
        paths = [str(args.days)]
        truth = set(args.truth.read_text().split()) if args.truth else set()
        noise = args.noise
    proposal = Path(tmp.name) / "proposal.yaml"
    base = ["--config", args.config] if args.config else []
    res, tune_secs = _run(["tune", "--json", "--no-progress", "--write", str(proposal), *base, *paths])
    if res.returncode != 0:
        sys.exit(f"tune failed: {res.stderr[-2000:]}")
    report = json.loads(res.stdout)
    tuned = proposal
    if args.config:  # the user's settings plus the proposal's suppressions
        import yaml

        mine = yaml.safe_load(Path(args.config).read_text()) or {}
        add = yaml.safe_load(proposal.read_text()) or {}
        mine["suppressions"] = list(mine.get("suppressions") or []) + list(add.get("suppressions") or [])
        if add.get("calendar"):
            mine.setdefault("calendar", {}).setdefault("accounts", {}).update(add["calendar"]["accounts"])
        tuned = Path(tmp.name) / "tuned.yaml"
        tuned.write_text(yaml.safe_dump(mine))
    before, replay_secs = _replay(paths, args.config)
    after, _ = _replay(paths, str(tuned))
    records = int(res.stderr.split(" records in the period")[0].rsplit(" ", 1)[-1])

    print(f"records: {records:,} over {len(report['days'])} days ({', '.join(report['days'])})")
    print(f"tune: {tune_secs:.1f} s ({records / tune_secs:,.0f} rec/s); replay: {replay_secs:.1f} s "
          f"({records / replay_secs:,.0f} rec/s)")
    kinds = Counter(p["kind"] for p in report["proposals"])
    print(f"proposals: {dict(kinds)}; held back: {len(report['held'])}")
    for h in report["held"]:
        print(f"  held: {h[:160]}")
    print(f"alerts: before {len(before)}, after {len(after)}")
    dets = sorted({a["detection"] for a in before + after})
    b, a = Counter(x["detection"] for x in before), Counter(x["detection"] for x in after)
    for d in dets:
        print(f"  {d:<34} {b[d]:>5} -> {a[d]:>5}")

    def attacks(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [x for x in alerts if truth & set(x["evidence"]["event_ids"])]

    if truth:
        ab, aa = attacks(before), attacks(after)
        kept = {x["id"] for x in aa}
        print(f"attack alerts: before {len(ab)}, after {len(aa)} (kept {sum(x['id'] in kept for x in ab)} of {len(ab)})")
        for x in ab:
            print(f"  {'kept ' if x['id'] in kept else 'LOST '} {x['detection']:<34} {x['principal']['id'][:80]}")
    for glob in noise:
        nb = [x for x in before if fnmatch.fnmatchcase(x["principal"]["id"], glob)]
        na = [x for x in after if fnmatch.fnmatchcase(x["principal"]["id"], glob)]
        if nb or na:
            print(f"noise {glob}: before {len(nb)}, after {len(na)}")
    attack_ids: set[str] = set()
    if args.manifest:
        attack_ids = _manifest_figures(json.loads(args.manifest.read_text()), before, after)
    remaining = Counter(
        x["principal"]["id"] for x in after if x["id"] not in attack_ids and not truth & set(x["evidence"]["event_ids"])
    )
    print(f"principals still alerting (not attacks): {len(remaining)}")
    for pid, n in remaining.most_common(10):
        print(f"  {n:>4}  {pid[:100]}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
