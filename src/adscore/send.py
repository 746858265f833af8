"""Send a batch's alerts within a budget, each under a lease that stays pending until the send is confirmed.

For every new alert the sender takes the alert's send lease
(:meth:`~adscore.state.base.StateStore.lease`): ``won`` sends, ``sent`` is
deduplicated, ``pending`` (another sender holds a live lease) fails the records
behind the alert so the platform retries them later. The whole send is bounded
by :class:`SendBudget`: the invocation's remaining time in a function,
``send_timeout_seconds`` in the CLI. After the send:

- a delivered alert is confirmed (its send marker is written);
- an alert the sink reported as failed has its lease given back and its records failed;
- an alert still in flight when the budget ran out keeps its lease (the send may
  yet land) and its records are failed: the retry sends it once the lease expires.

A sender killed mid-send leaves only pending leases, which expire after the
budget: nothing is ever counted "already sent" without having been sent.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from adscore.errors import SinkError, StateError
from adscore.state.base import LEASE_PENDING, LEASE_SENT

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from adscore.alerts import Alert
    from adscore.engine import BatchReport
    from adscore.settings import Settings
    from adscore.sinks.base import AlertSink
    from adscore.state.base import StateStore

log = logging.getLogger("adscore.send")

#: Time kept back from a function's remaining time for what follows the send (logging, answering).
RESERVE_SECONDS = 2.0
#: How long a sender waits for another sender's pending lease to be confirmed before asking for a retry.
MAX_WAIT_SECONDS = 3.0


@dataclass(frozen=True, slots=True)
class SendBudget:
    """How long the send of one batch's alerts may take, and how long its leases last.

    Attributes
    ----------
    seconds : float
        The whole send (every attempt of every sink) stops waiting after this.
    lease : float
        A pending lease may be taken again after this (at least ``seconds``).
    ends_at : float | None
        In a function, when the invocation ends (``time.monotonic()``): the send then gets what is
        left of it at send time, less :data:`RESERVE_SECONDS`, and a lease ends with the invocation,
        so a retry of a killed or timed-out invocation finds it expired.
    """

    seconds: float
    lease: float
    ends_at: float | None = None

    def now(self) -> SendBudget:
        """The budget as it stands at this moment (a function's shrinks as its invocation runs)."""
        if self.ends_at is None:
            return self
        left = max(self.ends_at - time.monotonic(), 1.0)
        return SendBudget(max(left - RESERVE_SECONDS, 0.5), left)

    @classmethod
    def of(cls, settings: Settings, remaining_seconds: float | None = None) -> SendBudget:
        """The budget of a function invocation (its remaining time) or of the CLI (``send_timeout_seconds``).

        Example
        -------
        >>> SendBudget.of(settings, remaining_seconds=30.0)  # doctest: +SKIP
        SendBudget(seconds=28.0, lease=30.0, ends_at=...)
        """
        if remaining_seconds is None:
            return cls(settings.send_timeout_seconds, settings.send_timeout_seconds)
        remaining = max(remaining_seconds, 1.0)
        return cls(max(remaining - RESERVE_SECONDS, 0.5), remaining, time.monotonic() + remaining)


def deliver(
    store: StateStore,
    sink: AlertSink | None,
    alerts: Sequence[tuple[Alert, set[str]]],
    report: BatchReport,
    dedup: timedelta,
    budget: SendBudget,
    *,
    clock: Callable[[], datetime] | None = None,
) -> None:
    """Lease, send within the budget, confirm; record what happened in ``report`` (see the module docstring).

    An alert another sender holds (``pending``) is looked at again, with backoff, for at most
    :data:`MAX_WAIT_SECONDS` (and half the budget): concurrent instances sending the same alert
    usually see its send confirmed in that time and deduplicate instead of asking for a retry.
    """
    wall = clock or _utcnow
    budget = budget.now()
    started = time.monotonic()
    deadline = started + budget.seconds
    waiting = list(alerts)
    wait_until = started + min(MAX_WAIT_SECONDS, budget.seconds / 2)
    delay = 0.05
    while True:
        to_send, waiting = _lease(store, waiting, report, dedup, wall(), timedelta(seconds=budget.lease))
        if to_send:
            _send_and_confirm(store, sink, to_send, report, dedup, max(deadline - time.monotonic(), 0.0))
        if not waiting or time.monotonic() + delay > wait_until:
            break
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
    if waiting:
        report.counts["pending"] += len(waiting)
        report.sink_error = report.sink_error or SinkError(
            f"{len(waiting)} alert(s) held by another sender's pending lease; retry after {budget.lease:g} s"
        )
        for alert, refs in waiting:
            for r in refs:
                report.failed.setdefault(
                    r, f"alert {alert.id} is being sent by another invocation (lease pending)"
                )
    report.counts["sent"] = len(report.sent)


def _lease(
    store: StateStore,
    alerts: Sequence[tuple[Alert, set[str]]],
    report: BatchReport,
    dedup: timedelta,
    now: datetime,
    lease: timedelta,
) -> tuple[list[tuple[Alert, set[str]]], list[tuple[Alert, set[str]]]]:
    """Take each alert's lease: (the alerts to send, the alerts another sender holds)."""
    to_send: list[tuple[Alert, set[str]]] = []
    pending: list[tuple[Alert, set[str]]] = []
    for alert, refs in alerts:
        try:
            answer = store.lease(f"alert|{alert.id}", alert.last_seen, dedup, now=now, lease=lease)
        except StateError as exc:
            report.state_error = report.state_error or exc
            for r in refs:
                report.failed.setdefault(r, f"alert claim failed: {exc}")
            continue
        if answer == LEASE_SENT:
            report.counts["deduplicated"] += 1
        elif answer == LEASE_PENDING:
            pending.append((alert, refs))
        else:
            to_send.append((alert, refs))
    return to_send, pending


def _send_and_confirm(
    store: StateStore,
    sink: AlertSink | None,
    to_send: list[tuple[Alert, set[str]]],
    report: BatchReport,
    dedup: timedelta,
    seconds: float,
) -> None:
    unsent, in_flight, error = _send_within(sink, [a for a, _ in to_send], seconds)
    if error is not None:
        report.sink_error = report.sink_error or error
    for alert, refs in to_send:
        key = f"alert|{alert.id}"
        if alert.id not in unsent:
            report.sent.append(alert)
            try:
                store.confirm(key, alert.last_seen, dedup)
            except StateError as exc:  # sent; a redelivery may send it again once the lease expires
                log.warning("alert %s sent but not confirmed: %s", alert.id, exc)
            continue
        for r in refs:
            report.failed.setdefault(r, f"alert {alert.id} not delivered: {error}")
        if not in_flight:
            try:
                store.unlease(key)
            except StateError as exc:  # the lease then expires on its own
                log.warning("lease of alert %s not given back: %s", alert.id, exc)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _send_within(
    sink: AlertSink | None, alerts: list[Alert], seconds: float
) -> tuple[set[str], bool, SinkError | None]:
    """Send ``alerts`` waiting at most ``seconds``; return (unsent ids, still in flight, error)."""
    if sink is None:
        return set(), False, None
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            sink.send(alerts)
            outcome.append(None)
        except BaseException as exc:  # handed to the caller's thread
            outcome.append(exc)

    worker = threading.Thread(target=run, name="adscore-send", daemon=True)
    worker.start()
    worker.join(seconds)
    ids = {a.id for a in alerts}
    if not outcome:
        log.error("send of %d alert(s) still running after its budget of %.1f s", len(alerts), seconds)
        return ids, True, SinkError(f"send budget of {seconds:.1f} s exhausted", unsent=tuple(sorted(ids)))
    exc = outcome[0]
    if exc is None:
        return set(), False, None
    if isinstance(exc, SinkError):
        return (set(exc.unsent) & ids if exc.unsent else ids), False, exc
    log.warning("sink raised %s", type(exc).__name__)
    return ids, False, SinkError(f"sink raised {type(exc).__name__}", unsent=tuple(sorted(ids)))
