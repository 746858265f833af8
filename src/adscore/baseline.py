"""Per-identity baselines: what is normal for one principal, learned per UTC day in the state store.

A detection that counts breadth in a window (distinct operations, repositories, namespaces,
denied scopes) learns, per principal and per UTC day:

- the members it counted that day (``service<SEP>operation``, repository ids, namespaces...): the
  principal's vocabulary, so what it has never used before can be told apart from more of the same;
- the peak: the largest window count of the day, as ``#<count>`` members of the same set (one for
  each count reached that is large enough to matter, see :func:`learn`; ``#`` sorts before the
  vocabulary, so a full set keeps them).

One fixed set item per principal and day (:meth:`~adscore.state.base.StateStoreBase.add_to`; key
``<base>|day|<n>@1:<day start>``, ``n`` = days since the epoch), written by UNION like every other set: a redelivered event adds nothing, instances writing at once merge, and the
day's peak is a maximum (the largest ``#`` member), whatever the order of delivery. Items live
``baseline_days + 1`` days in event time. A day holds at most ``MAX_SET_MEMBERS`` members (512); past
that, vocabulary members are dropped (a principal that uses more than that in a day sees some of its
own members as new).

Reading a principal's history costs one read of ``baseline_days`` items, one key each, in one call
(:meth:`~adscore.state.base.StateStoreBase.members_of`; once per batch, and only for a window at or above
the detection's floor).

What is guaranteed
------------------
A window is judged (:func:`judge`) against the days strictly before its own UTC day, never against the
day it is in. So:

- inside one day, any delivery order and batching gives the verdicts of a time-sorted run;
- once a principal's earlier days are stored, a later day gives the verdicts it gives in a time-sorted
  run, whatever order the days arrive in;
- a day judged before (part of) its history is stored sees less history: a lower peak, more that is
  new, or too few learned days (fixed thresholds). Less history can only add alerts, never remove one.
  A batch reads a principal's history once per day judged (:func:`history`), so an earlier day
  written in the same batch (records of two days mixed in one batch) counts from the next batch.

Only the state API is used (no cloud SDK); the helpers are pure functions of the state they read.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from adscore.detection import DetectionParams
from adscore.state.base import BatchedState, fit_key, fit_part

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from collections.abc import Set as AbstractSet

    from adscore.state.base import StateView

__all__ = [
    "DAY",
    "BaselineParams",
    "CountedScheduleParams",
    "History",
    "Schedule",
    "ScheduleParams",
    "Verdict",
    "day_of",
    "history",
    "judge",
    "learn",
    "learn_schedule",
    "schedule",
]

DAY = timedelta(days=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PEAK = "#"


BASELINE_BLIND_SPOTS: tuple[str, ...] = (
    "Baseline: an identity that has always been noisy is learned as it is; a broad sweep that is truly "
    "malicious but no broader than its own usual ones, by an identity that already makes them, does not "
    "alert here.",
    "Baseline: a slow attacker can train it, widening a principal's use a little each day over the "
    "learning period (14 days) until the sweep looks usual; the vocabulary learned per day is capped (512"
    " members), so a principal using more than that in a day sees some of its own usual members as new "
    "(more alerts, not fewer).",
    "Baseline: a day judged before its history days are stored (archives replayed out of order) is judged"
    " on less history: it can raise an extra alert, never miss one. A principal's first days are on the "
    "fixed thresholds.",
    "Baseline, what still catches the intruder using a broad role: what it never used counts four times "
    "here, discovery.unusual_services counts services new to the principal, and "
    "chain.discovery_then_snapshot makes any discovery alert (these, unusual_services, enumeration_tool) "
    "followed by a snapshot or share critical.",
)
"""The blind spots a per-identity baseline opens, in the ADS of every baselined discovery detection."""

SCHEDULE_BLIND_SPOTS: tuple[str, ...] = (
    "Schedule: a job that has always run at its hour is learned as it is; an attacker using a scheduled "
    "role's credentials at that hour, on volumes it already snapshots, in no larger numbers, is not seen "
    "here (snapshot.shared_external and snapshot.restore_after_create still see what is done with the "
    "copies).",
    "Schedule: learned per UTC hour, so a local-time cron job moves by an hour at a daylight-saving "
    "change and alerts once until re-learned; a slow attacker could train a new hour over two days; up to"
    " 512 sources a day are learned per principal.",
    "Schedule: a day judged before its history days are stored (archives replayed out of order) sees no "
    "schedule and alerts as before (never less).",
)
"""The blind spots a learned snapshot schedule opens, in the ADS of snapshot.burst and snapshot.off_hours."""


class BaselineParams(DetectionParams):
    """Settings of a detection that judges a principal against its own history (see :mod:`adscore.baseline`)."""

    baseline_days: int = Field(
        default=14,
        ge=0,
        le=60,
        description=(
            "days of each principal's own history (UTC days before the event's) a window is judged "
            "against; 0 turns the baseline off (fixed thresholds only)"
        ),
    )
    baseline_min_days: int = Field(
        default=2,
        ge=1,
        le=60,
        description="days with activity a principal needs in that history before it is used (else fixed thresholds)",
    )
    baseline_factor: float = Field(
        default=2.0,
        ge=1.0,
        le=100.0,
        description="a window alerts only when its score exceeds this times the principal's busiest learned window",
    )
    new_weight: int = Field(
        default=4,
        ge=1,
        le=100,
        description="what the principal never used in its history counts this many times in the score",
    )

    @model_validator(mode="after")
    def _enough_days(self) -> BaselineParams:
        if self.baseline_days and self.baseline_min_days > self.baseline_days:
            raise ValueError(
                f"baseline_min_days ({self.baseline_min_days}) is more than baseline_days ({self.baseline_days}): "
                "the baseline could never apply"
            )
        return self


def day_of(at: datetime) -> int:
    """Whole UTC days since the epoch of an aware event time."""
    return (at - _EPOCH) // DAY


def _day_start(day: int) -> datetime:
    return _EPOCH + DAY * day


def _key(base: str, day: int) -> str:
    """The day's fixed set item.

    ``@1:<day start, epoch seconds>`` keeps the name the item had when it was read as the one-second
    bucket of a window at the day's start (``window_keys``), so days learned before stay readable.
    """
    return f"{fit_key(f'{base}|day|{day}')}@1:{day * 86_400}"


def _vocab(member: str) -> str:
    """A vocabulary member as stored: one that starts like a peak (log text) is escaped, never read as one."""
    return f"~{member}" if member.startswith(_PEAK) else member


def learn(
    state: StateView,
    base: str,
    at: datetime,
    members: Iterable[str],
    count: int,
    p: BaselineParams,
    floor: int,
) -> None:
    """Add ``members`` to the principal's set of the day of ``at``; raise the day's peak to ``count``.

    The count is written (as a ``#`` member) only when ``count * baseline_factor >= floor``: a
    smaller peak can never quiet a window at or above the floor (a score is at least its count), so
    storing it would change no verdict. Steady traffic costs one union of members the batch already holds.
    """
    _learn(state, base, at, members, count, p.baseline_days, p.baseline_factor, floor)


def _learn(
    state: StateView,
    base: str,
    at: datetime,
    members: Iterable[str],
    count: int,
    days: int,
    factor: float,
    floor: int,
) -> None:
    if days <= 0:
        return
    day = day_of(at)
    key, start, keep = _key(base, day), _day_start(day), DAY * (days + 1)
    stored = tuple(_vocab(m) for m in members)
    if count * factor >= floor:  # a count that could quiet a window at the floor: one member per value reached
        stored = (*stored, f"{_PEAK}{count:06d}")
    state.add_to(key, stored, start, keep)


@dataclass(frozen=True, slots=True)
class History:
    """A principal's learned days before a given day."""

    days: int
    """Days with activity in the history."""
    peak: int
    """The largest window count over those days."""
    known: frozenset[str]
    """Every member seen on those days (the vocabulary)."""
    counts: dict[str, int]
    """How many of those days each member was seen on."""


_HISTORIES: weakref.WeakKeyDictionary[BatchedState, dict[tuple[str, int, int], History]] = (
    weakref.WeakKeyDictionary()
)
"""A batch's histories, read once per (principal, day judged, days) while the batch lasts."""


def history(state: StateView, base: str, at: datetime, days: int) -> History:
    """The principal's days strictly before the day of ``at``, at most ``days`` of them (read only).

    Within one batch (:class:`~adscore.state.base.BatchedState`) a principal's history for a given
    day is read once: a burst judges every event past the floor, and its history does not change
    while the batch runs, except when the same batch (or, seen at a recount, another instance)
    writes one of those earlier days. Such a write is seen from the next batch: until then the
    window is judged on less history, which can only add an alert.
    """
    today = day_of(at)
    memo = _HISTORIES.setdefault(state, {}) if isinstance(state, BatchedState) else None
    if memo is not None:
        known = memo.get((base, today, days))
        if known is not None:
            return known
    found = _read_history(state, base, today, days)
    if memo is not None:
        memo[(base, today, days)] = found
    return found


def _read_history(state: StateView, base: str, today: int, days: int) -> History:
    learned = peak = 0
    counts: dict[str, int] = {}
    keys = [_key(base, day) for day in range(today - 1, today - days - 1, -1)]
    if not keys:
        return History(0, 0, frozenset(), counts)
    # One read of every day. At the oldest day's start: each item lives past its own day's start,
    # so each is read as a read at its own day's start would see it.
    for members in state.members_of(keys, _day_start(today - days)).values():
        if not members:
            continue
        learned += 1
        for m in members:
            if m.startswith(_PEAK):
                if m[1:].isdigit():
                    peak = max(peak, int(m[1:]))
            else:
                counts[m] = counts.get(m, 0) + 1
    return History(learned, peak, frozenset(counts), counts)


@dataclass(frozen=True, slots=True)
class Verdict:
    """How a window at or above its floor compares with the principal's history."""

    learned_days: int
    """Days of history used (fewer than ``baseline_min_days``: fixed thresholds applied)."""
    peak: int
    """The principal's busiest learned window."""
    new: tuple[str, ...]
    """Members of the window the principal never used in its history (sorted, at most 20)."""
    new_count: int
    score: int
    """The window's count with each new member counted ``new_weight`` times."""
    limit: float
    """What the score must exceed: ``baseline_factor`` times the peak."""
    alert: bool
    fixed: bool
    """True when the fixed thresholds decided (baseline off, or too little history)."""

    def note(self, unit: str, new_unit: str | None = None) -> str:
        """One sentence for the summary: how the window compares with the principal's own history."""
        if self.fixed:
            if self.learned_days == 0:
                return " No history for this principal yet: fixed thresholds."
            return f" Only {self.learned_days} day(s) of history for this principal: fixed thresholds."
        new = ", ".join(m.replace("\x1f", ":")[:60] for m in self.new[:8])
        listed = f" ({new})" if new else ""
        return (
            f" Against its own {self.learned_days} days of history (busiest window: {self.peak} {unit}): "
            f"{self.new_count} {new_unit or unit} never seen for it before{listed}; "
            f"score {self.score} > {self.limit:g}."
        )

    def context(self) -> dict[str, object]:
        """The verdict as alert context (what an analyst needs to see why it fired)."""
        return {
            "baseline_days_learned": self.learned_days,
            "baseline_peak": self.peak,
            "baseline_new": self.new_count,
            "baseline_score": self.score,
            "baseline_limit": round(self.limit, 1),
            "baseline_applied": not self.fixed,
            "baseline_new_members": [m.replace("\x1f", ":")[:120] for m in self.new],
        }


def judge(
    state: StateView,
    base: str,
    at: datetime,
    count: int,
    window_members: AbstractSet[str],
    p: BaselineParams,
    new_units: Callable[[frozenset[str]], int] | None = None,
) -> Verdict:
    """Judge a window that is at or above the detection's floor against the principal's history.

    Until the principal has ``baseline_min_days`` learned days (or with ``baseline_days: 0``) the
    verdict is to alert: the fixed thresholds apply. After that the window alerts when
    ``count + (new_weight - 1) * new > baseline_factor * peak``, where ``new`` is the number of
    window members never seen on a learned day; or, when the count is of something else than the
    members (denied calls, whose members are the scopes), ``new_units(known)``: how much of the
    count falls on members never seen.
    """
    if p.baseline_days <= 0:
        return Verdict(0, 0, (), 0, count, 0.0, alert=True, fixed=True)
    past = history(state, base, at, p.baseline_days)
    if past.days < p.baseline_min_days:
        return Verdict(past.days, past.peak, (), 0, count, 0.0, alert=True, fixed=True)
    new = sorted(m for m in window_members if _vocab(m) not in past.known)
    units = new_units(past.known) if new_units is not None else len(new)
    score = count + (p.new_weight - 1) * min(units, count)
    limit = p.baseline_factor * past.peak
    return Verdict(past.days, past.peak, tuple(new[:20]), len(new), score, limit, alert=score > limit, fixed=False)



# --------------------------------------------------------------------------- snapshot schedules


class ScheduleParams(DetectionParams):
    """Settings of a snapshot detection that learns each principal's schedule (see :func:`schedule`)."""

    schedule_days: int = Field(
        default=14,
        ge=0,
        le=60,
        description=(
            "days of each principal's snapshot history (UTC days before the event's) its schedule is learned "
            "from; 0 turns schedule learning off"
        ),
    )
    schedule_min_days: int = Field(
        default=2,
        ge=1,
        le=60,
        description="days a principal must have snapshotted in an hour (UTC) before that hour is its schedule",
    )

    @model_validator(mode="after")
    def _enough_days(self) -> ScheduleParams:
        if self.schedule_days and self.schedule_min_days > self.schedule_days:
            raise ValueError(
                f"schedule_min_days ({self.schedule_min_days}) is more than schedule_days ({self.schedule_days}): "
                "no schedule could ever be learned"
            )
        return self


class CountedScheduleParams(ScheduleParams):
    """Schedule settings of a detection that counts creations in a window (``snapshot.burst``)."""

    schedule_factor: float = Field(
        default=1.5,
        ge=1.0,
        le=100.0,
        description="on its schedule, a principal's count alerts only above this times its busiest learned window",
    )


SCHEDULE = "snapshot.schedule"
"""Key prefix of the learned snapshot schedules (shared by ``snapshot.off_hours`` and ``snapshot.burst``)."""
_SOURCE_LEN = 120


def _hour(at: datetime) -> str:
    return f"h:{at.astimezone(UTC).hour:02d}"


def _source(source: str) -> str:
    return f"s:{fit_part(source, _SOURCE_LEN)}"


def learn_schedule(
    state: StateView,
    principal: str,
    at: datetime,
    source: str | None,
    p: ScheduleParams,
    count: int = 0,
    floor: int = 0,
) -> None:
    """Record a creation by ``principal`` at ``at`` (its UTC hour and its source) in the day's schedule set.

    ``count``/``floor``: the detection's window count and threshold, for the day's peak (``snapshot.burst``).
    """
    members = (_hour(at), _source(source)) if source else (_hour(at),)
    floor = floor if count else 1 << 30
    factor = p.schedule_factor if isinstance(p, CountedScheduleParams) else 1.0
    _learn(state, f"{SCHEDULE}|{principal}", at, members, count, p.schedule_days, factor, floor)


@dataclass(frozen=True, slots=True)
class Schedule:
    """Whether a creation follows its principal's learned schedule, and why not."""

    learned_days: int
    on_schedule: bool
    departures: tuple[str, ...]
    """Why it is not on schedule: ``a new hour``, ``a new source``, ``many more than usual``."""
    peak: int

    def note(self) -> str:
        """One sentence for the summary."""
        if self.learned_days == 0 or not (self.on_schedule or self.departures):  # no schedule learned yet
            return ""
        if self.on_schedule:
            return f" It follows the schedule this principal kept over {self.learned_days} learned days."
        why = " and ".join(self.departures)
        return f" It departs from the schedule learned over {self.learned_days} days: {why}."

    def context(self) -> dict[str, object]:
        return {
            "schedule_days_learned": self.learned_days,
            "schedule_departures": list(self.departures),
            "schedule_peak": self.peak,
        }


def schedule(
    state: StateView, principal: str, at: datetime, source: str | None, p: ScheduleParams, count: int = 0
) -> Schedule:
    """Judge a creation against the principal's schedule (days strictly before the day of ``at``, read only).

    On schedule: the principal snapshotted in this UTC hour on at least ``schedule_min_days`` learned
    days, the source (when the event names one) was snapshotted by it on a learned day, and ``count``
    (the detection's window count, 0 to skip) is at most ``schedule_factor`` times its busiest learned
    window. A principal without such an hour has no schedule: nothing is on schedule.
    """
    if p.schedule_days <= 0:
        return Schedule(0, False, (), 0)
    past = history(state, f"{SCHEDULE}|{principal}", at, p.schedule_days)
    if past.days < p.schedule_min_days:  # too few days to hold a schedule: nothing is on it, nothing departs
        return Schedule(past.days, False, (), past.peak)
    departures: list[str] = []
    if past.counts.get(_vocab(_hour(at)), 0) < p.schedule_min_days:
        departures.append(f"a new hour ({at.astimezone(UTC):%H}:00 UTC)")
    if source and _vocab(_source(source)) not in past.known:
        departures.append(f"a new source ({source[:80]})")
    factor = p.schedule_factor if isinstance(p, CountedScheduleParams) else 1.0
    if count and count > factor * past.peak:
        busiest = f"{factor:g} x its busiest ({past.peak})" if past.peak else "its learned days ever came near"
        departures.append(f"{count} in the window, more than {busiest}")
    return Schedule(past.days, not departures, tuple(departures), past.peak)
