"""The Azure ingest endpoint (``on_ingest``, ``POST /api/ingest``) end to end.

The real function app module's HTTP trigger is called with the ``HttpRequest`` the Python worker
builds, with state in Azurite Table storage, dead letters in Azurite Blob storage and alerts to a
loopback webhook that checks the HMAC signature (``tests/e2e/azure/conftest.py``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import azure.functions as func
import pytest

from tests.e2e.ingest_support import (
    INGEST_ENV,
    bearer,
    docker_batch,
    docker_event,
    event_list,
    exec_copy_event,
    refusals,
    signed,
)
from tests.integration.azurite import free_port

if TYPE_CHECKING:
    from types import ModuleType

    from tests.e2e.azure.conftest import AppEnv

pytestmark = pytest.mark.integration


@pytest.fixture
def ingest_env(app_env: AppEnv, monkeypatch: pytest.MonkeyPatch) -> AppEnv:
    from adscore import runtime

    for name, value in INGEST_ENV.items():
        monkeypatch.setenv(name, value)
    runtime.reset_engine()
    return app_env


def post(app: ModuleType, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = func.HttpRequest("POST", "https://adscore-fn.azurewebsites.net/api/ingest", headers=headers, body=body)
    response = app.on_ingest(request)
    assert response.mimetype == "application/json"
    if response.status_code == 503:
        assert response.headers["Retry-After"] == "10"
    return response.status_code, json.loads(response.get_body())


def refused_reasons(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.args[0]  # type: ignore[index]
        for r in caplog.records
        if r.name == "adscore.ingest" and r.getMessage().startswith("ingest request refused")
    ]


def test_eventlist_and_signed_docker_batch_raise_their_alerts(app: ModuleType, ingest_env: AppEnv) -> None:
    status, answer = post(app, event_list(exec_copy_event("frank@example.com", "vault-0")), bearer())
    assert status == 200
    body = docker_batch(docker_event("commit", name="orders-db"), hostname="azvm-docker-02")
    status2, answer2 = post(app, body, signed(body))
    assert status2 == 200
    alerts = ingest_env.alerts()
    assert [a["detection"] for a in alerts] == ["k8s.exec_copy", "container.snapshot"]
    assert answer == {"alerts": [alerts[0]["id"]]} and answer2 == {"alerts": [alerts[1]["id"]]}
    assert "cp -R /data /backup" in alerts[0]["title"]
    assert "azvm-docker-02" in json.dumps(alerts[1]["principal"])


def test_refusals_and_replays_never_reach_the_engine_and_are_counted(
    app: ModuleType, ingest_env: AppEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="adscore.ingest")
    cases = refusals()
    for case in cases:
        assert post(app, case.body, case.headers)[0] == case.status, case.name
    body = docker_batch(docker_event("commit", name="replayed-az"))
    headers = signed(body, "msg_az_replay")
    assert post(app, body, headers)[0] == 200
    assert post(app, body, headers)[0] == 409
    other = docker_batch(docker_event("commit", name="smuggled-az"))
    assert post(app, other, signed(other, "msg_az_replay"))[0] == 409
    assert [a["detection"] for a in ingest_env.alerts()] == ["container.snapshot"]
    assert ingest_env.dead_letters() == []
    assert sorted(refused_reasons(caplog)) == sorted([c.reason for c in cases] + ["replay", "replay"])


def test_an_unreadable_element_is_dead_lettered_and_the_rest_processed(app: ModuleType, ingest_env: AppEnv) -> None:
    doc = json.loads(docker_batch(docker_event("commit", name="partly-broken")))
    doc["events"].insert(0, ["not", "an", "event"])
    body = json.dumps(doc).encode()
    assert post(app, body, signed(body))[0] == 200
    assert [a["detection"] for a in ingest_env.alerts()] == ["container.snapshot"]
    [letter] = ingest_env.dead_letters()
    assert letter["source"] == "azure.on_ingest" and letter["location"] == "docker-forward[0]"


def test_an_unreachable_webhook_answers_503_and_the_retry_is_accepted(
    app: ModuleType, ingest_env: AppEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adscore import runtime

    body = docker_batch(docker_event("commit", name="retried-az"))
    headers = signed(body, "msg_az_retry")
    monkeypatch.setenv("ADSCORE_SINKS", f"http://127.0.0.1:{free_port()}/hook")
    runtime.reset_engine()
    status, answer = post(app, body, headers)
    assert status == 503 and "retry" in answer["error"]
    monkeypatch.setenv("ADSCORE_SINKS", ingest_env.receiver.url)
    runtime.reset_engine()
    assert post(app, body, headers)[0] == 200  # the forwarder's retry: the claim was given back
    assert [a["detection"] for a in ingest_env.alerts()] == ["container.snapshot"]
