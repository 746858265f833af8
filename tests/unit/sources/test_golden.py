"""Golden files: every tests/golden/<family>/<case>.input.json -> <case>.events.json.

The input is read through the product path (``read_inputs`` + ``parse_records``).
The expectation lists ``event.to_dict()`` for each event and ``{"error": "<reason
substring>"}`` for each RecordError, in order.

Regenerate with ``ADSCORE_REGEN_GOLDEN=1 pytest tests/unit/sources/test_golden.py``
and review the diff by eye: an error expectation whose substring still matches is
kept as written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from adscore.events import RecordError
from adscore.sources import parse_records
from adscore.sources.files import read_inputs

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
REGEN = os.environ.get("ADSCORE_REGEN_GOLDEN") == "1"
CASES = sorted(GOLDEN.glob("*/*.input.json"))


def _actual(path: Path) -> list[Any]:
    return [
        {"error": r.reason} if isinstance(r, RecordError) else r.to_dict()
        for r in parse_records(read_inputs([str(path)]))
    ]


def _matches(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict) and set(expected) == {"error"}:
        return isinstance(actual, dict) and set(actual) == {"error"} and expected["error"] in actual["error"]
    return bool(expected == actual)


def _merge(old: list[Any] | None, new: list[Any]) -> list[Any]:
    """Keep hand-shortened error substrings that still match."""
    if old is None or len(old) != len(new):
        return new
    return [o if ("error" in n and _matches(o, n)) else n for o, n in zip(old, new, strict=True)]


def test_golden_cases_exist() -> None:
    families = {p.parent.name for p in CASES}
    assert {"k8s_audit", "docker"} <= families
    for case in CASES:
        expected = case.with_name(case.name.replace(".input.json", ".events.json"))
        assert expected.exists() or REGEN, f"{expected} missing: run with ADSCORE_REGEN_GOLDEN=1 and review"


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{p.parent.name}/{p.name.removesuffix('.input.json')}" for p in CASES]
)
def test_golden(case: Path) -> None:
    expected_path = case.with_name(case.name.replace(".input.json", ".events.json"))
    actual = _actual(case)
    old = json.loads(expected_path.read_text(encoding="utf-8")) if expected_path.exists() else None
    if REGEN:
        merged = _merge(old, actual)
        expected_path.write_text(json.dumps(merged, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return
    if old is None:
        pytest.fail(f"{expected_path} missing: run with ADSCORE_REGEN_GOLDEN=1 and review it")
    assert len(actual) == len(old), f"{case.name}: {len(actual)} results, expected {len(old)}: {actual}"
    for i, (exp, act) in enumerate(zip(old, actual, strict=True)):
        assert _matches(exp, act), f"{case.name} result {i}:\nexpected {exp}\nactual   {act}"
