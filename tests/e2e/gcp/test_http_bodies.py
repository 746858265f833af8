"""The GCP HTTP entry points answer 400 for a body they cannot read, never 500 (issue 17).

A 500 tells the sender to retry: a Pub/Sub push subscription or an API server's audit webhook
would post the same unreadable body forever. The framework's app is driven in-process (Flask test
client) with the real ``functions/gcp/main.py``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from adscore.deliveries.body import MAX_BODY_DEPTH, UnreadableBody, read_json_body
from adscore.runtime import reset_engine
from tests.e2e.gcp.conftest import SOURCE
from tests.e2e.ingest_support import INGEST_ENV, TOKEN

if TYPE_CHECKING:
    from collections.abc import Iterator

    from flask.testing import FlaskClient


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[FlaskClient]:
    import functions_framework

    monkeypatch.setenv("ADSCORE_STATE", "memory://")
    monkeypatch.delenv("ADSCORE_SINKS", raising=False)
    monkeypatch.delenv("ADSCORE_CONFIG", raising=False)
    monkeypatch.delenv("ADSCORE_DEADLETTER_TOPIC", raising=False)
    for name, value in INGEST_ENV.items():
        monkeypatch.setenv(name, value)
    reset_engine()
    app = functions_framework.create_app(target=request.param, source=str(SOURCE))
    yield app.test_client()
    reset_engine()


AUTH = {"Authorization": f"Bearer {TOKEN}"}  # the ingest endpoint's token; the push endpoint ignores it


def _deep(n: int) -> bytes:
    return b'{"a":' * n + b"1" + b"}" * n


HOSTILE: list[Any] = [
    _deep(1_100),  # the issue's body: RecursionError in get_json, HTTP 500
    b"[" * 5_000 + b"]" * 5_000,
    _deep(MAX_BODY_DEPTH + 5),
    b"\xff\xfe{}",
    b'{"kind": "EventList", "items": [',
    b"",
    b"\x00\x1b]0;x\x07",
]


@pytest.mark.parametrize("client", ["on_k8s_audit", "on_pubsub_push"], indirect=True)
@pytest.mark.parametrize("body", HOSTILE, ids=range(len(HOSTILE)))
def test_an_unreadable_body_is_answered_400(client: FlaskClient, body: bytes) -> None:
    res = client.post("/", data=body, content_type="application/json", headers=AUTH)
    assert res.status_code == 400, res.data[:300]
    assert "error" in json.loads(res.data)


@pytest.mark.parametrize("client", ["on_k8s_audit"], indirect=True)
def test_a_readable_body_with_lone_surrogates_is_processed(client: FlaskClient) -> None:
    # GIVEN an EventList whose only event has a user name with an escaped lone surrogate (orjson refuses it)
    event = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "auditID": "a-1",
        "stage": "ResponseComplete",
        "verb": "list",
        "requestURI": "/api/v1/namespaces/default/secrets",
        "user": {"username": "PLACEHOLDER"},
        "objectRef": {"resource": "secrets", "namespace": "default"},
        "responseStatus": {"code": 200},
        "requestReceivedTimestamp": "2026-03-14T02:00:00Z",
        "stageTimestamp": "2026-03-14T02:00:00Z",
    }
    body = json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [event]})
    body = body.replace("PLACEHOLDER", "eve\\ud800")
    res = client.post("/", data=body.encode(), content_type="application/json", headers=AUTH)
    assert res.status_code == 200, res.data[:300]


def test_read_json_body() -> None:
    assert read_json_body(_deep(MAX_BODY_DEPTH - 1)) is not None
    assert read_json_body(b'"\\ud800"') == "\ud800"
    with pytest.raises(UnreadableBody, match="deeper"):
        read_json_body(_deep(MAX_BODY_DEPTH + 1))
