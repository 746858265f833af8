"""adscore on Azure Functions (Python v2 programming model). No detection logic here.

Each trigger unwraps its delivery into raw records, runs the shared engine
(:func:`adscore.runtime.run_batch`) and reports failures the way its platform retries:

- ``on_event_grid``: one event from an Event Grid subscription on a subscription's system topic
  (``Microsoft.Resources.ResourceWriteSuccess``, ``...ActionSuccess``, ``...DeleteSuccess`` and their
  failure forms), in the Event Grid or the CloudEvents 1.0 schema. A state or sink failure raises,
  so Event Grid redelivers the event (its retry policy and dead-letter container are set on the
  subscription).
- ``on_event_hub``: a batch of Event Hub events sent by diagnostic settings, each a
  ``{"records": [...]}`` document (Activity Log, AKS ``kube-audit``, Microsoft Graph activity logs,
  Entra sign-ins). Event Hub never redelivers a single event, so a record that cannot be read is
  written with its reason to the dead-letter store (``ADSCORE_DEADLETTER``) and the rest of the
  batch goes on; a state or sink failure raises, so the function's retry policy runs the whole
  batch again (every write is idempotent). On the last retry the failed records are dead-lettered
  too before the error is raised: nothing is dropped silently.
- ``cleanup_state``: a daily timer that deletes state entities whose event-time expiry is more
  than 30 days old (``AzureTableStateStore.cleanup``).

Configuration is app settings only (see README.md): ``ADSCORE_STATE`` (``azuretable://TABLE``),
``ADSCORE_SINKS``, ``ADSCORE_CONFIG``, ``ADSCORE_WEBHOOK_SECRET`` (a Key Vault reference),
``ADSCORE_DEADLETTER`` (``azureblob://CONTAINER`` or ``azurequeue://QUEUE``), and for the Event Hub
trigger ``ADSCORE_EVENTHUB`` (connection), ``ADSCORE_EVENTHUB_NAME`` and
``ADSCORE_EVENTHUB_CONSUMER_GROUP``. Logs go through :mod:`logging`, which the Functions host
sends to Application Insights: one JSON line per invocation with counts and alert ids, never
secrets nor whole events.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import typing
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
import orjson

from adscore.errors import ConfigError
from adscore.events import RecordError
from adscore.runtime import get_engine, raise_for_delivery, run_batch

if typing.TYPE_CHECKING:
    from adscore.engine import BatchReport

app = func.FunctionApp()
log = logging.getLogger("adscore.functions.azure")
# The storage SDK logs every HTTP request at INFO; keep Application Insights for what matters.
logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)

EVENTHUB_RETRIES = 8
"""Retries of a failed Event Hub batch (exponential backoff, 5 s to 10 min) before it is dead-lettered."""
CLEANUP_SCHEDULE = "0 17 3 * * *"
"""NCRONTAB (with seconds) of the state cleanup: every day at 03:17 UTC."""
MAX_LOGGED = 50
"""Alert ids and failed records named in one log line at most."""
MAX_QUEUE_JSON = 45_000
"""A dead-letter queue message holds 64 KiB base64-encoded: larger records are cut."""


# --------------------------------------------------------------------------- triggers


def on_event_grid(event: func.EventGridEvent) -> None:
    """One Event Grid event; raises when its state or alert could not be saved or sent."""
    ref, record = eventgrid_item(event)
    report = run_batch([(ref, record)])
    finish("on_event_grid", report, {ref: record}, final=False)


def on_event_hub(events: typing.List[func.EventHubEvent], context: func.Context) -> None:  # noqa: UP006 - the worker needs typing.List
    """A batch of diagnostic-settings events; raises on state or sink failures so the retry policy runs."""
    items, unreadable = eventhub_items(events)
    report = run_batch(items)
    for ref, reason in unreadable.items():
        report.errors.append(RecordError(family="eventhub", reason=reason, location=ref))
        report.failed[ref] = f"unreadable: {reason}"
        report.counts["errors"] += 1
    records = dict(items) | {ref: _body(events, ref) for ref in unreadable}
    finish("on_event_hub", report, records, final=last_attempt(context), invocation=context.invocation_id)


def cleanup_state(timer: func.TimerRequest) -> None:
    """Daily: delete state that expired over 30 days ago (Table storage has no TTL of its own)."""
    cleanup = getattr(get_engine().store, "cleanup", None)
    deleted = cleanup() if cleanup is not None else 0
    log.info(
        "adscore state cleanup: %s", orjson.dumps({"deleted": deleted, "past_due": timer.past_due}).decode()
    )


# Registered explicitly, so the module keeps the plain functions (tests call them directly).
app.timer_trigger(arg_name="timer", schedule=CLEANUP_SCHEDULE, run_on_startup=False, use_monitor=True)(
    cleanup_state
)
app.event_grid_trigger(arg_name="event")(on_event_grid)
app.retry(
    strategy="exponential_backoff",
    max_retry_count=str(EVENTHUB_RETRIES),
    minimum_interval="00:00:05",
    maximum_interval="00:10:00",
)(
    app.event_hub_message_trigger(
        arg_name="events",
        event_hub_name="%ADSCORE_EVENTHUB_NAME%",
        connection="ADSCORE_EVENTHUB",
        consumer_group="%ADSCORE_EVENTHUB_CONSUMER_GROUP%",
        cardinality="many",
    )(on_event_hub)
)


# --------------------------------------------------------------------------- unwrapping


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def eventgrid_item(event: func.EventGridEvent) -> tuple[str, dict[str, Any]]:
    """The ``(ref, record)`` the parser reads, in the event's own schema (Event Grid or CloudEvents)."""
    if isinstance(event, func.CloudEvent):
        return f"eventgrid:{event.id}", {
            "specversion": event.specversion,
            "id": event.id,
            "source": event.source,
            "type": event.type,
            "subject": event.subject,
            "time": _iso(event.time),
            "data": event.get_json(),
        }
    return f"eventgrid:{event.id}", {
        "id": event.id,
        "eventType": event.event_type,
        "subject": event.subject,
        "eventTime": _iso(event.event_time),
        "data": event.get_json(),
        "dataVersion": event.data_version,
        "topic": event.topic,
    }


def _ref(index: int, event: func.EventHubEvent) -> str:
    seq = event.sequence_number
    return f"eventhub:{seq}" if seq is not None else f"eventhub:#{index}"


def eventhub_items(
    events: typing.Sequence[func.EventHubEvent],
) -> tuple[list[tuple[str, Any]], dict[str, str]]:
    """Split each event's ``{"records": [...]}`` into one item per record.

    Returns
    -------
    items : list of (ref, record)
        ``eventhub:<sequence>/records[<i>]`` for a record of a diagnostic-settings document,
        ``eventhub:<sequence>`` for any other JSON body (the parser says what it is).
    unreadable : dict
        ``ref -> reason`` for bodies that are not JSON.
    """
    items: list[tuple[str, Any]] = []
    unreadable: dict[str, str] = {}
    for index, event in enumerate(events):
        ref = _ref(index, event)
        try:
            body = orjson.loads(event.get_body())
        except orjson.JSONDecodeError as exc:
            unreadable[ref] = f"event body is not JSON: {str(exc)[:200]}"
            continue
        records = body.get("records") if isinstance(body, dict) else None
        if isinstance(records, list):
            items.extend((f"{ref}/records[{i}]", record) for i, record in enumerate(records))
        else:
            items.append((ref, body))
    return items, unreadable


def _body(events: typing.Sequence[func.EventHubEvent], ref: str) -> str:
    for index, event in enumerate(events):
        if _ref(index, event) == ref:
            return event.get_body().decode("utf-8", "replace")
    return ""


def last_attempt(context: func.Context) -> bool:
    """Whether the retry policy will not run this invocation again."""
    retry = getattr(context, "retry_context", None)
    if retry is None:
        return True
    return bool(0 <= retry.max_retry_count <= retry.retry_count)


# --------------------------------------------------------------------------- reporting


def finish(
    function: str, report: BatchReport, records: dict[str, Any], *, final: bool, invocation: str = ""
) -> None:
    """Dead-letter what will not be retried, log one summary line, raise on state or sink failures."""
    retried = report.state_error is not None or report.sink_error is not None
    try:
        dead = (
            dead_letter(function, report.failed, records) if report.failed and (final or not retried) else 0
        )
    except Exception as exc:
        log.error("adscore dead-letter write failed (%s); the batch will be retried", type(exc).__name__)
        raise
    summary = {
        "function": function,
        "invocation_id": invocation,
        **report.summary(),
        "alerts": [{"id": a.id, "detection": a.detection, "severity": a.severity} for a in report.alerts][
            :MAX_LOGGED
        ],
        "sent": [a.id for a in report.sent][:MAX_LOGGED],
        "failed": [{"ref": r[:200], "reason": why[:300]} for r, why in report.failed.items()][:MAX_LOGGED],
        "dead_lettered": dead,
    }
    line = orjson.dumps(summary, default=str).decode()
    if retried:
        log.error("adscore batch failed, will be retried: %s", line)
    elif report.failed:
        log.warning("adscore batch done with unreadable records: %s", line)
    else:
        log.info("adscore batch done: %s", line)
    raise_for_delivery(report)


class DeadLetter:
    """Writes records that will not be retried, with their reasons, to a blob container or a queue.

    ``azureblob://CONTAINER`` writes one JSON blob per record, named after the function, the day
    and a hash of the record and its ref (a retry the same day overwrites the same blob). ``azurequeue://QUEUE`` sends
    one message per record (base64 JSON, cut to fit 64 KiB). Both take ``?connection=SETTING`` or
    ``?endpoint=URL`` like ``ADSCORE_STATE`` (default connection: ``AzureWebJobsStorage``).
    """

    def __init__(self, url: str) -> None:
        from adscore.state.azure_table import default_credential, storage_target

        scheme = url.split("://", 1)[0].lower()
        if scheme not in ("azureblob", "azurequeue"):
            raise ConfigError(
                "deadletter", "ADSCORE_DEADLETTER must be azureblob://CONTAINER or azurequeue://QUEUE"
            )
        target = storage_target(
            url, scheme, "blob" if scheme == "azureblob" else "queue", setting="deadletter"
        )
        credential = None if target.connection_string else default_credential("deadletter")
        self.client: Any
        if scheme == "azureblob":
            from azure.storage.blob import ContainerClient

            self.client = (
                ContainerClient.from_connection_string(target.connection_string, target.name)
                if target.connection_string
                else ContainerClient(str(target.endpoint), target.name, credential=credential)
            )
            self._create = self.client.create_container
        else:
            from azure.storage.queue import QueueClient, TextBase64EncodePolicy

            encode = TextBase64EncodePolicy()
            self.client = (
                QueueClient.from_connection_string(
                    target.connection_string, target.name, message_encode_policy=encode
                )
                if target.connection_string
                else QueueClient(
                    str(target.endpoint), target.name, credential=credential, message_encode_policy=encode
                )
            )
            self._create = self.client.create_queue
        self.scheme = scheme
        self._ready = False

    def put(self, function: str, ref: str, reason: str, record: Any) -> None:
        """Store one record and why it failed (raises on storage errors, so the batch is retried)."""
        from azure.core.exceptions import ResourceExistsError

        if not self._ready:
            with contextlib.suppress(ResourceExistsError):
                self._create()
            self._ready = True
        now = datetime.now(UTC)
        doc = {
            "function": function,
            "ref": ref,
            "reason": reason,
            "dead_lettered_at": now.isoformat(),
            "record": record,
        }
        body = orjson.dumps(doc, default=str)
        if self.scheme == "azureblob":
            # same ref and record -> same name (a retry overwrites); refs repeat across partitions
            digest = hashlib.sha256(ref.encode() + b"\n" + orjson.dumps(record, default=str)).hexdigest()
            self.client.upload_blob(f"{function}/{now:%Y/%m/%d}/{digest[:40]}.json", body, overwrite=True)
            return
        text, cut = orjson.dumps(record, default=str).decode(), MAX_QUEUE_JSON // 2
        while len(body) > MAX_QUEUE_JSON and cut > 0:
            doc["record"], doc["truncated"] = text[:cut], True
            body = orjson.dumps(doc, default=str)
            cut //= 2
        self.client.send_message(body.decode())


_stores: dict[str, DeadLetter] = {}
_stores_lock = threading.Lock()


def dead_letter(function: str, failed: dict[str, str], records: dict[str, Any]) -> int:
    """Write each failed record with its reason to ``ADSCORE_DEADLETTER`` (or log it when unset); return the count."""
    url = os.environ.get("ADSCORE_DEADLETTER", "").strip()
    if not url:
        for ref, reason in list(failed.items())[:MAX_LOGGED]:
            log.warning(
                "adscore record not processed (set ADSCORE_DEADLETTER to keep it): %s: %s",
                ref[:200],
                reason[:300],
            )
        return 0
    with _stores_lock:
        store = _stores.get(url) or _stores.setdefault(url, DeadLetter(url))
    for ref, reason in failed.items():
        store.put(function, ref, reason, records.get(ref))
    return len(failed)
