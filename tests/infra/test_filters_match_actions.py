"""One source of truth: the infrastructure's filters select every operation ``adscore.actions`` knows.

The EventBridge patterns, the Event Grid filter and the log sink filter are generated from
``src/adscore/actions.py`` by ``scripts/gen_infra_filters.py`` and read by the Terraform modules.
These tests fail when a generated file is stale, when a module stops reading it, and when a
snapshot or discovery operation of ``operations_for(cloud, SNAPSHOT_ACTIONS | DISCOVERY_ACTIONS)``
would not be delivered. They do not compare lists: they *evaluate* the patterns and the filter on
events built for each operation (small evaluators of EventBridge patterns and of the Logging query
language subset the filter uses), and on the real samples in ``../shared/samples`` when present.

Reads derived from a read-only flag (``discovery.read`` via :func:`adscore.actions.classify`) are
not listed one by one: the tests check that a read-only call the table does not name is still
selected (AWS ``readOnly``, GCP Data Access log) and is classified ``discovery.read`` by the core.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from adscore import actions
from adscore.events import Event

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
SAMPLES = ROOT / ".." / "shared" / "samples"
WANTED = actions.SNAPSHOT_ACTIONS | actions.DISCOVERY_ACTIONS


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("gen_infra_filters", ROOT / "scripts" / "gen_infra_filters.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_infra_filters", module)
    spec.loader.exec_module(module)
    return module


GEN = _generator()


def _generated(path: Path) -> Any:
    return json.loads((ROOT / path).read_text(encoding="utf-8"))


def _panther(log_type_prefix: str) -> list[dict[str, Any]]:
    tests = SAMPLES / "panther" / "all_tests.jsonl"
    if not tests.is_file():
        pytest.skip(f"real samples not found at {tests}")
    out = []
    for line in tests.read_text(encoding="utf-8").splitlines():
        case = json.loads(line)
        if str(case.get("log_type", "")).startswith(log_type_prefix) and isinstance(case.get("log"), dict):
            out.append(case)
    return out


# ------------------------------------------------------------------------------------------------
# Generated files: up to date, and read by the modules
# ------------------------------------------------------------------------------------------------


def test_generated_filters_are_up_to_date() -> None:
    assert GEN.stale() == [], "run: .venv/bin/python scripts/gen_infra_filters.py"


def test_stale_detects_a_changed_file(tmp_path: Path) -> None:
    # GIVEN a copy of the generated files with one of them edited by hand
    for path, text in GEN.render().items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text, encoding="utf-8")
    edited = tmp_path / GEN.GCP_FILTER
    edited.write_text(edited.read_text(encoding="utf-8").replace("compute.snapshots.insert", "x"), encoding="utf-8")
    # THEN the check names it
    assert GEN.stale(tmp_path) == [GEN.GCP_FILTER]


@pytest.mark.parametrize(
    ("cloud", "generated", "uses"),
    [
        ("aws", "eventbridge_patterns.json", [r"event_pattern\s*=\s*jsonencode\(local\.patterns\.snapshot\)",
                                               r"event_pattern\s*=\s*jsonencode\(local\.patterns\.discovery\)"]),
        ("azure", "event_grid_filter.json", [r"local\.event_grid\.operation_name_chunks",
                                             r"local\.event_grid\.included_event_types"]),
        ("gcp", "log_sink_filter.json", [r"filter\s*=\s*local\.sink\.filter"]),
    ],
)
def test_modules_read_the_generated_filters(cloud: str, generated: str, uses: list[str]) -> None:
    main = (INFRA / cloud / "main.tf").read_text(encoding="utf-8")
    assert f'file("${{path.module}}/generated/{generated}")' in main
    for pattern in uses:
        assert re.search(pattern, main), f"infra/{cloud}/main.tf does not use {pattern}"


# ------------------------------------------------------------------------------------------------
# AWS: EventBridge patterns
# ------------------------------------------------------------------------------------------------


def _eb_value_matches(rule: Any, value: Any, present: bool) -> bool:
    if isinstance(rule, dict):
        if "exists" in rule:
            return present is bool(rule["exists"])
        if "prefix" in rule:
            return present and isinstance(value, str) and value.startswith(rule["prefix"])
        if "anything-but" in rule:
            banned = rule["anything-but"]
            return present and value not in (banned if isinstance(banned, list) else [banned])
        raise AssertionError(f"pattern operator not supported by this evaluator: {rule}")
    return present and value == rule


def eventbridge_matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """Whether an EventBridge pattern (the subset the generator writes) matches an event."""
    for key, rule in pattern.items():
        if key == "$or":
            if not any(eventbridge_matches(branch, event) for branch in rule):
                return False
            continue
        present = key in event
        value = event.get(key)
        if isinstance(rule, dict):
            if not (present and isinstance(value, dict) and eventbridge_matches(rule, value)):
                return False
            continue
        values = value if isinstance(value, list) else [value]
        if not any(_eb_value_matches(r, v, present) for r in rule for v in values):
            return False
    return True


def _envelope(source: str, name: str, *, read_only: bool | None = False, error: str | None = None,
              event_type: str = "AwsApiCall") -> dict[str, Any]:
    detail: dict[str, Any] = {"eventSource": source, "eventName": name, "eventType": event_type}
    if read_only is not None:  # some records (service events, old samples) have no readOnly flag
        detail["readOnly"] = read_only
    if error:
        detail["errorCode"] = error
    kind = "AWS Service Event via CloudTrail" if event_type == "AwsServiceEvent" else "AWS API Call via CloudTrail"
    return {"source": "aws." + source.split(".")[0], "detail-type": kind, "detail": detail}


AWS_PATTERNS = _generated(GEN.AWS_PATTERNS)


@pytest.mark.parametrize("operation", actions.operations_for("aws", actions.SNAPSHOT_ACTIONS))
def test_snapshot_rule_matches_every_snapshot_operation(operation: str) -> None:
    source, name = GEN.aws_event_source(operation)
    for event_type in ("AwsApiCall", "AwsServiceEvent"):
        assert eventbridge_matches(AWS_PATTERNS["snapshot"], _envelope(source, name, event_type=event_type)), operation


@pytest.mark.parametrize("operation", actions.operations_for("aws", actions.DISCOVERY_ACTIONS))
def test_discovery_rule_matches_named_discovery_operations(operation: str) -> None:
    # GIVEN a named discovery call that CloudTrail does not flag read-only and that succeeded
    source, name = GEN.aws_event_source(operation)
    assert eventbridge_matches(AWS_PATTERNS["discovery"], _envelope(source, name, read_only=False))


def test_discovery_rule_matches_reads_the_table_does_not_name() -> None:
    # GIVEN a read-only call absent from the table: the core makes it discovery.read
    assert actions.lookup("aws", "ec2:DescribeInstances") is None
    assert actions.classify("aws", "ec2:DescribeInstances", True) == actions.DISCOVERY_READ
    # THEN the read-only branch of the discovery rule delivers it
    assert eventbridge_matches(AWS_PATTERNS["discovery"], _envelope("ec2.amazonaws.com", "DescribeInstances", read_only=True))
    # AND a denied write reaches it too (the core routes denials to the access-denied detections)
    assert eventbridge_matches(
        AWS_PATTERNS["discovery"], _envelope("ec2.amazonaws.com", "RunInstances", error="Client.UnauthorizedOperation")
    )


def test_aws_patterns_do_not_match_unrelated_calls() -> None:
    # A successful write the core has no action for reaches neither rule.
    unrelated = _envelope("ec2.amazonaws.com", "RunInstances")
    assert not eventbridge_matches(AWS_PATTERNS["snapshot"], unrelated)
    assert not eventbridge_matches(AWS_PATTERNS["discovery"], unrelated)
    # The pair matters: RDS's snapshot call name under another service is not a snapshot call.
    assert not eventbridge_matches(AWS_PATTERNS["snapshot"], _envelope("lightsail.amazonaws.com", "CreateDBSnapshot"))
    # Reads are discovery, not snapshots.
    assert not eventbridge_matches(AWS_PATTERNS["snapshot"], _envelope("ec2.amazonaws.com", "DescribeSnapshots", read_only=True))


def test_aws_detail_types_are_ones_the_parser_reads() -> None:
    from adscore.sources.aws import CLOUDTRAIL_DETAIL_TYPES

    for rule in ("snapshot", "discovery"):
        assert set(AWS_PATTERNS[rule]["detail-type"]) <= set(CLOUDTRAIL_DETAIL_TYPES)


def test_discovery_rule_receives_read_only_management_events() -> None:
    main = (INFRA / "aws" / "main.tf").read_text(encoding="utf-8")
    block = main[main.index('resource "aws_cloudwatch_event_rule" "discovery"') :]
    block = block[: block.index("\n}\n")]
    assert 'state = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"' in re.sub(r"\s+", " ", block)


def _flag(value: Any) -> bool | None:
    return value.lower() == "true" if isinstance(value, str) else value if isinstance(value, bool) else None


def test_discovery_rule_matches_unflagged_reads_like_the_parser() -> None:
    # GIVEN a read without readOnly flag, which the parser classifies by its name
    assert eventbridge_matches(AWS_PATTERNS["discovery"], _envelope("ec2.amazonaws.com", "DescribeInstances", read_only=None))
    # THEN a write without the flag is not taken for a read
    assert not eventbridge_matches(AWS_PATTERNS["discovery"], _envelope("ec2.amazonaws.com", "RunInstances", read_only=None))


def test_real_cloudtrail_records_the_core_acts_on_reach_a_rule() -> None:
    from adscore.sources import aws

    checked = 0
    for case in _panther("AWS.CloudTrail"):
        record = case["log"]
        if not isinstance(record.get("eventSource"), str) or not isinstance(record.get("eventName"), str):
            continue
        for event in aws.parse(record, case["test_name"]):
            if not isinstance(event, Event) or event.cloud != "aws":
                continue
            envelope = _envelope(
                record["eventSource"], record["eventName"], read_only=_flag(record.get("readOnly")),
                error=record.get("errorCode"), event_type=str(record.get("eventType") or "AwsApiCall"),
            )
            if event.action in actions.SNAPSHOT_ACTIONS:
                checked += 1
                assert eventbridge_matches(AWS_PATTERNS["snapshot"], envelope), case["test_name"]
            if event.action in actions.DISCOVERY_ACTIONS or event.outcome == "denied":
                checked += 1
                assert eventbridge_matches(AWS_PATTERNS["discovery"], envelope), case["test_name"]
    assert checked >= 10


# ------------------------------------------------------------------------------------------------
# Azure: Event Grid subscriptions (+ Activity Log categories)
# ------------------------------------------------------------------------------------------------

AZURE_FILTER = _generated(GEN.AZURE_FILTER)


def event_grid_selects(event: dict[str, Any]) -> bool:
    """Whether one of the module's event subscriptions (type filter AND string_in filter) takes the event."""
    if event.get("eventType") not in AZURE_FILTER["included_event_types"]:
        return False
    value = event.get("data", {}).get(AZURE_FILTER["advanced_filter_key"].removeprefix("data."))
    if not isinstance(value, str):
        return False
    return any(value.lower() in {v.lower() for v in chunk} for chunk in AZURE_FILTER["operation_name_chunks"])


def test_event_grid_chunks_respect_the_limit() -> None:
    chunks = AZURE_FILTER["operation_name_chunks"]
    assert chunks and all(0 < len(c) <= 25 for c in chunks)


@pytest.mark.parametrize("operation", actions.operations_for("azure", WANTED))
def test_event_grid_selects_every_operation(operation: str) -> None:
    # The feeds disagree on casing: the Activity Log writes MICROSOFT.COMPUTE/SNAPSHOTS/WRITE.
    kind = "Microsoft.Resources.Resource" + (
        "Action" if operation.endswith("/action") else "Delete" if operation.endswith("/delete") else "Write"
    )
    for value in (operation, operation.upper()):
        for outcome in ("Success", "Failure"):
            assert event_grid_selects({"eventType": kind + outcome, "data": {"operationName": value}}), value


def test_event_grid_ignores_other_operations_in_real_examples() -> None:
    examples = SAMPLES / "microsoft-azure-docs" / "event-grid-resource-group-examples.json"
    if not examples.is_file():
        pytest.skip(f"real samples not found at {examples}")
    events = json.loads(examples.read_text(encoding="utf-8"))
    assert events
    for event in events:
        op = str(event.get("data", {}).get("operationName", ""))
        assert event_grid_selects(event) == (actions.lookup("azure", op) in WANTED), op


def _activity_log_categories() -> list[str]:
    variables = (INFRA / "azure" / "variables.tf").read_text(encoding="utf-8")
    block = variables[variables.index('variable "activity_log_categories"') :]
    default = re.search(r"default\s*=\s*\[([^\]]*)\]", block)
    assert default, "activity_log_categories has no default"
    return re.findall(r'"([^"]+)"', default.group(1))


def test_real_activity_log_records_reach_the_function() -> None:
    # GIVEN Activity Log records the core turns into snapshot or discovery events (or denials)
    from adscore.sources import azure

    categories = {c.lower() for c in _activity_log_categories()}
    checked = 0
    for case in _panther("Azure.MonitorActivity"):
        record = case["log"]
        for event in azure.parse(record, case["test_name"]):
            if not (isinstance(event, Event) and (event.action in WANTED or event.outcome == "denied")):
                continue
            checked += 1
            # THEN the diagnostic setting streams their category to the Event Hub
            assert str(record.get("category", "Administrative")).lower() in categories, case["test_name"]
            # AND Event Grid also delivers the snapshot ones
            if event.action in actions.SNAPSHOT_ACTIONS:
                assert event_grid_selects(
                    {"eventType": "Microsoft.Resources.ResourceWriteSuccess", "data": {"operationName": event.operation}}
                ) or event_grid_selects(
                    {"eventType": "Microsoft.Resources.ResourceActionSuccess", "data": {"operationName": event.operation}}
                ), case["test_name"]
    assert checked >= 3


# ------------------------------------------------------------------------------------------------
# GCP: log sink filter (a small evaluator of the Logging query language subset it uses)
# ------------------------------------------------------------------------------------------------

_TOKEN = re.compile(r'\s*(?:(\()|(\))|("(?:[^"\\]|\\.)*")|(AND\b|OR\b|NOT\b)|([:=])|([A-Za-z0-9_.@-]+))')


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise AssertionError(f"cannot read the filter at {text[pos:pos + 40]!r}")
        out.append(next(g for g in m.groups() if g is not None))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def _field(entry: Any, path: str) -> list[Any]:
    values = [entry]
    for part in path.split("."):
        nxt: list[Any] = []
        for v in values:
            items = v if isinstance(v, list) else [v]
            for item in items:
                if isinstance(item, dict) and part in item:
                    nxt.append(item[part])
        values = nxt
    flat: list[Any] = []
    for v in values:
        flat.extend(v if isinstance(v, list) else [v])
    return flat


def _compare(op: str, actual: Any, expected: str) -> bool:
    if op == ":":
        return isinstance(actual, str) and expected.lower() in actual.lower()
    if isinstance(actual, bool) or actual is None:
        return str(actual).lower() == expected.lower()
    if isinstance(actual, int | float):
        return expected.lstrip("-").isdigit() and actual == int(expected)
    return str(actual) == expected


class LoggingFilter:
    """Parse and evaluate: AND / OR / NOT, parentheses, ``field:value``, ``field=value``, ``field:(a OR b)``."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.tree = self._or()
        assert self.pos == len(self.tokens), f"trailing tokens {self.tokens[self.pos:]}"

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> str:
        self.pos += 1
        return self.tokens[self.pos - 1]

    def _or(self) -> Any:
        terms = [self._and()]
        while self._peek() == "OR":
            self._take()
            terms.append(self._and())
        return ("or", terms)

    def _and(self) -> Any:
        terms = [self._not()]
        while self._peek() not in (None, "OR", ")"):
            if self._peek() == "AND":
                self._take()
            terms.append(self._not())
        return ("and", terms)

    def _not(self) -> Any:
        if self._peek() == "NOT":
            self._take()
            return ("not", self._not())
        if self._peek() == "(":
            self._take()
            inner = self._or()
            assert self._take() == ")"
            return inner
        field = self._take()
        op = self._take()
        assert op in (":", "="), f"expected : or = after {field}"
        if self._peek() == "(":
            self._take()
            values = [self._value()]
            while self._peek() == "OR":
                self._take()
                values.append(self._value())
            assert self._take() == ")"
        else:
            values = [self._value()]
        return ("cmp", field, op, values)

    def _value(self) -> str:
        token = self._take()
        return json.loads(token) if token.startswith('"') else token

    def selects(self, entry: dict[str, Any], node: Any = None) -> bool:
        node = self.tree if node is None else node
        kind = node[0]
        if kind == "or":
            return any(self.selects(entry, n) for n in node[1])
        if kind == "and":
            return all(self.selects(entry, n) for n in node[1])
        if kind == "not":
            return not self.selects(entry, node[1])
        _, field, op, values = node
        return any(_compare(op, a, v) for a in _field(entry, field) for v in values)


GCP_FILTER = _generated(GEN.GCP_FILTER)
SINK = LoggingFilter(GCP_FILTER["filter"])


def _audit_entry(method: str, log: str = "activity", **payload: Any) -> dict[str, Any]:
    return {
        "logName": f"projects/p/logs/cloudaudit.googleapis.com%2F{log}",
        "protoPayload": {"@type": "type.googleapis.com/google.cloud.audit.AuditLog", "methodName": method, **payload},
    }


@pytest.mark.parametrize("operation", actions.operations_for("gcp", WANTED))
def test_log_sink_selects_every_operation(operation: str) -> None:
    methods = [operation] if operation.startswith("google.") else [f"v1.{operation}", f"beta.{operation}", operation]
    for method in methods:
        for log in ("activity", "data_access"):
            assert SINK.selects(_audit_entry(method, log)), (method, log)


@pytest.mark.parametrize("operation", actions.operations_for("kubernetes", WANTED))
def test_log_sink_selects_gke_audit_operations(operation: str) -> None:
    verb, _, resource = operation.partition(" ")
    method = "io.k8s.core.v1." + resource.replace("/", ".") + "." + verb
    assert SINK.selects(_audit_entry(method, "activity", serviceName="k8s.io"))


def test_log_sink_selects_reads_and_denials_but_not_other_writes() -> None:
    # GIVEN a list call absent from the table, in the Data Access log: the core makes it discovery.read
    read = _audit_entry("v1.compute.instances.list", "data_access", authorizationInfo=[{"permissionType": "ADMIN_READ"}])
    from adscore.sources import gcp

    parsed = gcp.parse({**read, "timestamp": "2024-01-01T00:00:00Z", "insertId": "1"}, "t")
    assert [e.action for e in parsed if isinstance(e, Event)] == [actions.DISCOVERY_READ]
    assert SINK.selects(read)
    # a denied call anywhere in the audit logs
    assert SINK.selects(_audit_entry("v1.compute.instances.start", "activity", status={"code": 7}))
    # but not a write the core ignores, nor Data Access writes, nor non-audit logs
    assert not SINK.selects(_audit_entry("v1.compute.instances.start", "activity"))
    assert not SINK.selects(
        _audit_entry("storage.objects.create", "data_access", authorizationInfo=[{"permissionType": "DATA_WRITE"}])
    )
    assert not SINK.selects({"logName": "projects/p/logs/run.googleapis.com%2Fstdout", "protoPayload": {"methodName": "v1.compute.snapshots.insert"}})


def test_log_sink_filter_lists_exactly_the_table() -> None:
    assert GCP_FILTER["methods"] == sorted(actions.operations_for("gcp", WANTED))


def test_real_gcp_audit_entries_the_core_acts_on_reach_the_sink() -> None:
    from adscore.sources import gcp

    checked = 0
    for case in _panther("GCP.AuditLog"):
        entry = case["log"]
        if not isinstance(entry.get("logName"), str) or "cloudaudit.googleapis.com" not in entry["logName"]:
            continue
        for event in gcp.parse(entry, case["test_name"]):
            if isinstance(event, Event) and (event.action in WANTED or event.outcome == "denied"):
                checked += 1
                assert SINK.selects(entry), case["test_name"]
    assert checked >= 3


def test_filter_evaluator_reads_the_language() -> None:
    # The evaluator the tests above rely on: precedence, NOT on a missing field, the has operator.
    f = LoggingFilter('a:"x" AND (b=1 OR c:("p" OR "q")) AND NOT d="z"')
    assert f.selects({"a": "xyz", "b": 1})
    assert f.selects({"a": "X", "c": "...Q..."})
    assert not f.selects({"a": "xyz", "b": 2})
    assert not f.selects({"a": "xyz", "b": 1, "d": "z"})
    assert eventbridge_matches({"d": {"$or": [{"n": [1]}, {"e": [{"exists": True}]}]}}, {"d": {"e": "x"}})
    assert not eventbridge_matches({"d": {"$or": [{"n": [1]}, {"e": [{"exists": True}]}]}}, {"d": {"n": 2}})
