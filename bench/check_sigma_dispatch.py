"""Check the Sigma dispatcher on a rule corpus: every rule that matches a record must be among the ones
the dispatcher picks for it, and say how much it saves.

Run: ``.venv/bin/python bench/check_sigma_dispatch.py --sigma DIR [--records FILE.jsonl]`` (default: the
100,000 records of ``bench_sigma.py``, ``bench/data/cloudtrail-100000.jsonl``). ``DIR`` is any folder of
Sigma rules, e.g. SigmaHQ's ``rules/cloud``. For each log source it prints the rules indexed and
always evaluated, and over the records the rule evaluations without and with dispatch, the matches, and
any record where dispatch left out a matching rule (exit 1 then).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from adscore.sigma import _compile_rule, _detection_id
from adscore.sigma.dispatch import Dispatcher

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    from sigma.collection import SigmaCollection
    from sigma.rule import SigmaRule

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sigma", type=Path, required=True)
    parser.add_argument("--records", type=Path, default=ROOT / "bench" / "data" / "cloudtrail-100000.jsonl")
    args = parser.parse_args()
    compiled = []
    for path in sorted(p for p in args.sigma.rglob("*") if p.suffix in (".yml", ".yaml")):
        for rule in SigmaCollection.from_yaml(path.read_text(encoding="utf-8"), collect_errors=True).rules:
            if isinstance(rule, SigmaRule) and not rule.errors:
                try:
                    compiled.append(_compile_rule(rule))
                except Exception:  # unsupported: `adscore sigma check` says why
                    continue
    by_source: dict[str, list] = {}
    for c in compiled:
        by_source.setdefault(c.source_name, []).append(c)
    dispatchers = {}
    for name, rules in by_source.items():
        d = dispatchers[name] = Dispatcher(rules[0].sources)
        for c in rules:
            d.add(_detection_id(c.rule), c.trees)
        d.build()
        print(f"{name}: {len(rules)} rules, {len(rules) - len(d.always)} indexed on {len(d.index)} fields, {len(d.always)} always")
    rules = by_source.get("aws/cloudtrail", [])
    d = dispatchers.get("aws/cloudtrail")
    if d is None:
        print("no CloudTrail rules: nothing to replay")
        return 0
    n = full = picked = matches = missed = 0
    with args.records.open("rb") as fh:
        for line in fh:
            record = orjson.loads(line)
            n += 1
            chosen = d.select(record)
            full += len(rules)
            picked += len(chosen)
            for c in rules:
                if c.match(record):
                    matches += 1
                    if _detection_id(c.rule) not in chosen:
                        missed += 1
                        print(f"MISSED {_detection_id(c.rule)} on {line[:200]!r}")
    print(f"{n:,} records: {full:,} rule evaluations without dispatch, {picked:,} with "
          f"({picked / max(n, 1):.2f} per record), {matches:,} matches, {missed} left out")  # fmt: skip
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
