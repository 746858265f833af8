"""Parked sequence halves and canonical member parts: what is stored reads back the same way."""

from __future__ import annotations

from datetime import UTC, datetime

from adscore.events import Event, Principal, Resource, park_event, unpark_event
from adscore.state.base import MAX_MEMBER_LEN, fit_member, fit_part

T0 = datetime(2026, 3, 14, 2, 0, tzinfo=UTC)


def restore(**changes: object) -> Event:
    fields: dict[str, object] = {
        "event_id": "ev-1",
        "cloud": "aws",
        "source": "cloudtrail",
        "time": T0,
        "operation": "ec2:CreateVolume",
        "service": "ec2",
        "principal": Principal(id="arn:aws:iam::1:user/mallory", type="user", name="mallory", account="1"),
        "action": "snapshot.restore",
        "account": "1",
        "region": "eu-west-1",
        "resources": (Resource("snapshot", "snap-1", "source"), Resource("volume", "vol-9", "created")),
        "targets": ("2",),
    }
    fields.update(changes)
    return Event(**fields)  # type: ignore[arg-type]


def test_a_parked_event_reads_back_without_its_raw_record() -> None:
    event = restore(raw={"big": "x" * 10_000})
    back = unpark_event(park_event(event))
    assert back == event  # raw is not compared, and not kept
    assert back is not None and back.raw == {}


def test_a_huge_event_stays_under_the_value_limit_and_readable() -> None:
    many = tuple(Resource("snapshot", "s" * 5_000 + str(i), "source") for i in range(50))
    text = park_event(restore(resources=many, targets=tuple("t" * 900 for _ in range(40)), operation="o" * 9_000))
    assert len(text) <= 8_000
    back = unpark_event(text)
    assert back is not None and back.event_id == "ev-1" and back.resources


def test_unreadable_parked_text_is_none() -> None:
    assert unpark_event(None) is None
    assert unpark_event("{not json") is None
    assert unpark_event('{"event_id": 1}') is None


def test_parts_are_canonical_and_keep_a_joined_member_storable() -> None:
    assert fit_part("iam") == "iam"
    long = fit_part("n" * 300)
    assert long == fit_part("n" * 300) and long.startswith("sha256:") and len(long) <= 64
    assert fit_part("a\x1fb").startswith("sha256:")  # a separator never survives inside a part
    member = "\x1f".join((fit_part("k8s/secrets"), fit_part("n" * 300), fit_part("e" * 1_000)))
    assert len(member) <= MAX_MEMBER_LEN
    assert fit_member(member) == member  # stored as written, so it can be split again


def test_a_lone_surrogate_in_a_parked_event_never_fails_its_record() -> None:
    import json
    from pathlib import Path

    from adscore.testing import run_records

    golden = Path(__file__).resolve().parents[1] / "golden" / "aws_cloudtrail"
    for name in ("modify_snapshot_attribute_share", "create_snapshot_assumed_role", "copy_snapshot"):
        record = json.loads((golden / f"{name}.input.json").read_text())
        record["userIdentity"]["invokedBy"] = "evil\ud800.example"  # attacker text reaching a parked half
        report = run_records([record])
        assert not report.failed and not report.errors, (name, report.failed)
