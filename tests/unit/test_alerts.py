"""Alert model: deterministic ids, capping of hostile log values, fitting a byte budget."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from adscore.alerts import (
    CONTEXT_STR_LIMIT,
    EVIDENCE_STR_LIMIT,
    ID_LIMIT,
    MAX_EVENT_IDS,
    MAX_EVIDENCE_RECORDS,
    MAX_RESOURCES,
    NAME_LIMIT,
    RECORD_MAX_DEPTH,
    RECORD_MAX_ITEMS,
    SEVERITY_ORDER,
    SUMMARY_LIMIT,
    Alert,
    alert_id,
    make_alert,
    max_severity,
)
from adscore.events import Principal, Resource

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "samples"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
# Anything a terminal, chat client or JSON encoder could trip on.
FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def build(**overrides: Any) -> Alert:
    fields: dict[str, Any] = {
        "detection": "snapshot.shared_external",
        "entity": "arn:aws:iam::111122223333:user/alice",
        "window_start": T0,
        "technique": "T1578.001",
        "technique_name": "Create Snapshot",
        "tactic": "Defense Evasion",
        "severity": "high",
        "title": "Snapshot shared outside the organization",
        "summary": "alice shared snap-1 with 999988887777",
        "principal": Principal(
            id="arn:aws:iam::111122223333:user/alice", type="user", name="alice", account="111122223333"
        ),
        "cloud": "aws",
        "account": "111122223333",
        "region": "us-east-1",
        "resources": [Resource("ec2.snapshot", "snap-1", "target")],
        "first_seen": T0,
        "last_seen": T0 + timedelta(minutes=3),
        "count": 2,
        "event_ids": ["e-1", "e-2"],
        "records": [{"eventName": "ModifySnapshotAttribute", "eventID": "e-1"}],
        "response": ["Revoke the share", "Find who else the snapshot was shared with"],
        "context": {"targets": ["999988887777"]},
    }
    fields.update(overrides)
    return make_alert(**fields)


def all_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *all_strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in all_strings(v)]
    return []


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


# --- id ------------------------------------------------------------------------------


def test_alert_id_is_sha256_prefix_of_detection_entity_window() -> None:
    expected = hashlib.sha256(b"snapshot.shared_external\x1fp\x1f2024-05-01T12:00:00Z").hexdigest()[:32]
    assert alert_id("snapshot.shared_external", "p", T0) == expected


def test_alert_id_is_the_same_for_the_same_instant_in_any_timezone() -> None:
    naive = datetime(2024, 5, 1, 12, 0)
    plus2 = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert alert_id("d", "p", naive) == alert_id("d", "p", plus2) == alert_id("d", "p", T0)


@pytest.mark.parametrize(
    ("detection", "entity", "window"),
    [("d2", "p", T0), ("d", "p2", T0), ("d", "p", T0 + timedelta(seconds=1)), ("d\x1fp", "", T0)],
)
def test_alert_id_changes_with_any_part(detection: str, entity: str, window: datetime) -> None:
    assert alert_id(detection, entity, window) != alert_id("d", "p", T0)


def test_make_alert_uses_the_uncapped_entity_for_the_id() -> None:
    long_a, long_b = "p" * 5000 + "a", "p" * 5000 + "b"
    a, b = build(entity=long_a), build(entity=long_b)
    assert a.id == alert_id("snapshot.shared_external", long_a, T0)
    assert a.id != b.id
    assert len(a.entity) <= ID_LIMIT


def test_same_inputs_give_equal_alerts_and_json() -> None:
    assert build() == build()
    assert build().to_json() == build().to_json()


# --- JSON ------------------------------------------------------------------------------


def test_json_has_utc_z_times_and_round_trips() -> None:
    # GIVEN times in another zone and a naive window start
    alert = build(
        first_seen=datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
        window_start=datetime(2024, 5, 1, 12, 0),
    )
    doc = json.loads(alert.to_json())
    assert doc["first_seen"] == "2024-05-01T12:00:00Z"
    assert doc["last_seen"] == "2024-05-01T12:03:00Z"
    assert doc["window_start"] == "2024-05-01T12:00:00Z"
    assert doc["principal"] == {
        "id": "arn:aws:iam::111122223333:user/alice",
        "type": "user",
        "name": "alice",
        "account": "111122223333",
    }
    assert doc["resources"] == [{"type": "ec2.snapshot", "id": "snap-1", "role": "target"}]
    assert doc["evidence"] == {
        "event_ids": ["e-1", "e-2"],
        "records": [{"eventName": "ModifySnapshotAttribute", "eventID": "e-1"}],
        "truncated": False,
    }
    assert Alert.model_validate_json(alert.to_json()) == alert


def test_alert_is_frozen() -> None:
    alert = build()
    with pytest.raises(ValidationError):
        alert.title = "changed"  # type: ignore[misc]


def test_unknown_severity_is_rejected() -> None:
    with pytest.raises(ValidationError):
        build(severity="urgent")


# --- capping hostile values ------------------------------------------------------------------


def test_ten_megabyte_principal_name_is_capped() -> None:
    huge = "A" * 10_000_000
    alert = build(
        principal={"id": huge, "type": huge, "name": huge, "account": huge}, title=huge, summary=huge
    )
    assert len(alert.principal["name"] or "") == NAME_LIMIT
    assert (alert.principal["name"] or "").endswith("…")
    assert len(alert.principal["id"] or "") == ID_LIMIT
    assert len(alert.title) == NAME_LIMIT
    assert len(alert.summary) == SUMMARY_LIMIT
    assert len(alert.to_json()) < 20_000


def test_control_characters_ansi_bidi_and_surrogates_are_removed() -> None:
    hostile = "ok\x00nul\x07bell\x1b[31mred\x1b[0m\x1b]8;;http://evil\x07link\x1b]8;;\x07\u202eevil\ud800\x9bcsi\r\nnext"
    alert = build(
        title=hostile,
        summary=hostile,
        principal={"id": hostile, "name": hostile},
        resources=[{"type": hostile, "id": hostile}],
        context={"cmd": hostile, hostile: 1},
        records=[{"userAgent": hostile, "nested": [{"k": hostile}]}],
        event_ids=[hostile],
    )
    strings = all_strings(json.loads(alert.to_json()))
    assert strings, "the alert has strings"
    for s in strings:
        assert not FORBIDDEN.search(s), repr(s)
        assert "[31m" not in s and "8;;" not in s  # ANSI sequences removed whole
    assert alert.title == "ok\ufffdnul\ufffdbellredlink\ufffdevil\ufffd\ufffdcsi  next"
    assert alert.summary.endswith("csi\nnext")  # the summary keeps line breaks


def test_nested_evidence_is_capped_in_depth_items_and_length() -> None:
    # GIVEN a record nested 50 deep, with a 10,000-item list, a long string, a 70-bit int and a set
    deep: dict[str, Any] = {"leaf": "x"}
    for i in range(50):
        deep = {f"level{i}": deep}
    record = {
        "deep": deep,
        "many": list(range(10_000)),
        "wide": {f"k{i}": i for i in range(1000)},
        "long": "y" * 100_000,
        "big": 2**70,
        "set": {"b", "a"},
        1: "int key",
    }
    alert = build(records=[record])
    (cleaned,) = alert.evidence.records
    assert depth(cleaned) <= RECORD_MAX_DEPTH
    assert len(cleaned["many"]) == RECORD_MAX_ITEMS
    assert cleaned["many"][-1] == f"… {10_000 - RECORD_MAX_ITEMS + 1} more"
    assert len(cleaned["wide"]) == RECORD_MAX_ITEMS
    assert len(cleaned["long"]) == EVIDENCE_STR_LIMIT
    assert cleaned["big"] == str(2**70)
    assert cleaned["set"] == ["a", "b"]
    assert cleaned["1"] == "int key"
    assert alert.evidence.truncated is True
    orjson.loads(alert.to_json())  # serializable


def test_evidence_lists_resources_and_context_are_capped() -> None:
    alert = build(
        event_ids=[f"e-{i}" for i in range(MAX_EVENT_IDS + 50)],
        records=[{"i": i} for i in range(MAX_EVIDENCE_RECORDS + 3)],
        resources=[Resource("ec2.snapshot", f"snap-{i}") for i in range(MAX_RESOURCES + 10)],
        context={"services": ["s" * 5000] * 500},
        response=["step"] * 100,
    )
    assert alert.evidence.event_ids[-1] == f"e-{MAX_EVENT_IDS - 1}"
    assert len(alert.evidence.event_ids) == MAX_EVENT_IDS
    assert [r["i"] for r in alert.evidence.records] == list(range(MAX_EVIDENCE_RECORDS))
    assert alert.evidence.truncated is True
    assert len(alert.resources) == MAX_RESOURCES
    assert all(len(s) <= CONTEXT_STR_LIMIT for s in alert.context["services"])
    assert len(alert.context["services"]) < 500
    assert len(alert.response) < 100


def test_capping_is_idempotent() -> None:
    alert = build(
        title="t" * 1000,
        records=[{"many": list(range(1000)), "s": "z" * 5000}],
        context={"x": list(range(500))},
    )
    again = Alert.model_validate_json(alert.to_json())
    assert again == alert


# --- fit -------------------------------------------------------------------------------


def big_alert() -> Alert:
    records = [
        {f"field{j}": f"{i}-{j}-" + "v" * 2000 for j in range(40)} for i in range(MAX_EVIDENCE_RECORDS)
    ]
    return build(records=records, event_ids=[f"event-{i:05d}" for i in range(MAX_EVENT_IDS)])


def test_fit_returns_the_alert_itself_when_it_fits() -> None:
    alert = build()
    assert alert.fit(256 * 1024) is alert
    assert alert.evidence.truncated is False


def test_fit_drops_records_first_and_says_so() -> None:
    alert = big_alert()
    size = len(alert.to_json())
    assert size > 256 * 1024
    fitted = alert.fit(size - 1000)
    assert len(fitted.to_json()) <= size - 1000
    assert fitted.evidence.truncated is True
    assert len(fitted.evidence.records) == MAX_EVIDENCE_RECORDS - 1
    assert fitted.evidence.records == alert.evidence.records[:-1]
    assert fitted.evidence.event_ids == alert.evidence.event_ids
    assert fitted.id == alert.id and fitted.title == alert.title
    assert len(alert.evidence.records) == MAX_EVIDENCE_RECORDS  # the original is unchanged


def test_fit_to_sns_budget() -> None:
    fitted = big_alert().fit(256 * 1024)
    assert len(fitted.to_json()) <= 256 * 1024
    assert fitted.evidence.truncated is True
    assert json.loads(fitted.to_json())["evidence"]["truncated"] is True


def test_fit_drops_event_ids_after_records() -> None:
    alert = big_alert()
    without_records = len(
        alert.model_copy(update={"evidence": alert.evidence.model_copy(update={"records": []})}).to_json()
    )
    fitted = alert.fit(without_records - 500)
    assert fitted.evidence.records == []
    assert 0 < len(fitted.evidence.event_ids) < MAX_EVENT_IDS
    assert fitted.evidence.event_ids == alert.evidence.event_ids[: len(fitted.evidence.event_ids)]
    assert len(fitted.to_json()) <= without_records - 500
    # As many ids as fit: one more would not.
    one_more = alert.evidence.event_ids[: len(fitted.evidence.event_ids) + 1]
    bigger = fitted.model_copy(
        update={"evidence": fitted.evidence.model_copy(update={"event_ids": one_more})}
    )
    assert len(bigger.to_json()) > without_records - 500


def test_fit_raises_when_nothing_can_make_it_fit() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        big_alert().fit(100)


# --- severity ------------------------------------------------------------------------------


def test_severity_order_and_max() -> None:
    assert sorted(SEVERITY_ORDER, key=SEVERITY_ORDER.__getitem__) == [
        "info",
        "low",
        "medium",
        "high",
        "critical",
    ]
    assert max_severity("low", "high") == "high"
    assert max_severity("critical", "info") == "critical"
    assert max_severity("medium", "medium") == "medium"


# --- real records ------------------------------------------------------------------------------


def test_real_sample_records_make_valid_fitting_alerts() -> None:
    path = SAMPLES / "panther" / "all_tests.jsonl"
    if not path.exists():
        pytest.skip("shared samples not present")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines
    for line in lines:
        case = json.loads(line)
        record = case["log"]
        alert = build(records=[record], title=f"sample {case['test_name']}")
        assert Alert.model_validate_json(alert.to_json()) == alert
        fitted = alert.fit(2048)
        assert len(fitted.to_json()) <= 2048
