"""Property tests over every entry point: mutated records never crash one, and none goes unaccounted (issue 17).

The three clouds' handlers (AWS EventBridge, SQS and CloudWatch Logs; Azure Event Grid and Event
Hub; GCP Pub/Sub and the HTTP endpoints) and ``adscore events`` get real records (the golden inputs)
with values mutated, removed or replaced by hostile text: lone surrogates, NUL and escape
characters, 1 MB strings, deep nesting. Each must return its platform's normal answer (no
exception: state and sinks are in memory here and never fail), and every record handed in must be
processed (it yields events) or reported (unreadable, counted, failed for the platform to retry or
dead-letter): none may vanish.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adscore import runtime
from adscore.events import Event
from adscore.sources import parse_record
from tests.fuzz.test_parsers_never_raise import golden_records, json_values, paths, replaced

if TYPE_CHECKING:
    from collections.abc import Iterator

    from adscore.engine import BatchReport

FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

HOSTILE_TEXT = [
    "\ud800",
    "a\udfffb",
    "\x00",
    "\x1b]0;owned\x07\x1b[2J",
    "line\r\nforged: 0 errors",
    "A" * 1_048_576,
    "tar " + "--a " * 30 + "!",
    "password=hunter2 Bearer abcdefghijklmnop",
]


def _deep(n: int) -> Any:
    leaf: Any = "x"
    for _ in range(n):
        leaf = {"a": [leaf]}
    return leaf


hostile_values = st.one_of(json_values, st.sampled_from(HOSTILE_TEXT), st.just(_deep(120)))


@st.composite
def mutated_records(draw: st.DrawFn) -> Any:
    """A golden record with one to three values replaced (or removed); sometimes a random value instead."""
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        return draw(hostile_values)
    record = draw(st.sampled_from(golden_records()))
    all_paths = list(paths(record))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        if not all_paths:
            break
        path = draw(st.sampled_from(all_paths))
        try:
            record = replaced(record, path, draw(hostile_values), delete=draw(st.booleans()))
        except (KeyError, IndexError, TypeError):
            continue
    return record


def _loads_or_none(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True, default=str)


@dataclass
class Ran:
    """One :func:`adscore.runtime.run_delivery` call an entry point made: its records, every item, the result."""

    records: list[tuple[str, Any]]
    items: list[Any]
    result: Any

    @property
    def report(self) -> BatchReport:
        return self.result.report

    def reached(self, message: int) -> bool:
        """The message's records reached the engine, or it was dead-lettered or skipped with a reason."""
        return any(getattr(i, "where", None) is not None and i.where.message == message for i in self.items)


@pytest.fixture
def memory_engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Ran]]:
    """The process-wide engine on memory state with no sink; records every delivery the runtime ran."""
    import os

    from adscore.deliveries import Record

    for k in list(os.environ):
        if k.startswith("ADSCORE_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("ADSCORE_STATE", "memory://")
    runtime.reset_engine()
    runs: list[Ran] = []
    real = runtime.run_delivery

    def spy(items: Any, **kwargs: Any) -> Any:
        seen = list(items)
        result = real(seen, **kwargs)
        records = [(i.where.location, i.raw) for i in seen if isinstance(i, Record)]
        runs.append(Ran(records, seen, result))
        return result

    monkeypatch.setattr(runtime, "run_delivery", spy)
    yield runs
    runtime.reset_engine()


def assert_accounted(items: list[tuple[str, Any]] | Ran, report: BatchReport | None = None) -> None:
    """Every record handed to the engine yields events, or is reported (an error at its ref, failed, dead-lettered)."""
    if isinstance(items, Ran):
        items, report = items.records, items.report
    assert report is not None
    reported = {e.location for e in report.errors} | set(report.failed) | set(getattr(report, "unreadable", {}))
    for ref, raw in items:
        parsed = parse_record(raw, ref)
        if any(isinstance(e, Event) for e in parsed) or (not parsed and _empty_envelope(raw)):
            continue
        assert any(r == ref or r.startswith((f"{ref}[", f"{ref}/", f"{ref}#")) for r in reported), (
            ref,
            str(raw)[:200],
            report.summary(),
        )


def _empty_envelope(raw: Any) -> bool:
    """An envelope holding no record (``[]``, an EventList without items, a trail file without records)."""
    if raw == []:
        return True
    if not isinstance(raw, dict):
        return False
    if any(raw.get(k) == [] for k in ("items", "Records", "records", "logEvents")):
        return True
    if raw.get("kind") == "EventList" and raw.get("items") is None:  # Go writes an empty list as null
        return True
    log_events = raw.get("logEvents")  # a CloudWatch Logs message whose events hold empty envelopes
    if isinstance(log_events, list) and log_events:
        try:
            return all(_empty_envelope(json.loads(e["message"])) for e in log_events)
        except (TypeError, KeyError, ValueError):
            return False
    return False


# --------------------------------------------------------------------------- AWS


def _aws() -> Any:
    from tests.e2e.aws.conftest import load_handler

    return load_handler()


@FUZZ
@given(records=st.lists(mutated_records(), min_size=1, max_size=4), junk=st.lists(st.text(max_size=30), max_size=2))
def test_aws_sqs_handler(memory_engine: list[Any], records: list[Any], junk: list[str]) -> None:
    from tests.e2e.aws.conftest import LambdaContext, sqs_event

    handler = _aws()
    memory_engine.clear()
    bodies: list[Any] = [_dumps(r) for r in records] + junk
    event = sqs_event(bodies, ids=[f"m{i}" for i in range(len(bodies))])
    result = handler.sqs_handler(event, LambdaContext())
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    assert failed <= {f"m{i}" for i in range(len(bodies))}
    ran = memory_engine[-1]
    assert_accounted(ran)
    for i in range(len(bodies)):  # each message reached the engine or the dead-letter store, or is redelivered
        assert f"m{i}" in failed or ran.reached(i), i


@FUZZ
@given(record=mutated_records())
def test_aws_eventbridge_and_cloudwatch_logs_handlers(memory_engine: list[Any], record: Any) -> None:
    from tests.e2e.aws.conftest import LambdaContext

    handler = _aws()
    memory_engine.clear()
    summary = handler.eventbridge_handler(
        {"version": "0", "id": "e-1", "detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2",
         "account": "111122223333", "time": "2024-05-01T12:00:00Z", "region": "eu-west-1", "resources": [],
         "detail": record},
        LambdaContext(),
    )
    assert summary["counts"]["records"] == 1
    assert_accounted(memory_engine[-1])
    message = {
        "messageType": "DATA_MESSAGE", "owner": "111122223333", "logGroup": "g", "logStream": "s",
        "subscriptionFilters": ["adscore"],
        "logEvents": [{"id": "1", "timestamp": 1714564800000, "message": _dumps(record)}],
    }
    data = base64.b64encode(gzip.compress(_dumps(message).encode())).decode()
    handler.cloudwatch_logs_handler({"awslogs": {"data": data}}, LambdaContext())
    assert_accounted(memory_engine[-1])


# --------------------------------------------------------------------------- Azure


@FUZZ
@given(records=st.lists(mutated_records(), min_size=1, max_size=3), raw=st.binary(max_size=40))
def test_azure_event_hub_and_event_grid(memory_engine: list[Any], records: list[Any], raw: bytes) -> None:
    from tests.e2e.azure.conftest import Invocation, event_hub, load_app

    app = load_app()
    memory_engine.clear()
    bodies = [{"records": records}, _dumps(records[0]).encode(), raw]
    real, app.run_delivery = app.run_delivery, runtime.run_delivery  # the app imported it by name: spy there too
    try:
        app.on_event_hub(event_hub(*bodies), Invocation())
        _event_grid(app, records[0], memory_engine)
    finally:
        app.run_delivery = real
    ran = memory_engine[0]  # the Event Hub batch (the Event Grid event ran second)
    assert_accounted(ran)
    for index, body in enumerate(bodies):  # each event reached the engine or the dead-letter store, or is retried
        if _empty_envelope(body if isinstance(body, dict) else _loads_or_none(body)):
            continue
        assert index in ran.result.retry or ran.reached(index), index


def _event_grid(app: Any, record: Any, runs: list[Ran]) -> None:
    from tests.e2e.azure.conftest import event_grid

    doc = {"id": "g-1", "eventType": "Microsoft.Resources.ResourceWriteSuccess", "subject": "/x",
           "eventTime": "2024-05-14T10:30:00Z", "dataVersion": "2", "data": record}  # fmt: skip
    try:
        orjson.loads(_dumps(doc))
    except orjson.JSONDecodeError:
        return  # the worker's own converter refuses it (escaped lone surrogates): it never reaches the function
    before = len(runs)
    app.on_event_grid(event_grid(doc))
    assert len(runs) == before + 1
    assert_accounted(runs[-1])


# --------------------------------------------------------------------------- GCP


@FUZZ
@given(record=mutated_records())
def test_gcp_pubsub(memory_engine: list[Any], record: Any) -> None:
    from adscore.deliveries.pubsub import done_marker, unwrap_pubsub

    memory_engine.clear()
    data = base64.b64encode(_dumps(record).encode()).decode()
    body = {"message": {"data": data, "messageId": "1", "attributes": {}}, "subscription": "projects/p/subscriptions/s"}
    items = unwrap_pubsub(body)
    result = runtime.run_delivery(items, source="fuzz.pubsub", done=done_marker(items))
    if result.duplicate:  # an insertId processed by an earlier example: skipped, as a redelivery is
        return
    assert result.report.counts.get("records", 0) + len(result.letters) >= 1 or result.retry
    assert_accounted(memory_engine[-1])


@pytest.fixture
def k8s_client(memory_engine: list[Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    import functions_framework

    from tests.e2e.gcp.conftest import SOURCE
    from tests.e2e.ingest_support import INGEST_ENV

    for name, value in INGEST_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ADSCORE_INGEST_MAX_BYTES", "104857600")  # any generated body is read, never refused 413
    runtime.reset_engine()

    return functions_framework.create_app(target="on_k8s_audit", source=str(SOURCE)).test_client()


@FUZZ
@given(records=st.lists(mutated_records(), max_size=3), raw=st.binary(max_size=60))
def test_gcp_k8s_audit_endpoint(k8s_client: Any, memory_engine: list[Any], records: list[Any], raw: bytes) -> None:
    memory_engine.clear()
    body = _dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": records}).encode()
    from tests.e2e.ingest_support import TOKEN

    for data in (body, raw):
        res = k8s_client.post("/", data=data, content_type="application/json", headers={"Authorization": f"Bearer {TOKEN}"})
        # 409: hypothesis posted these very bytes before (the ingest endpoint's replay check)
        assert res.status_code in (200, 400, 409), res.data[:300]
    for ran in memory_engine:
        assert_accounted(ran)


@pytest.fixture
def ingest_ready(memory_engine: list[Any], monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    from tests.e2e.ingest_support import INGEST_ENV

    for name, value in INGEST_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ADSCORE_INGEST_MAX_BYTES", "104857600")
    runtime.reset_engine()
    return memory_engine


@FUZZ
@given(records=st.lists(mutated_records(), max_size=4), raw=st.binary(max_size=60))
def test_signed_docker_batches_at_the_ingest_endpoint(ingest_ready: list[Any], records: list[Any], raw: bytes) -> None:
    """Any element of a signed DockerEventBatch is read or reported on its own; junk is a 400, never a 5xx."""
    from adscore import ingest
    from tests.e2e.ingest_support import signed

    ingest_ready.clear()
    batch = {"apiVersion": "adscore.dev/v1", "kind": "DockerEventBatch", "host": {"hostname": "h"}, "events": records}
    for body in (_dumps(batch).encode(), raw):
        answer = ingest.handle(body, signed(body), source="fuzz.ingest")
        assert answer.status in (200, 400), answer.body
    batch_run, raw_run = ingest_ready
    # one item per element, none dropped; or the body refused whole (nested deeper than the reader takes)
    whole = [i.where.location for i in batch_run.items] == ["ingest"]
    assert len(batch_run.items) == len(records) or whole
    assert raw_run.records or raw_run.result.letters  # junk is dead-lettered, not dropped
    for ran in ingest_ready:
        assert_accounted(ran)


# --------------------------------------------------------------------------- files through the CLI


@FUZZ
@given(records=st.lists(mutated_records(), min_size=1, max_size=4), junk=st.binary(max_size=60))
def test_adscore_events_reads_or_reports_every_line(records: list[Any], junk: bytes) -> None:
    lines = [_dumps(r).encode() for r in records] + [junk.replace(b"\n", b" ")]
    stdin = io.BytesIO(b"\n".join(lines) + b"\n")
    res = CliRunner().invoke(__import__("adscore.cli", fromlist=["main"]).main, ["events", "-"], input=stdin)
    # 0, or 2 for an input that holds no record at all (said so)
    assert res.exit_code == 0 or (res.exit_code == 2 and "no readable records in" in res.stderr), res.stderr[-500:]
    assert "\x1b" not in res.stderr and "\r" not in res.stderr
    summary = next(line for line in res.stderr.splitlines() if line.startswith("adscore events: ") and " records, " in line)
    n_records = int(summary.split(": ")[1].split(" records")[0])
    whole_input_reported = any(line.startswith("<stdin>: ") for line in res.stderr.splitlines())
    # each line is a record (read or reported), or the input as a whole is reported as unreadable
    expected = sum(1 for r in records if not _empty_envelope(r)) + (1 if junk.strip() else 0)
    assert n_records >= expected or whole_input_reported, res.stderr[-500:]


# --------------------------------------------------------------------------- the engine itself (adscore replay)


@FUZZ
@given(records=st.lists(mutated_records(), min_size=1, max_size=6))
def test_the_engine_processes_or_reports_every_record_of_a_batch(records: list[Any]) -> None:
    from adscore.engine import Engine
    from adscore.settings import load_settings
    from adscore.state.memory import MemoryStateStore

    items = [(f"r{i}", r) for i, r in enumerate(records)]
    report = Engine(load_settings(None), MemoryStateStore()).run(items)
    assert report.counts["records"] == len(items)
    assert_accounted(items, report)
    for alert in report.alerts:  # what reaches a sink serializes, whatever the input held
        alert.to_json()
