"""A local Cloud Storage JSON API server for the reads `adscore replay gs://` makes.

No Cloud Storage emulator runs on our CI machines (fake-gcs-server is a Go binary or a container),
so this server stands in for one, and checks each request against the JSON API's documented shape
(https://cloud.google.com/storage/docs/json_api/v1): ``GET /storage/v1/b/{bucket}`` returns a
bucket's metadata, ``GET /storage/v1/b/{bucket}/o`` lists
objects (``prefix``, ``pageToken``, ``maxResults``; pages of at most ``maxResults``, default 1,000,
with ``nextPageToken``), ``GET /storage/v1/b/{bucket}/o/{object}`` returns an object's metadata,
``GET /download/storage/v1/b/{bucket}/o/{object}?alt=media`` its bytes, honouring ``Range``
(``206`` with ``Content-Range``, ``416`` past the end). Object names in paths are percent-encoded,
as the API requires. A request of another shape is answered ``400`` and recorded in
:attr:`FakeGCS.rejected`, so a test can assert that the client only made documented calls.
Unknown buckets and objects are ``404`` with the API's error body.

Use: ``with FakeGCS() as gcs: gcs.put("bucket", "key", b"..."); os.environ["STORAGE_EMULATOR_HOST"] = gcs.url``.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

_BUCKET = re.compile(r"^/storage/v1/b/([^/]+)$")
_LIST = re.compile(r"^/storage/v1/b/([^/]+)/o$")
_META = re.compile(r"^/storage/v1/b/([^/]+)/o/(.+)$")
_MEDIA = re.compile(r"^/download/storage/v1/b/([^/]+)/o/(.+)$")
_LIST_PARAMS = {"prefix", "pageToken", "maxResults", "projection", "delimiter", "versions", "fields",
                "includeTrailingDelimiter", "userProject", "prettyPrint", "startOffset", "endOffset",
                "matchGlob", "softDeleted", "includeFoldersAsPrefixes"}  # fmt: skip


class FakeGCS:
    def __init__(self) -> None:
        self.buckets: dict[str, dict[str, bytes]] = {}
        self.rejected: list[str] = []
        self.requests: list[tuple[str, str | None]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._get(self)

            def do_POST(self) -> None:
                fake._reject(self, "only GET requests are expected from a reader")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeGCS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def put(self, bucket: str, name: str, data: bytes) -> None:
        self.buckets.setdefault(bucket, {})[name] = data

    # ------------------------------------------------------------------ handlers
    def _reply(self, h: BaseHTTPRequestHandler, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        h.send_response(code)
        for k, v in (headers or {"Content-Type": "application/json"}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _error(self, h: BaseHTTPRequestHandler, code: int, message: str, reason: str) -> None:
        body = {"error": {"code": code, "message": message, "errors": [{"message": message, "domain": "global", "reason": reason}]}}
        self._reply(h, code, json.dumps(body).encode())

    def _reject(self, h: BaseHTTPRequestHandler, why: str) -> None:
        self.rejected.append(f"{h.command} {h.path}: {why}")
        self._error(h, 400, why, "invalid")

    def _resource(self, bucket: str, name: str, data: bytes) -> dict[str, Any]:
        return {"kind": "storage#object", "id": f"{bucket}/{name}/1", "name": name, "bucket": bucket,
                "generation": "1", "metageneration": "1", "contentType": "application/octet-stream",
                "size": str(len(data)), "selfLink": f"{self.url}/storage/v1/b/{bucket}/o/{quote(name, safe='')}",
                "mediaLink": f"{self.url}/download/storage/v1/b/{bucket}/o/{quote(name, safe='')}?alt=media"}  # fmt: skip

    def _get(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        query = parse_qs(parts.query)
        self.requests.append((h.path, h.headers.get("Range")))
        raw_path = parts.path
        if m := _BUCKET.match(raw_path):  # buckets.get
            bucket = unquote(m.group(1))
            if bucket not in self.buckets:
                return self._error(h, 404, "The specified bucket does not exist.", "notFound")
            body = {"kind": "storage#bucket", "id": bucket, "name": bucket, "location": "EU", "storageClass": "STANDARD"}
            return self._reply(h, 200, json.dumps(body).encode())
        if m := _LIST.match(raw_path):
            unknown = set(query) - _LIST_PARAMS
            if unknown:
                return self._reject(h, f"unknown list parameters {sorted(unknown)}")
            return self._list(h, unquote(m.group(1)), query)
        if m := _MEDIA.match(raw_path):
            if query.get("alt") != ["media"]:
                return self._reject(h, "a media download needs alt=media")
            if "/" in m.group(2):
                return self._reject(h, "object names in paths are percent-encoded")
            return self._media(h, unquote(m.group(1)), unquote(m.group(2)))
        if m := _META.match(raw_path):
            if "/" in m.group(2):
                return self._reject(h, "object names in paths are percent-encoded")
            bucket, name = unquote(m.group(1)), unquote(m.group(2))
            if query.get("alt") == ["media"]:
                return self._media(h, bucket, name)
            data = self.buckets.get(bucket, {}).get(name)
            if data is None:
                return self._error(h, 404, "No such object", "notFound")
            return self._reply(h, 200, json.dumps(self._resource(bucket, name, data)).encode())
        return self._reject(h, "not a JSON API path")

    def _list(self, h: BaseHTTPRequestHandler, bucket: str, query: dict[str, list[str]]) -> None:
        if bucket not in self.buckets:
            return self._error(h, 404, "The specified bucket does not exist.", "notFound")
        prefix = query.get("prefix", [""])[0]
        try:
            size = int(query.get("maxResults", ["1000"])[0])
            start = int(query.get("pageToken", ["0"])[0])
        except ValueError:
            return self._reject(h, "maxResults and pageToken are integers here")
        if not 0 < size <= 1000:
            return self._reject(h, "maxResults is 1 to 1000")
        names = sorted(n for n in self.buckets[bucket] if n.startswith(prefix))
        page = names[start : start + size]
        body: dict[str, Any] = {"kind": "storage#objects",
                                "items": [self._resource(bucket, n, self.buckets[bucket][n]) for n in page]}  # fmt: skip
        if start + size < len(names):
            body["nextPageToken"] = str(start + size)
        return self._reply(h, 200, json.dumps(body).encode())

    def _media(self, h: BaseHTTPRequestHandler, bucket: str, name: str) -> None:
        data = self.buckets.get(bucket, {}).get(name)
        if data is None:
            return self._error(h, 404, "No such object", "notFound")
        rng = h.headers.get("Range")
        if not rng:
            return self._reply(h, 200, data, {"Content-Type": "application/octet-stream", "x-goog-generation": "1"})
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng)
        if m is None:
            return self._reject(h, f"unsupported Range {rng!r}")
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else len(data) - 1
        if start >= len(data):
            return self._reply(h, 416, b"", {"Content-Range": f"bytes */{len(data)}"})
        end = min(end, len(data) - 1)
        chunk = data[start : end + 1]
        return self._reply(h, 206, chunk, {"Content-Type": "application/octet-stream", "x-goog-generation": "1",
                                           "Content-Range": f"bytes {start}-{end}/{len(data)}"})  # fmt: skip
