"""The Sigma dispatcher (adscore.sigma.dispatch): an event reaches only the rules it can match, and
never fewer than match. Property tests build rules and events from one small vocabulary (so events
carry the rules' own values, in any case, nested or flat, in lists) and compare the dispatcher's
pick with evaluating every rule; the engine's alerts are the same with and without dispatch."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sigma")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sigma.collection import SigmaCollection

from adscore.detections import catalogue_for
from adscore.engine import Engine
from adscore.settings import load_settings
from adscore.sigma import _compile_rule, _detection_id, load_sigma
from adscore.sigma.dispatch import Dispatcher, requirement
from adscore.state import open_store

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "sigma"
GOLDEN = REPO / "tests" / "golden"
CLOUDTRAIL = frozenset({"cloudtrail"})

FIELDS = ["eventName", "eventSource", "requestParameters.bucketName", "userIdentity.type", "resources.ARN"]
VALUES = ["CreateSnapshot", "ListBuckets", "ec2.amazonaws.com", "Root", "straße", "STRASSE", "42", "true", "a*b"]
MODIFIERS = ["", "", "", "|cased", "|contains", "|startswith", "|endswith", "|re", "|exists", "|all"]
CONDITIONS = [
    "sel0", "sel0 and sel1", "sel0 or sel1", "sel0 and not sel1", "not sel0", "1 of sel*", "all of sel*",
    "sel0 and (sel1 or sel2)", "(sel0 or sel1) and sel2", "sel0 or keywords", "keywords and sel1",
]  # fmt: skip


def _sigma_value(value: str, modifier: str) -> Any:
    if modifier == "|exists":
        return True
    if modifier == "|re":
        return value.replace("*", ".*")
    return value


selection = st.dictionaries(
    st.tuples(st.sampled_from(FIELDS), st.sampled_from(MODIFIERS)),
    st.one_of(st.sampled_from(VALUES), st.lists(st.sampled_from(VALUES), min_size=1, max_size=3), st.none()),
    min_size=1,
    max_size=3,
)
rule_spec = st.tuples(st.lists(selection, min_size=3, max_size=3), st.sampled_from(CONDITIONS), st.sampled_from(VALUES))


def _rule_yaml(i: int, spec: tuple[list[dict[tuple[str, str], Any]], str, str]) -> str:
    selections, condition, keyword = spec
    detection: dict[str, Any] = {"condition": condition, "keywords": [keyword]}
    for n, sel in enumerate(selections):
        body: dict[str, Any] = {}
        for (field, modifier), value in sel.items():
            if modifier in ("|exists",) or value is None:
                body[f"{field}{modifier if modifier == '|exists' else ''}"] = True if modifier == "|exists" else None
                continue
            values = value if isinstance(value, list) else [value]
            body[f"{field}{modifier}"] = [_sigma_value(v, modifier) for v in values]
        detection[f"sel{n}"] = body
    return json.dumps({
        "title": f"generated {i}", "id": f"00000000-0000-4000-8000-{i:012d}", "status": "test",
        "logsource": {"product": "aws", "service": "cloudtrail"}, "detection": detection, "level": "low",
    })  # fmt: skip


def _compiled(docs: list[str]) -> list[Any]:
    out = []
    for doc in docs:
        for rule in SigmaCollection.from_yaml(doc, collect_errors=True).rules:
            if rule.errors:
                continue
            try:
                out.append(_compile_rule(rule))
            except Exception:  # unsupported combinations (e.g. |cased with |re) are left out, as on load
                continue
    return out


def _case(text: str, how: int) -> str:
    return [text, text.upper(), text.lower(), text.swapcase(), text.casefold()][how]


@st.composite
def events(draw: Any) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=5, unique=True)):
        value: Any = _case(draw(st.sampled_from([*VALUES, "other", "xCreateSnapshotx"])), draw(st.integers(0, 4)))
        if draw(st.booleans()) and value == "42":
            value = 42
        if draw(st.integers(0, 4)) == 0:
            value = [value, "unrelated"]
        head, _, rest = field.partition(".")
        if rest and draw(st.booleans()):
            record.setdefault(head, {})
            if isinstance(record[head], dict):
                record[head][rest] = value
        else:
            record[field] = value
    return record


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rule_spec, min_size=1, max_size=6), st.lists(events(), min_size=1, max_size=25))
def test_the_dispatcher_never_leaves_out_a_rule_that_matches(specs: list[Any], records: list[dict[str, Any]]) -> None:
    rules = _compiled([_rule_yaml(i, s) for i, s in enumerate(specs)])
    dispatcher = Dispatcher(CLOUDTRAIL)
    for c in rules:
        dispatcher.add(_detection_id(c.rule), c.trees)
    dispatcher.build()
    for record in records:
        picked = dispatcher.select(record)
        every = {_detection_id(c.rule) for c in rules if c.match(record)}
        via_dispatch = {_detection_id(c.rule) for c in rules if _detection_id(c.rule) in picked and c.match(record)}
        assert via_dispatch == every, (record, [_rule_yaml(i, s) for i, s in enumerate(specs)])


def _trees(detection: dict[str, Any]) -> list[Any]:
    doc = {"title": "t", "logsource": {"product": "aws", "service": "cloudtrail"}, "detection": detection}
    (rule,) = SigmaCollection.from_yaml(json.dumps(doc)).rules
    return [c.parse() for c in rule.detection.parsed_condition]


def test_an_and_is_indexed_on_its_most_selective_equality_and_an_or_on_the_union() -> None:
    both = {"sel": {"eventSource": "ec2.amazonaws.com", "eventName": ["CreateSnapshot", "CopySnapshot"]}, "condition": "sel"}
    other = {"sel": {"eventSource": "ec2.amazonaws.com", "eventName": "RunInstances"}, "condition": "sel"}
    cardinality = {"eventSource": 1, "eventName": 3}
    assert requirement(_trees(other), cardinality) == {("eventName", "runinstances")}
    assert requirement(_trees(both), cardinality) == {("eventName", "createsnapshot"), ("eventName", "copysnapshot")}
    either = {"a": {"eventName": "A"}, "b": {"eventSource": "s3.amazonaws.com"}, "condition": "a or b"}
    assert requirement(_trees(either)) == {("eventName", "a"), ("eventSource", "s3.amazonaws.com")}


@pytest.mark.parametrize(
    "detection",
    [
        {"sel": {"eventName|contains": "Snapshot"}, "condition": "sel"},
        {"sel": {"eventName": "Create*"}, "condition": "sel"},
        {"sel": {"eventName": "A"}, "condition": "not sel"},
        {"a": {"eventName": "A"}, "b": {"eventName|re": "B.*"}, "condition": "a or b"},
        {"keywords": ["CreateSnapshot"], "condition": "keywords"},
        {"sel": {"errorCode": None}, "condition": "sel"},
        {"sel": {"eventName|exists": True}, "condition": "sel"},
    ],
    ids=["contains", "wildcard", "not", "or with a regex", "keywords", "null", "exists"],
)
def test_what_no_value_is_required_for_goes_to_the_always_list(detection: dict[str, Any]) -> None:
    assert requirement(_trees(detection)) is None


def test_string_equality_is_casefolded_on_both_sides() -> None:
    (c,) = _compiled([json.dumps({
        "title": "fold", "logsource": {"product": "aws", "service": "cloudtrail"},
        "detection": {"sel": {"requestParameters.bucketName": "STRASSE"}, "condition": "sel"},
    })])  # fmt: skip
    dispatcher = Dispatcher(CLOUDTRAIL)
    dispatcher.add("fold", c.trees)
    dispatcher.build()
    hit = {"requestParameters": {"bucketName": "Straße"}}
    miss = {"requestParameters": {"bucketName": "strase"}}
    assert c.match(hit) and dispatcher.select(hit) == {"fold"}
    assert not c.match(miss) and dispatcher.select(miss) == set()
    assert dispatcher.select({"requestParameters": {"bucketName": "x" * 100_000}}) == set()  # longer than any key


def _alerts(records: list[Any], dispatch: bool) -> list[tuple[str, str, int]]:
    s = load_settings(None, sigma_paths=(str(EXAMPLES),), state="memory://")
    catalogue = catalogue_for(s)
    if not dispatch:
        catalogue = [dataclasses.replace(d, dispatch=None) for d in catalogue]
    report = Engine(s, open_store("memory://"), catalogue=catalogue).run([(f"r{i}", r) for i, r in enumerate(records)])
    return sorted((a.detection, a.id, len(report.errors)) for a in report.alerts)  # golden inputs hold bad records too


def test_the_engine_raises_the_same_alerts_with_and_without_dispatch() -> None:
    records: list[Any] = []
    for path in sorted(GOLDEN.glob("*/*.input.json")):
        doc = json.loads(path.read_text())
        records.extend(doc.get("records", [doc]) if isinstance(doc, dict) else doc)
    dispatched = [d for d in load_sigma([str(EXAMPLES)]) if d.dispatch is not None]
    assert dispatched, "the example rules are dispatched"
    with_dispatch = _alerts(records, True)
    assert any(det.startswith("sigma.") for det, _, _ in with_dispatch)
    assert with_dispatch == _alerts(records, False)


class _ByName:
    """A dispatch picking detection ``picked`` for events whose operation is ``name`` only."""

    def __init__(self, name: str, picked: str) -> None:
        self.name, self.picked = name, picked

    def candidates(self, event: Any) -> tuple[str, ...]:
        return (self.picked,) if event.operation.endswith(self.name) else ()


def test_the_engine_evaluates_a_dispatched_detection_only_on_the_events_picked_for_it() -> None:
    from adscore.actions import ALL_ACTIONS, OUTCOME_DENIED
    from adscore.detection import Detection

    (template,) = [d for d in load_sigma([str(EXAMPLES)]) if d.id == "sigma.7e3c0d1a5b2f4c8e9a612f4b8d9c0e11"]
    seen: dict[str, list[str]] = {"picked": [], "other": []}
    dispatch = _ByName("ModifySnapshotAttribute", "sigma.picked")

    def record(key: str) -> Any:
        def evaluate(event: Any, ctx: Any) -> tuple[()]:
            seen[key].append(event.operation)
            return ()

        return evaluate

    actions = frozenset(ALL_ACTIONS | {"", OUTCOME_DENIED})
    picked = Detection(id="sigma.picked", meta=template.meta, actions=actions, evaluate=record("picked"), clouds=("aws",), dispatch=dispatch)
    other = Detection(id="sigma.other", meta=template.meta, actions=actions, evaluate=record("other"), clouds=("aws",), dispatch=dispatch)
    records = [json.loads(p.read_text()) for p in sorted((GOLDEN / "aws_cloudtrail").glob("*.input.json"))]
    records = [r for doc in records for r in (doc.get("Records", [doc]) if isinstance(doc, dict) else doc)]
    s = load_settings(None, state="memory://")
    Engine(s, open_store("memory://"), catalogue=[picked, other]).run([(f"r{i}", r) for i, r in enumerate(records)])
    assert seen["picked"] and all(op.endswith("ModifySnapshotAttribute") for op in seen["picked"])
    assert seen["other"] == []
