"""adscore on Azure Functions (Python v2 programming model): read the trigger, unwrap, run, map the answer.

- ``on_event_grid``: one event from an Event Grid subscription on a subscription's system topic
  (resource write/action/delete success and failure events), in the Event Grid or CloudEvents schema.
- ``on_event_hub``: a batch of Event Hub events from diagnostic settings, each a ``{"records": [...]}``
  document (Activity Log, AKS ``kube-audit``, Microsoft Graph activity logs, Entra sign-ins).
- ``on_ingest``: HTTP (``POST /api/ingest``, anonymous at the platform: :mod:`adscore.ingest`
  authenticates), Kubernetes audit webhook EventLists and signed ``adscore forward docker`` batches;
  refusals are 401/409/413, a retryable failure 503.
- ``cleanup_state``: a daily timer deleting state entities whose event-time expiry is over 30 days old.

The failure policy is :func:`adscore.runtime.run_delivery`'s: an unreadable record goes to the
dead-letter store (``ADSCORE_DEADLETTER``: ``azblob://CONTAINER`` or ``azqueue://QUEUE``) with its
bytes and reason; a state or sink failure raises, so Event Grid redelivers the event and the Event
Hub retry policy runs the batch again (every write is idempotent); on an Event Hub batch's last retry
the records behind the failure are dead-lettered too before the error is raised.

Configuration is app settings only (see README.md). Logs go through :mod:`logging` (Application
Insights): one JSON line per invocation with counts and alert ids, never secrets nor whole events.
"""

from __future__ import annotations

import logging
import typing
from typing import Any

import azure.functions as func
import orjson

from adscore import ingest
from adscore.deliveries.eventgrid import unwrap_eventgrid
from adscore.deliveries.eventhub import unwrap_eventhub
from adscore.runtime import DeliveryResult, get_engine, run_delivery

if typing.TYPE_CHECKING:
    from datetime import datetime

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


# --------------------------------------------------------------------------- triggers


def on_event_grid(event: func.EventGridEvent) -> None:
    """One Event Grid event; raises when it must be delivered again."""
    finish(
        "on_event_grid", run_delivery(unwrap_eventgrid(eventgrid_doc(event)), source="azure.on_event_grid")
    )


def on_event_hub(events: typing.List[func.EventHubEvent], context: func.Context) -> None:  # noqa: UP006 - the worker needs typing.List
    """A batch of diagnostic-settings events; raises when it must run again (the retry policy)."""
    bodies = [(event.get_body(), event.sequence_number) for event in events]
    result = run_delivery(unwrap_eventhub(bodies), source="azure.on_event_hub", final=last_attempt(context))
    finish("on_event_hub", result, context.invocation_id)


def on_ingest(req: func.HttpRequest) -> func.HttpResponse:
    """The ingest endpoint; answers with the status :func:`adscore.ingest.handle` chose."""
    answer = ingest.handle(req.get_body(), dict(req.headers), source="azure.on_ingest")
    if answer.result is not None:
        finish("on_ingest", answer.result, raise_for_retry=False)
    return func.HttpResponse(
        orjson.dumps(answer.body), status_code=answer.status, headers=answer.headers, mimetype="application/json"
    )


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
app.route(route="ingest", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)(on_ingest)
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


# --------------------------------------------------------------------------- reading and answering


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def eventgrid_doc(event: func.EventGridEvent) -> dict[str, Any]:
    """The event as the parser reads it, in its own schema (Event Grid or CloudEvents)."""
    if isinstance(event, func.CloudEvent):
        return {
            "specversion": event.specversion,
            "id": event.id,
            "source": event.source,
            "type": event.type,
            "subject": event.subject,
            "time": _iso(event.time),
            "data": event.get_json(),
        }
    return {
        "id": event.id,
        "eventType": event.event_type,
        "subject": event.subject,
        "eventTime": _iso(event.event_time),
        "data": event.get_json(),
        "dataVersion": event.data_version,
        "topic": event.topic,
    }


def last_attempt(context: func.Context) -> bool:
    """Whether the retry policy will not run this invocation again."""
    retry = getattr(context, "retry_context", None)
    return retry is None or bool(0 <= retry.max_retry_count <= retry.retry_count)


def finish(function: str, result: DeliveryResult, invocation: str = "", *, raise_for_retry: bool = True) -> None:
    """Log one summary line, then raise when the platform must deliver again."""
    report = result.report
    summary = {
        "function": function,
        "invocation_id": invocation,
        **result.summary(),
        "alerts": [{"id": a.id, "detection": a.detection, "severity": a.severity} for a in report.alerts][
            :MAX_LOGGED
        ],
        "sent": [a.id for a in report.sent][:MAX_LOGGED],
        "failed": [{"ref": r[:200], "reason": why[:300]} for r, why in report.failed.items()][:MAX_LOGGED],
    }
    line = orjson.dumps(summary, default=str).decode()
    level = logging.ERROR if result.retry else logging.WARNING if report.errors else logging.INFO
    log.log(level, "adscore batch %s: %s", "failed, will be retried" if result.retry else "done", line)
    if raise_for_retry:
        result.raise_for_retry()
