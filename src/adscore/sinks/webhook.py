"""Webhook sinks: generic signed JSON, Slack and Microsoft Teams.

Generic JSON (``https://...``, ``http://...``): one POST per alert, the body
is the alert's JSON, and with a secret the request is signed::

    X-Adscore-Timestamp: <unix seconds>
    X-Adscore-Signature: v1=<hex HMAC-SHA256(secret, b"<timestamp>." + body)>

(see ``docs/webhooks.md`` for verification). With the URL parameter
``adscore_signature=standard`` (or ``both``; it is removed from the URL before
sending), the request is signed per the Standard Webhooks specification instead
(or as well), with its own library (``standardwebhooks``)::

    webhook-id: <alert id>-<first 16 hex of SHA-256(body)>   (the same on a retry)
    webhook-timestamp: <unix seconds>
    webhook-signature: v1,<base64 HMAC-SHA256(key, b"<id>.<timestamp>." + body)>

where the key is the secret's base64 after ``whsec_`` when it is written that
way (the specification's form), else the secret's UTF-8 bytes. Slack
(``slack+https://...``) and Teams (``teams+https://...``) receive the rendered
message instead.

Slack and Teams webhook URLs are secrets themselves: logs name only the
scheme and host of a target, never its path, query or the signing secret.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import orjson

from adscore import __version__
from adscore.errors import ConfigError
from adscore.sinks.base import SendReport, Tally, http_permanent, safe_target

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from adscore.alerts import Alert

log = logging.getLogger("adscore.sinks.webhook")

Kind = Literal["json", "slack", "teams"]
Signature = Literal["adscore", "standard", "both"]
SIGNATURE_PARAM = "adscore_signature"
"""URL query parameter that chooses the signature scheme (removed before sending)."""
USER_AGENT = f"adscore/{__version__}"
DEFAULT_MAX_BYTES = 1_048_576
"""Generic JSON bodies are trimmed (evidence first, see ``Alert.fit``) to this size."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Return the ``X-Adscore-Signature`` value for a body sent at ``timestamp``.

    Parameters
    ----------
    secret : str
        The shared signing secret.
    timestamp : int
        Unix seconds, as sent in ``X-Adscore-Timestamp``.
    body : bytes
        The exact request body.

    Returns
    -------
    str
        ``"v1=" + hex(HMAC-SHA256(secret, f"{timestamp}.".encode() + body))``.

    Examples
    --------
    >>> sign("s", 1700000000, b"{}")[:3]
    'v1='
    """
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def standard_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Return the Standard Webhooks headers for a body, signed with the specification's library.

    Parameters
    ----------
    secret : str
        ``whsec_<base64>`` (the specification's form: the key is the decoded
        bytes), or any other text (the key is its UTF-8 bytes).
    msg_id : str
        ``webhook-id``: the same for every attempt of one message.
    timestamp : int
        Unix seconds.
    body : bytes
        The exact request body.

    Returns
    -------
    dict[str, str]
        ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature``.

    Raises
    ------
    ConfigError
        ``webhook_secret``: a ``whsec_`` secret whose rest is not base64.
    """
    from standardwebhooks.webhooks import Webhook

    try:
        key: str | bytes = secret if secret.startswith("whsec_") else secret.encode("utf-8")
        signer = Webhook(key)
    except Exception as exc:  # binascii.Error, EmptyWebhookSecretError
        raise ConfigError("webhook_secret", "a whsec_ secret must be whsec_ followed by base64") from exc
    when = datetime.fromtimestamp(timestamp, UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signer.sign(msg_id, when, body),
    }


def _signature_choice(url: str) -> tuple[str, Signature | None]:
    """Split the ``adscore_signature`` parameter off a URL: ``(url without it, its value)``."""
    parts = urlsplit(url)
    params = parse_qsl(parts.query, keep_blank_values=True)
    chosen = [v for k, v in params if k == SIGNATURE_PARAM]
    if not chosen:
        return url, None
    value = chosen[-1].strip().lower()
    if value not in ("adscore", "standard", "both"):
        raise ConfigError("sinks", f"{SIGNATURE_PARAM} is adscore, standard or both (got {value[:20]!r})")
    rest = urlencode([(k, v) for k, v in params if k != SIGNATURE_PARAM])
    return urlunsplit(parts._replace(query=rest)), value  # type: ignore[return-value]


class _RedactUrls(logging.Filter):
    """Show only scheme and host of webhook URLs in httpx's own request log.

    httpx logs ``HTTP Request: POST <full url> ...`` at INFO; for Slack and
    Teams the URL's path is the credential.
    """

    def __init__(self) -> None:
        super().__init__()
        self.urls: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(str(a) in self.urls for a in record.args):
            record.args = tuple(safe_target(str(a)) if str(a) in self.urls else a for a in record.args)
        return True


_REDACT = _RedactUrls()


def _hide_from_httpx_log(url: str) -> None:
    _REDACT.urls.add(str(httpx.URL(url)))
    httpx_log = logging.getLogger("httpx")
    if _REDACT not in httpx_log.filters:
        httpx_log.addFilter(_REDACT)


def _retryable(status: int) -> bool:
    """Retrying can help: not a 4xx, or a timeout or throttling (:func:`~adscore.sinks.base.http_permanent`)."""
    return not http_permanent(status)


class WebhookSink:
    """POST each alert to a webhook.

    Parameters
    ----------
    url : str
        ``https://`` or ``http://`` target; a ``slack+`` or ``teams+`` prefix is
        accepted and must match ``kind``.
    secret : str | None
        Signing secret for ``kind="json"``. Without one, requests are sent
        unsigned and a warning is logged once per sink.
    kind : {"json", "slack", "teams"}
        Body format: the alert JSON, :func:`~adscore.render.slack.to_slack` or
        :func:`~adscore.render.teams.to_teams`.
    timeout : float
        Seconds per request (connect, read, write).
    client : httpx.Client | None
        Client to use (not closed by :meth:`close`); by default one is created
        on first send and closed by :meth:`close`.
    max_bytes : int
        Cap on a generic JSON body (the alert is trimmed to fit).
    clock : Callable[[], float]
        Source of the signature timestamp.
    signature : {"adscore", "standard", "both"}
        Signature scheme of generic JSON: ``X-Adscore-Signature`` (the default,
        for existing receivers), Standard Webhooks headers, or both. The URL
        parameter ``adscore_signature`` overrides it.

    Raises
    ------
    ConfigError
        If the URL is not an http(s) URL or its prefix does not match ``kind``.
    """

    def __init__(
        self,
        url: str,
        secret: str | None = None,
        kind: Kind = "json",
        timeout: float = 10.0,
        client: httpx.Client | None = None,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float] = time.time,
        signature: Signature = "adscore",
    ) -> None:
        url, chosen = _signature_choice(url)
        scheme, sep, rest = url.partition("+")
        if sep and scheme in ("slack", "teams"):
            if scheme != kind:
                raise ConfigError("sinks", f"{safe_target(url)}: a {scheme}+ URL needs kind={scheme!r}")
            url = rest
        if kind not in ("json", "slack", "teams"):
            raise ConfigError("sinks", f"unknown webhook kind {kind!r}")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("sinks", f"webhook URL must be http(s)://host/...: got {safe_target(url)}")
        self.url = url
        _hide_from_httpx_log(url)
        self.kind: Kind = kind
        self.target = safe_target(url)
        self._secret = secret or None
        self._timeout = timeout
        self._client = client
        self._owns_client = client is None
        self._max_bytes = max_bytes
        self._clock = clock
        self._warned_unsigned = False
        self.signature: Signature = chosen or signature
        if self.signature not in ("adscore", "standard", "both"):
            raise ConfigError("sinks", f"unknown webhook signature scheme {self.signature!r}")
        if self._secret is not None and self.signature != "adscore" and kind == "json":
            standard_headers(self._secret, "check", 0, b"")  # a bad whsec_ secret fails at start

    @classmethod
    def from_url(cls, url: str, *, secret: str | None = None) -> WebhookSink:
        """Build from ``http(s)://``, ``slack+https://`` or ``teams+https://``."""
        scheme = url.split("://", 1)[0].lower()
        kind: Kind = (
            "slack" if scheme.startswith("slack+") else "teams" if scheme.startswith("teams+") else "json"
        )
        # The secret signs generic JSON only; chat services do not verify it.
        return cls(url, secret=secret if kind == "json" else None, kind=kind)

    def __repr__(self) -> str:  # never show the URL's path or query, nor the secret
        return (
            f"WebhookSink({self.target!r}, kind={self.kind!r}, signed={self._secret is not None}, "
            f"signature={self.signature!r})"
        )

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=self._timeout, follow_redirects=False)
        return self._client

    def _request(self, alert: Alert) -> tuple[bytes, dict[str, str]]:
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if self.kind == "slack":
            from adscore.render.slack import to_slack

            return orjson.dumps(to_slack(alert)), headers
        if self.kind == "teams":
            from adscore.render.teams import to_teams

            return orjson.dumps(to_teams(alert)), headers
        body = alert.fit(self._max_bytes).to_json()
        timestamp = int(self._clock())
        headers["X-Adscore-Alert-Id"] = alert.id
        headers["X-Adscore-Timestamp"] = str(timestamp)
        if self._secret is not None:
            if self.signature != "standard":
                headers["X-Adscore-Signature"] = sign(self._secret, timestamp, body)
            if self.signature != "adscore":
                msg_id = f"{alert.id}-{hashlib.sha256(body).hexdigest()[:16]}"
                headers.update(standard_headers(self._secret, msg_id, timestamp, body))
        elif not self._warned_unsigned:
            self._warned_unsigned = True
            log.warning(
                "webhook %s: no signing secret set (ADSCORE_WEBHOOK_SECRET); sending unsigned", self.target
            )
        return body, headers

    def send(self, alerts: Sequence[Alert]) -> SendReport:
        """POST each alert once; report which were delivered (2xx) and which failed.

        HTTP 4xx other than 408 and 429 are reported as permanent failures; other
        statuses and connection errors as failures worth retrying.
        """
        tally = Tally()
        for alert in alerts:
            try:
                body, headers = self._request(alert)
            except ValueError as exc:  # the alert cannot be trimmed to max_bytes
                tally.fail(alert.id, f"not sendable: {exc}", permanent=True)
                continue
            try:
                response = self._http().post(self.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                tally.fail(alert.id, type(exc).__name__)  # only the type: httpx messages can include the URL
                continue
            tally.status(alert.id, response.status_code)
        return tally.report(log, f"webhook {self.target}", len(alerts))

    def close(self) -> None:
        """Close the HTTP client if this sink created it."""
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None
