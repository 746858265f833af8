"""A Pub/Sub delivery: a push body, an Eventarc ``messagePublished`` CloudEvent or a bare message."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

from adscore.deliveries import Item, Provenance, Record, Unreadable, as_bytes
from adscore.events import RecordError
from adscore.sources.common import parse_time
from adscore.sources.gcp import unwrap_pubsub as decode_pubsub
from adscore.state.base import make_key


def message_of(delivery: Any) -> dict[str, Any] | None:
    """The Pub/Sub message inside a delivery, or None."""
    if not isinstance(delivery, dict):
        return None
    if "specversion" in delivery:
        data = delivery.get("data")
        msg = data.get("message") if isinstance(data, dict) else None
    else:
        msg = delivery.get("message", delivery)
    return msg if isinstance(msg, dict) else None


def message_bytes(delivery: Any) -> bytes:
    """The message's data as published (base64-decoded when it can be), else the delivery as JSON."""
    msg = message_of(delivery)
    data = msg.get("data") if msg is not None else None
    if isinstance(data, str):
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return data.encode("utf-8", "replace")
    return as_bytes(delivery)


def unwrap_pubsub(delivery: Any) -> list[Item]:
    """The message's decoded JSON payload as one record, or its bytes as unreadable with why.

    Example
    -------
    >>> unwrap_pubsub({"message": {"data": "bm90IGpzb24=", "messageId": "7"}})[0].body
    b'not json'
    """
    msg = message_of(delivery)
    mid = msg.get("messageId") or msg.get("message_id") if msg is not None else None
    message_id = str(mid)[:200] if mid else None
    decoded = decode_pubsub(delivery, "pubsub")
    if isinstance(decoded, RecordError):
        where = Provenance(0, decoded.location, message_id=message_id)
        return [Unreadable(message_bytes(delivery), decoded.reason, where)]
    body = message_bytes(delivery)
    return [Record(payload, Provenance(0, ref, message_id=message_id), body) for ref, payload in decoded]


def done_marker(items: list[Item]) -> tuple[str, datetime] | None:
    """The state key and event time that mark a Cloud Logging entry processed (its ``insertId``), if any.

    Pub/Sub delivers at least once: :func:`adscore.runtime.run_delivery` skips an entry whose marker
    says ``done`` and writes the marker once the entry's state and alerts are saved and sent.
    """
    payload = items[0].raw if len(items) == 1 and isinstance(items[0], Record) else None
    if not isinstance(payload, dict):
        return None
    insert_id, log_name = payload.get("insertId"), payload.get("logName")
    if not isinstance(insert_id, str) or not insert_id:
        return None
    key = make_key("gcp.insert_id", log_name if isinstance(log_name, str) else "", insert_id)
    for name in ("timestamp", "receiveTimestamp"):
        try:
            return key, parse_time(payload[name])
        except (KeyError, ValueError, TypeError):
            continue
    return key, datetime.now(UTC)
