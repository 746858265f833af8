"""Deliveries are data: what a platform payload holds, as records with provenance, or errors inline.

Each module of this package turns one platform payload shape into a stream of
:data:`Item` values, with no I/O and no exceptions:

- :class:`Record`: a raw record for the engine, with its :class:`Provenance`
  (which message of the platform batch, which line, and the log family when the
  trigger knows it);
- :class:`Unreadable`: bytes that cannot be a record, with the reason: the runtime
  dead-letters them (retrying cannot help);
- :class:`Deferred`: a message not read now (time ran out, a read failed midway):
  the runtime has the platform retry it;
- :class:`Skipped`: something deliberately left out (a CloudTrail digest file), counted by reason;
- :class:`Counted`: a delivery-level count (``s3_objects``).

:func:`adscore.runtime.run_delivery` takes this stream and applies the one failure policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["Counted", "Deferred", "Item", "Provenance", "Record", "Skipped", "Unreadable", "as_bytes"]


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a record came from, as data (never a string to parse back).

    Attributes
    ----------
    message : int
        Index of the platform message in its batch (the SQS record, the Event Hub event); 0 for
        triggers that carry one message.
    location : str
        Human-readable and unique within the delivery (``sqs[3]:s3://b/k#Records[7]``): the
        engine's record ref and the dead letter's location.
    line : int | None
        Index of the record within its message (a record of a document, a line of a file).
    family : str | None
        The log family when the trigger knows it (``aws``, ``azure``, ``gcp``, ``kubernetes``).
    message_id : str | None
        The platform's id of the message (SQS ``messageId``, Pub/Sub ``messageId``), if any.
    """

    message: int
    location: str
    line: int | None = None
    family: str | None = None
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Record:
    """A decoded record for the engine, and its bytes as received when the delivery has them."""

    raw: Any
    where: Provenance
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class Unreadable:
    """Bytes that cannot be read as a record, with why: dead-lettered as they came."""

    body: bytes
    reason: str
    where: Provenance


@dataclass(frozen=True, slots=True)
class Deferred:
    """A message not processed now: the platform must deliver it again."""

    reason: str
    where: Provenance


@dataclass(frozen=True, slots=True)
class Skipped:
    """Something deliberately not read (counted as ``skipped_<reason>``)."""

    reason: str
    where: Provenance


@dataclass(frozen=True, slots=True)
class Counted:
    """A delivery-level count for the report (``s3_objects``: one CloudTrail file opened)."""

    name: str
    where: Provenance


Item = Record | Unreadable | Deferred | Skipped | Counted


def as_bytes(value: Any) -> bytes:
    """The bytes of a payload as received: bytes as is, text as UTF-8, anything else as JSON.

    Example
    -------
    >>> as_bytes({"a": 1})
    b'{"a":1}'
    """
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8", "replace")
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # a lone surrogate (orjson refuses it): escaped JSON keeps every character
        import json

        return json.dumps(value, default=str, ensure_ascii=True).encode("ascii")
