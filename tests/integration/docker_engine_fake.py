"""A fake Docker Engine API on a real unix socket, for the forwarder's tests.

It serves what ``adscore forward docker`` reads, the way dockerd does:

- ``GET /events?since=&until=&filters=``: chunked HTTP/1.1, one JSON event per line. With ``since``
  the events of the buffer at or after it (inclusive, as the engine compares ``timeNano >=``) come
  first; with ``until`` the stream ends after the buffered ones, else live events follow.
  ``filters`` (``type``, ``event``) is applied. Without ``since`` and ``until`` only live events.
- ``GET /containers/{id}/changes``: the configured list (``Kind`` 0 changed, 1 added, 2 deleted), or 404.

The event shape is the Engine API's (``Type``, ``Action``, ``Actor.ID``, ``Actor.Attributes``,
``scope``, ``time``, ``timeNano``). :meth:`FakeDockerEngine.go_away` closes the socket and every
open stream, :meth:`FakeDockerEngine.come_back` serves the same path again (the buffer is kept).
"""

from __future__ import annotations

import contextlib
import json
import os
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


def engine_event(
    action: str, actor_id: str, *, typ: str = "container", attrs: dict[str, str] | None = None, time_nano: int
) -> dict[str, Any]:
    """One event as the Engine API streams it (API >= 1.44: no deprecated status/id/from)."""
    return {
        "Type": typ,
        "Action": action,
        "Actor": {"ID": actor_id, "Attributes": attrs or {}},
        "scope": "local",
        "time": time_nano // 1_000_000_000,
        "timeNano": time_nano,
    }


def _since_ns(value: str) -> int:
    seconds, _, frac = value.partition(".")
    return int(seconds) * 1_000_000_000 + int((frac + "000000000")[:9])


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    block_on_close = False


class FakeDockerEngine:
    """Context manager: a threaded HTTP server on ``path`` (a unix socket)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.buffer: list[dict[str, Any]] = []
        self.changes: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[str] = []
        self._cond = threading.Condition()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._generation = 0

    # -- the engine's side ----------------------------------------------------------------
    def emit(self, event: dict[str, Any]) -> None:
        """Log an event: buffered, and sent to every open stream whose filters take it."""
        with self._cond:
            self.buffer.append(event)
            self._cond.notify_all()

    def streams_open(self) -> int:
        with self._cond:
            return self._open

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> FakeDockerEngine:
        self._open = 0
        self.come_back()
        return self

    def __exit__(self, *exc: object) -> None:
        self.go_away()

    def come_back(self) -> None:
        engine = self
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def address_string(self) -> str:
                return "unix"

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                engine.requests.append(self.path)
                path = url.path.split("/", 2)[2] if url.path.startswith("/v1.") else url.path.lstrip("/")
                if path == "events":
                    self._events(parse_qs(url.query))
                elif path.startswith("containers/") and path.endswith("/changes"):
                    cid = unquote(path[len("containers/") : -len("/changes")])
                    if cid in engine.changes:
                        self._json(200, engine.changes[cid])
                    else:
                        self._json(404, {"message": f"No such container: {cid}"})
                else:
                    self._json(404, {"message": "page not found"})

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

            def _events(self, q: dict[str, list[str]]) -> None:
                filters = json.loads(q["filters"][0]) if "filters" in q else {}
                since = _since_ns(q["since"][0]) if "since" in q else None
                until = _since_ns(q["until"][0]) if "until" in q else None

                def wanted(ev: dict[str, Any]) -> bool:
                    if "type" in filters and ev["Type"] not in filters["type"]:
                        return False
                    if "event" in filters and ev["Action"] not in filters["event"]:
                        return False
                    if until is not None and ev["timeNano"] > until:
                        return False
                    return since is None or ev["timeNano"] >= since

                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                generation = engine._generation
                with engine._cond:
                    engine._open += 1
                    sent = len(engine.buffer) if since is None and until is None else 0
                try:
                    while True:
                        with engine._cond:
                            pending = engine.buffer[sent:]
                            sent = len(engine.buffer)
                        for ev in pending:
                            if wanted(ev):
                                self._chunk(json.dumps(ev, separators=(",", ":")).encode() + b"\n")  # as Go encodes it
                        if until is not None:
                            self.wfile.write(b"0\r\n\r\n")
                            return
                        with engine._cond:
                            if engine._generation != generation:
                                return
                            if len(engine.buffer) == sent:
                                engine._cond.wait(timeout=0.05)
                            if engine._generation != generation:
                                return
                except (BrokenPipeError, ConnectionResetError, OSError):
                    return
                finally:
                    with engine._cond:
                        engine._open -= 1
                    self.close_connection = True

        server = _Server(self.path, Handler)
        self._server = server
        self._thread = threading.Thread(target=lambda: server.serve_forever(poll_interval=0.02), daemon=True)
        self._thread.start()

    def go_away(self) -> None:
        """Stop serving: the socket file is removed and every open stream is cut."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        deadline = time.monotonic() + 5
        while self.streams_open() and time.monotonic() < deadline:
            time.sleep(0.01)
