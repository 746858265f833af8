"""A burst split across instances running at once raises exactly one alert (real processes).

16 snapshots by one principal (``snapshot.burst`` threshold 5) arrive as 8 invocations of 2
snapshots each, all started together on one shared store: each instance alone sees 2, the
union is 16. Every instance writes its members, then recounts against the stored union, so
the instance that recounts last always sees the burst; the alert claim keeps it to one.
Ten trials on SQLite (WAL, one file shared by the processes) and on DynamoDB (moto server).
Each instance's first write waits until all have read and counted: the race every trial.
"""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.integration import moto_server as _moto

if TYPE_CHECKING:
    from adscore.state.base import StateStore, WriteBatch

moto_server, aws_env = _moto.moto_server, _moto.aws_env  # fixtures

T0 = datetime(2026, 3, 16, 10, 0, tzinfo=UTC)  # a Monday, in business hours: only the burst is unusual
PROCESSES = 8
REDELIVERIES = 3  # a state write losing to contention under load fails its records for a retry, as designed
PER_PROCESS = 2
TRIALS = 10


def snapshot(trial: int, i: int) -> dict[str, Any]:
    """The ``i``-th CreateSnapshot of trial ``trial`` (an account and a principal per trial)."""
    at = T0 + timedelta(weeks=trial, seconds=20 * i)
    account = f"1111222233{trial:02d}"
    return {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "arn": f"arn:aws:iam::{account}:user/mallory-{trial}",
            "accountId": account,
            "userName": f"mallory-{trial}",
        },
        "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "ec2.amazonaws.com",
        "eventName": "CreateSnapshot",
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "203.0.113.9",
        "userAgent": "aws-cli/2.15.30",
        "requestParameters": {"volumeId": f"vol-{trial:02d}{i:015d}"},
        "responseElements": {"snapshotId": f"snap-{trial:02d}{i:015d}", "volumeId": f"vol-{trial:02d}{i:015d}"},
        "eventID": f"burst-{trial}-{i}",
        "eventType": "AwsApiCall",
        "recipientAccountId": account,
    }


def _hold_first_write(store: StateStore, gate: Any) -> None:
    """Make the store's first write wait until every instance has read and counted (the worst interleaving)."""
    write = store.write
    held = [gate]

    def gated(batch: WriteBatch) -> None:
        while held:
            held.pop().wait()
        write(batch)

    store.write = gated  # type: ignore[method-assign]


def _deliver(engine: Any, batch: list[tuple[str, Any]]) -> tuple[list[Any], int]:
    """Run ``batch``, then again the records it failed on (under contention), as the platform redelivers them.

    Returns every run's report and how many records were still failing after :data:`REDELIVERIES`.
    """
    reports, pending = [], batch
    for _ in range(REDELIVERIES + 1):
        reports.append(engine.run(pending))
        pending = [(ref, r) for ref, r in pending if ref in reports[-1].failed]
        if not pending:
            break
    return reports, len(pending)


def _spawn(target: Any, args: list[tuple[Any, ...]], timeout: float) -> list[Any]:
    """Run ``target(*a, results)`` in one spawned process per ``a``; their results, in the order they came."""
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*a, results)) for a in args]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=timeout) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    return outcomes


def _instance(state_url: str, trial: int, part: int, barrier: Any, gate: Any, results: Any) -> None:
    """One function instance: build an engine on the shared store, wait for the others, run 2 records."""
    from adscore.engine import Engine
    from adscore.settings import load_settings
    from adscore.state import open_store

    settings = load_settings(None, state=state_url)
    engine = Engine(settings, open_store(settings.state))
    _hold_first_write(engine.store, gate)
    records = [snapshot(trial, part * PER_PROCESS + j) for j in range(PER_PROCESS)]
    barrier.wait()
    reports, lost = _deliver(engine, [(f"p{part}:{j}", r) for j, r in enumerate(records)])
    results.put((sum(len(r.sent) for r in reports), sum(r.counts["deduplicated"] for r in reports), lost))
    engine.store.close()


def run_trial(state_url: str, trial: int) -> tuple[int, int]:
    """Run one trial; return (alerts sent over all instances, records failed)."""
    ctx = multiprocessing.get_context("spawn")
    barrier, gate = ctx.Barrier(PROCESSES), ctx.Barrier(PROCESSES)
    outcomes = _spawn(_instance, [(state_url, trial, p, barrier, gate) for p in range(PROCESSES)], 180)
    return sum(o[0] for o in outcomes), sum(o[2] for o in outcomes)


@pytest.mark.slow
def test_sqlite_burst_split_over_eight_processes_alerts_once(tmp_path: Path) -> None:
    from adscore.state.sqlite import SqliteStateStore

    url = f"sqlite:///{tmp_path / 'state.db'}"
    SqliteStateStore(tmp_path / "state.db").close()
    outcomes = [run_trial(url, trial) for trial in range(TRIALS)]
    assert outcomes == [(1, 0)] * TRIALS


@pytest.mark.slow
@pytest.mark.integration
def test_dynamodb_burst_split_over_eight_processes_alerts_once(aws_env: _moto.MotoServer) -> None:
    from adscore.state.dynamodb import init_table

    init_table("adscore-burst", aws_env.client("dynamodb"))
    outcomes = [run_trial("dynamodb://adscore-burst", trial) for trial in range(TRIALS)]
    assert outcomes == [(1, 0)] * TRIALS


# --------------------------------------------------------------------------- the examples, twice, 8 processes

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_BATCH = 10


def _example_instance(state_url: str, part: int, barrier: Any, results: Any) -> None:
    """One instance: its share of the examples delivered twice (every 8th record), in batches of 10."""
    import yaml

    from adscore.engine import Engine
    from adscore.settings import load_settings
    from adscore.state import open_store
    from tests.unit.test_delivery_order import example_records, subject

    config = yaml.safe_load((ROOT / "examples" / "config.yaml").read_text(encoding="utf-8"))
    settings = load_settings(None, **config, state=state_url)
    engine = Engine(settings, open_store(settings.state))
    records = example_records() * 2
    share = records[part::PROCESSES]
    barrier.wait()
    sent: list[tuple[str, str, str]] = []
    failed = 0
    for start in range(0, len(share), EXAMPLE_BATCH):
        reports, lost = _deliver(engine, [(f"p{part}:{start + i}", r) for i, r in enumerate(share[start : start + EXAMPLE_BATCH])])
        sent += [(a.detection, subject(a), a.id) for report in reports for a in report.sent]
        failed += lost
    results.put((sent, failed))
    engine.store.close()


def run_examples(state_url: str) -> tuple[set[tuple[str, str]], list[str], int]:
    """The examples, every record twice, over 8 processes at once: (alerts, sent alert ids, failed records)."""
    barrier = multiprocessing.get_context("spawn").Barrier(PROCESSES)
    outcomes = _spawn(_example_instance, [(state_url, p, barrier) for p in range(PROCESSES)], 300)
    sent = [s for o in outcomes for s in o[0]]
    return {(d, who) for d, who, _ in sent}, [aid for _, _, aid in sent], sum(o[1] for o in outcomes)


def sorted_example_alerts() -> set[tuple[str, str]]:
    import yaml

    from tests.unit.test_delivery_order import example_records, replay

    config = yaml.safe_load((ROOT / "examples" / "config.yaml").read_text(encoding="utf-8"))
    records = example_records()
    return replay(records, config, [len(records)])


@pytest.mark.slow
def test_sqlite_examples_twice_over_eight_processes_miss_nothing(tmp_path: Path) -> None:
    from tests.unit.test_delivery_order import assert_same_alerts

    alerts, ids, failed = run_examples(f"sqlite:///{tmp_path / 'state.db'}")
    assert failed == 0
    assert len(ids) == len(set(ids))  # no alert sent twice
    assert_same_alerts(alerts, sorted_example_alerts())


@pytest.mark.slow
@pytest.mark.integration
def test_dynamodb_examples_twice_over_eight_processes_miss_nothing(aws_env: _moto.MotoServer) -> None:
    from adscore.state.dynamodb import init_table
    from tests.unit.test_delivery_order import assert_same_alerts

    init_table("adscore-examples", aws_env.client("dynamodb"))
    alerts, ids, failed = run_examples("dynamodb://adscore-examples")
    assert failed == 0
    assert len(ids) == len(set(ids))
    assert_same_alerts(alerts, sorted_example_alerts())
