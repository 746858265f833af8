"""Delivery order and batching never decide which alerts are raised.

Late and out-of-order delivery (redrives, multi-region archives, a backfill next to live
traffic) hands the engine the same records in any order and any batch sizes. Every fire case
and the bundled examples, replayed in random permutations and random batch splits, raise every
(detection, principal) the time-sorted replay raises: a restore before its creation, a snapshot
before the discovery alert it follows, a principal's first snapshot after its later ones.

One thing order can add, never remove: a "first time" detection (``snapshot.new_principal``,
``discovery.unusual_services``) judges an event against what came before it. When a principal's
later event is delivered before its earlier one and past the learning period, the later event
looks new until the earlier one arrives, and a sent alert cannot be taken back. Those two may
raise an extra alert; nothing else may.

The same holds, across days only, for the detections judged against a principal's own history
(:mod:`adscore.baseline`: the discovery bursts and the snapshot schedules). A window is judged
against the UTC days before its own, so within one day nothing changes; a day delivered before
the days it learns from is judged on less history and may raise an extra alert (never miss one).
Records that span one UTC day get no such allowance.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from adscore.engine import Engine
from adscore.settings import load_settings
from adscore.sources.files import read_inputs
from adscore.state import open_store
from adscore.testing import case_paths, case_records, load_case

if TYPE_CHECKING:
    from collections.abc import Sequence

    from adscore.alerts import Alert

ROOT = Path(__file__).resolve().parents[2]
FIRE = [p for p in case_paths(ROOT / "tests" / "cases") if p.name.startswith("fire_")]
EXAMPLES = sorted((ROOT / "examples").glob("*/*.jsonl"))
#: Judged against what came before an event: a later event delivered first may look new (see above).
FIRST_TIME = frozenset({"snapshot.new_principal", "discovery.unusual_services"})
#: Judged against the principal's days before the event's own (adscore.baseline): extra only across days.
BASELINED = frozenset(
    {
        "discovery.api_burst",
        "discovery.access_denied_burst",
        "discovery.registry_enumeration",
        "discovery.k8s_namespace_sweep",
        "snapshot.off_hours",
        "snapshot.burst",
    }
)

Alerts = set[tuple[str, str]]


def subject(alert: Alert) -> str:
    """Who or what an alert is about: its principal, or the resource a per-resource alert counts.

    A per-resource count (``snapshot.burst`` of one volume by several principals) names the
    principal whose event crossed the threshold, which depends on the order; the resource does not.
    """
    return alert.entity if alert.entity.startswith("source|") else str(alert.principal.get("id"))


def replay(records: Sequence[Any], config: dict[str, Any] | None, sizes: Sequence[int]) -> Alerts:
    """Run ``records`` through one engine and store, in consecutive batches of ``sizes``."""
    s = load_settings(None, **(config or {}), state="memory://")
    engine = Engine(s, open_store(s.state))
    alerts: Alerts = set()
    start = 0
    for size in sizes:
        batch = records[start : start + size]
        report = engine.run([(f"record[{start + i}]", r) for i, r in enumerate(batch)])
        assert not report.errors, report.errors
        alerts |= {(a.detection, subject(a)) for a in report.alerts}
        start += size
    assert start >= len(records)
    return alerts


def utc_days(records: Sequence[Any]) -> int:
    """How many UTC days the records' times span (CloudTrail ``eventTime``; others count as one day)."""
    days = {str(r.get("eventTime", ""))[:10] for r in records if isinstance(r, dict) and r.get("eventTime")}
    return max(1, len(days))


def assert_same_alerts(shuffled: Alerts, in_order: Alerts, *, days: int = 1) -> None:
    assert in_order, "the sorted replay raised nothing"
    missed = in_order - shuffled
    assert not missed, f"missed when delivered out of order: {sorted(missed)}"
    allowed = FIRST_TIME | BASELINED if days > 1 else FIRST_TIME
    extra = {a for a in shuffled - in_order if a[0] not in allowed}
    assert not extra, f"raised only when delivered out of order: {sorted(extra)}"


@st.composite
def deliveries(draw: st.DrawFn, n: int) -> tuple[list[int], list[int]]:
    """A permutation of ``n`` records and batch sizes that cover them."""
    order = draw(st.permutations(range(n)))
    sizes: list[int] = []
    while sum(sizes) < n:
        sizes.append(draw(st.integers(min_value=1, max_value=max(1, n // 2))))
    return list(order), sizes


@pytest.mark.parametrize("path", FIRE, ids=[f"{p.parent.name}/{p.stem}" for p in FIRE])
@settings(max_examples=8, deadline=None, phases=(Phase.explicit, Phase.generate), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fire_case_alerts_whatever_the_order_and_batching(path: Path, data: st.DataObject) -> None:
    # GIVEN a fire case and its alerts when replayed sorted, as one batch
    case = load_case(path)
    records = case_records(path, case)
    in_order = replay(records, case.get("settings"), [len(records)])
    # WHEN its records arrive in a random order and random batches
    order, sizes = data.draw(deliveries(len(records)))
    shuffled = replay([records[i] for i in order], case.get("settings"), sizes)
    # THEN nothing is missed and nothing but a first-time (or, across days, a baseline) verdict is added
    assert_same_alerts(shuffled, in_order, days=utc_days(records))


@pytest.mark.parametrize("path", FIRE, ids=[f"{p.parent.name}/{p.stem}" for p in FIRE])
def test_fire_case_alerts_when_delivered_backwards_one_record_at_a_time(path: Path) -> None:
    # the latest record first, each in its own batch: every sequence arrives second half first
    case = load_case(path)
    records = case_records(path, case)
    in_order = replay(records, case.get("settings"), [len(records)])
    backwards = replay(records[::-1], case.get("settings"), [1] * len(records))
    assert_same_alerts(backwards, in_order, days=utc_days(records))


def example_records() -> list[Any]:
    return [item[1] for item in read_inputs([str(p) for p in EXAMPLES]) if isinstance(item, tuple)]


@pytest.mark.parametrize("seed", range(5))
def test_examples_shuffled_in_batches_of_ten_raise_the_sorted_alerts(seed: int) -> None:
    config = yaml.safe_load((ROOT / "examples" / "config.yaml").read_text(encoding="utf-8"))
    records = example_records()
    in_order = replay(records, config, [len(records)])
    shuffled = list(records)
    random.Random(seed).shuffle(shuffled)
    got = replay(shuffled, config, [10] * (len(shuffled) // 10 + 1))
    assert_same_alerts(got, in_order)  # strict: the examples raise the sorted alerts in any order, baselines included
