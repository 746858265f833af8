"""Route before building: :func:`adscore.sources.probe_record` agrees with the parser, or stands aside.

The engine skips building the events no detection reads by asking the probe for a record's
(cloud, action, outcome, duplicate key). The probe may answer only what :func:`parse_record` would
say; a record the parser refuses (or one the probe is unsure of) must get None, so it still takes
the full path to the error report and the dead-letter store. Checked here on every golden input,
on the public samples, on mutated records (wrong types, huge ints, lone surrogates, missing fields),
and end to end: an engine that probes raises the same alerts and counts as one that does not.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adscore.engine import Engine
from adscore.events import Event, RecordError
from adscore.settings import load_settings
from adscore.sources import Hinted, parse_record, probe_record
from adscore.sources.files import read_inputs
from adscore.state.memory import MemoryStateStore

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = ROOT / "tests" / "golden"
SAMPLES = ROOT.parent / "shared" / "samples"


def _agrees(raw: Any) -> None:
    """The probe's answer for ``raw`` is the parser's, or None."""
    got = probe_record(raw)
    parsed = parse_record(raw, "probe")
    if got is None:
        return
    assert len(parsed) == 1, f"probe answered for a record of {len(parsed)} items"
    ev = parsed[0]
    assert isinstance(ev, Event), f"probe answered for a record the parser refuses: {ev}"
    assert got == (ev.cloud, ev.action, ev.outcome, (ev.source, ev.event_id, ev.operation, ev.outcome))


def _inputs(folder: Path) -> list[Any]:
    out = []
    for item in read_inputs([str(folder)]):
        if not isinstance(item, RecordError):
            out.append(item[1])
    return out


def _records(raw: Any) -> list[Any]:
    """A document's records one by one (a CloudTrail file's Records), as a batch would carry them."""
    if isinstance(raw, dict) and isinstance(raw.get("Records"), list):
        return list(raw["Records"])
    return raw if isinstance(raw, list) else [raw]


GOLDEN_RECORDS = [r for d in sorted(GOLDEN.iterdir()) if d.is_dir() for raw in _inputs(d) for r in _records(raw)]


def test_golden_inputs_agree_and_most_cloudtrail_records_are_answered() -> None:
    answered = 0
    for raw in GOLDEN_RECORDS:
        _agrees(raw)
        _agrees(Hinted(raw, "aws"))
        answered += probe_record(raw) is not None
    assert answered >= 3  # most golden AWS cases are snapshot calls, whose resources decide: left to the parser


@pytest.mark.skipif(not SAMPLES.exists(), reason="shared samples not present")
def test_public_samples_agree() -> None:
    for raw in _inputs(SAMPLES):
        for rec in _records(raw):
            _agrees(rec)


BASE: dict[str, Any] = {
    "eventVersion": "1.09",
    "userIdentity": {
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLE",
        "arn": "arn:aws:iam::111122223333:user/mallory",
        "accountId": "111122223333",
        "userName": "mallory",
    },
    "eventTime": "2024-05-01T12:00:00Z",
    "eventSource": "ec2.amazonaws.com",
    "eventName": "RunInstances",
    "awsRegion": "us-east-1",
    "sourceIPAddress": "198.51.100.7",
    "userAgent": "aws-cli/2.15.0",
    "requestParameters": {"instanceType": "t3.micro"},
    "responseElements": None,
    "requestID": "r-1",
    "eventID": "e-1",
    "readOnly": False,
    "eventType": "AwsApiCall",
    "recipientAccountId": "111122223333",
}
ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["", "\ud800", "aws:s3", "not a time", "2024-13-01T00:00:00Z", "x" * 5000]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
FIELDS = st.sampled_from(
    ["eventSource", "eventName", "eventTime", "userIdentity", "eventID", "readOnly", "errorCode", "errorMessage",
     "Records", "detail-type", "kind", "protoPayload"]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(FIELDS, ODD, st.booleans()), max_size=4), st.booleans())
def test_mutated_records_agree_or_are_left_to_the_parser(changes: list[tuple[str, Any, bool]], wrap: bool) -> None:
    rec = copy.deepcopy(BASE)
    for name, value, delete in changes:
        if delete:
            rec.pop(name, None)
        else:
            rec[name] = value
    raw: Any = rec
    if wrap:  # the same record in an EventBridge event, as the SQS function receives it
        raw = {"version": "0", "id": "x", "detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2",
               "account": "111122223333", "region": "us-east-1", "detail": rec}
    _agrees(raw)


def _mix(records: int) -> list[Any]:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import generate_mix
    finally:
        sys.path.remove(str(ROOT / "bench"))
    return list(generate_mix.generate(records, seed=5))


def _run(batches: list[list[Any]], probing: bool) -> tuple[list[str], dict[str, int], dict[str, int]]:
    engine = Engine(load_settings(None, state="memory://"), MemoryStateStore(), sink=None)
    engine._probing = probing
    ids: list[str] = []
    counts: dict[str, int] = {}
    suppressed: dict[str, int] = {}
    for n, batch in enumerate(batches):
        report = engine.run([(f"b{n}r{i}", r) for i, r in enumerate(batch)], send=False)
        ids += [a.model_dump_json() for a in report.alerts]
        for k, v in report.counts.items():
            counts[k] = counts.get(k, 0) + v
        for k, v in report.suppressed.items():
            suppressed[k] = suppressed.get(k, 0) + v
    return sorted(ids), counts, suppressed


def test_an_engine_that_probes_alerts_and_counts_as_one_that_builds_every_event() -> None:
    records = _mix(6000)
    answered = sum(probe_record(r) is not None for r in records)
    assert answered > len(records) // 2  # the common shape is answered, not left to the parser
    batches = [records[i : i + 500] for i in range(0, len(records), 500)]
    batches[0] += copy.deepcopy(batches[0][:100])  # redelivered in the same batch: duplicates, routed or not
    batches[-1].append({"eventSource": "ec2.amazonaws.com", "eventName": 7})  # unreadable: reported either way
    built = _run(batches, probing=False)
    probed = _run(batches, probing=True)
    assert probed == built
    assert built[1]["duplicates"] == 100 and built[1]["errors"] == 1 and built[0]
    assert built[1]["routed"] < built[1]["events"]  # some events reach no detection: the probe skips them
