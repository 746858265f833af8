"""A real HTTP webhook receiver on loopback that records requests and checks signatures.

Used by `adscore emulate` (alerts of the Azure and GCP functions arrive here) and by any test
that sends alerts to a webhook::

    with WebhookReceiver(secret="s3cret") as rx:
        sink = WebhookSink(rx.url, secret="s3cret")
        sink.send([alert])
        headers, body, verified = rx.requests[0]

The signature check is written here independently of ``adscore.sinks.webhook``
(it follows ``docs/webhooks.md``), so a signing bug cannot hide behind a
verification helper that shares it.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable

MAX_AGE_SECONDS = 300


class Received(NamedTuple):
    """One request: headers (lower-cased names), raw body, and whether its signature is valid."""

    headers: dict[str, str]
    body: bytes
    verified: bool


def verify(secret: str, headers: dict[str, str], body: bytes, *, max_age: int = MAX_AGE_SECONDS) -> bool:
    """Check ``X-Adscore-Signature`` as docs/webhooks.md tells receivers to."""
    timestamp = headers.get("x-adscore-timestamp", "")
    signature = headers.get("x-adscore-signature", "")
    if not timestamp.isdigit() or not signature.startswith("v1="):
        return False
    if abs(time.time() - int(timestamp)) > max_age:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature[3:])


class WebhookReceiver:
    """Loopback HTTP server (``ThreadingHTTPServer`` on 127.0.0.1, a free port) in a thread.

    Parameters
    ----------
    secret : str | None
        Secret to verify signatures with; without one, ``verified`` is always False.
    on_receive : callable, optional
        Called (in the server thread) with each request as it arrives.

    Attributes
    ----------
    url : str
        ``http://127.0.0.1:<port>/hook`` (any path is accepted).
    requests : list[Received]
        Every request received, answered or failed, in order.
    statuses : list[int]
        The status answered to each request (same order as ``requests``).
    paths : list[str]
        The path of each request.
    """

    def __init__(self, secret: str | None = None, on_receive: Callable[[Received], None] | None = None) -> None:
        self.secret = secret
        self.on_receive = on_receive
        self.requests: list[Received] = []
        self.statuses: list[int] = []
        self.paths: list[str] = []
        self._failures: list[int] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- programming the receiver ------------------------------------------------------

    def fail_next(self, n: int, status: int = 500) -> None:
        """Answer the next ``n`` requests with ``status`` instead of 200."""
        with self._lock:
            self._failures.extend([status] * n)

    @property
    def delivered(self) -> list[Received]:
        """The requests answered with a 2xx status."""
        return [r for r, s in zip(self.requests, self.statuses, strict=True) if 200 <= s < 300]

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("WebhookReceiver is not started: use it as a context manager")
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def __enter__(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = receiver._record(self.path, headers, body)
                payload = b"ok" if status < 300 else b"error"
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        server = self._server
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.02), name="webhook-receiver", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _record(self, path: str, headers: dict[str, str], body: bytes) -> int:
        verified = self.secret is not None and verify(self.secret, headers, body)
        with self._lock:
            status = self._failures.pop(0) if self._failures else 200
            self.requests.append(Received(headers, body, verified))
            self.statuses.append(status)
            self.paths.append(path)
        if self.on_receive is not None:
            self.on_receive(Received(headers, body, verified))
        return status
