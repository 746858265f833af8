"""Pure time helpers for windowed state: bucket math on event times.

A sliding window ``W`` is stored as fixed buckets of width ``W / SLICES``
(rounded up to whole seconds). A windowed count reads the bucket that holds
the event time plus the ``SLICES`` buckets before it, so the span counted is
between ``W`` (event at the start of its bucket) and ``W + W / SLICES`` =
``1.5 W`` (event at the end of its bucket). This errs towards counting: a
burst that fits inside ``W`` is never missed, and a burst spread over up to
``1.5 W`` may be counted too.

All times are event times (timezone-aware UTC datetimes taken from the logs),
never the wall clock, so replaying archived logs behaves as live traffic did.
A naive datetime is read as UTC. Only the standard library is used.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = [
    "SLICES",
    "bucket_index",
    "bucket_lifetime",
    "bucket_width",
    "epoch",
    "epoch_micros",
    "epoch_seconds",
    "expiry",
    "window_keys",
    "window_keys_ahead",
]

SLICES = 2
"""Number of buckets a window is cut into."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_MICROSECOND = timedelta(microseconds=1)
_MICROS_PER_SECOND = 1_000_000


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def epoch(at: datetime) -> float:
    """Seconds since the Unix epoch.

    Parameters
    ----------
    at : datetime
        An event time; a naive datetime is read as UTC (never as local time).

    Returns
    -------
    float
        Epoch seconds, with microseconds as the fraction.

    Example
    -------
    >>> epoch(datetime(1970, 1, 1, 0, 1, tzinfo=UTC))
    60.0
    """
    return (_aware(at) - _EPOCH) / _SECOND


def epoch_micros(at: datetime) -> int:
    """Whole epoch microseconds, exactly (``bucket_index(at, w) == epoch_micros(at) // (w // 1 µs)``)."""
    return (_aware(at) - _EPOCH) // _MICROSECOND


def epoch_seconds(at: datetime) -> int:
    """Whole epoch seconds, rounded down (``floor(epoch(at))``), computed exactly."""
    return (_aware(at) - _EPOCH) // _SECOND


def expiry(at: datetime, ttl: timedelta) -> int:
    """Expiry time of an item written at event time ``at`` that lives ``ttl``.

    Parameters
    ----------
    at : datetime
        Event time of the write.
    ttl : timedelta
        How long the item lives, in event time.

    Returns
    -------
    int
        Epoch seconds, rounded up, so an item never expires early.

    Example
    -------
    >>> expiry(datetime(1970, 1, 1, tzinfo=UTC), timedelta(seconds=1.5))
    2
    """
    micros = (_aware(at) + ttl - _EPOCH) // _MICROSECOND
    return -(-micros // _MICROS_PER_SECOND)


def bucket_width(window: timedelta) -> timedelta:
    """Width of one bucket of ``window``: ``window / SLICES`` rounded up to whole seconds.

    Raises
    ------
    ValueError
        If ``window`` is not positive.
    """
    if window <= timedelta(0):
        raise ValueError(f"window must be positive, got {window!r}")
    micros = window // _MICROSECOND
    seconds = -(-micros // (SLICES * _MICROS_PER_SECOND))
    return timedelta(seconds=max(1, seconds))


def bucket_lifetime(window: timedelta) -> timedelta:
    """How long after its start a bucket of ``window`` is still read: ``(SLICES + 1)`` widths.

    An item stored in a bucket must live at least this long (in event time), or a
    windowed count would lose it while its bucket is still inside the window.
    """
    return bucket_width(window) * (SLICES + 1)


def bucket_index(at: datetime, width: timedelta) -> int:
    """Index of the bucket of ``width`` that holds ``at``: ``floor(epoch(at) / width)``.

    Parameters
    ----------
    at : datetime
        Event time.
    width : timedelta
        Bucket width (see :func:`bucket_width`).

    Returns
    -------
    int
        The bucket index; exact (integer arithmetic on microseconds).

    Raises
    ------
    ValueError
        If ``width`` is not positive.

    Example
    -------
    >>> bucket_index(datetime(1970, 1, 1, 0, 2, 30, tzinfo=UTC), timedelta(minutes=1))
    2
    """
    if width <= timedelta(0):
        raise ValueError(f"bucket width must be positive, got {width!r}")
    return (_aware(at) - _EPOCH) // width


def window_keys(key: str, at: datetime, window: timedelta) -> tuple[str, ...]:
    """Bucket keys that together cover ``window`` ending at ``at``.

    Parameters
    ----------
    key : str
        The entity key (for example a detection id and a principal).
    at : datetime
        Event time.
    window : timedelta
        The window to count over.

    Returns
    -------
    tuple[str, ...]
        ``SLICES + 1`` keys formatted ``f"{key}@{width_s}:{index}"``: the
        bucket of ``at`` first, then the ``SLICES`` previous ones.

    Raises
    ------
    ValueError
        If ``window`` is not positive.

    Example
    -------
    >>> window_keys("k", datetime(1970, 1, 1, 0, 10, tzinfo=UTC), timedelta(minutes=10))
    ('k@300:2', 'k@300:1', 'k@300:0')
    """
    width = bucket_width(window)
    width_s = width // _SECOND
    index = bucket_index(at, width)
    return tuple(f"{key}@{width_s}:{index - back}" for back in range(SLICES + 1))


def window_keys_ahead(key: str, at: datetime, window: timedelta) -> tuple[str, ...]:
    """The ``SLICES`` bucket keys after the bucket of ``at`` (nearest first).

    The windows that end in them also cover ``at``: an event that arrives after later ones
    (redrives, archives replayed out of order) is counted in them too, as a time-sorted replay
    would have counted it when the later events came.

    Example
    -------
    >>> window_keys_ahead("k", datetime(1970, 1, 1, 0, 10, tzinfo=UTC), timedelta(minutes=10))
    ('k@300:3', 'k@300:4')
    """
    width = bucket_width(window)
    width_s = width // _SECOND
    index = bucket_index(at, width)
    return tuple(f"{key}@{width_s}:{index + ahead}" for ahead in range(1, SLICES + 1))
