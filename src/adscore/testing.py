"""A public harness for detection cases: users test their own tuning with it, as we test ours.

A case file (YAML) holds ordered raw records in any supported shape and what
must (or must not) come out::

    description: one principal snapshots six volumes in ten minutes
    settings: {detections: {snapshot.burst: {threshold: 5}}}   # optional, over the defaults
    records: [ {...CloudTrail record...}, ... ]                 # or `files: [relative/paths]`
    expect:                                                     # fire_* cases
      - detection: snapshot.burst
        severity: high
        principal: arn:aws:iam::111122223333:role/ops
        title_contains: "6 snapshots"
        count_at_least: 5
        evidence_contains: [eid-1]
    quiet: [snapshot.burst]                                     # quiet_* cases: these must not alert

``fire_*.yaml`` cases fail when an expected alert is missing; ``quiet_*.yaml``
cases fail when a listed detection (default: the case folder's detection)
alerts. The engine runs with an in-memory state store and no sink.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from adscore.settings import load_settings

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from adscore.alerts import Alert
    from adscore.engine import BatchReport


@dataclass
class CaseResult:
    """The outcome of one case: its report and the list of failed expectations."""

    path: Path
    report: BatchReport
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def load_case(path: Path) -> dict[str, Any]:
    """Read a case file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a case is a mapping")
    return data


def run_records(
    records: list[Any],
    settings: dict[str, Any] | None = None,
    *,
    store_url: str = "memory://",
    config: str | None = None,
    detection_paths: Sequence[str] = (),
    sigma_paths: Sequence[str] = (),
) -> BatchReport:
    """Run every detection (built-in and ``detection_paths``') over ``records`` (one batch) and return the report.

    ``config`` is a settings file the case's own ``settings`` are laid over.
    """
    from adscore.engine import Engine
    from adscore.state import open_store

    overrides = dict(settings or {})
    if detection_paths:
        overrides["detection_paths"] = tuple(detection_paths)
    if sigma_paths:
        overrides["sigma_paths"] = tuple(sigma_paths)
    s = load_settings(config, **overrides, state=store_url)
    engine = Engine(s, open_store(s.state))
    return engine.run([(f"record[{i}]", r) for i, r in enumerate(records)])


def _match(alert: Alert, exp: dict[str, Any]) -> list[str]:
    why = []
    if alert.detection != exp["detection"]:
        return ["detection"]
    if "severity" in exp and alert.severity != exp["severity"]:
        why.append(f"severity {alert.severity} != {exp['severity']}")
    if "principal" in exp and alert.principal.get("id") != exp["principal"]:
        why.append(f"principal {alert.principal.get('id')} != {exp['principal']}")
    if "entity" in exp and alert.entity != exp["entity"]:
        why.append(f"entity {alert.entity} != {exp['entity']}")
    if "account" in exp and alert.account != exp["account"]:
        why.append(f"account {alert.account} != {exp['account']}")
    if "title_contains" in exp and exp["title_contains"] not in alert.title:
        why.append(f"title {alert.title!r} lacks {exp['title_contains']!r}")
    if "summary_contains" in exp and exp["summary_contains"] not in alert.summary:
        why.append(f"summary {alert.summary!r} lacks {exp['summary_contains']!r}")
    if "count_at_least" in exp and alert.count < exp["count_at_least"]:
        why.append(f"count {alert.count} < {exp['count_at_least']}")
    if "count" in exp and alert.count != exp["count"]:
        why.append(f"count {alert.count} != {exp['count']}")
    for eid in exp.get("evidence_contains", []):
        if eid not in alert.evidence.event_ids:
            why.append(f"evidence lacks {eid}")
    for k, v in (exp.get("context") or {}).items():
        if alert.context.get(k) != v:
            why.append(f"context[{k}] {alert.context.get(k)!r} != {v!r}")
    return why


def case_records(path: Path, case: dict[str, Any] | None = None, root: Path | None = None) -> list[Any]:
    """The raw records of a case: its inline ``records``, then those of its ``files``."""
    case = case if case is not None else load_case(path)
    records: list[Any] = list(case.get("records") or [])
    for rel in case.get("files") or []:
        from adscore.sources.files import read_inputs

        base = root or path.parent
        for item in read_inputs([str(base / rel)]):
            if isinstance(item, tuple):
                records.append(item[1])
    return records


def run_case(
    path: Path,
    root: Path | None = None,
    *,
    config: str | None = None,
    detection_paths: Sequence[str] = (),
    sigma_paths: Sequence[str] = (),
) -> CaseResult:
    """Run one case file and check its expectations (``config`` and ``detection_paths`` as :func:`run_records`)."""
    case = load_case(path)
    records = case_records(path, case, root)
    report = run_records(
        records, case.get("settings"), config=config, detection_paths=detection_paths, sigma_paths=sigma_paths
    )
    result = CaseResult(path, report)
    for err in report.errors:
        if not case.get("allow_errors"):
            result.problems.append(f"record error: {err.location}: {err.reason}")
    for exp in case.get("expect") or []:
        candidates = [a for a in report.alerts if a.detection == exp["detection"]]
        if not candidates:
            fired = sorted({a.detection for a in report.alerts})
            result.problems.append(f"expected {exp['detection']} to fire; fired: {fired}")
            continue
        mismatches = [_match(a, exp) for a in candidates]
        if not any(not m for m in mismatches):
            result.problems.append(f"{exp['detection']} fired but did not match: {mismatches[0]}")
    quiet = case.get("quiet")
    if quiet is None and path.name.startswith("quiet_"):
        quiet = [path.parent.name.replace("_", ".", 1)]
    for det in quiet or []:
        loud = [a for a in report.alerts if a.detection == det]
        if loud:
            result.problems.append(f"{det} must stay quiet but alerted: {loud[0].title!r}")
    return result


def case_paths(root: Path) -> list[Path]:
    """Every ``fire_*.yaml`` and ``quiet_*.yaml`` under ``root`` (sorted)."""
    return sorted(p for p in root.rglob("*.yaml") if p.name.startswith(("fire_", "quiet_")))
