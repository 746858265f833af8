"""GCP glue for the Cloud Function and the core: deliveries, structured logs, dead letters, secrets.

Nothing here decides what is suspicious. :func:`handle_pubsub` takes one Pub/Sub delivery (an
Eventarc CloudEvent, a push body or a bare message), and applies the one failure policy of
:mod:`adscore.runtime`:

- a message that cannot be read (bad base64, not JSON, not a log entry) is logged with its
  reason, published to ``ADSCORE_DEADLETTER_TOPIC`` when one is set, and acknowledged, so it
  does not come back forever;
- a LogEntry whose ``insertId`` was already processed is acknowledged without running again
  (Pub/Sub delivers at least once): a "done" marker is stored, at the entry's event time, only
  after the entry's state and alerts are saved and sent, so an instance that dies half-way
  leaves no marker and the redelivery runs the (idempotent) engine again;
- a state or sink failure raises, so Pub/Sub redelivers the message.

Google SDKs are imported inside the functions that use them: ``google.cloud.logging``'s
structured handler only when running on GCP (``K_SERVICE`` or ``FUNCTION_TARGET`` set and
``ADSCORE_LOCAL`` not set; elsewhere logs are JSON lines written by the standard library),
``google.cloud.pubsub`` only to publish a dead letter, ``google.auth`` only to fetch a secret.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import re
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from adscore.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from adscore.engine import BatchReport, Engine

__all__ = [
    "DEDUP_TTL",
    "Delivery",
    "JsonLineFormatter",
    "deadletter_topic",
    "fetch_secret",
    "handle_k8s_audit",
    "handle_pubsub",
    "publish_deadletter",
    "running_on_gcp",
    "setup_logging",
    "trace_context",
]

log = logging.getLogger("adscore.functions.gcp")

DEDUP_TTL = timedelta(days=7)
"""How long a processed ``insertId`` is remembered (Pub/Sub keeps unacknowledged messages 7 days)."""
SECRET_MANAGER = "https://secretmanager.googleapis.com"
_SECRET_NAME = re.compile(
    r"^projects/([^/\s]{1,100})/secrets/([A-Za-z0-9_-]{1,255})(/versions/([A-Za-z0-9_-]{1,64}))?$"
)
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_CLOUD_TRACE = re.compile(r"^([0-9a-fA-F]{32})(?:/(\d{1,20}))?(?:;o=([01]))?")
_PROJECT_IN = re.compile(r"projects/([a-z][a-z0-9.:-]{4,61}[a-z0-9])/")
_MAX_LOGGED_ERRORS = 10
_MAX_DEADLETTER_BYTES = 9_000_000

_lock = threading.Lock()
_logging_ready = False
_publisher: Any = None


# ------------------------------------------------------------------------------------------ logs


def running_on_gcp() -> bool:
    """True inside Cloud Functions / Cloud Run (``K_SERVICE`` or ``FUNCTION_TARGET``), unless ``ADSCORE_LOCAL`` is set."""
    on_gcp = bool(os.environ.get("K_SERVICE") or os.environ.get("FUNCTION_TARGET"))
    return on_gcp and not os.environ.get("ADSCORE_LOCAL")


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line, with the keys Cloud Logging reads (``severity``, ``message``, trace).

    ``extra={"json_fields": {...}}`` adds fields; ``extra={"trace": ..., "span_id": ...}`` sets the
    trace, the same conventions as ``google.cloud.logging``'s ``StructuredLogHandler``.
    """

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
        }
        fields = getattr(record, "json_fields", None)
        if isinstance(fields, dict):
            out.update({k: v for k, v in fields.items() if k not in ("severity", "message")})
        trace = getattr(record, "trace", None)
        if trace:
            out["logging.googleapis.com/trace"] = trace
            span = getattr(record, "span_id", None)
            if span:
                out["logging.googleapis.com/spanId"] = span
            out["logging.googleapis.com/trace_sampled"] = bool(getattr(record, "trace_sampled", False))
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)[-4000:]
        return json.dumps(out, ensure_ascii=False, default=str)


def setup_logging(level: int = logging.INFO) -> None:
    """Send the ``adscore`` loggers to stdout as structured JSON, once per process.

    On GCP this is ``google.cloud.logging``'s ``StructuredLogHandler`` (imported here, on the first
    call); elsewhere a stdlib handler with :class:`JsonLineFormatter`.
    """
    global _logging_ready
    with _lock:
        if _logging_ready:
            return
        handler: logging.Handler
        if running_on_gcp():
            from google.cloud.logging.handlers import StructuredLogHandler

            handler = StructuredLogHandler(project_id=_env_project(), stream=sys.stdout)  # type: ignore[no-untyped-call]
        else:
            handler = logging.StreamHandler(sys.stdout)
            handler.setFormatter(JsonLineFormatter())
        root = logging.getLogger("adscore")
        root.handlers = [handler]
        root.setLevel(level)
        root.propagate = False
        _logging_ready = True


def _env_project() -> str | None:
    return os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCP_PROJECT") or None


def trace_context(headers: Mapping[str, str], project: str | None) -> dict[str, Any]:
    """The ``trace``/``span_id``/``trace_sampled`` logging extras of a request, or ``{}``.

    Reads W3C ``traceparent`` first, then ``X-Cloud-Trace-Context``; the trace is the resource
    name ``projects/<project>/traces/<id>`` that Cloud Logging links to Cloud Trace.

    Example
    -------
    >>> trace_context({"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"}, "p1")["trace"]
    'projects/p1/traces/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'
    """
    lower = {k.lower(): v for k, v in headers.items() if isinstance(v, str)}
    trace = span = None
    sampled = False
    m = _TRACEPARENT.match(lower.get("traceparent", "").strip())
    if m:
        trace, span, sampled = m.group(1), m.group(2), bool(int(m.group(3), 16) & 1)
    else:
        c = _CLOUD_TRACE.match(lower.get("x-cloud-trace-context", "").strip())
        if c:
            trace = c.group(1).lower()
            span = f"{int(c.group(2)):016x}"[-16:] if c.group(2) else None
            sampled = c.group(3) == "1"
    if trace is None or trace == "0" * 32:
        return {}
    out: dict[str, Any] = {
        "trace": f"projects/{project}/traces/{trace}" if project else trace,
        "trace_sampled": sampled,
    }
    if span:
        out["span_id"] = span
    return out


def _project_of(delivery: Any) -> str | None:
    """The project from the environment, else from the delivery's subscription or CloudEvent source."""
    project = _env_project()
    if project or not isinstance(delivery, dict):
        return project
    data = delivery.get("data")
    for text in (
        delivery.get("subscription"),
        data.get("subscription") if isinstance(data, dict) else None,
        delivery.get("source"),
    ):
        if isinstance(text, str):
            m = _PROJECT_IN.search(text[:1000] + "/")
            if m:
                return m.group(1)
    return None


# ------------------------------------------------------------------------------------------ dead letters


def deadletter_topic() -> str | None:
    """``ADSCORE_DEADLETTER_TOPIC`` (``projects/P/topics/T``), checked, or None when unset.

    Raises
    ------
    ConfigError
        ``deadletter_topic``: the value is not a topic name.
    """
    value = (os.environ.get("ADSCORE_DEADLETTER_TOPIC") or "").strip()
    if not value:
        return None
    from adscore.sinks.pubsub import topic_name

    return topic_name(value, "deadletter_topic")


def _pubsub_publisher() -> Any:
    global _publisher
    with _lock:
        if _publisher is None:
            from google.cloud.pubsub_v1 import PublisherClient
            from google.cloud.pubsub_v1.types import BatchSettings

            _publisher = PublisherClient(batch_settings=BatchSettings(max_latency=0.01))
        return _publisher


def _message_of(delivery: Any) -> dict[str, Any] | None:
    if not isinstance(delivery, dict):
        return None
    if "specversion" in delivery:
        data = delivery.get("data")
        msg = data.get("message") if isinstance(data, dict) else None
    else:
        msg = delivery.get("message", delivery)
    return msg if isinstance(msg, dict) else None


def publish_deadletter(
    topic: str, delivery: Any, reason: str, location: str, *, timeout: float = 30.0
) -> str:
    """Publish an unreadable delivery to the dead-letter topic; return the new message id.

    The message carries the original message's data (decoded from base64 when it can be) and
    attributes, plus ``adscore_reason``, ``adscore_location`` and ``adscore_message_id``, so it can
    be inspected and republished to the function's topic once the cause is fixed.

    Raises
    ------
    Exception
        Whatever the publish raised: the caller must not acknowledge the delivery then.
    """
    msg = _message_of(delivery)
    attributes: dict[str, str] = {}
    data: bytes
    raw = msg.get("data") if msg is not None else None
    if isinstance(raw, str):
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            data = raw.encode("utf-8", "replace")
        attrs = msg.get("attributes") if msg is not None else None
        if isinstance(attrs, dict):
            for k, v in list(attrs.items())[:90]:
                if isinstance(k, str) and isinstance(v, str) and k and not k.startswith("goog"):
                    attributes[k[:256]] = v[:1024]
    else:
        data = json.dumps(delivery, default=str, ensure_ascii=False).encode("utf-8", "replace")
    message_id = (msg.get("messageId") or msg.get("message_id")) if msg is not None else None
    attributes["adscore_reason"] = reason[:1024]
    attributes["adscore_location"] = location[:1024]
    if isinstance(message_id, str):
        attributes["adscore_message_id"] = message_id[:256]
    future = _pubsub_publisher().publish(topic, data[:_MAX_DEADLETTER_BYTES], **attributes)
    return str(future.result(timeout=timeout))


# ------------------------------------------------------------------------------------------ deliveries


@dataclass
class Delivery:
    """What :func:`handle_pubsub` did with one delivery (the HTTP functions answer from it).

    Attributes
    ----------
    status : str
        ``processed``, ``duplicate`` (insertId seen before) or ``rejected`` (unreadable, acknowledged).
    reason : str | None
        Why a delivery was rejected.
    alerts : list[str]
        Ids of the alerts sent for it.
    deadletter_id : str | None
        The dead-letter message id, when one was published.
    """

    status: str
    reason: str | None = None
    alerts: list[str] = field(default_factory=list)
    deadletter_id: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)


def _entry_time(entry: dict[str, Any]) -> datetime:
    from adscore.sources.common import parse_time

    for name in ("timestamp", "receiveTimestamp"):
        value = entry.get(name)
        if value is not None:
            try:
                return parse_time(value)
            except (ValueError, TypeError):
                continue
    return datetime.now(UTC)


def _dedup_key(payload: Any) -> tuple[str, datetime] | None:
    if not isinstance(payload, dict):
        return None
    insert_id = payload.get("insertId")
    if not isinstance(insert_id, str) or not insert_id:
        return None
    from adscore.state.base import make_key

    log_name = payload.get("logName")
    return make_key("gcp.insert_id", log_name if isinstance(log_name, str) else "", insert_id), _entry_time(
        payload
    )


def _reject(delivery: Any, reason: str, location: str, extras: dict[str, Any]) -> Delivery:
    topic = deadletter_topic()
    deadletter_id = None
    if topic is not None:
        deadletter_id = publish_deadletter(topic, delivery, reason, location)
    log.warning(
        "rejected unreadable Pub/Sub message: %s",
        reason[:300],
        extra={
            **extras,
            "json_fields": {
                "event": "rejected",
                "reason": reason[:1000],
                "location": location[:300],
                "deadletter_topic": topic,
                "deadletter_message_id": deadletter_id,
            },
        },
    )
    return Delivery("rejected", reason=reason, deadletter_id=deadletter_id)


def _log_report(report: BatchReport, extras: dict[str, Any], fields: dict[str, Any]) -> None:
    for alert in report.sent:
        level = logging.ERROR if alert.severity in ("high", "critical") else logging.WARNING
        log.log(
            level,
            "alert %s: %s",
            alert.detection,
            alert.title[:300],
            extra={
                **extras,
                "json_fields": {
                    "event": "alert",
                    "alert_id": alert.id,
                    "detection": alert.detection,
                    "technique": alert.technique,
                    "alert_severity": alert.severity,
                    **fields,
                },
            },
        )
    failed = bool(report.state_error or report.sink_error)
    log.log(
        logging.ERROR if failed else logging.INFO,
        "processed %d record(s): %d alert(s) sent",
        report.counts.get("records", 0),
        len(report.sent),
        extra={
            **extras,
            "json_fields": {
                "event": "batch",
                "alert_ids": [a.id for a in report.sent],
                **report.summary(),
                "record_errors": [
                    {"location": e.location[:200], "reason": e.reason[:300]}
                    for e in report.errors[:_MAX_LOGGED_ERRORS]
                ],
                **fields,
            },
        },
    )


def handle_pubsub(
    delivery: Any, headers: Mapping[str, str] | None = None, engine: Engine | None = None
) -> Delivery:
    """Process one Pub/Sub delivery of a Cloud Logging sink (see the module docstring for the policy).

    Parameters
    ----------
    delivery : Any
        The decoded JSON: a ``messagePublished`` CloudEvent (attributes and ``data``), a push body
        (``{"message": ..., "subscription": ...}``) or a bare message.
    headers : Mapping[str, str], optional
        The HTTP request headers (for the trace).
    engine : Engine, optional
        Default :func:`adscore.runtime.get_engine`, built once from the environment.

    Returns
    -------
    Delivery
        What was done; the message can be acknowledged.

    Raises
    ------
    adscore.errors.StateError, adscore.errors.SinkError
        State not saved or alerts not delivered: do not acknowledge, Pub/Sub redelivers.
    adscore.errors.ConfigError
        A bad setting (named), at the first delivery.
    """
    from adscore.events import RecordError
    from adscore.runtime import get_engine, raise_for_delivery, run_batch
    from adscore.sources.gcp import unwrap_pubsub

    setup_logging()
    extras = trace_context(headers or {}, _project_of(delivery))
    msg = _message_of(delivery)
    fields: dict[str, Any] = {"message_id": str(msg.get("messageId", ""))[:200] if msg else None}
    engine = engine or get_engine()
    unwrapped = unwrap_pubsub(delivery, "pubsub")
    if isinstance(unwrapped, RecordError):
        return _reject(delivery, unwrapped.reason, unwrapped.location, extras)
    ref, payload = unwrapped[0]
    dedup = _dedup_key(payload)
    if dedup is not None:
        fields["insert_id"] = str(payload.get("insertId"))[:200]
        if engine.store.recall(dedup[0], dedup[1]) == "done":
            log.info(
                "duplicate delivery of a processed log entry, skipped",
                extra={**extras, "json_fields": {"event": "duplicate", **fields}},
            )
            return Delivery("duplicate")
    report = run_batch([(ref, payload)], engine)
    _log_report(report, extras, fields)
    raise_for_delivery(report)
    unreadable = [r for r in report.failed.values() if r.startswith("unreadable")]
    result = Delivery("processed", alerts=[a.id for a in report.sent], summary=report.summary())
    if unreadable:
        rejected = _reject(delivery, "; ".join(unreadable)[:1000], ref, extras)
        result = Delivery(
            "rejected", reason=rejected.reason, deadletter_id=rejected.deadletter_id, summary=result.summary
        )
    if dedup is not None:
        try:
            engine.store.remember(dedup[0], "done", dedup[1], DEDUP_TTL)
        except Exception as exc:  # the marker only saves work: a redelivery re-runs the idempotent engine
            log.warning("could not mark insertId processed: %s", type(exc).__name__, extra=extras)
    return result


def handle_k8s_audit(
    body: Any, headers: Mapping[str, str] | None = None, engine: Engine | None = None
) -> Delivery:
    """Process one Kubernetes audit webhook request (an ``audit.k8s.io`` ``EventList``).

    Returns
    -------
    Delivery
        ``rejected`` (answer 400) when the body cannot be read at all, else ``processed``.

    Raises
    ------
    adscore.errors.StateError, adscore.errors.SinkError
        Answer 5xx: the API server's webhook backend retries the batch.
    """
    from adscore.runtime import get_engine, raise_for_delivery, run_batch

    setup_logging()
    extras = trace_context(headers or {}, _env_project())
    if not isinstance(body, dict):
        reason = "the audit webhook body is not a JSON object"
        log.warning(reason, extra={**extras, "json_fields": {"event": "rejected", "reason": reason}})
        return Delivery("rejected", reason=reason)
    report = run_batch([("k8s-audit-webhook", body)], engine or get_engine())
    _log_report(report, extras, {})
    raise_for_delivery(report)
    if report.errors and not report.counts.get("events"):
        return Delivery("rejected", reason=report.errors[0].reason[:300], summary=report.summary())
    return Delivery("processed", alerts=[a.id for a in report.sent], summary=report.summary())


# ------------------------------------------------------------------------------------------ secrets


def fetch_secret(
    name: str, *, session: Any = None, endpoint: str = SECRET_MANAGER, timeout: float = 10.0
) -> str:
    """Fetch a secret version's value from Secret Manager (REST ``:access``).

    ``google-cloud-secret-manager`` is not needed: the request goes through ``google-auth``'s
    ``AuthorizedSession`` with the environment's credentials (the function's service account).

    Parameters
    ----------
    name : str
        ``projects/<p>/secrets/<s>/versions/<v>`` (``/versions/...`` omitted means ``latest``).
    session : google.auth.transport.requests.AuthorizedSession, optional
        Injected session; default one from ``google.auth.default()``.
    endpoint : str
        API root (a test server, a regional or private endpoint).
    timeout : float
        Seconds per request.

    Returns
    -------
    str
        The payload as UTF-8 text, stripped of surrounding whitespace.

    Raises
    ------
    ConfigError
        ``webhook_secret``: malformed name, no credentials, HTTP error, or an empty secret. The
        message names the status, never the value.
    """
    m = _SECRET_NAME.match(name.strip())
    if m is None:
        raise ConfigError(
            "webhook_secret", "a Secret Manager secret is written projects/<p>/secrets/<s>/versions/<v>"
        )
    version_name = name.strip() if m.group(3) else f"{name.strip()}/versions/latest"
    if session is None:
        try:
            import google.auth
            from google.auth.transport.requests import AuthorizedSession
        except ImportError as exc:
            raise ConfigError(
                "webhook_secret", f"fetching a Secret Manager secret needs google-auth ({exc})"
            ) from exc
        try:
            credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        except Exception as exc:
            raise ConfigError(
                "webhook_secret", f"no Google credentials to fetch the secret: {type(exc).__name__}"
            ) from exc
        session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
    try:
        response = session.get(f"{endpoint.rstrip('/')}/v1/{version_name}:access", timeout=timeout)
    except Exception as exc:
        raise ConfigError("webhook_secret", f"cannot fetch the secret: {type(exc).__name__}") from exc
    if response.status_code != 200:
        status = ""
        with contextlib.suppress(Exception):  # not JSON: the HTTP status says enough
            status = str(response.json().get("error", {}).get("status", ""))[:60]
        raise ConfigError(
            "webhook_secret", f"cannot fetch the secret: HTTP {response.status_code} {status}".rstrip()
        )
    try:
        data = base64.b64decode(response.json()["payload"]["data"], validate=True)
        value = data.decode("utf-8").strip()
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError("webhook_secret", "the Secret Manager answer has no readable payload") from exc
    if not value:
        raise ConfigError("webhook_secret", "the secret is empty")
    return value
