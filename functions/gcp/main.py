"""Cloud Functions (2nd gen) entry points for adscore. No detection logic lives here.

- ``on_pubsub``: CloudEvent (Eventarc ``google.cloud.pubsub.topic.v1.messagePublished``), one
  Pub/Sub message holding one LogEntry from a Cloud Logging sink.
- ``on_pubsub_push``: HTTP, the body of a Pub/Sub push subscription.
- ``on_k8s_audit``: HTTP, an API server audit webhook posting an ``audit.k8s.io`` EventList.

Configuration comes from the environment only (``ADSCORE_STATE``, ``ADSCORE_SINKS``,
``ADSCORE_CONFIG``, ``ADSCORE_WEBHOOK_SECRET``, ``ADSCORE_DEADLETTER_TOPIC``): see README.md.
Returning normally acknowledges the message; an exception answers 500, so Pub/Sub redelivers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import functions_framework
from flask import request

from adscore.cloud import gcp

if TYPE_CHECKING:
    import flask
    from cloudevents.http import CloudEvent


@functions_framework.cloud_event
def on_pubsub(cloud_event: CloudEvent) -> None:
    """Eventarc Pub/Sub CloudEvent (binary or structured mode)."""
    delivery: dict[str, Any] = {**cloud_event.get_attributes(), "data": cloud_event.get_data()}
    headers = dict(request.headers)
    if cloud_event.get("traceparent"):
        headers["traceparent"] = str(cloud_event.get("traceparent"))
    gcp.handle_pubsub(delivery, headers)


@functions_framework.http
def on_pubsub_push(req: flask.Request) -> tuple[str, int]:
    """Pub/Sub push subscription: 2xx acknowledges, anything else is redelivered."""
    gcp.handle_pubsub(req.get_json(silent=True, force=True), dict(req.headers))
    return "", 204


@functions_framework.http
def on_k8s_audit(req: flask.Request) -> tuple[dict[str, Any], int]:
    """Kubernetes API server audit webhook (EventList)."""
    result = gcp.handle_k8s_audit(req.get_json(silent=True, force=True), dict(req.headers))
    if result.status == "rejected":
        return {"error": result.reason}, 400
    return {"alerts": result.alerts}, 200
