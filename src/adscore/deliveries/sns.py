"""An SNS notification envelope (an SQS message body with raw message delivery off): its ``Message``."""

from __future__ import annotations

from typing import Any

import orjson

from adscore.deliveries import Item, Provenance, Record, Unreadable


def is_sns_envelope(body: Any) -> bool:
    """Whether ``body`` is an SNS ``Notification`` carrying its message as text."""
    return (
        isinstance(body, dict) and body.get("Type") == "Notification" and isinstance(body.get("Message"), str)
    )


def unwrap_sns(body: dict[str, Any], where: Provenance) -> list[Item]:
    """The decoded ``Message`` as one record, or the message text as unreadable when it is not JSON.

    Example
    -------
    >>> unwrap_sns({"Type": "Notification", "Message": "{}"}, Provenance(0, "sqs[0]"))[0].raw
    {}
    """
    text = str(body["Message"])
    try:
        return [Record(orjson.loads(text), where, text.encode("utf-8", "replace"))]
    except orjson.JSONDecodeError as exc:
        return [Unreadable(text.encode("utf-8", "replace"), f"SNS Message is not JSON: {exc}", where)]
