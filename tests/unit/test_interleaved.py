"""Interleaved principals and redelivered batches through the whole engine (parsers, state, dedup).

Discovery counts are per principal: mixing three principals' records one by one never credits one
principal's reads to another, and delivering the same batch three times gives one alert with the
same counts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import zip_longest
from typing import TYPE_CHECKING, Any

import pytest

from adscore.engine import Engine
from adscore.settings import load_settings
from adscore.state import open_store

if TYPE_CHECKING:
    from pathlib import Path

    from adscore.engine import BatchReport

T0 = datetime(2026, 3, 14, 2, 0, tzinfo=UTC)
ACCOUNT = "111122223333"
SERVICES = ["ec2", "iam", "s3", "rds", "kms", "lambda", "sns", "sqs"]


def record(
    user: str, i: int, name: str, source: str, *, at: datetime, error: str | None = None
) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": f"AIDA{user.upper()}",
            "arn": f"arn:aws:iam::{ACCOUNT}:user/{user}",
            "accountId": ACCOUNT,
            "userName": user,
        },
        "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": f"{source}.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.50",
        "userAgent": "aws-cli/2.15.30",
        "eventID": f"{user}-{i:04d}",
        "readOnly": True,
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCOUNT,
    }
    if error:
        rec["errorCode"] = error
    return rec


def stream(user: str, ops: int, services: int, *, denied: int = 0, offset: float = 0) -> list[dict[str, Any]]:
    """``ops`` distinct reads over ``services`` services, then ``denied`` refused calls over 3 services."""
    out = [
        record(user, i, f"Describe{i}", SERVICES[i % services], at=T0 + timedelta(seconds=offset + 7 * i))
        for i in range(ops)
    ]
    out += [
        record(
            user,
            ops + j,
            f"List{j}",
            SERVICES[j % 3],
            at=T0 + timedelta(seconds=offset + 7 * (ops + j)),
            error="AccessDenied",
        )
        for j in range(denied)
    ]
    return out


def interleave(*streams: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mix the streams record by record (a, b, c, a, b, c, ...)."""
    return [r for group in zip_longest(*streams) for r in group if r is not None]


# GIVEN three principals whose records are mixed one by one:
#   burst:  24 distinct reads across 6 services (alerts alone)
#   quiet1: 12 distinct reads across 4 services + 7 denied reads over 3 of them (19 operations: quiet alone)
#   quiet2: 12 distinct reads across 5 services + 7 denied reads over 3 of them (19 operations: quiet alone)
# Together the quiet ones hold 38 operations over 5 services and 14 denials: enough to alert if they were
# ever counted together, or credited to the burst.
BURST = stream("burst", 24, 6, offset=1)
QUIET1 = stream("quiet1", 12, 4, denied=7, offset=2)
QUIET2 = stream("quiet2", 12, 5, denied=7, offset=3)
BATCH = interleave(BURST, QUIET1, QUIET2)


def run(engine: Engine, records: list[dict[str, Any]]) -> BatchReport:
    return engine.run([(f"record[{i}]", r) for i, r in enumerate(records)])


def discovery_alerts(report: BatchReport) -> list[Any]:
    return [a for a in report.alerts if a.detection.startswith("discovery.")]


@pytest.fixture(params=["memory", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'state.db'}"
    settings = load_settings(None, state=url)
    return Engine(settings, open_store(settings.state))


def test_interleaved_burst_is_credited_to_its_principal_only(engine: Engine) -> None:
    report = run(engine, BATCH)
    alerts = discovery_alerts(report)
    # THEN only the bursting principal alerts, with its own counts
    assert [(a.detection, a.principal["id"]) for a in alerts] == [
        ("discovery.api_burst", f"arn:aws:iam::{ACCOUNT}:user/burst")
    ]
    (alert,) = alerts
    assert alert.count == 24
    assert alert.context["distinct_operations"] == 24
    assert alert.context["distinct_services"] == 6
    assert alert.title == f"24 distinct read operations across 6 services in 10 min by burst in {ACCOUNT}"
    assert all(e.startswith("burst-") for e in alert.evidence.event_ids)


def test_each_quiet_principal_has_its_own_counts(engine: Engine) -> None:
    # GIVEN thresholds lowered so that every principal alerts, THEN each alert carries only its own numbers
    settings = load_settings(
        None,
        state="memory://",
        detections={
            "discovery.api_burst": {"threshold": 10, "min_services": 3},
            "discovery.access_denied_burst": {"threshold": 5},
        },
    )
    lowered = Engine(settings, open_store("memory://"))
    report = run(lowered, BATCH)
    burst = {a.principal["name"]: a for a in report.alerts if a.detection == "discovery.api_burst"}
    assert {
        n: (a.context["distinct_operations"], a.context["distinct_services"]) for n, a in burst.items()
    } == {
        "burst": (24, 6),
        "quiet1": (19, 4),  # 12 reads + 7 denied reads are all read operations of quiet1
        "quiet2": (19, 5),
    }
    denied = {
        a.principal["name"]: a.context["denied_calls"]
        for a in report.alerts
        if a.detection == "discovery.access_denied_burst"
    }
    assert denied == {"quiet1": 7, "quiet2": 7}
    for alert in report.alerts:
        name = alert.principal["name"]
        assert all(e.startswith(f"{name}-") for e in alert.evidence.event_ids), alert.title


def test_same_batch_three_times_gives_one_alert_with_the_same_counts(engine: Engine) -> None:
    reports = [run(engine, BATCH) for _ in range(3)]
    first, *again = reports
    # THEN the alert is sent once; redeliveries produce the same alert (same id, count and context) and dedup it
    assert [len(r.sent) for r in reports] == [1, 0, 0]
    assert [r.counts["deduplicated"] for r in again] == [1, 1]
    (alert,) = discovery_alerts(first)
    for r in again:
        (same,) = discovery_alerts(r)
        assert (same.id, same.count, same.context) == (alert.id, alert.count, alert.context)
    # and redelivery writes nothing new: every set already holds its members
    assert all(r.counts["state_writes"] == 0 for r in again)


def test_split_then_redelivered_batches_count_the_same(engine: Engine) -> None:
    # GIVEN the stream delivered in two halves, THEN a full redelivery adds nothing
    half = len(BATCH) // 2
    r1 = run(engine, BATCH[:half])
    r2 = run(engine, BATCH[half:])
    r3 = run(engine, BATCH)
    sent = [a for r in (r1, r2, r3) for a in r.sent if a.detection.startswith("discovery.")]
    assert len(sent) == 1
    assert sent[0].count >= 20
    (last,) = discovery_alerts(r3)
    assert last.id == sent[0].id
    assert last.context["distinct_operations"] == 24
