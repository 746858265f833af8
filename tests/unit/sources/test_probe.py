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
import json
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
    """A document's records one by one (a CloudTrail file's Records, an Azure document's records, a
    Kubernetes EventList's items, a Logging API export's entries), as a batch would carry them, and
    the document itself."""
    if isinstance(raw, list):
        return [r for item in raw for r in _records(item)]
    if isinstance(raw, dict):
        for key in ("Records", "records", "items", "entries"):
            if isinstance(raw.get(key), list):
                return [raw, *raw[key]]
    return [raw]


GOLDEN_RECORDS = [r for d in sorted(GOLDEN.iterdir()) if d.is_dir() for raw in _inputs(d) for r in _records(raw)]
FAMILIES = ("aws", "azure", "gcp", "kubernetes", "docker")


def _cloud_answered(raws: list[Any]) -> set[str]:
    """The clouds of the records the probe answered for (each checked against the parser, bare and hinted)."""
    clouds = set()
    for raw in raws:
        _agrees(raw)
        for family in FAMILIES:  # a delivery that names the family hands the record straight to its parser
            _agrees(Hinted(raw, family))
        got = probe_record(raw)
        if got is not None:
            clouds.add(got[0])
    return clouds


def test_golden_inputs_agree_and_every_family_is_answered() -> None:
    answered = sum(probe_record(raw) is not None for raw in GOLDEN_RECORDS)
    assert answered >= 20  # most golden cases are the ones detections read (snapshots, exec): left to the parser
    assert _cloud_answered(GOLDEN_RECORDS) == {"aws", "azure", "gcp", "kubernetes", "docker"}


@pytest.mark.skipif(not SAMPLES.exists(), reason="shared samples not present")
def test_public_samples_agree() -> None:
    _cloud_answered([rec for raw in _inputs(SAMPLES) for rec in _records(raw)])


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


# ------------------------------------------------------------------------------------------------
# the other families: one well-formed record each, mutated field by field (nested fields too)
# ------------------------------------------------------------------------------------------------
K8S_EVENT: dict[str, Any] = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "Metadata",
    "auditID": "11111111-aaaa-4bbb-8ccc-000000000002",
    "stage": "ResponseComplete",
    "requestURI": "/api/v1/namespaces/payments/configmaps/app-config",
    "verb": "update",
    "user": {"username": "mallory", "groups": ["system:authenticated"]},
    "sourceIPs": ["192.0.2.66"],
    "objectRef": {"resource": "configmaps", "namespace": "payments", "name": "app-config", "apiVersion": "v1"},
    "responseStatus": {"metadata": {}, "code": 200},
    "requestReceivedTimestamp": "2024-03-07T03:12:58.000000Z",
    "stageTimestamp": "2024-03-07T03:12:58.010000Z",
    "annotations": {"authorization.k8s.io/decision": "allow"},
}
K8S_PATHS = [
    ("kind",), ("apiVersion",), ("verb",), ("auditID",), ("stage",), ("requestURI",), ("stageTimestamp",),
    ("requestReceivedTimestamp",), ("timestamp",), ("objectRef",), ("objectRef", "resource"),
    ("objectRef", "subresource"), ("objectRef", "name"), ("responseStatus",), ("responseStatus", "code"),
    ("annotations",), ("annotations", "authorization.k8s.io/decision"), ("user",), ("user", "username"),
    ("impersonatedUser",), ("sourceIPs",), ("requestObject",), ("items",),
]
GCP_ENTRY: dict[str, Any] = {
    "protoPayload": {
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "authenticationInfo": {"principalEmail": "dev@example.com"},
        "requestMetadata": {"callerIp": "203.0.113.50"},
        "serviceName": "compute.googleapis.com",
        "methodName": "v1.compute.instances.setMetadata",
        "resourceName": "projects/acme-prod/zones/europe-west1-b/instances/vm-1",
        "authorizationInfo": [{"permission": "compute.instances.setMetadata", "granted": True}],
        "status": {},
        "request": {"name": "vm-1"},
    },
    "insertId": "1a2b3c4d5e",
    "resource": {"type": "gce_instance", "labels": {"project_id": "acme-prod"}},
    "timestamp": "2024-05-14T10:40:00Z",
    "logName": "projects/acme-prod/logs/cloudaudit.googleapis.com%2Factivity",
}
GCP_PATHS = [
    ("protoPayload",), ("protoPayload", "methodName"), ("protoPayload", "serviceName"), ("protoPayload", "@type"),
    ("protoPayload", "at_sign_type"), ("protoPayload", "status"), ("protoPayload", "status", "code"),
    ("protoPayload", "authorizationInfo"), ("protoPayload", "resourceName"), ("protoPayload", "request"),
    ("protoPayload", "request", "sourceSnapshot"), ("protoPayload", "authenticationInfo"), ("timestamp",),
    ("receiveTimestamp",), ("insertId",), ("insertid",), ("operation",), ("operation", "id"), ("logName",),
    ("resource",), ("resource", "type"), ("resource", "labels"), ("specversion",), ("message",), ("entries",),
]
GKE_ENTRY: dict[str, Any] = {
    **GCP_ENTRY,
    "protoPayload": {
        **GCP_ENTRY["protoPayload"],
        "serviceName": "k8s.io",
        "methodName": "io.k8s.coordination.v1.leases.update",
        "resourceName": "coordination.k8s.io/v1/namespaces/kube-system/leases/node-1",
    },
    "resource": {"type": "k8s_cluster", "labels": {"project_id": "acme-prod", "location": "europe-west1"}},
}
AZURE_ACTIVITY: dict[str, Any] = {
    "time": "2024-05-14T11:00:05.0000000Z",
    "resourceId": "/SUBSCRIPTIONS/7D4A/RESOURCEGROUPS/WEB-RG/PROVIDERS/MICROSOFT.WEB/SITES/APP1",
    "operationName": "MICROSOFT.WEB/SITES/WRITE",
    "category": "Administrative",
    "resultType": "Success",
    "resultSignature": "Succeeded.OK",
    "callerIpAddress": "203.0.113.24",
    "correlationId": "c0ffee00-1234-4abc-9def-0123456789ab",
    "identity": {"claims": {"appid": "04b07795"}, "authorization": {"evidence": {"principalType": "User"}}},
    "properties": {"statusCode": "OK", "requestbody": '{"properties": {}}'},
}
AZURE_PATHS = [
    ("operationName",), ("operationName", "value"), ("category",), ("category", "value"), ("time",),
    ("eventTimestamp",), ("resourceId",), ("correlationId",), ("resultType",), ("resultSignature",), ("status",),
    ("subStatus",), ("properties",), ("properties", "statusCode"), ("properties", "statusMessage"),
    ("properties", "requestbody"), ("properties", "responseBody"), ("identity",), ("claims",), ("records",),
    ("eventType",), ("data",), ("specversion",), ("TimeGenerated",), ("Type",),
]
AZURE_GRAPH: dict[str, Any] = {
    "time": "2024-05-14T09:55:00.0000000Z",
    "operationName": "Microsoft Graph Activity",
    "category": "MicrosoftGraphActivityLogs",
    "tenantId": "3c1e5f7a",
    "resultSignature": "200",
    "properties": {
        "timeGenerated": "2024-05-14T09:55:00Z",
        "requestId": "0e1f2a3b",
        "requestMethod": "PATCH",
        "requestUri": "https://graph.microsoft.com/v1.0/users/a@b.com?$select=id",
        "responseStatusCode": 204,
        "userId": "user-1",
    },
}
GRAPH_PATHS = [
    ("time",), ("category",), ("resultSignature",), ("correlationId",), ("properties",),
    ("properties", "timeGenerated"), ("properties", "requestId"), ("properties", "requestMethod"),
    ("properties", "requestUri"), ("properties", "responseStatusCode"), ("properties", "C_Idtyp"),
]
DOCKER_EVENT: dict[str, Any] = {
    "status": "start",
    "id": "4f1e2d3c4b5a",
    "from": "postgres:16",
    "Type": "container",
    "Action": "start",
    "Actor": {"ID": "4f1e2d3c4b5a", "Attributes": {"image": "postgres:16", "name": "billing-db"}},
    "scope": "local",
    "time": 1709896800,
    "timeNano": 1709896800123456789,
    "host": "build-07",
}
DOCKER_PATHS = [
    ("status",), ("id",), ("from",), ("Type",), ("Action",), ("Actor",), ("Actor", "ID"), ("Actor", "Attributes"),
    ("time",), ("timeNano",), ("host",), ("user",), ("changes",), ("changes", "sensitive_paths"),
]
#: Values a field may take besides the odd ones: the shapes and words the parsers branch on.
WORDS = st.sampled_from(
    ["Event", "EventList", "audit.k8s.io/v1", "get", "list", "create", "exec", "attach", "pods", "namespaces",
     "forbid", "RequestReceived", "Panic", "403", "k8s.io", "k8s_cluster", "io.k8s.core.v1.pods.list",
     "v1.compute.disks.insert", "compute.images.insert", "SetIamPolicy", "PERMISSION_DENIED",
     "google.cloud.audit.log.v1.written", "Administrative", "Policy", "kube-audit", "MicrosoftGraphActivityLogs",
     "SignInLogs", "Failed", "Failed.Forbidden", "Started", "MICROSOFT.COMPUTE/DISKS/WRITE",
     "Microsoft.Compute/snapshots/beginGetAccess/action", "GET", "DELETE", "DATA_MESSAGE", "commit", "export",
     "container", "image", "1709896800", "2024-05-14T11:00:05Z", "/aws/eks/prod/cluster",
     '{"error": {"code": "AuthorizationFailed"}}']
)
VALUES = st.one_of(ODD, WORDS, st.builds(dict), st.just({"value": "Success"}), st.just([{"granted": False}]))


def _mutated(base: dict[str, Any], changes: list[tuple[tuple[str, ...], Any, bool]]) -> dict[str, Any]:
    rec = copy.deepcopy(base)
    for path, value, delete in changes:
        parent: Any = rec
        for key in path[:-1]:
            child = parent.get(key) if isinstance(parent, dict) else None
            if not isinstance(child, dict):
                child = {}
                if isinstance(parent, dict):
                    parent[key] = child
            parent = child
        if isinstance(parent, dict):
            if delete:
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = copy.deepcopy(value)
    return rec


def _changes(paths: list[tuple[str, ...]]) -> st.SearchStrategy[list[tuple[tuple[str, ...], Any, bool]]]:
    return st.lists(st.tuples(st.sampled_from(paths), VALUES, st.booleans()), max_size=4)


def _agrees_as_delivered(raw: Any, family: str) -> None:
    _agrees(raw)
    _agrees(Hinted(raw, family))


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=str)


def _eks(event: dict[str, Any], group: Any = "/aws/eks/prod/cluster") -> dict[str, Any]:
    """An EKS audit event as the CloudWatch Logs delivery hands it over: the message of one log event."""
    return {"messageType": "DATA_MESSAGE", "owner": "111122223333", "logGroup": group,
            "logStream": "kube-apiserver-audit-0", "logEvents": [{"id": "1", "timestamp": 1, "message": _dumps(event)}]}


def _aks(event: Any) -> dict[str, Any]:
    """An AKS audit event as an Event Hub document's record carries it."""
    return {"operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
            "category": "kube-audit", "resourceId": "/SUBSCRIPTIONS/S/PROVIDERS/X/MANAGEDCLUSTERS/AKS-PROD",
            "properties": {"log": _dumps(event)}}


def test_the_unmutated_records_of_every_family_are_answered() -> None:
    for raw, family in (
        (K8S_EVENT, "kubernetes"), (_eks(K8S_EVENT), "aws"), (_aks(K8S_EVENT), "azure"), (GCP_ENTRY, "gcp"),
        (GKE_ENTRY, "gcp"), (AZURE_ACTIVITY, "azure"), (AZURE_GRAPH, "azure"), (DOCKER_EVENT, "docker"),
        ({"type": "google.cloud.audit.log.v1.written", "specversion": "1.0", "data": GCP_ENTRY}, "gcp"),
    ):
        got = probe_record(Hinted(raw, family))
        assert got is not None, raw
        assert got[1] is None  # writes no detection reads: the records the probe lets the engine skip
        _agrees_as_delivered(raw, family)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_changes(K8S_PATHS), st.sampled_from(["bare", "eks", "eks-no-cluster", "aks", "aks-object"]))
def test_mutated_kubernetes_events_agree(changes: list[tuple[tuple[str, ...], Any, bool]], how: str) -> None:
    event = _mutated(K8S_EVENT, changes)
    if how == "bare":
        _agrees_as_delivered(event, "kubernetes")
    elif how.startswith("eks"):
        _agrees_as_delivered(_eks(event, "/aws/eks/prod/cluster" if how == "eks" else "other"), "aws")
    else:
        rec = _aks(event)
        if how == "aks-object":
            rec["properties"]["log"] = event
        _agrees_as_delivered(rec, "azure")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_changes(GCP_PATHS), st.booleans(), st.booleans())
def test_mutated_gcp_and_gke_entries_agree(
    changes: list[tuple[tuple[str, ...], Any, bool]], gke: bool, eventarc: bool
) -> None:
    entry = _mutated(GKE_ENTRY if gke else GCP_ENTRY, changes)
    raw = {"type": "google.cloud.audit.log.v1.written", "specversion": "1.0", "data": entry} if eventarc else entry
    _agrees_as_delivered(raw, "gcp")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_changes(AZURE_PATHS), _changes(GRAPH_PATHS), st.booleans())
def test_mutated_azure_records_agree(
    activity: list[tuple[tuple[str, ...], Any, bool]], graph: list[tuple[tuple[str, ...], Any, bool]], is_graph: bool
) -> None:
    rec = _mutated(AZURE_GRAPH, graph) if is_graph else _mutated(AZURE_ACTIVITY, activity)
    _agrees_as_delivered(rec, "azure")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_changes(DOCKER_PATHS))
def test_mutated_docker_events_agree(changes: list[tuple[tuple[str, ...], Any, bool]]) -> None:
    _agrees_as_delivered(_mutated(DOCKER_EVENT, changes), "docker")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["messageType", "logGroup", "logEvents", "owner"]), VALUES, st.booleans())
def test_mutated_cloudwatch_logs_messages_agree(name: str, value: Any, delete: bool) -> None:
    for inner in (K8S_EVENT, BASE):  # an EKS audit event, or a CloudTrail record sent to CloudWatch Logs
        msg = _eks(inner)
        if delete:
            msg.pop(name)
        else:
            msg[name] = value
        _agrees_as_delivered(msg, "aws")
    msg = _eks(K8S_EVENT)
    msg["logEvents"][0]["message"] = value
    _agrees_as_delivered(msg, "aws")
    assert probe_record(_eks(BASE)) is not None
    msg["logEvents"] = [msg["logEvents"][0], msg["logEvents"][0]]  # two events: the parser's, never the probe's
    assert probe_record(msg) is None


def test_a_docker_commit_with_an_unhashable_change_kind_is_left_to_the_parser() -> None:
    commit = {**DOCKER_EVENT, "Action": "commit", "status": "commit",
              "changes": {"added": 1, "changed": 0, "deleted": 0, "total": 1, "sensitive": 1,
                          "sensitive_paths": [{"kind": ["A"], "category": "secret", "path": "/etc/shadow"}]}}
    _agrees_as_delivered(commit, "docker")


def _families(records: int) -> dict[str, list[Any]]:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import generate_families
    finally:
        sys.path.remove(str(ROOT / "bench"))
    out: dict[str, list[Any]] = {}
    for family in generate_families.FAMILIES:
        hint = generate_families.HINTS[family]
        out[family] = [Hinted(r, hint) if hint else r for r in generate_families.generate(family, records, seed=5)]
    return out


@pytest.mark.parametrize("family", ["docker", "k8s_audit", "eks_audit", "aks_audit", "gke_audit", "gcp_audit",
                                    "azure_activity", "azure_graph"])
def test_an_engine_that_probes_every_family_alerts_and_counts_as_one_that_builds_every_event(family: str) -> None:
    records = _families(1200)[family]
    answered = sum(probe_record(r) is not None for r in records)
    assert answered > len(records) // 2
    batches = [records[i : i + 300] for i in range(0, len(records), 300)]
    batches[0] += batches[0][:50]  # redelivered in the same batch: duplicates, routed or not
    built = _run(batches, probing=False)
    probed = _run(batches, probing=True)
    assert probed == built
    assert built[1]["duplicates"] == 50 and built[1]["routed"] < built[1]["events"] // 2
