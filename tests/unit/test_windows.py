"""Bucket math of adscore.windows: widths, indexes, window keys and expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adscore.windows import (
    SLICES,
    bucket_index,
    bucket_lifetime,
    bucket_width,
    epoch,
    epoch_micros,
    epoch_seconds,
    expiry,
    window_keys,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)  # epoch 1714564800, a multiple of 300


def test_bucket_width_is_a_slice_of_the_window_rounded_up_to_seconds() -> None:
    assert SLICES == 2
    assert bucket_width(timedelta(minutes=10)) == timedelta(minutes=5)
    assert bucket_width(timedelta(seconds=7)) == timedelta(seconds=4)
    assert bucket_width(timedelta(milliseconds=10)) == timedelta(seconds=1)
    assert bucket_lifetime(timedelta(minutes=10)) == timedelta(minutes=15)


@pytest.mark.parametrize("window", [timedelta(0), timedelta(seconds=-5)])
def test_a_window_must_be_positive(window: timedelta) -> None:
    with pytest.raises(ValueError, match="positive"):
        bucket_width(window)
    with pytest.raises(ValueError, match="positive"):
        window_keys("k", T0, window)
    with pytest.raises(ValueError, match="positive"):
        bucket_index(T0, window)


def test_bucket_index_is_the_floor_of_epoch_over_width() -> None:
    width = timedelta(minutes=5)
    start = int(epoch(T0)) // 300
    assert bucket_index(T0, width) == start  # the start of a bucket belongs to it
    assert bucket_index(T0 - timedelta(microseconds=1), width) == start - 1
    assert bucket_index(T0 + timedelta(seconds=299, microseconds=999_999), width) == start
    assert bucket_index(T0 + width, width) == start + 1


def test_window_keys_list_the_current_bucket_then_the_previous_ones() -> None:
    start = int(epoch(T0)) // 300
    keys = window_keys("burst:a@b.c", T0 + timedelta(minutes=1), timedelta(minutes=10))
    assert keys == (
        f"burst:a@b.c@300:{start}",
        f"burst:a@b.c@300:{start - 1}",
        f"burst:a@b.c@300:{start - 2}",
    )


def test_times_are_instants_whatever_the_zone() -> None:
    paris = T0.astimezone(timezone(timedelta(hours=2)))
    naive = T0.replace(tzinfo=None)  # read as UTC, never as local time
    assert epoch(paris) == epoch(naive) == epoch(T0) == 1714564800.0
    assert window_keys("k", paris, timedelta(hours=1)) == window_keys("k", naive, timedelta(hours=1))


def test_expiry_rounds_up_and_epoch_seconds_rounds_down() -> None:
    assert expiry(T0, timedelta(hours=1)) == 1714564800 + 3600
    assert expiry(T0, timedelta(seconds=1, microseconds=1)) == 1714564802
    assert epoch_seconds(T0 + timedelta(seconds=1, microseconds=999_999)) == 1714564801


def _bucket_key(key: str, at: datetime, window: timedelta) -> str:
    return window_keys(key, at, window)[0]


moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
windows = st.integers(min_value=1, max_value=7 * 24 * 3600).map(lambda s: timedelta(seconds=s))


@given(at=moments, window=windows, fraction=st.floats(min_value=0, max_value=1, exclude_max=True))
def test_every_moment_inside_the_window_is_counted(at: datetime, window: timedelta, fraction: float) -> None:
    earlier = at - window * fraction
    assert _bucket_key("k", earlier, window) in window_keys("k", at, window)


@given(at=moments, window=windows, extra=st.floats(min_value=0, max_value=10))
def test_nothing_older_than_a_bucket_lifetime_is_counted(
    at: datetime, window: timedelta, extra: float
) -> None:
    older = at - bucket_lifetime(window) - window * extra
    assert _bucket_key("k", older, window) not in window_keys("k", at, window)


@given(at=moments, window=windows)
def test_epoch_micros_gives_the_bucket_index_by_integer_division(at: datetime, window: timedelta) -> None:
    width = bucket_width(window)
    assert epoch_micros(at) // (width // timedelta(microseconds=1)) == bucket_index(at, width)
    assert epoch_micros(at.replace(tzinfo=None)) == epoch_micros(at)  # naive is UTC
