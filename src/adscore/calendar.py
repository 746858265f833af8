"""Business hours, holidays and maintenance windows (pure; zoneinfo time zones)."""

from __future__ import annotations

import fnmatch
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from adscore.patterns import glob_matcher

if TYPE_CHECKING:
    from datetime import datetime, time

    from adscore.settings import BusinessHours, Calendar, MaintenanceWindow


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """Return the ``ZoneInfo`` for an IANA name (cached)."""
    return ZoneInfo(name)


def hours_for(calendar: Calendar, account: str | None) -> BusinessHours:
    """Return the business hours of ``account`` (its own entry, else the default)."""
    if account and account in calendar.accounts:
        return calendar.accounts[account]
    return calendar.default


def is_business_time(at: datetime, hours: BusinessHours) -> bool:
    """Whether ``at`` falls inside business hours, in the hours' own time zone.

    Example
    -------
    A Saturday, or a listed holiday, is never business time; otherwise the
    local time must be in ``[start, end)``.
    """
    local = at.astimezone(zone(hours.timezone))
    if local.date() in hours.holidays:
        return False
    if local.isoweekday() not in hours.days:
        return False
    t = local.time()
    return _in_range(t, hours.start, hours.end)


def _in_range(t: time, start: time, end: time) -> bool:
    if start <= end:
        return start <= t < end
    return t >= start or t < end  # a range that wraps midnight


def in_maintenance(
    windows: tuple[MaintenanceWindow, ...] | list[MaintenanceWindow],
    at: datetime,
    account: str | None,
    principal_ids: tuple[str, ...],
    detection_id: str,
) -> MaintenanceWindow | None:
    """Return the declared maintenance window covering this event, or None."""
    for w in windows:
        if not (w.start <= at < w.end):
            continue
        if w.accounts and (account is None or account not in w.accounts):
            continue
        if w.detections and not any(fnmatch.fnmatchcase(detection_id, d) for d in w.detections):
            continue
        if w.principals and not any(glob_matcher(w.principals).match(p) for p in principal_ids):
            continue
        return w
    return None

