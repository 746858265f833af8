"""PagerDuty Events API v2 sink: each alert triggers (or updates) one PagerDuty alert.

``pagerduty://<routing key>`` (the integration key of an Events API v2
integration), ``pagerduty://<routing key>?region=eu`` for the EU service
region, or ``?endpoint=https://...`` for a proxy.

- ``dedup_key`` is the alert id: the same alert sent again (a redelivery, or
  the alert grown by later events of its window) updates the open PagerDuty
  alert instead of paging again.
- ``payload.severity`` maps ours: critical -> ``critical``, high -> ``error``,
  medium -> ``warning``, low and info -> ``info``.
- ``payload.summary`` is the title (capped at the API's 1,024 characters),
  ``source`` the account (or cloud), ``component`` the detection, ``group``
  the cloud, ``class`` the ATT&CK technique; ``custom_details`` the alert's
  facts without raw evidence records; ``links`` the ADS report.

The routing key is a secret: logs and errors name only the Events API host.
This backend does not retry: :class:`~adscore.sinks.base.RetryingSink` does.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson

from adscore import __version__
from adscore.errors import ConfigError
from adscore.render.escape import cap
from adscore.sinks.base import SendReport, Tally, safe_target

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Self

    from adscore.alerts import Alert

__all__ = ["ENDPOINTS", "MAX_EVENT_BYTES", "SEVERITY", "PagerDutySink", "to_event"]

log = logging.getLogger("adscore.sinks.pagerduty")

ENDPOINTS = {
    "us": "https://events.pagerduty.com/v2/enqueue",
    "eu": "https://events.eu.pagerduty.com/v2/enqueue",
}
SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "info", "info": "info"}
MAX_EVENT_BYTES = 512_000
"""The Events API refuses an event over 512 KB."""
SUMMARY_LIMIT, FIELD_LIMIT, DEDUP_LIMIT = 1024, 255, 255
_KEY = re.compile(r"^[A-Za-z0-9]{32}$")


def to_event(alert: Alert, routing_key: str) -> dict[str, Any]:
    """Return the Events API v2 ``trigger`` event of an alert.

    Examples
    --------
    >>> to_event(alert, "R" * 32)["dedup_key"] == alert.id  # doctest: +SKIP
    True
    """
    details: dict[str, Any] = {
        "alert_id": alert.id,
        "detection": alert.detection,
        "technique": f"{alert.technique} {alert.technique_name}",
        "tactic": alert.tactic,
        "severity": alert.severity,
        "summary": alert.summary,
        "principal": alert.principal,
        "cloud": alert.cloud,
        "account": alert.account,
        "region": alert.region,
        "count": alert.count,
        "first_seen": alert.first_seen.isoformat().replace("+00:00", "Z"),
        "last_seen": alert.last_seen.isoformat().replace("+00:00", "Z"),
        "resources": alert.resources[:20],
        "response": alert.response,
        "evidence_event_ids": alert.evidence.event_ids[:50],
        "settings_version": alert.settings_version,
    }
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": alert.id[:DEDUP_LIMIT],
        "payload": {
            "summary": cap(alert.title or alert.detection, SUMMARY_LIMIT),
            "source": cap(alert.account or alert.cloud, FIELD_LIMIT),
            "severity": SEVERITY.get(alert.severity, "info"),
            "timestamp": alert.last_seen.isoformat().replace("+00:00", "Z"),
            "component": cap(alert.detection, FIELD_LIMIT),
            "group": cap(alert.cloud, FIELD_LIMIT),
            "class": cap(alert.technique, FIELD_LIMIT),
            "custom_details": details,
        },
        "client": "adscore",
    }
    if alert.ads_url and alert.ads_url.startswith(("https://", "http://")):
        event["links"] = [{"href": alert.ads_url, "text": f"ADS: {alert.detection}"}]
    return event


class PagerDutySink:
    """Send alerts to a PagerDuty service through the Events API v2.

    Parameters
    ----------
    routing_key : str
        The 32-character integration key.
    endpoint : str
        Events API URL (default: the US service region).
    timeout : float
        Seconds per request.
    client : httpx.Client | None
        Client to use (not closed by :meth:`close`).

    Raises
    ------
    ConfigError
        ``sinks``: a routing key that is not 32 letters and digits, or a bad endpoint.
    """

    def __init__(
        self,
        routing_key: str,
        endpoint: str = ENDPOINTS["us"],
        timeout: float = 10.0,
        client: httpx.Client | None = None,
    ) -> None:
        if not _KEY.match(routing_key):
            raise ConfigError("sinks", "pagerduty://<routing key>: the key is 32 letters and digits")
        parts = urlsplit(endpoint)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ConfigError("sinks", "pagerduty endpoint must be an http(s) URL")
        self._key = routing_key
        self.endpoint = endpoint
        self.target = safe_target(endpoint)
        self._timeout = timeout
        self._client = client
        self._owns_client = client is None

    @classmethod
    def from_url(cls, url: str, *, secret: str | None = None) -> Self:
        """Build from ``pagerduty://<routing key>[?region=us|eu][&endpoint=URL]`` (``secret`` is unused)."""
        del secret
        parts = urlsplit(url)
        if parts.scheme.lower() != "pagerduty":
            raise ConfigError("sinks", "a PagerDuty sink URL is written pagerduty://<routing key>")
        query = parse_qs(parts.query)
        region = (query.get("region") or ["us"])[-1].lower()
        if region not in ENDPOINTS:
            raise ConfigError("sinks", "pagerduty://...?region= is us or eu")
        endpoint = (query.get("endpoint") or [ENDPOINTS[region]])[-1]
        return cls(parts.netloc, endpoint)

    def __repr__(self) -> str:  # never the routing key
        return f"PagerDutySink({self.target!r})"

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=self._timeout, follow_redirects=False)
        return self._client

    def send(self, alerts: Sequence[Alert]) -> SendReport:
        """Trigger one PagerDuty event per alert; report which were accepted (2xx).

        HTTP 400 and other 4xx (but 408 and 429) are permanent failures;
        throttling, server errors and connection errors are worth retrying.
        """
        tally = Tally()
        headers = {"Content-Type": "application/json", "User-Agent": f"adscore/{__version__}"}
        for alert in alerts:
            body = orjson.dumps(to_event(alert, self._key))
            if len(body) > MAX_EVENT_BYTES:  # cannot happen with the caps above; never send it
                tally.fail(alert.id, "event over 512 KB", permanent=True)
                continue
            try:
                response = self._http().post(self.endpoint, content=body, headers=headers)
            except httpx.HTTPError as exc:
                tally.fail(alert.id, type(exc).__name__)
                continue
            tally.status(alert.id, response.status_code)
        return tally.report(log, f"PagerDuty {self.target}", len(alerts))

    def close(self) -> None:
        """Close the HTTP client if this sink created it."""
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None
