"""An Event Grid event (Event Grid or CloudEvents 1.0 schema), as the function host hands it over."""

from __future__ import annotations

from typing import Any

from adscore.deliveries import Item, Provenance, Record, Unreadable, as_bytes


def unwrap_eventgrid(event: Any, message: int = 0) -> list[Item]:
    """The event as one record (``eventgrid:<id>``); its ``data`` must be a JSON object.

    Example
    -------
    >>> unwrap_eventgrid({"id": "1", "data": None})[0].reason
    'Event Grid event has no data object'
    """
    if not isinstance(event, dict):
        return [
            Unreadable(
                as_bytes(event), "Event Grid event is not a JSON object", Provenance(message, "eventgrid")
            )
        ]
    where = Provenance(message, f"eventgrid:{str(event.get('id'))[:100]}", family="azure")
    if not isinstance(event.get("data"), dict):
        return [Unreadable(as_bytes(event), "Event Grid event has no data object", where)]
    return [Record(event, where)]
