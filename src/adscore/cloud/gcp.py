"""GCP helpers for the Cloud Function and the core: structured logs with the trace, and secrets.

Nothing here decides what is suspicious nor what a failure means: the function
(``functions/gcp/main.py``) unwraps its trigger with :mod:`adscore.deliveries.pubsub` and
:mod:`adscore.deliveries.k8s_webhook` and hands it to :func:`adscore.runtime.run_delivery`,
whose one failure policy dead-letters unreadable messages (``ADSCORE_DEADLETTER=pubsub://...``)
and has Pub/Sub redeliver on a state or sink failure.

Google SDKs are imported inside the functions that use them: ``google.cloud.logging``'s
structured handler only when running on GCP (``K_SERVICE`` or ``FUNCTION_TARGET`` set and
``ADSCORE_LOCAL`` not set; elsewhere logs are JSON lines written by the standard library),
``google.auth`` only to fetch a secret.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import sys
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from adscore.errors import ConfigError
from adscore.render.escape import clean_text

if TYPE_CHECKING:
    from collections.abc import Mapping

    from adscore.runtime import DeliveryResult

__all__ = [
    "JsonLineFormatter",
    "fetch_secret",
    "log_delivery",
    "running_on_gcp",
    "setup_logging",
    "trace_context",
]

log = logging.getLogger("adscore.functions.gcp")

SECRET_MANAGER = "https://secretmanager.googleapis.com"
_SECRET_NAME = re.compile(
    r"^projects/([^/\s]{1,100})/secrets/([A-Za-z0-9_-]{1,255})(/versions/([A-Za-z0-9_-]{1,64}))?$"
)
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_CLOUD_TRACE = re.compile(r"^([0-9a-fA-F]{32})(?:/(\d{1,20}))?(?:;o=([01]))?")
_PROJECT_IN = re.compile(r"projects/([a-z][a-z0-9.:-]{4,61}[a-z0-9])/")
_MAX_LOGGED_ERRORS = 10

_lock = threading.Lock()
_logging_ready = False


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


# ------------------------------------------------------------------------------------------ delivery logs


def log_delivery(
    result: DeliveryResult,
    headers: Mapping[str, str],
    delivery: Any = None,
    fields: dict[str, Any] | None = None,
) -> None:
    """Log what :func:`adscore.runtime.run_delivery` did, as Cloud Logging structured entries with the trace.

    One ``duplicate`` entry for a delivery processed before; one ``rejected`` WARNING per dead letter;
    one ``alert`` entry per alert sent (ERROR for high and critical); one ``batch`` entry with the counts.
    """
    setup_logging()
    extras = trace_context(headers, _project_of(delivery))
    fields = dict(fields or {})
    if result.duplicate:
        log.info("duplicate delivery of a processed log entry, skipped",
                 extra={**extras, "json_fields": {"event": "duplicate", **fields}})  # fmt: skip
        return
    # constant messages: every text that came from a log (reasons, locations, titles) is a cleaned field
    for letter in result.letters[:_MAX_LOGGED_ERRORS]:
        log.warning(
            "rejected an unreadable message",
            extra={**extras, "json_fields": {"event": "rejected", "reason": clean_text(letter.reason, 1000),
                                             "location": clean_text(letter.location, 300), **fields}},
        )  # fmt: skip
    report = result.report
    for alert in report.sent:
        level = logging.ERROR if alert.severity in ("high", "critical") else logging.WARNING
        json_fields = {"event": "alert", "title": clean_text(alert.title, 300), "alert_id": alert.id,
                       "detection": alert.detection, "technique": alert.technique,
                       "alert_severity": alert.severity, **fields}  # fmt: skip
        log.log(level, "alert sent", extra={**extras, "json_fields": json_fields})
    errors = [
        {"location": clean_text(e.location, 200), "reason": clean_text(e.reason, 300)}
        for e in report.errors[:_MAX_LOGGED_ERRORS]
    ]
    log.log(
        logging.ERROR if result.retry else logging.INFO,
        "processed %d record(s): %d alert(s) sent",
        report.counts.get("records", 0),
        len(report.sent),
        extra={**extras, "json_fields": {"event": "batch", "alert_ids": [a.id for a in report.sent],
                                         **result.summary(), "record_errors": errors, **fields}},
    )  # fmt: skip


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
