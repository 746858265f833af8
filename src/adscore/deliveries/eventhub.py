"""A batch of Event Hub events from diagnostic settings: each a ``{"records": [...]}`` document."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from adscore.deliveries import Item, Provenance, Record, Unreadable

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence


def unwrap_eventhub(events: Sequence[tuple[bytes, int | None]]) -> Iterator[Item]:
    """One record per record of each event's document (``eventhub:<seq>/records[i]``).

    Parameters
    ----------
    events : sequence of (body, sequence number)
        The events' bodies as received, and their sequence numbers when the host gives them.

    Example
    -------
    >>> [i.reason[:22] for i in unwrap_eventhub([(b"{", 7)])]
    ['event body is not JSON']
    """
    for index, (body, seq) in enumerate(events):
        ref = f"eventhub:{seq}" if seq is not None else f"eventhub:#{index}"
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            yield Unreadable(body, f"event body is not JSON: {str(exc)[:200]}", Provenance(index, ref))
            continue
        records = doc.get("records") if isinstance(doc, dict) else None
        if isinstance(records, list):
            for i, record in enumerate(records):
                yield Record(record, Provenance(index, f"{ref}/records[{i}]", line=i, family="azure"))
        else:
            yield Record(doc, Provenance(index, ref))
