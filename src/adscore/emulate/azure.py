"""``adscore emulate azure``: the Azure Functions app against Azurite, fed through Event Grid and Event Hub.

What runs where:

- **Azurite** (one ``azurite`` process: Table, Blob and Queue on free loopback ports, in memory)
  holds what the Terraform module (``infra/azure``) creates in the data storage account: the state
  table ``adscorestate`` (made by :func:`adscore.state.init_store`, as ``adscore state init``
  does), the function's dead-letter container ``function-deadletter`` and Event Grid's
  ``eventgrid-deadletter``.
- **The function app** ``functions/azure/function_app.py`` is loaded as the Functions host loads
  it (a top-level module ``function_app``) and indexed (``app.get_functions()``); its trigger
  functions are called in this process with the objects the Python worker builds from the wire
  payloads: ``EventGridEvent`` / ``CloudEvent`` from the library's Event Grid converter, and a
  ``cardinality="many"`` list of ``EventHubEvent`` from its Event Hub converter, with an invocation
  context carrying the retry policy. Azure Functions Core Tools are not on any package registry,
  so there is no host process: the app settings are set in ``os.environ`` for the run, as the
  Terraform module sets them, and restored afterwards.
- **Delivery paths**: Event Grid events (Event Grid or CloudEvents schema) go one per invocation
  to ``on_event_grid``, after the subscription's filter (``infra/azure/generated/
  event_grid_filter.json``: included event types and ``data.operationName``). Diagnostic-settings
  documents (``{"records": [...]}``) go as one Event Hub event each; bare Activity Log, Graph
  activity and sign-in records are grouped into such documents, as diagnostic settings do; and
  Kubernetes audit events become AKS ``kube-audit`` records (the audit event as a JSON string in
  ``properties.log``). Event Hub events go to ``on_event_hub`` in batches of up to 100, one batch
  never spanning two input files. Kubernetes audit ``EventList`` records (a self-managed API
  server's webhook batch) and Docker Engine events (``adscore forward docker``'s signed batches)
  go to ``on_ingest`` as ``HttpRequest`` objects (``POST /api/ingest``, :mod:`adscore.emulate.ingest`).
  Other shapes (AWS, GCP) are skipped with a reason.
- **The far end**: the app's webhook sink (``ADSCORE_SINKS``) posts each alert, signed with
  :data:`~adscore.emulate.WEBHOOK_SECRET`, to a loopback :class:`~adscore.emulate.receiver.WebhookReceiver`;
  verified alerts are printed as they arrive, others counted as unverified. Records the app
  dead-letters (blobs in ``function-deadletter``) count as failed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import re
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import orjson

from adscore.emulate import (
    NAME_PREFIX,
    WEBHOOK_SECRET,
    EmulationResult,
    EmulatorMissing,
    function_file,
    iter_records,
    repo_root,
)
from adscore.emulate.ingest import IngestSender, ingest_kind, ingest_settings
from adscore.errors import AdscoreError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from types import ModuleType

    from adscore.emulate import Reporter
    from adscore.emulate.azurite import Azurite
    from adscore.emulate.receiver import Received

__all__ = [
    "AKS_RESOURCE_ID",
    "EVENTHUB_BATCH",
    "FUNCTION_DEAD_LETTER",
    "GRID_DEAD_LETTER",
    "PATH_EVENT_GRID",
    "PATH_EVENT_HUB",
    "PATH_INGEST_DOCKER",
    "PATH_INGEST_K8S",
    "STATE_TABLE",
    "aks_record",
    "app_settings",
    "event_grid_event",
    "event_hub_events",
    "load_function_app",
    "run",
]

# Names as infra/azure/main.tf and variables.tf create them (a test compares).
STATE_TABLE = "adscorestate"
"""``var.state_table_name`` default: the state table."""
FUNCTION_DEAD_LETTER = "function-deadletter"
"""``local.function_dead_letter``: where the function writes records it will not retry."""
GRID_DEAD_LETTER = "eventgrid-deadletter"
"""``local.grid_dead_letter``: the Event Grid subscription's dead-letter container."""
EVENTHUB_NAME = "diagnostic-logs"
"""``local.eventhub_name``."""
CONSUMER_GROUP = "adscore"
"""``local.consumer_group``."""

PATH_EVENT_GRID = "event grid -> on_event_grid"
PATH_EVENT_HUB = "diagnostic settings -> event hub -> on_event_hub"
PATH_INGEST_K8S = "k8s audit webhook -> /api/ingest -> on_ingest"
PATH_INGEST_DOCKER = "adscore forward docker -> /api/ingest -> on_ingest"

EVENTHUB_BATCH = 100
"""Events per ``on_event_hub`` invocation at most (the Event Hubs extension's ``maxEventBatchSize`` default)."""
MAX_EVENT_BYTES = 1_000_000
"""Largest Event Hub event body (Standard tier: 1 MB); bigger documents are split."""
MAX_RECORDS_PER_BODY = 100
"""Bare records grouped into one ``{"records": [...]}`` body at most."""

#: The AKS cluster emulated Kubernetes audit events come from (AKS writes resourceId in capitals).
#: Its subscription is the one the bundled Azure examples use.
AKS_RESOURCE_ID = (
    "/SUBSCRIPTIONS/00000000-1111-2222-3333-444444444444/RESOURCEGROUPS/ADSCORE-EMULATE"
    "/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/ADSCORE-EMULATE"
)
AKS_OPERATION = "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read"
AKS_CATEGORY = "kube-audit"

INSTALL_EXTRA = "pip install 'adscore[azure]'"
APP_MODULE = "function_app"
MAX_NOTES = 20

log = logging.getLogger("adscore.emulate.azure")

_LOCATION = re.compile(r"(:\d+|\[\d+\])$")


# --------------------------------------------------------------------------- shapes


def aks_record(event: Mapping[str, Any], resource_id: str = AKS_RESOURCE_ID) -> dict[str, Any]:
    """The ``kube-audit`` diagnostic record AKS ships for one ``audit.k8s.io`` Event.

    The audit event travels as a JSON string in ``properties.log``, as AKS writes it.
    """
    when = event.get("stageTimestamp") or event.get("requestReceivedTimestamp")
    return {
        "operationName": AKS_OPERATION,
        "category": AKS_CATEGORY,
        "resourceId": resource_id,
        "properties": {
            "log": orjson.dumps(event, default=str).decode(),
            "stream": "stdout",
            "pod": "kube-apiserver-adscore-emulate",
        },
        "time": when if isinstance(when, str) else datetime.now(UTC).isoformat(),
        "Cloud": "AzureCloud",
    }


def _route(record: Any) -> tuple[str, Any]:
    """``("grid", event)``, ``("doc", document)``, ``("records", [record, ...])`` or ``("skip", reason)``."""
    from adscore.sources import sniff

    family = sniff(record)
    if family == "kubernetes":
        items = record.get("items") if record.get("kind") == "EventList" else None
        if isinstance(items, list):
            return "records", [aks_record(i) if isinstance(i, dict) else i for i in items]
        return "records", [aks_record(record)]
    if family == "azure":
        if isinstance(record.get("records"), list):
            return "doc", record
        if "specversion" in record or ("eventType" in record and "data" in record):
            return "grid", record
        return "records", [record]
    what = f"{family} record" if family else "unrecognized record"
    return "skip", f"{what}: no azure delivery path (Event Grid or diagnostic settings to Event Hub)"


def _grid_filter() -> dict[str, Any] | None:
    root = repo_root()
    path = root / "infra" / "azure" / "generated" / "event_grid_filter.json" if root else None
    if path is None or not path.is_file():
        return None
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def _filtered_out(event: Mapping[str, Any], flt: Mapping[str, Any] | None) -> str | None:
    """Why the Terraform module's Event Grid subscription would not deliver ``event`` (None: it would)."""
    if flt is None:
        return None
    etype = event.get("eventType", event.get("type"))
    if etype not in flt.get("included_event_types", ()):
        return f"event type {str(etype)[:100]!r} is not in the subscription's included event types"
    value: Any = event
    for part in str(flt.get("advanced_filter_key", "")).split("."):
        value = value.get(part) if isinstance(value, dict) else None
    allowed = {str(v).lower() for chunk in flt.get("operation_name_chunks", ()) for v in chunk}
    if not isinstance(value, str) or value.lower() not in allowed:
        return f"{flt.get('advanced_filter_key')} {str(value)[:120]!r} is not in the subscription's filter"
    return None


# --------------------------------------------------------------------------- trigger objects


def event_grid_event(event: Mapping[str, Any]) -> Any:
    """The ``EventGridEvent`` (or ``CloudEvent``) the Python worker passes for one delivered event."""
    from azure.functions import meta
    from azure.functions.eventgrid import EventGridEventInConverter

    datum = meta.Datum(orjson.dumps(event, default=str).decode(), "json")
    return EventGridEventInConverter.decode(datum, trigger_metadata={})


def event_hub_events(bodies: Sequence[bytes], first_sequence: int = 0) -> list[Any]:
    """The ``EventHubEvent`` list the worker passes to a ``cardinality="many"`` trigger.

    Built by the library's own converter from the wire form: the bodies as ``collection_bytes``
    and their system properties in ``SystemPropertiesArray``.
    """
    from azure.functions import meta
    from azure.functions.eventhub import EventHubTriggerConverter

    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    props = [
        {
            "SequenceNumber": first_sequence + i,
            "Offset": 1024 * (first_sequence + i),
            "EnqueuedTimeUtc": now,
            "PartitionKey": None,
        }
        for i in range(len(bodies))
    ]
    datum = meta.Datum(SimpleNamespace(bytes=list(bodies)), "collection_bytes")
    events = EventHubTriggerConverter.decode(
        datum, trigger_metadata={"SystemPropertiesArray": meta.Datum(json.dumps(props), "json")}
    )
    return events if isinstance(events, list) else [events]


def _context(function_name: str, directory: str, max_retry_count: int) -> Any:
    """An invocation context (first attempt of the function's retry policy)."""
    import azure.functions as func

    retry = SimpleNamespace(retry_count=0, max_retry_count=max_retry_count, exception=None)

    class Context(func.Context):
        def __init__(self) -> None:
            self._id = str(uuid.uuid4())

        @property
        def invocation_id(self) -> str:
            return self._id

        @property
        def thread_local_storage(self) -> Any:
            return threading.local

        @property
        def function_name(self) -> str:
            return function_name

        @property
        def function_directory(self) -> str:
            return directory

        @property
        def trace_context(self) -> Any:
            return None

        @property
        def retry_context(self) -> Any:
            return retry

    return Context()


def load_function_app(path: Path) -> ModuleType:
    """Import ``function_app.py`` as the Functions host does (a top-level module), freshly.

    Each call is a new "instance" (its own dead-letter clients); ``sys.modules`` is left as it was.
    """
    spec = importlib.util.spec_from_file_location(APP_MODULE, path)
    if spec is None or spec.loader is None:
        raise AdscoreError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(APP_MODULE)
    sys.modules[APP_MODULE] = module
    try:
        spec.loader.exec_module(module)
    finally:
        if previous is None:
            sys.modules.pop(APP_MODULE, None)
        else:
            sys.modules[APP_MODULE] = previous
    return module


def _index(module: ModuleType) -> dict[str, tuple[str, Callable[..., Any]]]:
    """``name -> (trigger binding type, user function)`` as the host indexes the app."""
    root = logging.getLogger()
    guard = logging.NullHandler()
    # get_functions() warns through logging.warning(), which would configure the root logger
    if not root.handlers:
        root.addHandler(guard)
    try:
        functions = module.app.get_functions()
    finally:
        root.removeHandler(guard)
    out: dict[str, tuple[str, Callable[..., Any]]] = {}
    for f in functions:
        bindings = json.loads(f.get_function_json())["bindings"]
        trigger: dict[str, Any] = next(
            (b for b in bindings if str(b.get("type", "")).endswith("Trigger")), {}
        )
        kind = str(trigger.get("type", ""))
        if kind == "eventHubTrigger" and str(trigger.get("cardinality", "")).lower() != "many":
            kind += "(one)"
        out[f.get_function_name()] = (kind, f.get_user_function())
    return out


# --------------------------------------------------------------------------- app settings


def app_settings(azurite: Azurite, webhook_url: str, config: str | None) -> dict[str, str]:
    """The app settings ``infra/azure/main.tf`` gives the function, pointed at Azurite and the receiver.

    Azurite takes its well-known account key, so storage is reached with a connection string
    (``AzureWebJobsStorage``) instead of the managed identity and ``?endpoint=`` the module uses;
    the sinks are the loopback webhook only (the module adds ``stdout://jsonl``, which goes to
    Application Insights there and would mix with this command's output here).
    """
    settings = {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "AzureWebJobsStorage": azurite.connection_string,
        "ADSCORE_STATE": f"azuretable://{STATE_TABLE}",
        "ADSCORE_DEADLETTER": f"azureblob://{FUNCTION_DEAD_LETTER}",
        "ADSCORE_EVENTHUB_NAME": EVENTHUB_NAME,
        "ADSCORE_EVENTHUB_CONSUMER_GROUP": CONSUMER_GROUP,
        "ADSCORE_SINKS": webhook_url,
        "ADSCORE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        **ingest_settings(),  # Key Vault references, resolved by the platform into the values
    }
    if config:
        settings["ADSCORE_CONFIG"] = str(Path(config).resolve())
    return settings


@contextlib.contextmanager
def _app_environment(settings: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` holding only ``settings`` of adscore's and the host's variables; restored after.

    Other ``ADSCORE_*`` and ``AzureWebJobsStorage*`` variables of the caller are hidden for the
    run (a deployed app sees its app settings only), and the process-wide engine is reset
    before and after.
    """
    from adscore import runtime

    saved = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("ADSCORE_", "AzureWebJobsStorage")) or k in settings
    }
    for k in saved:
        del os.environ[k]
    os.environ.update(settings)
    runtime.reset_engine()
    try:
        yield
    finally:
        try:
            runtime.reset_engine()
        finally:
            for k in settings:
                os.environ.pop(k, None)
            os.environ.update(saved)


# --------------------------------------------------------------------------- delivery


class _Deliverer:
    """Sends routed records to the app's triggers in input order, batching Event Hub events."""

    def __init__(
        self,
        functions: Mapping[str, tuple[str, Callable[..., Any]]],
        directory: str,
        max_retry_count: int,
        result: EmulationResult,
        reporter: Reporter,
    ) -> None:
        self._grid = functions["on_event_grid"][1]
        self._hub = functions["on_event_hub"][1]
        self._ingest = functions["on_ingest"][1]
        self.ingest = IngestSender(
            self._post_ingest, result, reporter, k8s_path=PATH_INGEST_K8S, docker_path=PATH_INGEST_DOCKER
        )
        self._directory = directory
        self._max_retry = max_retry_count
        self.result = result
        self.reporter = reporter
        self.sequence = 0
        # pending Event Hub events: (body, [input ref of each record])
        self._events: list[tuple[bytes, list[str]]] = []
        self._records: list[Any] = []
        self._record_refs: list[str] = []
        self._records_size = 0
        self._file: str | None = None
        # function ref -> input ref, to name dead-lettered records by where they came from
        self.origin: dict[str, str] = {}
        self._notes = 0

    def _note_failure(self, message: str) -> None:
        if self._notes < MAX_NOTES:
            self.reporter.note(message)
        self._notes += 1

    # -- input -------------------------------------------------------------------------

    def _post_ingest(self, body: bytes, headers: dict[str, str]) -> int:
        """``POST /api/ingest`` as the worker hands it to ``on_ingest``; the answer's status."""
        import azure.functions as func

        request = func.HttpRequest("POST", "http://127.0.0.1/api/ingest", headers=headers, body=body)
        try:
            return int(self._ingest(request).status_code)
        except Exception as exc:  # the host answers 500 when the function raises
            self._note_failure(f"on_ingest raised {type(exc).__name__}: {str(exc)[:200]}")
            return 500

    def add(self, ref: str, record: Any, grid_filter: Mapping[str, Any] | None) -> None:
        file = _LOCATION.sub("", ref)
        if file != self._file:
            self.flush()
            self._file = file
        ingest = ingest_kind(record)
        if ingest == "docker":
            self._close_body()
            if self._events:
                self._send_hub()
            self.ingest.docker(file, record)
            return
        self.ingest.flush()
        if ingest == "eventlist":
            self.flush()
            self.ingest.event_list(record)
            return
        kind, value = _route(record)
        if kind == "skip":
            self.result.skipped.append(f"{ref}: {value}")
        elif kind == "grid":
            reason = _filtered_out(value, grid_filter)
            if reason is not None:
                self.result.skipped.append(f"{ref}: not delivered by the Event Grid subscription: {reason}")
                return
            self.flush()
            self._send_grid(ref, value)
        elif kind == "doc":
            self._close_body()
            self._add_document(ref, value)
        else:
            multi = len(value) > 1
            for i, rec in enumerate(value):
                self._add_record(f"{ref}#items[{i}]" if multi else ref, rec)

    def _add_record(self, ref: str, record: Any) -> None:
        size = len(orjson.dumps(record, default=str)) + 1
        if self._records and (
            len(self._records) >= MAX_RECORDS_PER_BODY or self._records_size + size > MAX_EVENT_BYTES - 64
        ):
            self._close_body()
        self._records.append(record)
        self._record_refs.append(ref)
        self._records_size += size

    def _close_body(self) -> None:
        if self._records:
            self._push(orjson.dumps({"records": self._records}, default=str), list(self._record_refs))
        self._records, self._record_refs, self._records_size = [], [], 0

    def _add_document(self, ref: str, doc: dict[str, Any]) -> None:
        body = orjson.dumps(doc, default=str)
        records = doc["records"]
        if len(body) <= MAX_EVENT_BYTES or len(records) <= 1:
            self._push(body, [f"{ref}/records[{i}]" for i in range(len(records))] or [ref])
            return
        for i, rec in enumerate(records):  # too big for one event: split as diagnostic settings would
            self._add_record(f"{ref}/records[{i}]", rec)
        self._close_body()

    def _push(self, body: bytes, refs: list[str]) -> None:
        self._events.append((body, refs))
        if len(self._events) >= EVENTHUB_BATCH:
            self._send_hub()

    def flush(self) -> None:
        """Send what is pending (at a file's end, before an Event Grid event, at the end)."""
        self.ingest.flush()
        self._close_body()
        if self._events:
            self._send_hub()

    # -- invocations ---------------------------------------------------------------------

    def _send_grid(self, ref: str, event: Mapping[str, Any]) -> None:
        delivery = self.result.delivery(PATH_EVENT_GRID)
        delivery.invocations += 1
        delivery.records += 1
        self.origin[f"eventgrid:{event.get('id')}"] = ref
        try:
            self._grid(event_grid_event(event))
        except Exception as exc:  # Event Grid would retry, then dead-letter to eventgrid-deadletter
            delivery.failed += 1
            self._note_failure(
                f"on_event_grid failed for {ref[:200]} ({type(exc).__name__}): Event Grid would retry it"
            )

    def _send_hub(self) -> None:
        events, self._events = self._events, []
        delivery = self.result.delivery(PATH_EVENT_HUB)
        delivery.invocations += 1
        first = self.sequence
        self.sequence += len(events)
        n = 0
        for i, (_body, refs) in enumerate(events):
            for j, origin in enumerate(refs):
                self.origin[f"eventhub:{first + i}/records[{j}]"] = origin
            self.origin[f"eventhub:{first + i}"] = refs[0] if len(refs) == 1 else _LOCATION.sub("", refs[0])
            n += len(refs)
        delivery.records += n
        context = _context("on_event_hub", self._directory, self._max_retry)
        try:
            self._hub(event_hub_events([b for b, _ in events], first), context)
        except Exception as exc:  # the retry policy would run the batch again
            delivery.failed += n
            self._note_failure(
                f"on_event_hub failed for a batch of {n} records from {_LOCATION.sub('', events[0][1][0])[:200]} "
                f"({type(exc).__name__}): its retry policy would run it again"
            )


# --------------------------------------------------------------------------- far end


def _dead_letters(
    connection_string: str, deliverer: _Deliverer, result: EmulationResult, reporter: Reporter
) -> None:
    """Count the records the app dead-lettered, per trigger, and name the first few."""
    from azure.storage.blob import ContainerClient

    paths = {"azure.on_event_grid": PATH_EVENT_GRID, "azure.on_event_hub": PATH_EVENT_HUB}
    shown = 0
    with ContainerClient.from_connection_string(connection_string, FUNCTION_DEAD_LETTER) as client:
        for blob in client.list_blobs():
            function = str(blob.name).split("/", 1)[0]
            doc: dict[str, Any] = {}
            if shown < MAX_NOTES or function == "azure.on_ingest":
                try:
                    doc = orjson.loads(client.download_blob(blob.name).readall())
                except (orjson.JSONDecodeError, OSError):
                    doc = {}
            ref = str(doc.get("location", ""))
            if function == "azure.on_ingest":
                path = PATH_INGEST_DOCKER if ref.startswith("docker-forward") else PATH_INGEST_K8S
            else:
                path = paths.get(function, function)
            result.delivery(path).failed += 1
            if shown < MAX_NOTES:
                shown += 1
                where = deliverer.origin.get(ref, ref)
                reporter.note(f"dead-lettered {where[:200]}: {str(doc.get('reason', '?'))[:200]}")


def _state_items(connection_string: str) -> list[dict[str, Any]]:
    """The state table's entities: keys, kind, expiry, member count, the clear key (capped)."""
    from azure.data.tables import TableClient

    items: list[dict[str, Any]] = []
    with TableClient.from_connection_string(connection_string, STATE_TABLE) as client:
        for entity in client.list_entities():
            item: dict[str, Any] = {"PartitionKey": entity["PartitionKey"], "RowKey": entity["RowKey"]}
            for name in ("k", "n", "expires_at", "v"):
                value = getattr(entity.get(name), "value", entity.get(name))  # Int64 comes as EntityProperty
                if value is not None:
                    item[name] = value[:200] if isinstance(value, str) else int(value)
            items.append(item)
    return items


def _create_resources(azurite: Azurite) -> None:
    """The state table (``adscore state init``) and the dead-letter containers of the Terraform module."""
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.blob import BlobServiceClient

    from adscore.state import init_store

    init_store(f"azuretable://{STATE_TABLE}")  # reads AzureWebJobsStorage, as the app does
    with BlobServiceClient.from_connection_string(azurite.connection_string) as blobs:
        for name in (FUNCTION_DEAD_LETTER, GRID_DEAD_LETTER):
            with contextlib.suppress(ResourceExistsError):
                blobs.create_container(name)


def _require() -> Path:
    """The function app's path; raises when Azurite, the azure extra or the app is missing."""
    from adscore.emulate.azurite import require_azurite

    require_azurite()
    try:
        import azure.data.tables
        import azure.functions
        import azure.storage.blob  # noqa: F401
    except ImportError as exc:
        raise EmulatorMissing(
            "the Azure extra (azure-functions, azure-data-tables, azure-storage-blob)", INSTALL_EXTRA
        ) from exc
    return function_file("azure/function_app.py")


# --------------------------------------------------------------------------- entry point


def run(paths: Sequence[str], *, config: str | None, keep: bool, reporter: Reporter) -> EmulationResult:
    """Run the Azure function app against Azurite and send ``paths`` through Event Grid and Event Hub.

    Parameters
    ----------
    paths : sequence of str
        Log files or folders (Event Grid events, diagnostic-settings documents or records,
        Kubernetes audit events).
    config : str, optional
        Settings YAML, given to the app as ``ADSCORE_CONFIG``.
    keep : bool
        Keep Azurite and the webhook receiver up after the summary until Ctrl-C or SIGTERM.
    reporter : Reporter
        Prints progress, alerts as they arrive, state items and the summary.

    Returns
    -------
    EmulationResult

    Raises
    ------
    EmulatorMissing
        Azurite (``npm ci``) or the azure extra (``pip install 'adscore[azure]'``) is not installed.
    AdscoreError
        No function app (not a source checkout), or a bad setting (``ConfigError``).
    """
    from adscore.emulate.azurite import start_azurite
    from adscore.emulate.receiver import WebhookReceiver

    app_path = _require()
    started = time.monotonic()
    result = EmulationResult("azure")
    lock = threading.Lock()

    def received(request: Received) -> None:
        if not request.verified:
            with lock:
                result.unverified += 1
            reporter.note("a webhook request failed signature verification (not counted as an alert)")
            return
        try:
            alert = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            reporter.note("a signed webhook request whose body is not JSON")
            return
        if isinstance(alert, dict):
            reporter.alert(alert)

    with contextlib.ExitStack() as stack:
        reporter.note("starting Azurite (Table, Blob, Queue) on 127.0.0.1")
        try:
            azurite = start_azurite()
        except RuntimeError as exc:
            raise AdscoreError(str(exc)[:2000]) from exc
        stack.callback(azurite.stop)
        receiver = stack.enter_context(WebhookReceiver(secret=WEBHOOK_SECRET, on_receive=received))
        endpoints = {**azurite.endpoints, "webhook receiver": receiver.url}
        reporter.note(", ".join(f"{k} {v}" for k, v in endpoints.items()))
        settings = app_settings(azurite, receiver.url, config)
        with _app_environment(settings):
            _create_resources(azurite)
            reporter.note(
                f"created table {STATE_TABLE}, containers {FUNCTION_DEAD_LETTER} and {GRID_DEAD_LETTER} "
                f"(infra/azure, name_prefix {NAME_PREFIX!r})"
            )
            from adscore.runtime import get_engine

            get_engine()  # what the app builds on its first invocation: a bad setting fails here, named
            module = load_function_app(app_path)
            functions = _index(module)
            triggers = (("on_event_grid", "eventGridTrigger"), ("on_event_hub", "eventHubTrigger"),
                        ("on_ingest", "httpTrigger"))  # fmt: skip
            for name, kind in triggers:
                if functions.get(name, ("", None))[0] != kind:
                    raise AdscoreError(f"{app_path} declares no {name} function with an {kind}")
            retries = int(getattr(module, "EVENTHUB_RETRIES", 0))
            deliverer = _Deliverer(functions, str(app_path.parent), retries, result, reporter)
            grid_filter = _grid_filter()
            reporter.note(f"sending {', '.join(paths)} to functions/azure/function_app.py")
            for ref, record in iter_records(paths, result):
                deliverer.add(ref, record, grid_filter)
            deliverer.flush()
        _dead_letters(azurite.connection_string, deliverer, result, reporter)
        result.state_items = _state_items(azurite.connection_string)
        reporter.state_items(result.state_items)
        result.alerts = reporter.alerts
        result.endpoints = endpoints
        result.env = {
            "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
            "AzureWebJobsStorage": azurite.connection_string,
            "ADSCORE_STATE": f"azuretable://{STATE_TABLE}",
            "ADSCORE_SINKS": receiver.url,
            "ADSCORE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        }
        result.seconds = time.monotonic() - started
        reporter.summary(result)
        if keep:
            from adscore.emulate import StopSignals

            with StopSignals() as signals:  # armed before the endpoints are announced
                reporter.keep(result.endpoints, result.env)
                signals.wait()
            reporter.note("stopping Azurite and the webhook receiver")
    return result
