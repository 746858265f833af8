"""The Microsoft Sentinel sink (Logs Ingestion API), against a local server that checks each request.

No emulator of the Logs Ingestion API exists. The server below checks every
request the client library (``azure-monitor-ingestion``) sends against the
documented API (learn.microsoft.com, "Logs Ingestion API in Azure Monitor"):
``POST /dataCollectionRules/<dcr immutable id>/streams/<stream>?api-version=2023-01-01``
with a bearer token, ``Content-Type: application/json``, a gzip body of at most
1 MB holding a JSON array of objects, each with the stream's columns and an
ISO 8601 ``TimeGenerated``; it answers ``204`` as the API does, or an error.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from adscore.errors import ConfigError, SinkError
from adscore.sinks import SINKS, open_sink
from adscore.sinks.base import RetryingSink
from adscore.sinks.sentinel import COLUMNS, SentinelSink
from tests.contract.test_alert_sink import alert, no_sleep

pytestmark = pytest.mark.integration

DCR = "dcr-0123456789abcdef0123456789abcdef"
STREAM = "Custom-AdscoreAlerts"
MAX_BODY = 1024 * 1024


@dataclass
class Upload:
    status: int
    rows: list[dict[str, Any]]
    errors: list[str]
    headers: dict[str, str]


class IngestionReceiver:
    """Checks requests as the Logs Ingestion API documents them; ``fail_next`` forces errors."""

    def __init__(self) -> None:
        self.uploads: list[Upload] = []
        self._fail: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver._check(self, body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail_next(self, n: int, status: int) -> None:
        self._fail += [status] * n

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [r for u in self.uploads if u.status == 204 for r in u.rows]

    def _check(self, handler: BaseHTTPRequestHandler, body: bytes) -> int:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        errors: list[str] = []
        url = urlsplit(handler.path)
        if url.path != f"/dataCollectionRules/{DCR}/streams/{STREAM}":
            errors.append(f"path {url.path}")
        if parse_qs(url.query).get("api-version") != ["2023-01-01"]:
            errors.append("api-version must be 2023-01-01")
        if not headers.get("authorization", "").startswith("Bearer "):
            errors.append("no bearer token")
        if not headers.get("content-type", "").startswith("application/json"):
            errors.append("Content-Type must be application/json")
        rows: list[dict[str, Any]] = []
        try:
            raw = gzip.decompress(body) if headers.get("content-encoding") == "gzip" else body
            if len(raw) > MAX_BODY:
                errors.append("body over 1 MB")
            data = json.loads(raw)
            if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
                errors.append("the body is a JSON array of objects")
            else:
                rows = data
        except (OSError, ValueError):
            errors.append("the body is not (gzip) JSON")
        for row in rows:
            if set(row) != set(COLUMNS):
                errors.append(f"columns {sorted(set(row) ^ set(COLUMNS))} differ from the stream's")
            try:
                datetime.fromisoformat(str(row.get("TimeGenerated")).replace("Z", "+00:00"))
            except ValueError:
                errors.append("TimeGenerated must be ISO 8601")
        status = self._fail.pop(0) if self._fail else (400 if errors else 204)
        self.uploads.append(Upload(status, rows, errors, headers))
        return status

    def __enter__(self) -> IngestionReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class StaticToken:
    """A TokenCredential that hands out a fixed token (the function's managed identity in Azure)."""

    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.scopes += scopes
        return AccessToken("test-token", int(time.time()) + 3600)


def sink(rx: IngestionReceiver, credential: StaticToken | None = None) -> SentinelSink:
    return SentinelSink(rx.endpoint, DCR, STREAM, credential=credential or StaticToken())


def test_each_alert_is_a_row_of_the_custom_table() -> None:
    a = alert(1, ads_url="https://ads.example.com/snapshot.shared_external")
    token = StaticToken()
    with IngestionReceiver() as rx:
        report = sink(rx, token).send([a, alert(2)])
    assert report.sent == (a.id, alert(2).id)
    (upload,) = rx.uploads
    assert upload.status == 204, upload.errors
    assert upload.headers["authorization"] == "Bearer test-token"
    assert token.scopes == ["https://monitor.azure.com/.default"]
    row = rx.rows[0]
    assert row["AlertId"] == a.id and row["Detection"] == "snapshot.shared_external"
    assert (row["Technique"], row["Tactic"], row["Severity"]) == ("T1578.001", "Defense Evasion", "high")
    assert row["TimeGenerated"] == "2024-05-01T12:01:00Z" and row["FirstSeen"] == "2024-05-01T12:00:00Z"
    assert row["Principal"]["id"] == "arn:aws:iam::111122223333:user/user1"
    assert row["Resources"] == [{"type": "ec2.snapshot", "id": "snap-1", "role": "target"}]
    assert row["EvidenceEventIds"] == ["e-1"] and "records" not in json.dumps(row)
    assert row["AdsUrl"] == a.ads_url


def test_many_alerts_are_split_into_requests_of_at_most_1_mb() -> None:
    # GIVEN 400 alerts of about 5 KB each (2 MB in all)
    alerts = [
        alert(n, summary="s" * 1000, context={"note": "n" * 1000, "more": "m" * 1000}) for n in range(400)
    ]
    with IngestionReceiver() as rx:
        report = sink(rx).send(alerts)
    assert len(report.sent) == 400
    assert len(rx.uploads) >= 2 and all(u.status == 204 for u in rx.uploads)
    assert sorted(r["AlertId"] for r in rx.rows) == sorted(a.id for a in alerts)


def test_a_refused_chunk_is_retried_and_a_bad_rule_is_permanent() -> None:
    a = alert(1)
    with IngestionReceiver() as rx:
        rx.fail_next(1, 503)
        report = RetryingSink(sink(rx), sleep=no_sleep).send([a])
        assert report.sent == (a.id,)
        rx.fail_next(1, 404)  # a DCR or stream that does not exist
        with pytest.raises(SinkError) as err:
            RetryingSink(sink(rx), sleep=no_sleep).send([alert(2)])
    assert err.value.unsent == (alert(2).id,)
    assert [u.status for u in rx.uploads] == [503, 204, 404]


def test_urls() -> None:
    assert SINKS["sentinel"] == "adscore.sinks.sentinel:SentinelSink"
    s = open_sink(f"sentinel://adscore-x1.westeurope-1.ingest.monitor.azure.com/{DCR}/{STREAM}")
    assert isinstance(s, RetryingSink) and isinstance(s.inner, SentinelSink)
    assert s.inner.endpoint == "https://adscore-x1.westeurope-1.ingest.monitor.azure.com"
    assert (s.inner.rule_id, s.inner.stream) == (DCR, STREAM)
    for bad in (
        f"sentinel://host/{DCR}",
        f"sentinel://host/dcr-123/{STREAM}",
        f"sentinel://host/{DCR}/AdscoreAlerts",
        f"sentinel://host/{DCR}/{STREAM}?x=1",
    ):
        with pytest.raises(ConfigError):
            open_sink(bad)
    with pytest.raises(ConfigError):
        SentinelSink("http://example.com", DCR, STREAM)  # no bearer token over plain http off loopback
