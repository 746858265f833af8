"""Family sniffing and the never-raising dispatcher."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

import adscore.sources as sources
from adscore.events import Event, RecordError
from adscore.sources import parse_record, parse_records, sniff

K8S = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "auditID": "a1",
    "verb": "get",
    "stage": "ResponseComplete",
    "requestURI": "/api/v1/namespaces",
    "objectRef": {"resource": "namespaces", "apiVersion": "v1"},
    "user": {"username": "alice"},
    "responseStatus": {"code": 200},
    "stageTimestamp": "2024-01-01T00:00:00Z",
}
DOCKER = {
    "Type": "container",
    "Action": "commit",
    "Actor": {"ID": "c1", "Attributes": {}},
    "time": 1700000000,
    "timeNano": 1700000000000000000,
}


@pytest.mark.parametrize(
    ("obj", "family"),
    [
        (K8S, "kubernetes"),
        ({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": []}, "kubernetes"),
        ({"kind": "Event", "verb": "get", "objectRef": {}}, "kubernetes"),  # apiVersion dropped by a shipper
        (
            {"kind": "Event", "apiVersion": "v1", "involvedObject": {}},
            None,
        ),  # a core/v1 Event is no audit record
        ({"kind": 0}, None),
        ({"Records": [{"eventSource": "ec2.amazonaws.com", "eventName": "CreateSnapshot"}]}, "aws"),
        ({"Records": [{"eventSource": "aws:s3", "s3": {}}]}, "aws"),
        ({"awslogs": {"data": "H4sI"}}, "aws"),
        ({"messageType": "DATA_MESSAGE", "logEvents": []}, "aws"),
        ({"detail-type": "AWS API Call via CloudTrail", "detail": {}}, "aws"),
        ({"eventSource": "ec2.amazonaws.com", "eventName": "CreateSnapshot", "eventTime": "x"}, "aws"),
        ({"records": []}, "azure"),
        ({"eventType": "Microsoft.Resources.ResourceWriteSuccess", "data": {}}, "azure"),
        ({"specversion": "1.0", "type": "Microsoft.Resources.ResourceActionSuccess"}, "azure"),
        ({"operationName": "Microsoft.Compute/snapshots/write", "category": "Administrative"}, "azure"),
        ({"protoPayload": {}, "insertId": "i"}, "gcp"),
        ({"specversion": "1.0", "type": "google.cloud.pubsub.topic.v1.messagePublished"}, "gcp"),
        ({"message": {"data": "e30=", "messageId": "1"}, "subscription": "s"}, "gcp"),
        ({"data": "e30=", "messageId": "1"}, "gcp"),
        (DOCKER, "docker"),
        ({"Action": "start", "Actor": {}}, "docker"),
        ({"status": "start", "id": "c", "from": "img", "time": 1}, "docker"),
        ({"hello": "world"}, None),
        ([K8S], None),
        ("text", None),
        (None, None),
    ],
)
def test_sniff(obj: Any, family: str | None) -> None:
    assert sniff(obj) == family


def test_parse_record_routes_to_family() -> None:
    [k] = parse_record(K8S, "f:1")
    [d] = parse_record(DOCKER, "f:2")
    assert isinstance(k, Event) and k.cloud == "kubernetes"
    assert isinstance(d, Event) and d.cloud == "docker" and d.action == "container.commit"


def test_top_level_list_is_read_element_by_element() -> None:
    out = parse_record([K8S, {"x": 1}, DOCKER, [K8S]], "f")
    assert [type(r).__name__ for r in out] == ["Event", "RecordError", "Event", "RecordError"]
    errors = [r for r in out if isinstance(r, RecordError)]
    assert [e.location for e in errors] == ["f[1]", "f[3]"]
    assert "a JSON list" in errors[1].reason


def test_unknown_shape_names_first_eight_keys() -> None:
    obj = {f"k{i}": i for i in range(12)}
    [err] = parse_record(obj, "f:9")
    assert isinstance(err, RecordError)
    assert err.family == "input" and err.location == "f:9"
    assert err.reason == "unrecognised record shape (keys: k0,k1,k2,k3,k4,k5,k6,k7,...)"
    assert err.excerpt.startswith('{"k0":0')
    [err] = parse_record({}, "e")
    assert isinstance(err, RecordError) and "empty object" in err.reason


def _boom(obj: Any, location: str) -> list[Event | RecordError]:
    raise RuntimeError("kaput")


def test_missing_family_module_and_raising_parser_become_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a family whose module is missing and one whose parser raises
    monkeypatch.setattr(sources, "_loaded", {})
    monkeypatch.setitem(sources.FAMILIES, "docker", "adscore.sources.no_such_module:parse")
    monkeypatch.setitem(sources.FAMILIES, "kubernetes", f"{__name__}:_boom")
    # WHEN records of both are parsed
    [d] = parse_record(DOCKER, "a")
    [k] = parse_record(K8S, "b")
    # THEN each gives a RecordError naming the cause, nothing raises
    assert isinstance(d, RecordError) and d.family == "docker" and "unavailable" in d.reason
    assert "ModuleNotFoundError" in d.reason
    assert isinstance(k, RecordError) and k.family == "kubernetes"
    assert k.reason == "unexpected RuntimeError: kaput" and k.location == "b"


def test_parse_records_passes_errors_through_in_order() -> None:
    pre = RecordError(family="input", reason="invalid JSON: x", location="f:2")
    out = list(parse_records([("f:1", K8S), pre, ("f:3", DOCKER)]))
    assert out[1] is pre
    assert isinstance(out[0], Event) and isinstance(out[2], Event)


def test_family_modules_import_lazily() -> None:
    # GIVEN a fresh interpreter WHEN adscore.sources is imported THEN no family parser is loaded
    code = (
        "import sys, adscore.sources as s; "
        "print(sorted(m for m in sys.modules if m.startswith('adscore.sources.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['adscore.sources.common']"
    for target in sources.FAMILIES.values():
        module, _, func = target.partition(":")
        assert module.startswith("adscore.sources.") and func == "parse"
