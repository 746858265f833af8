"""A loopback stand-in for the PagerDuty Events API v2 that checks every request.

No PagerDuty emulator exists, so this server checks each request against the
documented API (developer.pagerduty.com, "Events API v2 Overview" and "Send an
Alert Event"), and answers as the API does: ``202`` with
``{"status": "success", "message": "Event processed", "dedup_key": ...}``, or
``400`` with ``{"status": "invalid event", "errors": [...]}``. What it checks:

- ``POST /v2/enqueue`` with ``Content-Type: application/json``; the body at most 512 KB;
- ``routing_key``: a 32-character string; ``event_action``: trigger, acknowledge or resolve;
- ``dedup_key``: a string of at most 255 characters (required for acknowledge and resolve);
- for trigger, ``payload`` with ``summary`` (non-empty, at most 1,024 characters),
  ``source`` (non-empty), ``severity`` (critical, error, warning or info), an
  optional ISO 8601 ``timestamp``, optional string ``component``, ``group``,
  ``class`` and an object ``custom_details``;
- optional ``links`` (``href`` and ``text``), ``images`` (``src``), ``client``,
  ``client_url``; no other top-level or payload field.

``fail_next(n, status)`` makes the next ``n`` requests fail (429 or 5xx) before
any check, as throttling or an outage would.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BYTES = 512 * 1024
SEVERITIES = {"critical", "error", "warning", "info"}
ACTIONS = {"trigger", "acknowledge", "resolve"}
TOP_LEVEL = {"routing_key", "event_action", "dedup_key", "payload", "images", "links", "client", "client_url"}
PAYLOAD = {"summary", "source", "severity", "timestamp", "component", "group", "class", "custom_details"}


def problems(event: Any) -> list[str]:
    """What is wrong with an Events API v2 request body (empty when it is valid)."""
    if not isinstance(event, dict):
        return ["the body is not a JSON object"]
    errs = [f"unknown field {k}" for k in event if k not in TOP_LEVEL]
    key = event.get("routing_key")
    if not isinstance(key, str) or len(key) != 32:
        errs.append("routing_key must be a 32-character string")
    action = event.get("event_action")
    if action not in ACTIONS:
        errs.append("event_action must be trigger, acknowledge or resolve")
    dedup = event.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or not 0 < len(dedup) <= 255):
        errs.append("dedup_key must be a string of at most 255 characters")
    if action in ("acknowledge", "resolve") and dedup is None:
        errs.append("dedup_key is required to acknowledge or resolve")
    if action == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            return [*errs, "payload is required"]
        errs += [f"unknown payload field {k}" for k in payload if k not in PAYLOAD]
        summary = payload.get("summary")
        if not isinstance(summary, str) or not summary or len(summary) > 1024:
            errs.append("payload.summary must be 1 to 1024 characters")
        if not isinstance(payload.get("source"), str) or not payload["source"]:
            errs.append("payload.source is required")
        if payload.get("severity") not in SEVERITIES:
            errs.append("payload.severity must be critical, error, warning or info")
        if "timestamp" in payload:
            try:
                datetime.fromisoformat(str(payload["timestamp"]).replace("Z", "+00:00"))
            except ValueError:
                errs.append("payload.timestamp must be ISO 8601")
        for name in ("component", "group", "class"):
            if name in payload and not isinstance(payload[name], str):
                errs.append(f"payload.{name} must be a string")
        if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
            errs.append("payload.custom_details must be an object")
    for link in event.get("links") or []:
        if not isinstance(link, dict) or not isinstance(link.get("href"), str):
            errs.append("links[] need an href")
    for image in event.get("images") or []:
        if not isinstance(image, dict) or not isinstance(image.get("src"), str):
            errs.append("images[] need a src")
    return errs


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    errors: list[str] = field(default_factory=list)

    @property
    def event(self) -> Any:
        return json.loads(self.body)


class PagerDutyReceiver:
    """Run the checking server on 127.0.0.1 (a free port) inside a ``with`` block."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._fail: list[int] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver._handle(self, body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v2/enqueue"

    def fail_next(self, n: int, status: int = 500) -> None:
        with self._lock:
            self._fail += [status] * n

    @property
    def accepted(self) -> list[Request]:
        return [r for r in self.requests if r.status == 202]

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            forced = self._fail.pop(0) if self._fail else None
        errors: list[str] = []
        if forced is not None:
            status, answer = forced, {"status": "error", "message": "try again"}
        else:
            if handler.path != "/v2/enqueue":
                errors.append(f"path {handler.path} is not /v2/enqueue")
            if not headers.get("content-type", "").startswith("application/json"):
                errors.append("Content-Type must be application/json")
            if len(body) > MAX_BYTES:
                errors.append("the event is over 512 KB")
            try:
                event = json.loads(body)
            except ValueError:
                event = None
                errors.append("the body is not JSON")
            if event is not None:
                errors += problems(event)
            if errors:
                status, answer = (
                    400,
                    {"status": "invalid event", "message": "Event object is invalid", "errors": errors},
                )
            else:
                status = 202
                answer = {
                    "status": "success",
                    "message": "Event processed",
                    "dedup_key": event.get("dedup_key"),
                }
        self.requests.append(Request(handler.path, headers, body, status, errors))
        data = json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def __enter__(self) -> PagerDutyReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
