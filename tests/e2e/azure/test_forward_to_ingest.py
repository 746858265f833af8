"""The seed's Docker emulation through ``adscore forward docker`` into the Azure ingest endpoint.

The endpoint is the function app's HTTP trigger ``on_ingest`` (``POST /api/ingest``). Tests run no
Functions host, so :class:`tests.e2e.forward_support.EndpointBridge` listens on loopback and hands
each POST to the real ``on_ingest`` as the ``azure.functions.HttpRequest`` the Python worker builds.
State (the replay claims) in Azurite Table storage, alerts to a loopback webhook that checks their
HMAC signature (``ingest_env``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import azure.functions as func
import pytest

from tests.e2e.azure.test_ingest import ingest_env
from tests.e2e.forward_support import Answer, EndpointBridge, forward_and_resume, outage_then_back
from tests.integration.azurite import free_port

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from types import ModuleType

    from tests.e2e.azure.conftest import AppEnv

__all__ = ["ingest_env"]  # the fixture, imported
pytestmark = pytest.mark.integration


def http_trigger(app: ModuleType) -> Callable[[bytes, dict[str, str]], Answer]:
    """What the Functions host does with one request to ``/api/ingest``."""

    def call(body: bytes, headers: dict[str, str]) -> Answer:
        request = func.HttpRequest("POST", "https://adscore-fn.azurewebsites.net/api/ingest", headers=headers, body=body)
        response = app.on_ingest(request)
        return response.status_code, dict(response.headers), response.get_body()

    return call


def test_the_seed_emulation_forwarded_raises_container_snapshot_and_a_restart_sends_nothing_new(
    app: ModuleType, ingest_env: AppEnv, tmp_path: Path
) -> None:
    with EndpointBridge(http_trigger(app)) as bridge:
        forward_and_resume(bridge.url, ingest_env.alerts, tmp_path)
    assert [r.status for r in bridge.requests] == [200]
    assert json.loads(bridge.requests[0].body)["kind"] == "DockerEventBatch"
    assert ingest_env.dead_letters() == []


def test_an_endpoint_outage_loses_nothing_and_a_redelivered_batch_is_answered_409(
    app: ModuleType, ingest_env: AppEnv, tmp_path: Path
) -> None:
    bridge = EndpointBridge(http_trigger(app), port=free_port())
    outage_then_back(bridge.url, lambda: bridge, ingest_env.alerts, tmp_path)
    first, _, again = bridge.requests
    assert [r.status for r in bridge.requests] == [200, 200, 409]
    assert (again.webhook_id, again.body) == (first.webhook_id, first.body)
