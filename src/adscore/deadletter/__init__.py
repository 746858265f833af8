"""Dead-letter stores by URL: where records that can never be read are kept, with their bytes and reason.

The runtime (:func:`adscore.runtime.run_delivery`) sends every unreadable record
here instead of dropping it or letting the platform retry it forever. The store
is chosen by the ``deadletter`` setting (``ADSCORE_DEADLETTER``), like state and
sinks, and each backend is loaded on first use:

==========================  ==========================================================
``file:///path/dead.jsonl``  one JSON line per letter (CLI, tests)
``sqs://QUEUE``              one SQS message per letter (queue name, or ``sqs://HOST/ACCOUNT/NAME``)
``s3://BUCKET/PREFIX``       one object per letter
``azqueue://QUEUE``          one Azure Storage queue message per letter (``azurequeue://`` too)
``azblob://CONTAINER``       one blob per letter (``azureblob://`` too)
``pubsub://projects/P/topics/T``  one Pub/Sub message per letter: the original bytes as data,
                             the reason and location as attributes
==========================  ==========================================================

Every backend but Pub/Sub stores :meth:`DeadLetter.document`: the source, location, reason,
message id, time and the original body (text when it is UTF-8, else base64).
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import orjson

from adscore.errors import AdscoreError, ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["STORES", "DeadLetter", "DeadLetterError", "DeadLetterStore", "open_deadletter"]

STORES: dict[str, str] = {
    "file": "adscore.deadletter.file:FileDeadLetterStore",
    "sqs": "adscore.deadletter.sqs:SqsDeadLetterStore",
    "s3": "adscore.deadletter.s3:S3DeadLetterStore",
    "azqueue": "adscore.deadletter.azqueue:AzureQueueDeadLetterStore",
    "azurequeue": "adscore.deadletter.azqueue:AzureQueueDeadLetterStore",
    "azblob": "adscore.deadletter.azblob:AzureBlobDeadLetterStore",
    "azureblob": "adscore.deadletter.azblob:AzureBlobDeadLetterStore",
    "pubsub": "adscore.deadletter.pubsub:PubSubDeadLetterStore",
}
"""URL scheme -> ``"module:Class"``; the class has ``from_url(url)``."""


class DeadLetterError(AdscoreError):
    """A dead letter could not be stored: the runtime has the platform retry its message instead."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One unreadable record as it came, and why it was not processed.

    Attributes
    ----------
    body : bytes
        The record's bytes as received (a whole message, or one record of it).
    reason : str
        Why it cannot be read.
    location : str
        Where it was in the delivery (message, line).
    source : str
        The entry point that received it (``aws.sqs_handler``, ``gcp.on_pubsub_push``...).
    message_id : str | None
        The platform message id, when there is one.
    at : datetime
        When it was dead-lettered (wall clock).
    """

    body: bytes
    reason: str
    location: str
    source: str
    message_id: str | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def document(self, max_body: int | None = None) -> dict[str, Any]:
        """The JSON document stored (body as text when it is UTF-8, else base64; cut to ``max_body`` bytes)."""
        body = self.body if max_body is None else self.body[:max_body]
        doc: dict[str, Any] = {
            "source": self.source,
            "location": self.location[:1000],
            "reason": self.reason[:2000],
            "message_id": self.message_id,
            "dead_lettered_at": self.at.isoformat(),
        }
        try:
            doc["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            doc["body_base64"] = base64.b64encode(body).decode("ascii")
        if len(body) < len(self.body):
            doc["truncated_from"] = len(self.body)
        return doc

    def to_json(self, limit: int | None = None) -> bytes:
        """:meth:`document` as JSON, halving the body until the whole fits ``limit`` bytes."""
        data = orjson.dumps(self.document())
        cut = len(self.body)
        while limit is not None and len(data) > limit and cut > 0:
            cut //= 2
            data = orjson.dumps(self.document(cut))
        return data


@runtime_checkable
class DeadLetterStore(Protocol):
    """Keeps dead letters. ``put`` stores every letter or raises :class:`DeadLetterError`."""

    def put(self, letters: Sequence[DeadLetter]) -> None: ...

    def close(self) -> None: ...


_lock = threading.Lock()
_open: dict[str, DeadLetterStore] = {}


def open_deadletter(url: str, *, cache: bool = True) -> DeadLetterStore:
    """Open the dead-letter store a URL names (one per URL and process when ``cache``).

    Raises
    ------
    ConfigError
        ``deadletter``: unknown scheme, malformed URL, or the backend's package not installed.

    Example
    -------
    >>> store = open_deadletter("file:///tmp/dead.jsonl")  # doctest: +SKIP
    """
    url = url.strip()
    scheme, sep, _ = url.partition("://")
    target = STORES.get(scheme.lower()) if sep else None
    if target is None:
        raise ConfigError(
            "deadletter", f"{url[:80]!r} is not a dead-letter URL (schemes: {', '.join(sorted(STORES))})"
        )
    with _lock:
        if cache and url in _open:
            return _open[url]
        module_name, _, class_name = target.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except ImportError as exc:
            raise ConfigError(
                "deadletter",
                f"dead-letter store {scheme!r} is not available ({exc}); is its extra installed?",
            ) from exc
        store: DeadLetterStore = cls.from_url(url)
        if cache:
            _open[url] = store
        return store


def forget_deadletters() -> None:
    """Close and forget the stores opened so far (tests; endpoints changed)."""
    with _lock:
        stores = list(_open.values())
        _open.clear()
    for store in stores:
        with contextlib.suppress(Exception):  # closing is best effort
            store.close()


def code_of(exc: BaseException) -> str:
    """A short, secret-free name for an SDK error (its error code, else its type)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", "")) or type(exc).__name__
    return str(getattr(exc, "error_code", "") or "") or type(exc).__name__
