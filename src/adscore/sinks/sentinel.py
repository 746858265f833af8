"""Microsoft Sentinel sink: each alert as a row of a custom table, through the Logs Ingestion API.

``sentinel://<data collection endpoint host>/<DCR immutable id>/<stream>``, for example
``sentinel://adscore-x1y2.westeurope-1.ingest.monitor.azure.com/dcr-0123456789abcdef0123456789abcdef/Custom-AdscoreAlerts``.

Rows go to a data collection rule (DCR) whose stream feeds a custom table of the
Log Analytics workspace behind Sentinel (for example ``AdscoreAlerts_CL``); the
columns are :data:`COLUMNS`. Requests are signed by the Azure credential chain
(``DefaultAzureCredential``: the function's managed identity), which needs the
*Monitoring Metrics Publisher* role on the DCR. Rows are sent in requests of at
most 1 MB (uncompressed), gzipped by the client library (``azure-monitor-ingestion``).

Rows carry the alert id (``AlertId``): Log Analytics keeps every row, so a
redelivered alert is a second row with the same id (``summarize arg_max(TimeGenerated, *)
by AlertId`` keeps the latest). Raw evidence records are not sent (they are in
the JSON alert). This backend does not retry: :class:`~adscore.sinks.base.RetryingSink` does.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from adscore.errors import ConfigError
from adscore.sinks.base import SendReport

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Self

    from adscore.alerts import Alert

__all__ = ["COLUMNS", "SentinelSink", "to_row"]

log = logging.getLogger("adscore.sinks.sentinel")

COLUMNS: dict[str, str] = {
    "TimeGenerated": "datetime",
    "AlertId": "string",
    "Detection": "string",
    "Technique": "string",
    "TechniqueName": "string",
    "Tactic": "string",
    "Severity": "string",
    "Title": "string",
    "Summary": "string",
    "Principal": "dynamic",
    "Cloud": "string",
    "Account": "string",
    "Region": "string",
    "Resources": "dynamic",
    "EventCount": "int",
    "FirstSeen": "datetime",
    "LastSeen": "datetime",
    "EvidenceEventIds": "dynamic",
    "Response": "dynamic",
    "Context": "dynamic",
    "Entity": "string",
    "AdsUrl": "string",
    "SettingsVersion": "string",
}
"""The custom table's columns and their Log Analytics types (the DCR's stream declaration)."""

MAX_REQUEST_BYTES = 1_000_000
"""Rows per request stay under the Logs Ingestion API's 1 MB (uncompressed) with a margin."""
_DCR = re.compile(r"^dcr-[0-9a-f]{32}$")
_STREAM = re.compile(r"^Custom-[A-Za-z0-9_]{1,100}$")
_PERMANENT = frozenset({400, 401, 403, 404, 413})


def _iso(alert_time: Any) -> str:
    return str(alert_time.isoformat().replace("+00:00", "Z"))


def _batches(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Rows in batches whose JSON array stays under :data:`MAX_REQUEST_BYTES`.

    The client library also splits by size, but counts the rows alone, not the
    array's separators, so a full chunk can pass the API's 1 MB by a few hundred bytes.
    """
    out: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 2
    for row in rows:
        row_size = len(json.dumps(row).encode("utf-8")) + 2
        if current and size + row_size > MAX_REQUEST_BYTES:
            out.append(current)
            current, size = [], 2
        current.append(row)
        size += row_size
    if current:
        out.append(current)
    return out


def to_row(alert: Alert) -> dict[str, Any]:
    """Return the alert as one row of the custom table (keys are :data:`COLUMNS`)."""
    return {
        "TimeGenerated": _iso(alert.last_seen),
        "AlertId": alert.id,
        "Detection": alert.detection,
        "Technique": alert.technique,
        "TechniqueName": alert.technique_name,
        "Tactic": alert.tactic,
        "Severity": alert.severity,
        "Title": alert.title,
        "Summary": alert.summary,
        "Principal": alert.principal,
        "Cloud": alert.cloud,
        "Account": alert.account or "",
        "Region": alert.region or "",
        "Resources": alert.resources,
        "EventCount": alert.count,
        "FirstSeen": _iso(alert.first_seen),
        "LastSeen": _iso(alert.last_seen),
        "EvidenceEventIds": alert.evidence.event_ids,
        "Response": alert.response,
        "Context": alert.context,
        "Entity": alert.entity,
        "AdsUrl": alert.ads_url or "",
        "SettingsVersion": alert.settings_version or "",
    }


class SentinelSink:
    """Send alerts to a Log Analytics custom table (Microsoft Sentinel) through a DCR.

    Parameters
    ----------
    endpoint : str
        The data collection endpoint's logs ingestion URL (``https://...ingest.monitor.azure.com``).
    rule_id : str
        The DCR's immutable id (``dcr-`` and 32 hex digits).
    stream : str
        The DCR stream (``Custom-<name>``).
    credential : azure TokenCredential, optional
        Default: ``DefaultAzureCredential`` (managed identity in Azure).
    client : azure.monitor.ingestion.LogsIngestionClient, optional
        Injected client (not closed by :meth:`close`).

    Raises
    ------
    ConfigError
        ``sinks``: a malformed endpoint, rule id or stream name.
    """

    def __init__(
        self,
        endpoint: str,
        rule_id: str,
        stream: str,
        credential: Any = None,
        client: Any = None,
    ) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ConfigError("sinks", "sentinel: the data collection endpoint is an https:// URL")
        if not _DCR.match(rule_id):
            raise ConfigError("sinks", "sentinel: the rule id is the DCR's immutable id, dcr-<32 hex digits>")
        if not _STREAM.match(stream):
            raise ConfigError("sinks", "sentinel: the stream is Custom-<name> (letters, digits, _)")
        self.endpoint = endpoint.rstrip("/")
        self.rule_id = rule_id
        self.stream = stream
        # Bearer tokens only travel over TLS, except to a receiver on this machine (tests, emulators).
        self._plain_http = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
        if parts.scheme == "http" and not self._plain_http:
            raise ConfigError("sinks", "sentinel: http:// is only for a receiver on loopback")
        self._credential = credential
        self._client = client
        self._owns_client = client is None
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, *, secret: str | None = None) -> Self:
        """Build from ``sentinel://<endpoint host>/<dcr immutable id>/<stream>`` (``secret`` is unused)."""
        del secret
        parts = urlsplit(url)
        segments = [s for s in parts.path.split("/") if s]
        if parts.scheme.lower() != "sentinel" or not parts.hostname or len(segments) != 2 or parts.query:
            raise ConfigError(
                "sinks", "a Sentinel sink URL is sentinel://<endpoint host>/<dcr-id>/<Custom-stream>"
            )
        return cls(f"https://{parts.netloc}", segments[0], segments[1])

    def __repr__(self) -> str:
        return f"SentinelSink({self.endpoint!r}, {self.rule_id!r}, {self.stream!r})"

    def _ingestion(self) -> Any:
        with self._lock:
            if self._client is None:
                from azure.monitor.ingestion import LogsIngestionClient

                credential = self._credential
                if credential is None:
                    from adscore.state.azure_table import default_credential

                    credential = default_credential("sinks")
                self._client = LogsIngestionClient(endpoint=self.endpoint, credential=credential)
            return self._client

    def send(self, alerts: Sequence[Alert]) -> SendReport:
        """Upload one row per alert; report which rows the service accepted.

        Returns
        -------
        SendReport
            ``failed`` lists the ids of rows in chunks the service refused;
            ``permanent`` those refused for a reason a retry cannot fix (HTTP
            400, 401, 403, 404, 413: a wrong DCR, stream, schema or role).
        """
        unique = list({a.id: a for a in alerts}.values())
        if not unique:
            return SendReport()
        failed: list[str] = []
        permanent: list[str] = []
        reasons: dict[str, str] = {}

        def on_error(error: Any) -> None:
            status = getattr(error.error, "status_code", None)
            reason = f"HTTP {status}" if status else type(error.error).__name__
            for row in error.failed_logs:
                aid = str(row.get("AlertId"))
                failed.append(aid)
                reasons[aid] = reason
                if status in _PERMANENT:
                    permanent.append(aid)

        extra: dict[str, Any] = {"enforce_https": False} if self._plain_http else {}
        try:
            client = self._ingestion()
            for rows in _batches([to_row(a) for a in unique]):
                client.upload(
                    rule_id=self.rule_id, stream_name=self.stream, logs=rows, on_error=on_error, **extra
                )
        except Exception as exc:  # the credential or the client failed before any chunk was sent
            log.warning("Sentinel upload to %s failed: %s", self.endpoint, type(exc).__name__)
            ids = [a.id for a in unique]
            return SendReport(failed=tuple(ids), reasons=dict.fromkeys(ids, type(exc).__name__))
        if failed:
            log.warning(
                "Sentinel %s: %d of %d row(s) refused (%s)",
                self.endpoint,
                len(failed),
                len(unique),
                ", ".join(sorted(set(reasons.values()))),
            )
        lost = set(failed)
        return SendReport(
            sent=tuple(a.id for a in unique if a.id not in lost),
            failed=tuple(a.id for a in unique if a.id in lost),
            permanent=tuple(a.id for a in unique if a.id in set(permanent)),
            reasons=reasons,
        )

    def close(self) -> None:
        """Close the ingestion client if this sink created it."""
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None
