"""The one failure policy (runtime.run_delivery): dead-letter what cannot be read, retry exactly what failed."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from adscore.deliveries import Deferred, Provenance, Record, Skipped, Unreadable
from adscore.errors import SinkError
from adscore.runtime import DeliveryDeferred, run_delivery
from adscore.state.memory import MemoryStateStore
from tests.unit.test_engine import ListSink, ct, engine

if TYPE_CHECKING:
    from pathlib import Path

    from adscore.engine import Engine


def record(message: int, raw: Any, line: int = 0, body: bytes | None = None) -> Record:
    return Record(raw, Provenance(message, f"m{message}/{line}", line, "aws", f"id-{message}"), body)


def letters(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().split("\n") if line] if path.exists() else []


@pytest.fixture
def dead(tmp_path: Path) -> Path:
    return tmp_path / "dead.jsonl"


def _engine(dead: Path, sink: ListSink | None = None, store: MemoryStateStore | None = None) -> Engine:
    return engine(sink or ListSink(), store, deadletter=f"file://{dead}")


def test_unreadable_records_are_dead_lettered_with_their_bytes_and_the_rest_processed(dead: Path) -> None:
    # GIVEN a delivery: a burst over three messages, bytes the delivery could not decode, a record no parser reads
    sink = ListSink()
    items = [
        record(0, ct(0)),
        Unreadable(b"\xff{not json", "message body is not JSON", Provenance(1, "m1", message_id="id-1")),
        record(2, {"what": "is this"}, body=b'{"what": "is this"}'),
        record(3, ct(1)),
        record(3, ct(2), line=1),
        Skipped("digest", Provenance(4, "m4")),
    ]
    result = run_delivery(items, source="test.entry", engine=_engine(dead, sink))
    # THEN nothing is retried, both unreadable ones are in the store with their bytes and reason
    assert result.retry == {} and result.dead_lettered == 2
    got = {d["location"]: d for d in letters(dead)}
    assert set(got) == {"m1", "m2/0"}
    assert got["m1"]["body_base64"] and got["m1"]["reason"] == "message body is not JSON"
    assert got["m2/0"]["body"] == '{"what": "is this"}' and got["m2/0"]["source"] == "test.entry"
    assert got["m1"]["message_id"] == "id-1" and got["m2/0"]["message_id"] == "id-2"
    # AND the rest of the batch went through
    assert [a.detection for a in sink.sent] == ["test.burst"]
    assert result.report.counts["skipped_digest"] == 1 and result.report.counts["errors"] == 2
    result.raise_for_retry()  # nothing to raise


def test_a_sink_failure_retries_exactly_the_messages_behind_the_alert(dead: Path) -> None:
    sink = ListSink(fail=1)
    items = [record(0, ct(0)), record(1, ct(1)), record(2, ct(2)), record(3, {"odd": 1})]
    result = run_delivery(items, source="t", engine=_engine(dead, sink))
    assert set(result.retry) == {2}  # the record whose event crossed the threshold
    assert result.retry_ids(4) == ["id-2"]
    assert [d["location"] for d in letters(dead)] == ["m3/0"]  # dead-lettered all the same
    with pytest.raises(SinkError):
        result.raise_for_retry()


def test_a_dead_letter_store_that_fails_retries_its_messages(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    eng = engine(ListSink(), deadletter=f"file://{tmp_path / 'file' / 'dead.jsonl'}")
    result = run_delivery([record(0, ct(0)), record(1, {"odd": 1})], source="t", engine=eng)
    assert set(result.retry) == {1} and result.dead_lettered == 0


def test_a_deferred_message_is_retried(dead: Path) -> None:
    items = [record(0, ct(0)), Deferred("out of time", Provenance(1, "m1", message_id="late"))]
    result = run_delivery(items, source="t", engine=_engine(dead))
    assert result.retry_ids(2) == ["late"]
    with pytest.raises(DeliveryDeferred, match="out of time"):
        result.raise_for_retry()


def test_the_last_attempt_dead_letters_what_it_cannot_deliver(dead: Path) -> None:
    items = [record(0, ct(0)), record(0, ct(1), 1), record(0, ct(2), 2)]
    result = run_delivery(items, source="t", engine=_engine(dead, ListSink(fail=1)), final=True)
    assert result.retry  # still raised: the platform logs the failure
    [letter] = letters(dead)
    assert letter["location"] == "m0/2" and "not delivered" in letter["reason"]


def test_without_a_dead_letter_store_unreadable_records_are_counted_not_retried() -> None:
    result = run_delivery([record(0, {"odd": 1})], source="t", engine=engine(ListSink()))
    assert result.retry == {} and result.report.counts["unreadable_not_kept"] == 1


def test_a_done_marker_skips_a_redelivery_once_the_delivery_is_complete(dead: Path) -> None:
    from datetime import UTC, datetime

    store, sink = MemoryStateStore(), ListSink(fail=1)
    eng = _engine(dead, sink, store)
    batch = [record(0, ct(0)), record(0, ct(1), 1), record(0, ct(2), 2)]
    marker = ("test.done:m0", datetime(2024, 5, 1, tzinfo=UTC))
    first = run_delivery(batch, source="t", engine=eng, done=marker)
    assert first.retry and not first.duplicate  # failed: no marker, the redelivery runs again
    second = run_delivery(batch, source="t", engine=eng, done=marker)
    assert not second.retry and not second.duplicate and [a.detection for a in sink.sent] == ["test.burst"]
    third = run_delivery(batch, source="t", engine=eng, done=marker)
    assert third.duplicate and third.report.counts["records"] == 0


def test_the_runtime_and_the_deliveries_load_no_cloud_sdk() -> None:
    import subprocess
    import sys

    modules = ["adscore.runtime", "adscore.send", "adscore.deadletter"] + [
        f"adscore.deliveries.{m}"
        for m in (
            "s3",
            "sns",
            "sqs",
            "eventbridge",
            "cwlogs",
            "eventgrid",
            "eventhub",
            "pubsub",
            "k8s_webhook",
            "files",
        )
    ]
    sdks = (
        "boto3",
        "botocore",
        "azure.storage.blob",
        "azure.storage.queue",
        "google.cloud.pubsub_v1",
        "flask",
    )
    code = (
        f"import sys\nfor m in {modules!r}: __import__(m)\nprint([m for m in {sdks!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_family_a_delivery_knows_is_used_instead_of_a_guess(dead: Path) -> None:
    from adscore.deliveries.eventgrid import unwrap_eventgrid
    from adscore.sources import Hinted, parse_record

    event = {
        "id": "e1",
        "eventType": "Custom.Thing",
        "subject": "s",
        "eventTime": "2024-05-01T00:00:00Z",
        "data": {},
    }
    # GIVEN a shape no sniffing recognises WHEN the trigger says it is Azure THEN the Azure parser says what is wrong
    assert "unrecognised record shape" in parse_record(event, "r")[0].reason  # type: ignore[union-attr]
    assert "unsupported Event Grid event type" in parse_record(Hinted(event, "azure"), "r")[0].reason  # type: ignore[union-attr]
    result = run_delivery(unwrap_eventgrid(event), source="azure.on_event_grid", engine=_engine(dead))
    [letter] = letters(dead)
    assert json.loads(letter["body"]) == event  # the record as it came, not its wrapper
    assert "unsupported Event Grid event type" in letter["reason"] and result.dead_lettered == 1
