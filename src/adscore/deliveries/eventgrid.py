"""An Event Grid event (Event Grid or CloudEvents 1.0 schema), as the function host hands it over."""

from __future__ import annotations

from typing import Any

from adscore.deliveries import Item, Provenance, Record, Unreadable, as_bytes


def unwrap_eventgrid(event: Any, message: int = 0) -> list[Item]:
    """The event as one record (``eventgrid:<id>``); the Azure parser reads its schema and ``data``.

    Example
    -------
    >>> unwrap_eventgrid({"id": "1", "eventType": "x", "data": {}})[0].where.location
    'eventgrid:1'
    """
    if not isinstance(event, dict):
        return [
            Unreadable(
                as_bytes(event), "Event Grid event is not a JSON object", Provenance(message, "eventgrid")
            )
        ]
    return [Record(event, Provenance(message, f"eventgrid:{str(event.get('id'))[:100]}", family="azure"))]
