"""An EventBridge event delivered by a rule (or inside an SQS message): one record."""

from __future__ import annotations

from typing import Any

from adscore.deliveries import Item, Provenance, Record, Unreadable, as_bytes


def unwrap_eventbridge(event: Any, message: int = 0, message_id: str | None = None) -> list[Item]:
    """The event as one record (``eventbridge:<id>``), or unreadable when it is not a JSON object.

    Example
    -------
    >>> unwrap_eventbridge({"id": "e1", "detail-type": "AWS API Call via CloudTrail"})[0].where.location
    'eventbridge:e1'
    """
    if not isinstance(event, dict):
        where = Provenance(message, f"eventbridge[{message}]", message_id=message_id)
        return [
            Unreadable(
                as_bytes(event), f"EventBridge event is a {type(event).__name__}, expected an object", where
            )
        ]
    location = f"eventbridge:{str(event.get('id'))[:100]}"
    return [Record(event, Provenance(message, location, family="aws", message_id=message_id))]
