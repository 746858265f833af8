"""Fixtures for the Azure Functions app end to end: Azurite, a signed-webhook receiver, the app module.

``app_env`` points the app's settings (environment variables, as app settings are) at Azurite
(Table state, Blob or Queue dead-letter store) and at a loopback webhook receiver that checks the
HMAC signature, creates the state table, and resets the process-wide engine before and after the
test, so each test starts a fresh "instance" with its own table.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import azure.functions as func
import pytest
from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter

from adscore import runtime
from adscore.state.azure_table import AzureTableStateStore
from tests.integration import azurite as _azurite
from tests.integration.webhook_receiver import WebhookReceiver

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

    from tests.integration.azurite import Azurite

REPO = Path(__file__).resolve().parents[3]
APP = REPO / "functions" / "azure" / "function_app.py"
GOLDEN = REPO / "tests" / "golden"
SAMPLES = REPO / ".." / "shared" / "samples"
SECRET = "e2e-webhook-signing-secret"
azurite = _azurite.azurite  # the session fixture


def load_app() -> ModuleType:
    """Import ``functions/azure/function_app.py`` as the Functions host does (a top-level module)."""
    name = "function_app"
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(APP):
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def app() -> ModuleType:
    return load_app()


# --------------------------------------------------------------------------- deliveries


def golden(path: str) -> Any:
    return json.loads((GOLDEN / path).read_text(encoding="utf-8"))


def event_grid(doc: dict[str, Any]) -> func.EventGridEvent:
    """The object the Python worker hands the trigger for one delivered event (its own converter)."""
    datum = meta.Datum(json.dumps(doc), "json")
    event: func.EventGridEvent = EventGridEventInConverter.decode(datum, trigger_metadata={})
    return event


def event_hub(*bodies: bytes | dict[str, Any], first_sequence: int = 100) -> list[func.EventHubEvent]:
    """Event Hub events as the trigger receives them with ``cardinality="many"``."""
    return [
        func.EventHubEvent(
            body=body if isinstance(body, bytes) else json.dumps(body).encode(),
            sequence_number=first_sequence + i,
            offset=str(4096 * (first_sequence + i)),
            enqueued_time=datetime(2024, 5, 14, 10, 30, tzinfo=UTC),
            partition_key=None,
        )
        for i, body in enumerate(bodies)
    ]


GRAPH_COLLECTIONS = (
    "users",
    "groups",
    "applications",
    "servicePrincipals",
    "directoryRoles",
    "roleManagement/directory/roleAssignments",
    "devices",
    "domains",
)


def graph_sweep(n_collections: int = 8, prefix: str = "sweep") -> list[dict[str, Any]]:
    """Microsoft Graph activity records of one user reading 3 endpoints of each collection in 4 minutes.

    Built from the recorded ``get_users`` record (tests/golden/azure_graph), changing only the
    request URI, the time and the request ids.
    """
    template = golden("azure_graph/get_users.input.json")["records"][0]
    records = []
    for i, (collection, suffix) in enumerate(
        (c, s) for c in GRAPH_COLLECTIONS[:n_collections] for s in ("", "/delta", "/$count")
    ):
        record = copy.deepcopy(template)
        request_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{prefix}-{i}"))
        when = f"2024-05-14T10:{1 + i // 6:02d}:{(i * 7) % 60:02d}.0000000Z"
        record["time"] = when
        record["correlationId"] = request_id
        record["properties"].update(
            requestId=request_id,
            operationId=request_id,
            timeGenerated=when,
            requestUri=f"https://graph.microsoft.com/v1.0/{collection}{suffix}",
        )
        records.append(record)
    return records


class _Retry:
    def __init__(self, retry_count: int, max_retry_count: int) -> None:
        self.retry_count = retry_count
        self.max_retry_count = max_retry_count
        self.exception = None


class Invocation(func.Context):
    """The invocation context the worker passes as ``context`` (with its retry context)."""

    def __init__(self, retry_count: int = 0, max_retry_count: int = 8) -> None:
        self._retry = _Retry(retry_count, max_retry_count)
        self._id = str(uuid.uuid4())

    @property
    def invocation_id(self) -> str:
        return self._id

    @property
    def thread_local_storage(self) -> Any:
        return None

    @property
    def function_name(self) -> str:
        return "on_event_hub"

    @property
    def function_directory(self) -> str:
        return str(APP.parent)

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        return self._retry


# --------------------------------------------------------------------------- environment


@dataclass
class AppEnv:
    """What the app under test is connected to."""

    azurite: Azurite
    table: str
    container: str
    receiver: WebhookReceiver

    def store(self) -> AzureTableStateStore:
        return AzureTableStateStore.from_connection_string(self.azurite.connection_string, self.table)

    def entities(self) -> list[dict[str, Any]]:
        with self.store() as store:
            return [dict(e) for e in store.client.list_entities()]

    def dead_letters(self) -> list[dict[str, Any]]:
        from azure.storage.blob import ContainerClient

        client = ContainerClient.from_connection_string(self.azurite.connection_string, self.container)
        if not client.exists():
            return []
        return [json.loads(client.download_blob(b.name).readall()) for b in client.list_blobs()]

    def alerts(self) -> list[dict[str, Any]]:
        """Bodies of the alerts the webhook accepted, after checking every signature."""
        delivered = self.receiver.delivered
        assert all(r.verified for r in delivered), "an alert arrived without a valid HMAC signature"
        return [json.loads(r.body) for r in delivered]


@pytest.fixture
def app_env(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppEnv]:
    import os

    for name in list(os.environ):
        if name.upper().startswith("ADSCORE_") or name.startswith("AzureWebJobsStorage"):
            monkeypatch.delenv(name)
    table = azurite.table_name("state")
    container = f"deadletter-{uuid.uuid4().hex[:12]}"
    with WebhookReceiver(secret=SECRET) as receiver:
        monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
        monkeypatch.setenv("ADSCORE_STATE", f"azuretable://{table}")
        monkeypatch.setenv("ADSCORE_SINKS", receiver.url)
        monkeypatch.setenv("ADSCORE_WEBHOOK_SECRET", SECRET)
        monkeypatch.setenv("ADSCORE_DEADLETTER", f"azureblob://{container}")
        with AzureTableStateStore.from_url(f"azuretable://{table}") as store:
            store.init()
        runtime.reset_engine()
        try:
            yield AppEnv(azurite, table, container, receiver)
        finally:
            runtime.reset_engine()
