"""Files, directories and stdin (``adscore replay``): one record per document, array element or line."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adscore.deliveries import Item, Provenance, Record, Unreadable
from adscore.events import RecordError
from adscore.sources import files as readers

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from datetime import datetime


def unwrap_files(
    paths: Sequence[str],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[Item]:
    """The records of ``paths`` (locations ``file``, ``file[i]``, ``file:LINE``), streamed.

    ``since`` / ``until`` (object storage days to read) and ``on_bytes`` (bytes read, for progress)
    are handed to :func:`adscore.sources.files.read_inputs`.

    What cannot be read is :class:`~adscore.deliveries.Unreadable` with the reader's excerpt as its
    bytes (the reader does not keep whole lines) and the reader's family as the family.

    Example
    -------
    >>> items = list(unwrap_files(["examples/aws"]))  # doctest: +SKIP
    """
    for item in readers.read_inputs(list(paths), since=since, until=until, on_bytes=on_bytes):
        if isinstance(item, RecordError):
            where = Provenance(0, item.location, family=item.family)
            yield Unreadable(item.excerpt.encode("utf-8", "replace"), item.reason, where)
        else:
            location, raw = item
            yield Record(raw, Provenance(0, location))
