"""Cloud Functions (2nd gen) entry points: read the trigger, unwrap it, run the shared runtime, map its answer.

- ``on_pubsub``: CloudEvent (Eventarc ``google.cloud.pubsub.topic.v1.messagePublished``), one
  Pub/Sub message holding one LogEntry from a Cloud Logging sink.
- ``on_pubsub_push``: HTTP, the body of a Pub/Sub push subscription (what ``infra/gcp`` deploys).
- ``on_k8s_audit``: HTTP, the ingest endpoint (:mod:`adscore.ingest`): an API server audit webhook
  posting an ``audit.k8s.io`` EventList (``Authorization: Bearer``), or ``adscore forward docker``
  posting a signed ``DockerEventBatch``; refusals are 401/409/413, a retryable failure 503.

The failure policy is :func:`adscore.runtime.run_delivery`'s: an unreadable message goes to the
dead-letter store (``ADSCORE_DEADLETTER=pubsub://projects/P/topics/T``) with its bytes and reason
and is acknowledged; a state or sink failure raises (HTTP 500), so Pub/Sub redelivers (nack).
A LogEntry already processed (its ``insertId`` marked done) is acknowledged without running again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import functions_framework
from flask import request

from adscore import ingest, runtime
from adscore.cloud.gcp import log_delivery, setup_logging
from adscore.deliveries.body import UnreadableBody, read_json_body
from adscore.deliveries.pubsub import done_marker, unwrap_pubsub

if TYPE_CHECKING:
    import flask
    from cloudevents.http import CloudEvent


def _pubsub(delivery: Any, headers: dict[str, str], source: str) -> None:
    items = unwrap_pubsub(delivery)
    marker = done_marker(items)
    result = runtime.run_delivery(items, source=source, done=marker)
    insert_id = items[0].raw.get("insertId") if marker else None  # type: ignore[union-attr]
    fields = {
        "message_id": items[0].where.message_id,
        "insert_id": str(insert_id)[:200] if insert_id else None,
    }
    log_delivery(result, headers, delivery, fields)
    result.raise_for_retry()


@functions_framework.cloud_event
def on_pubsub(cloud_event: CloudEvent) -> None:
    """Eventarc Pub/Sub CloudEvent (binary or structured mode); raising nacks it."""
    headers = dict(request.headers)
    if cloud_event.get("traceparent"):
        headers["traceparent"] = str(cloud_event.get("traceparent"))
    _pubsub({**cloud_event.get_attributes(), "data": cloud_event.get_data()}, headers, "gcp.on_pubsub")


@functions_framework.http
def on_pubsub_push(req: flask.Request) -> tuple[str | dict[str, Any], int]:
    """Pub/Sub push subscription: 2xx acknowledges, an exception (500) has Pub/Sub redeliver; 400 for an unreadable body."""
    try:
        body = read_json_body(req.get_data())
    except UnreadableBody as exc:
        return {"error": str(exc)}, 400
    _pubsub(body, dict(req.headers), "gcp.on_pubsub_push")
    return "", 204


@functions_framework.http
def on_k8s_audit(req: flask.Request) -> tuple[dict[str, Any], int, dict[str, str]]:
    """The ingest endpoint: Kubernetes audit EventLists and signed Docker batches (``adscore.ingest``)."""
    setup_logging()
    limit = runtime.get_engine().settings.ingest_max_bytes
    declared = req.content_length
    body = None if (declared or 0) > limit else req.stream.read(limit + 1)
    answer = ingest.handle(body, dict(req.headers), source="gcp.on_k8s_audit", content_length=declared)
    if answer.result is not None:
        log_delivery(answer.result, dict(req.headers), fields={"kind": answer.kind, "status": answer.status})
    return answer.body, answer.status, answer.headers
