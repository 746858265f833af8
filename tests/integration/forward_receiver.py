"""A loopback ingest endpoint for the forwarder's tests: verifies Standard Webhooks signatures.

The check uses the specification's own library (``standardwebhooks``) on the exact bytes received,
answers 401 to a bad signature, 409 to a ``webhook-id`` it already accepted (as the adscore
ingest endpoint does), and can be told to answer other statuses or to be down (connection refused).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class IngestReceiver:
    def __init__(self, secret: str) -> None:
        from standardwebhooks.webhooks import Webhook

        self._verifier = Webhook(secret)
        self.attempts: list[tuple[str, int]] = []  # (webhook-id, status answered)
        self.accepted: list[dict[str, Any]] = []  # bodies answered 2xx, in order
        self.accepted_ids: list[str] = []
        self._plan: list[int] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    def answer_next(self, *statuses: int) -> None:
        with self._lock:
            self._plan.extend(statuses)

    def clear_plan(self) -> None:
        with self._lock:
            self._plan.clear()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/ingest"

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [e for body in self.accepted for e in body["events"]]

    def wait_events(self, n: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.events()) >= n:
                return self.events()
            time.sleep(0.02)
        raise AssertionError(f"expected {n} events, got {len(self.events())}: {self.attempts}")

    def _handle(self, headers: dict[str, str], body: bytes) -> int:
        msg_id = headers.get("webhook-id", "")
        try:
            self._verifier.verify(body, headers)
        except Exception:
            status = 401
        else:
            with self._lock:
                if self._plan:
                    status = self._plan.pop(0)
                elif msg_id in self.accepted_ids:
                    status = 409
                else:
                    status = 200
                if status == 200:
                    self.accepted.append(json.loads(body))
                    self.accepted_ids.append(msg_id)
        with self._lock:
            self.attempts.append((msg_id, status))
        return status

    def start(self) -> IngestReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                if headers.get("content-type") != "application/json":
                    status = 415
                else:
                    status = receiver._handle(headers, body)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=lambda: self._server.serve_forever(poll_interval=0.02), daemon=True).start()  # type: ignore[union-attr]
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> IngestReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
