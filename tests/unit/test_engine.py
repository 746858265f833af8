"""Engine: routing, suppression, event-time windows, dedup, idempotent redelivery, failure policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from adscore.detection import AdsMeta, Context, Detection, DetectionParams, Finding
from adscore.engine import Engine
from adscore.errors import ConfigError, SinkError
from adscore.settings import load_settings
from adscore.state.memory import MemoryStateStore

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from adscore.alerts import Alert
    from adscore.events import Event

META = AdsMeta(
    title="test burst",
    goal="g",
    technique="T1578.001",
    technique_name="Create Snapshot",
    tactic="Defense Evasion",
    severity="medium",
    platforms=("IaaS",),
    strategy="s",
    technical_context="t",
    blind_spots=("b",),
    false_positives=("f",),
    priority="p",
    validation=("v",),
    response=("r",),
)


class BurstParams(DetectionParams):
    threshold: int = 3
    window_minutes: int = 60


def _burst(event: Event, ctx: Context) -> Iterable[Finding]:
    window = timedelta(minutes=ctx.params.window_minutes)
    key = f"test.burst|{event.principal.id}"
    n = ctx.state.add(key, [event.event_id], ctx.now, window)
    if n >= ctx.params.threshold:
        start = ctx.now.replace(minute=0, second=0, microsecond=0)
        yield Finding(
            entity=event.principal.id,
            window_start=start,
            title=f"{n} snapshots by {event.principal.name}",
            summary="burst",
            events=(event,),
            count=n,
        )


BURST = Detection(id="test.burst", meta=META, actions=frozenset({"snapshot.create"}), evaluate=_burst, params=BurstParams)
CALLS: list[str] = []


def _spy(event: Event, ctx: Context) -> Iterable[Finding]:
    CALLS.append(event.operation)
    return ()


SPY = Detection(id="test.spy", meta=META, actions=frozenset({"discovery.read"}), evaluate=_spy)


def ct(n: int, *, minute: int = 0, name: str = "CreateSnapshot", source: str = "ec2", role: str = "ops",
       invoked_by: str | None = None, read_only: bool = False) -> dict[str, Any]:
    ident: dict[str, Any] = {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::111122223333:assumed-role/{role}/s{n}",
        "accountId": "111122223333",
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::111122223333:role/{role}",
                                              "userName": role, "accountId": "111122223333"}},
    }
    if invoked_by:
        ident["invokedBy"] = invoked_by
    return {
        "eventVersion": "1.08",
        "userIdentity": ident,
        "eventTime": f"2026-03-10T10:{minute:02d}:{n % 60:02d}Z",
        "eventSource": f"{source}.amazonaws.com",
        "eventName": name,
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "203.0.113.9",
        "userAgent": "aws-cli/2.15",
        "requestParameters": {"volumeId": f"vol-{n:04d}"},
        "responseElements": {"snapshotId": f"snap-{n:04d}"},
        "eventID": f"00000000-0000-0000-0000-{n:012d}",
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333",
    }


class ListSink:
    def __init__(self, fail: int = 0) -> None:
        self.sent: list[Alert] = []
        self.fail = fail

    def send(self, alerts: Sequence[Alert]) -> Any:
        if self.fail:
            self.fail -= 1
            raise SinkError("receiver down", unsent=tuple(a.id for a in alerts))
        self.sent.extend(alerts)
        return None

    def close(self) -> None:
        pass


def engine(sink: ListSink | None = None, store: MemoryStateStore | None = None, **settings: Any) -> Engine:
    return Engine(load_settings(None, **settings), store or MemoryStateStore(), sink, catalogue=[BURST, SPY])


def items(records: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(f"r{i}", r) for i, r in enumerate(records)]


def test_threshold_fires_once_with_evidence_and_counts() -> None:
    sink = ListSink()
    report = engine(sink).run(items([ct(i) for i in range(5)]))
    assert [a.detection for a in report.alerts] == ["test.burst"]
    alert = report.alerts[0]
    assert alert.count == 5
    assert alert.principal["id"] == "arn:aws:iam::111122223333:role/ops"
    assert alert.title == "5 snapshots by ops"
    assert alert.account == "111122223333"
    assert len(sink.sent) == 1
    assert report.counts["records"] == 5 and report.counts["events"] == 5 and report.counts["routed"] == 5


def test_below_threshold_and_other_actions_do_not_fire() -> None:
    report = engine().run(items([ct(0), ct(1), ct(2, name="DescribeInstances", read_only=True)]))
    assert report.alerts == []
    assert report.counts["routed"] == 3


def test_redelivery_three_times_gives_one_alert_and_same_counts() -> None:
    sink, store = ListSink(), MemoryStateStore()
    e = engine(sink, store)
    batch = items([ct(i) for i in range(4)])
    first = e.run(batch)
    assert len(first.sent) == 1
    snapshot_of_state = store.get_sets([k for k in store._sets], datetime(2026, 3, 10, 10, 30, tzinfo=UTC))  # type: ignore[attr-defined]
    for _ in range(2):
        again = e.run(batch)
        assert again.sent == []
        assert again.counts["deduplicated"] == 1
        assert again.alerts[0].count == 4
        assert again.counts["state_writes"] == 0
    assert store.get_sets(list(snapshot_of_state), datetime(2026, 3, 10, 10, 30, tzinfo=UTC)) == snapshot_of_state  # type: ignore[attr-defined]
    assert len(sink.sent) == 1


def test_duplicate_records_inside_a_batch_count_once() -> None:
    report = engine().run(items([ct(0), ct(0), ct(1), ct(1), ct(1)]))
    assert report.counts["duplicates"] == 3
    assert report.alerts == []


def test_windows_use_event_time_not_wall_clock() -> None:
    # three snapshots two hours apart never make a 60-minute burst, whatever the wall clock says
    recs = [ct(0), ct(1), ct(2)]
    recs[1]["eventTime"] = "2026-03-10T12:00:01Z"
    recs[2]["eventTime"] = "2026-03-10T14:00:02Z"
    assert engine().run(items(recs)).alerts == []
    # the same three inside one hour, replayed years later, do
    assert len(engine().run(items([ct(0), ct(1, minute=20), ct(2, minute=40)])).alerts) == 1


def test_batches_are_sorted_by_event_time_before_evaluation() -> None:
    CALLS.clear()
    recs = [ct(1, name="DescribeB", read_only=True, minute=30), ct(2, name="DescribeA", read_only=True, minute=5)]
    engine().run(items(recs))
    assert CALLS == ["ec2:DescribeA", "ec2:DescribeB"]


def test_backup_service_is_suppressed_and_counted() -> None:
    recs = [ct(i, invoked_by="backup.amazonaws.com") for i in range(6)]
    report = engine().run(items(recs))
    assert report.alerts == []
    assert report.suppressed["allowlist.services"] == 6


def test_malformed_record_is_reported_and_the_rest_processed() -> None:
    recs: list[Any] = [ct(i) for i in range(3)]
    recs.insert(1, {"eventSource": "ec2.amazonaws.com", "eventName": "CreateSnapshot", "eventTime": "not a time"})
    recs.insert(2, {"what": "is this"})
    report = engine().run(items(recs))
    assert len(report.alerts) == 1
    assert set(report.unreadable) == {"r1", "r2"} and not report.failed  # dead-lettered, not retried
    assert report.unreadable["r2"][1] == {"what": "is this"}
    assert all(e.reason for e in report.errors)
    assert report.counts["errors"] == 2


def test_sink_failure_releases_the_claim_and_a_retry_delivers() -> None:
    sink, store = ListSink(fail=1), MemoryStateStore()
    e = engine(sink, store)
    batch = items([ct(i) for i in range(3)])
    failed = e.run(batch)
    assert failed.sink_error is not None
    # only the record whose event crossed the threshold is behind the alert; the others' state is saved
    assert set(failed.failed) == {"r2"}
    assert sink.sent == []
    # the platform redelivers just the failed record (SQS batchItemFailures): the alert goes out then
    retried = e.run([pair for pair in batch if pair[0] in failed.failed])
    assert retried.sink_error is None
    assert [a.detection for a in sink.sent] == ["test.burst"]


def test_disabled_detection_and_severity_override() -> None:
    e = engine(disabled=["test.burst"])
    assert [d.id for d in e.detections] == ["test.spy"]
    with pytest.raises(ConfigError, match=r"severity_overrides\.nope"):
        engine(severity_overrides={"nope": "high"})


def test_detection_params_from_settings_and_bad_values_name_the_setting() -> None:
    report = engine(detections={"test.burst": {"threshold": 2}}).run(items([ct(0), ct(1)]))
    assert len(report.alerts) == 1
    with pytest.raises(ConfigError) as info:
        engine(detections={"test.burst": {"threshold": "many"}})
    assert info.value.setting == "detections.test.burst.threshold"
    with pytest.raises(ConfigError) as info:
        engine(detections={"test.burst": {"treshold": 2}})
    assert info.value.setting == "detections.test.burst.treshold"
    with pytest.raises(ConfigError, match="no such detection"):
        engine(detections={"nope.burst": {"threshold": 2}})


def test_an_allowlisted_event_counts_one_suppression_per_detection_it_reaches() -> None:
    both = Detection(id="test.burst2", meta=META, actions=frozenset({"snapshot.create"}), evaluate=_burst,
                     params=BurstParams)
    eng = Engine(load_settings(None), MemoryStateStore(), None, catalogue=[BURST, both])
    report = eng.run(items([ct(i, invoked_by="backup.amazonaws.com") for i in range(4)]))
    assert report.suppressed["allowlist.services"] == 8
    assert report.counts["suppressed"] == 8
    assert report.counts["routed"] == 4


def test_the_garbage_collector_is_paused_during_a_batch_and_restored_after() -> None:
    import gc

    seen: list[bool] = []

    def spy(event: Event, ctx: Context) -> Iterable[Finding]:
        seen.append(gc.isenabled())
        if event.event_id.endswith("2"):
            raise RuntimeError("a detection bug")
        return ()

    det = Detection(id="test.gc", meta=META, actions=frozenset({"snapshot.create"}), evaluate=spy)
    eng = Engine(load_settings(None), MemoryStateStore(), None, catalogue=[det])
    was = gc.isenabled()
    try:
        gc.enable()
        report = eng.run(items([ct(i) for i in range(3)]))
        assert seen == [False, False, False]
        assert gc.isenabled()
        assert report.counts["detection_errors"] == 1
        gc.disable()  # a caller that turned it off keeps it off
        eng.run(items([ct(i) for i in range(3, 5)]))
        assert not gc.isenabled()
    finally:
        if was:
            gc.enable()
        else:
            gc.disable()
