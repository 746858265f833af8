"""The HTTPS ingest endpoint, cloud-neutral: authenticate, refuse replays and oversized bodies, dispatch, answer.

Self-managed Kubernetes API servers (audit webhook backend) and ``adscore forward docker`` post to
one endpoint per cloud (AWS Lambda Function URL, Azure HTTP trigger, GCP ``on_k8s_audit``); each
adapter hands the body and headers to :func:`handle` and returns its :class:`IngestAnswer`.

Authentication (either; nothing else reaches the engine):

- **Standard Webhooks signature** (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``)
  with ``ingest_signing_secret`` (``whsec_<base64>``): the forwarder. The timestamp must be within
  the library's tolerance (5 minutes) of now; the ``webhook-id`` is leased in the state store while
  the delivery runs (:data:`IN_FLIGHT_LEASE`; a copy meanwhile gets 503) and marked done for
  :data:`REPLAY_TTL` once processed, so a replay inside the window is refused (409) and a delivery
  whose instance died is let in again once its lease ends.
- **Bearer token** (``Authorization: Bearer <ingest_token>``): the API server's webhook kubeconfig
  ``users[].user.token``. The body is not signed, so no timestamp in it proves when it was sent: the
  delivery id is the SHA-256 of the body (an ``EventList``'s events carry unique ``auditID``s, so
  two genuine batches never hash alike), leased and marked the same way; a later identical body
  runs again through the engine, which counts event ids and deduplicates alerts, so it changes
  nothing.

Answers: 401 unauthenticated / wrong token / wrong or stale signature / no credential configured,
413 body over ``ingest_max_bytes``, 400 unreadable (dead-lettered when authenticated), 409 replay,
503 (with ``Retry-After``) when the credentials' secret store or the state store cannot be read, or
when :func:`adscore.runtime.run_delivery` says the delivery must be retried (state or sink
failure; the lease is given back so the retry is accepted), 503 while the same delivery is in
flight, else 200 with
``{"alerts": [ids sent]}``. Every refusal is logged (``adscore.ingest``, WARNING) with its reason
code and counted in :data:`REFUSALS` (adapters also publish it as a metric,
``ingest_refused_<reason>``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from adscore.errors import AdscoreError, ConfigError
from adscore.state.base import LEASE_PENDING, LEASE_SENT

if TYPE_CHECKING:
    from collections.abc import Mapping

    from adscore.deliveries import Item
    from adscore.engine import Engine
    from adscore.runtime import DeliveryResult

__all__ = [
    "DOCKER_KIND",
    "K8S_KIND",
    "REFUSALS",
    "REPLAY_TTL",
    "IngestAnswer",
    "check_secret_value",
    "check_signing_secret",
    "handle",
    "sign_headers",
]

log = logging.getLogger("adscore.ingest")

K8S_KIND = "EventList"
DOCKER_KIND = "DockerEventBatch"
REPLAY_TTL = timedelta(minutes=10)
"""How long a delivery id is remembered: twice the Standard Webhooks timestamp tolerance (5 minutes)."""
IN_FLIGHT_LEASE = timedelta(minutes=2)
"""How long a delivery being processed holds its id: a copy arriving meanwhile gets 503 (retry). Past it,
an instance that died mid-delivery no longer blocks the sender's retry (the engine deduplicates events
and alerts, so a delivery run twice changes nothing); a delivery is marked done (a replay gets 409) only
once processed."""
RETRY_AFTER_SECONDS = 10
MIN_TOKEN_CHARS = 16
MIN_SECRET_BYTES = 24  # Standard Webhooks: secrets of 24 to 64 random bytes
MAX_SECRET_BYTES = 64
_REFERENCE_PREFIXES = ("file://", "arn:aws:secretsmanager:", "projects/", "@Microsoft.KeyVault(")

REFUSALS: Counter[str] = Counter()
"""Refusals of this process by reason code (``unauthenticated``, ``bad_token``, ``bad_signature``,
``stale``, ``signature_required``, ``not_configured``, ``too_large``, ``unreadable``, ``replay``,
``in_flight``)."""
_lock = threading.Lock()
_resolved: dict[tuple[str, str], tuple[str | None, float]] = {}


@dataclass
class IngestAnswer:
    """What the endpoint answers, for an adapter to map to its platform.

    Attributes
    ----------
    status : int
        HTTP status.
    body : dict
        JSON answer (``{"alerts": [...]}`` or ``{"error": ...}``).
    refused : str | None
        The refusal's reason code when the request never reached the engine.
    kind : str | None
        ``EventList`` or ``DockerEventBatch`` once read.
    counts : dict
        Metrics of the answer (``ingest_refused_<reason>``: 1).
    headers : dict
        Response headers: ``Retry-After`` on a 503 (client-go's audit webhook backend retries a 5xx
        other than 500 only when the answer suggests a delay).
    result : DeliveryResult | None
        The runtime's result when the body was run.
    """

    status: int
    body: dict[str, Any]
    refused: str | None = None
    kind: str | None = None
    result: DeliveryResult | None = None
    counts: dict[str, int] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


def check_secret_value(setting: str, value: str, *, reference: bool = True) -> None:
    """Check an ingest credential's form (a reference to a secret store is checked once fetched).

    Raises
    ------
    ConfigError
        Naming ``setting``: a token shorter than 16 characters, a signing secret not written
        ``whsec_<base64 of 24 to 64 bytes>``. The message never holds the value.
    """
    if reference and (value.startswith(_REFERENCE_PREFIXES) or ".vault.azure.net/" in value):
        return
    if setting == "ingest_token":
        if len(value) < MIN_TOKEN_CHARS or any(c.isspace() for c in value):
            raise ConfigError(setting, f"a bearer token is at least {MIN_TOKEN_CHARS} characters, without spaces")
        return
    check_signing_secret(setting, value)


def check_signing_secret(setting: str, value: str) -> None:
    """Check a Standard Webhooks signing secret: ``whsec_`` and the base64 of 24 to 64 bytes.

    The one rule for both ends: the endpoint's ``ingest_signing_secret`` and the forwarder's
    ``ADSCORE_FORWARD_SECRET`` / ``--secret-file``, so a secret the forwarder starts with is one the
    endpoint accepts. The key is decoded as :class:`standardwebhooks.webhooks.Webhook` decodes it.

    Raises
    ------
    ConfigError
        Naming ``setting``; the message never holds the value.

    Example
    -------
    >>> check_signing_secret("ADSCORE_FORWARD_SECRET", "whsec_" + "A" * 32)
    >>> check_signing_secret("ADSCORE_FORWARD_SECRET", "whsec_c2hvcnQ=")
    Traceback (most recent call last):
    ...
    adscore.errors.ConfigError: invalid setting ADSCORE_FORWARD_SECRET: write the signing secret as whsec_<base64 of 24 to 64 random bytes> (Standard Webhooks)
    """
    key = value.removeprefix("whsec_")
    try:
        raw = base64.b64decode(key + "==", validate=False) if value.startswith("whsec_") else b""
    except (binascii.Error, ValueError):
        raw = b""
    if not MIN_SECRET_BYTES <= len(raw) <= MAX_SECRET_BYTES:
        raise ConfigError(
            setting,
            f"write the signing secret as whsec_<base64 of {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} random bytes>"
            " (Standard Webhooks)",
        )


def _credential(engine: Engine, setting: str) -> str | None:
    """The setting's value; a secret-store reference is fetched, then kept ``settings_max_age_seconds``.

    Keeping it bounds the secret store's calls (one per instance per period) and lets a rotated
    secret reach warm instances; ``settings_max_age_seconds: 0`` keeps it for the process's life.
    """
    held = getattr(engine.settings, setting)
    if held is None:
        return None
    reference = held.get_secret_value()
    key = (setting, reference)
    max_age = engine.settings.settings_max_age_seconds
    with _lock:
        cached = _resolved.get(key)
        if cached is not None and (max_age == 0 or time.monotonic() - cached[1] < max_age):
            return cached[0]
    from adscore.runtime import resolve_secret

    value = resolve_secret(reference, setting)
    if value:
        check_secret_value(setting, value, reference=False)
    with _lock:
        if len(_resolved) > 64:
            _resolved.clear()
        _resolved[key] = (value, time.monotonic())
    return value


def _refuse(status: int, reason: str, message: str, source: str) -> IngestAnswer:
    with _lock:
        REFUSALS[reason] += 1
    log.warning("ingest request refused (%s, HTTP %d) at %s: %s", reason, status, source, message)
    return IngestAnswer(status, {"error": message}, refused=reason, counts={f"ingest_refused_{reason}": 1})


def _retry_after() -> dict[str, str]:
    return {"Retry-After": str(RETRY_AFTER_SECONDS)}


def sign_headers(secret: str, body: bytes, msg_id: str, at: datetime | None = None) -> dict[str, str]:
    """The Standard Webhooks headers of ``body`` (what the forwarder sends; tests and emulation use it).

    Example
    -------
    >>> sorted(sign_headers("whsec_" + "A" * 32, b"{}", "msg_1"))
    ['content-type', 'webhook-id', 'webhook-signature', 'webhook-timestamp']
    """
    from standardwebhooks.webhooks import Webhook

    at = at or datetime.now(UTC)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
    }


def _authenticate(
    engine: Engine, body: bytes, headers: Mapping[str, str], source: str
) -> tuple[str, str] | IngestAnswer:
    """``(scheme, delivery id)`` of an authenticated request, or the refusal."""
    try:
        token = _credential(engine, "ingest_token")
        secret = _credential(engine, "ingest_signing_secret")
    except ConfigError as exc:  # the secret store did not answer, or holds a bad value: the sender retries
        log.error("ingest credential unusable: %s", exc)
        message = f"the ingest endpoint cannot read its credential ({exc.setting}); retry later"
        return IngestAnswer(503, {"error": message}, headers=_retry_after())
    if token is None and secret is None:
        message = "the ingest endpoint has no credential configured (ingest_token, ingest_signing_secret)"
        log.error(message)
        return _refuse(401, "not_configured", message, source)
    if "webhook-signature" in headers:
        if secret is None:
            return _refuse(401, "bad_signature", "signed requests are not accepted here (no ingest_signing_secret)", source)
        from standardwebhooks.webhooks import Webhook, WebhookVerificationError

        try:
            Webhook(secret).verify(body, dict(headers), json_parse=False)
        except WebhookVerificationError as exc:
            stale = "too old" in str(exc) or "too new" in str(exc)
            reason = "stale" if stale else "bad_signature"
            return _refuse(401, reason, f"signature not verified: {str(exc)[:100]}", source)
        return "signature", headers.get("webhook-id", "")[:256]
    auth = headers.get("authorization", "")
    scheme, _, presented = auth.partition(" ")
    if not auth:
        return _refuse(401, "unauthenticated", "no credential: send Authorization: Bearer or a signed request", source)
    if scheme.lower() != "bearer" or token is None:
        return _refuse(401, "bad_token", "the bearer token is not accepted", source)
    if not hmac.compare_digest(presented.strip().encode("utf-8", "replace"), token.encode("utf-8")):
        return _refuse(401, "bad_token", "the bearer token is not accepted", source)
    return "bearer", "sha256:" + hashlib.sha256(body).hexdigest()


def _items(kind: str | None, body: bytes, decoded: Any, why: str | None) -> list[Item]:
    from adscore.deliveries import Provenance, Unreadable
    from adscore.deliveries.docker_forward import unwrap_docker_batch
    from adscore.deliveries.k8s_webhook import unwrap_k8s_webhook

    if kind == K8S_KIND:
        return unwrap_k8s_webhook(body, decoded)
    if kind == DOCKER_KIND:
        return unwrap_docker_batch(body, decoded)
    what = f"kind {str(kind)[:60]!r}" if kind is not None else "no kind"
    reason = why or f"the body has {what}: expected {K8S_KIND} or {DOCKER_KIND}"
    return [Unreadable(body, reason, Provenance(0, "ingest"))]


def handle(
    body: bytes | None,
    headers: Mapping[str, str],
    *,
    source: str,
    engine: Engine | None = None,
    content_length: int | None = None,
    now: datetime | None = None,
) -> IngestAnswer:
    """Answer one ingest request (module docstring): refuse it, or run it through the one failure policy.

    Parameters
    ----------
    body : bytes, optional
        The request body as received (``None`` when the adapter refused to read it: too large).
    headers : Mapping[str, str]
        Request headers (any case).
    source : str
        The entry point (``aws.ingest_handler``), written on dead letters and logs.
    engine : Engine, optional
        Default :func:`adscore.runtime.get_engine`.
    content_length : int, optional
        The declared length, checked before the body is read where the platform allows it.
    now : datetime, optional
        Wall-clock time of the replay claim (tests).

    Returns
    -------
    IngestAnswer

    Example
    -------
    >>> answer = handle(body, request.headers, source="gcp.on_k8s_audit")  # doctest: +SKIP
    >>> answer.status, answer.body  # doctest: +SKIP
    (200, {'alerts': ['7f3c…']})
    """
    from adscore import runtime
    from adscore.deliveries.body import UnreadableBody, read_json_body

    engine = engine or runtime.get_engine()
    limit = engine.settings.ingest_max_bytes
    size = len(body) if body is not None else content_length
    if size is None or size > limit or (content_length is not None and content_length > limit):
        return _refuse(413, "too_large", f"the body is larger than {limit} bytes (ingest_max_bytes)", source)
    data = body or b""
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    auth = _authenticate(engine, data, lowered, source)
    if isinstance(auth, IngestAnswer):
        return auth
    scheme, delivery_id = auth
    why = None
    try:
        decoded = read_json_body(data)
    except UnreadableBody as exc:
        decoded, why = None, str(exc)
    kind = decoded.get("kind") if isinstance(decoded, dict) else None
    kind = kind if isinstance(kind, str) else None
    if kind == DOCKER_KIND and scheme != "signature":
        return _refuse(401, "signature_required", f"a {DOCKER_KIND} must be signed (Standard Webhooks)", source)
    key = f"ingest|delivery|{delivery_id}"
    at = now or datetime.now(UTC)
    try:
        taken = engine.store.lease(key, at, REPLAY_TTL, now=at, lease=IN_FLIGHT_LEASE)
    except AdscoreError as exc:
        log.error("ingest replay check failed (%s): the sender will retry", type(exc).__name__)
        return IngestAnswer(
            503, {"error": "state store unavailable, retry later"}, kind=kind, headers=_retry_after()
        )
    if taken == LEASE_SENT:
        return _refuse(409, "replay", "this delivery was received before (replayed or duplicate delivery id)", source)
    if taken == LEASE_PENDING:  # the same delivery is running elsewhere, or ran in an instance that died
        busy = _refuse(503, "in_flight", "this delivery is being processed, retry later", source)
        busy.kind, busy.headers = kind, _retry_after()
        return busy
    result = runtime.run_delivery(_items(kind, data, decoded, why), source=source, engine=engine)
    answer = IngestAnswer(200, {"alerts": [a.id for a in result.report.sent]}, kind=kind, result=result)
    try:  # to be retried: the retry is let in; processed: a replay is refused from now on
        if result.retry:
            engine.store.unlease(key)
        else:
            engine.store.confirm(key, at, REPLAY_TTL)
    except AdscoreError as exc:  # the lease expires by itself after IN_FLIGHT_LEASE: nothing is stranded
        log.error("ingest delivery marker not written (%s)", type(exc).__name__)
    if result.retry:
        # the cause stays in the logs: a sink's error may name its URL, a credential in some sinks
        log.error("ingest delivery not processed, the sender will retry: %s", type(result.error).__name__)
        answer.status = 503
        answer.body = {"error": "not processed (state or alert sink unavailable), retry later"}
        answer.headers = _retry_after()
    elif result.letters and not result.report.counts.get("events"):
        with _lock:
            REFUSALS["unreadable"] += 1
        answer.status = 400
        answer.body = {"error": result.letters[0].reason[:300]}
        answer.counts = {"ingest_refused_unreadable": 1}
    return answer
