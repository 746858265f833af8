"""The engine: parse a batch, route events to detections, suppress, dedup, alert.

One batch flows as: raw records -> :func:`adscore.sources.probe_record` (a record whose
one event no detection reads is counted, deduplicated and left unbuilt) -> :func:`adscore.sources.parse_record` ->
events (deduplicated by event id, sorted by event time) -> the detections
subscribed to each event's action (less those a shared ``Detection.dispatch``, the Sigma rules of a
log source, says cannot match it) -> findings -> alerts (one per
deterministic alert id) -> claim -> sinks. State writes are coalesced by
:class:`~adscore.state.base.BatchedState`: a batch costs at most one write per
distinct key. Windows use event time, so replaying last month's logs behaves
as live traffic did.

Neither concurrency nor delivery order decides what alerts. After the flush the
batch recounts the sets it counted (:meth:`~adscore.state.base.BatchedState.recount`)
and judges again the evaluations whose sets other instances changed meanwhile,
so instances that each hold part of a burst raise it once. Across batches, a store that can tell
whether anyone else wrote to it (SQLite, DynamoDB) sits behind a process-wide read cache
(:mod:`adscore.state.warm`): a single writer reads each item once, the recount included; on a
remote store a batch reads its keys ahead in one request per kind (``Engine._prefetch``). A sequence step that
arrives before the alert it follows is parked and completed by that alert
(:data:`CHAIN_PENDING_KEY`); detections park their own first halves the same way
and name the parked event as the alert's subject (``Finding.subject``).
"""

from __future__ import annotations

import gc
import logging
import traceback
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from operator import itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson
from pydantic import ValidationError

from adscore.actions import OUTCOME_DENIED
from adscore.alerts import Alert, alert_id, make_alert
from adscore.detection import Context, Detection, DetectionParams, Dispatch, Finding, Severity
from adscore.errors import ConfigError, SinkError, StateError
from adscore.events import Event, RecordError, unpark_event
from adscore.render.escape import clean_text
from adscore.send import SendBudget, deliver
from adscore.sources import parse_record, probe_record
from adscore.state.base import BatchedState, StateStoreBase, StateWriteError
from adscore.state.warm import WarmStore, warm
from adscore.suppress import Suppressor, principal_names

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from adscore.settings import Settings
    from adscore.sinks.base import AlertSink
    from adscore.state.base import StateStore, WriteBatch

log = logging.getLogger("adscore.engine")

#: Key under which the engine remembers a principal's latest alert per tactic, for chained detections.
LAST_ALERT_KEY = "last-alert|{tactic}|{principal}"
#: Key under which a chained detection parks the second step that arrived before the alert it follows.
CHAIN_PENDING_KEY = "chain-pending|{tactic}|{principal}"
CHAIN_DETECTION = "chain.discovery_then_snapshot"
CHAIN_MEMORY = timedelta(hours=6)
#: How stale the remembered time of an ongoing alert may get before it is written again.
CHAIN_REFRESH = timedelta(minutes=10)


def _event_time(pair: tuple[str, Event]) -> datetime:
    return pair[1].time


@lru_cache(maxsize=1024)
def _chain_fact(stored: str) -> tuple[str, datetime] | None:
    """The alert id and time of a remembered last-alert fact (parsed once per fact), or None if unreadable."""
    try:
        old = orjson.loads(stored)
        if isinstance(old, dict):
            at = datetime.fromisoformat(str(old.get("time")))
            if at.tzinfo is not None:
                return str(old.get("alert_id")), at
    except (orjson.JSONDecodeError, ValueError, TypeError):
        pass
    return None


def _record_failed(report: BatchReport, ref: str, stage: str, event_id: str, exc: Exception) -> None:
    """Count a record a detection failed on, and mark it failed so the platform retries or dead-letters it.

    The log line is structured: its message is constant, the record, event id and error are fields
    (cleaned of control characters), and the traceback holds code, not log text.
    """
    error = clean_text(f"{type(exc).__name__}: {exc}", 300)
    report.errors.append(RecordError(family="detection", reason=f"{stage}: {error}", location=ref))
    report.failed.setdefault(ref, f"detection failed: {stage}: {type(exc).__name__}")
    report.counts["errors"] += 1
    report.counts["detection_errors"] += 1
    if isinstance(report, _ScratchReport):  # the prefetch pass: the real evaluation reports it
        return
    log.error(
        "a detection failed on a record; the record is marked failed",
        extra={
            "json_fields": {
                "event": "detection_error",
                "detection": stage,
                "record": clean_text(ref, 300),
                "event_id": clean_text(event_id, 300),
                "error": error,
                "traceback": "".join(traceback.format_tb(exc.__traceback__))[-4000:],
            }
        },
    )


@dataclass
class BatchReport:
    """What one batch did.

    Attributes
    ----------
    alerts : alerts produced in this batch (sent, or deduplicated against an earlier send)
    sent : alerts handed to the sinks in this batch
    errors : records that could not be read, with their reasons
    unreadable : ref -> (reason, raw record) of the items holding a record that could not be read:
        the runtime dead-letters them (retrying cannot help)
    failed : record refs the platform must retry (records whose state could not be saved,
        records behind alerts that could not be sent)
    counts : records, events, duplicates, routed, suppressed, findings, alerts, deduplicated, state_reads, state_writes
    suppressed : suppression reason -> count
    state_error, sink_error : set when the store or a sink failed after its retries
    """

    alerts: list[Alert] = field(default_factory=list)
    sent: list[Alert] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)
    unreadable: dict[str, tuple[str, Any]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    suppressed: Counter[str] = field(default_factory=Counter)
    by_detection: Counter[str] = field(default_factory=Counter)
    state_error: StateError | None = None
    sink_error: SinkError | None = None

    def merge(self, other: BatchReport) -> None:
        """Add another batch's report to this one (for multi-batch runs)."""
        self.alerts.extend(other.alerts)
        self.sent.extend(other.sent)
        self.errors.extend(other.errors)
        self.unreadable.update(other.unreadable)
        self.failed.update(other.failed)
        self.counts.update(other.counts)
        self.suppressed.update(other.suppressed)
        self.by_detection.update(other.by_detection)
        self.state_error = self.state_error or other.state_error
        self.sink_error = self.sink_error or other.sink_error

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary (what the CLI prints on stderr and the functions log)."""
        return {
            "counts": dict(self.counts),
            "suppressed": dict(self.suppressed),
            "alerts_by_detection": dict(self.by_detection),
            "errors": len(self.errors),
            "failed_records": len(self.failed),
            "state_error": str(self.state_error) if self.state_error else None,
            "sink_error": str(self.sink_error) if self.sink_error else None,
        }


class _ScratchReport(BatchReport):
    """The report of the prefetch pass (see ``Engine._prefetch``): thrown away, logs nothing."""


class _KeyRecorder(StateStoreBase):
    """A store that holds nothing and notes every key read from it (the prefetch pass's store)."""

    def __init__(self) -> None:
        super().__init__()
        self.sets: set[str] = set()
        self.values: set[str] = set()

    def get_sets(self, keys: Sequence[str], at: datetime) -> dict[str, frozenset[str]]:
        self.sets.update(keys)
        return dict.fromkeys(keys, frozenset())

    def get_values(self, keys: Sequence[str], at: datetime) -> dict[str, str]:
        self.values.update(keys)
        return {}

    def write(self, batch: WriteBatch) -> None:
        return None

    def claim_item(self, key: str, expires_at: int, now: int) -> bool:
        return True

    def release_item(self, key: str) -> None:
        return None


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector for the block; resume after, only if it was on (so blocks nest).

    Decoding and evaluating a batch allocate hundreds of thousands of containers (records, events)
    that hold no reference cycles: the collector would traverse them again and again to find nothing.
    Reference counting still frees everything as usual; only cycles wait for the end of the block.
    """
    pause = gc.isenabled()
    if pause:
        gc.disable()
    try:
        yield
    finally:
        if pause:
            gc.enable()


@dataclass(frozen=True)
class _Bound:
    detection: Detection
    params: DetectionParams
    severity: Severity
    suppression_class: int
    """Detections with the same class get the same suppression verdict for an event (numbered by the engine)."""
    index: int
    """Position among the enabled detections (its context in a batch)."""


class _Split(NamedTuple):
    """One route's detections split for dispatch (see ``Engine._dispatch``)."""

    bounds: list[_Bound]
    plain: list[tuple[int, _Bound]]
    gates: list[tuple[Dispatch, dict[str, tuple[int, _Bound]]]]


class _Counted(NamedTuple):
    """One evaluation that read windowed counts: ``state.uses[start:end]`` are the bucket keys it read."""

    ref: str
    event: Event
    bound: _Bound
    start: int
    end: int


#: Evidence kept when findings of one alert are merged within a batch.
MAX_EVIDENCE_IDS = 100
MAX_EVIDENCE_EVENTS = 3
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Merged:
    """Findings of one alert id within a batch: the highest count wins, evidence is the union (capped)."""

    __slots__ = ("best", "bound", "event", "events", "first_seen", "ids", "refs")

    def __init__(self, bound: _Bound, f: Finding, event: Event, refs: set[str]) -> None:
        self.bound, self.best, self.event, self.refs = bound, f, event, refs
        self.ids: dict[str, None] = {}
        self.events: dict[str, Event] = {}
        self.first_seen: datetime | None = None
        self._absorb(f)

    def _absorb(self, f: Finding) -> None:
        for eid in f.evidence_ids or tuple(e.event_id for e in f.events):
            if len(self.ids) >= MAX_EVIDENCE_IDS:
                break
            self.ids.setdefault(eid, None)
        for e in f.events:
            if len(self.events) < MAX_EVIDENCE_EVENTS:
                self.events.setdefault(e.event_id, e)
        fs = f.first_seen or (min(e.time for e in f.events) if f.events else None)
        if fs is not None and (self.first_seen is None or fs < self.first_seen):
            self.first_seen = fs

    def add(self, f: Finding, event: Event, ref: str) -> None:
        self.refs.add(ref)
        self._absorb(f)
        if f.count >= self.best.count:
            self.best, self.event = f, event

    def merged_finding(self) -> Finding:
        from dataclasses import replace

        events = tuple(self.events.values())
        latest = tuple(e for e in self.best.events if e.event_id not in self.events)
        return replace(
            self.best,
            events=events + latest[: max(0, MAX_EVIDENCE_EVENTS - len(events))],
            evidence_ids=tuple(self.ids),
            first_seen=self.first_seen,
        )


class Engine:
    """Runs every enabled detection over batches of raw records.

    Parameters
    ----------
    settings : Settings
    store : StateStore
        Where detections remember (idempotent, commutative operations only).
    sink : AlertSink, optional
        Where new alerts go; None collects them in the report only.
    catalogue : sequence of Detection, optional
        Default: every built-in detection, then the user detections of ``settings.detection_paths``.

    Example
    -------
    >>> engine = Engine(load_settings(), open_store("memory://"))  # doctest: +SKIP
    >>> report = engine.run([("file.json:1", record)])  # doctest: +SKIP
    """

    def __init__(
        self,
        settings: Settings,
        store: StateStore,
        sink: AlertSink | None = None,
        catalogue: Sequence[Detection] | None = None,
    ) -> None:
        if catalogue is None:
            from adscore.detections import catalogue_for

            catalogue = catalogue_for(settings)  # built-in, then the user's (settings.detection_paths)
        self.settings = settings
        self.settings_version = settings.version()
        #: The store, behind a process-wide read cache when it can tell whether anyone else wrote to it
        #: (:mod:`adscore.state.warm`: SQLite, DynamoDB); the cache answers exactly what the store would.
        self.store: StateStore = warm(store)
        self.sink = sink
        self.suppressor = Suppressor(settings)
        self.dedup = timedelta(hours=settings.alert_dedup_hours)
        self._bound: dict[str, _Bound] = {}
        self._chain: _Bound | None = None
        self._routes: dict[tuple[str, str], list[_Bound]] = defaultdict(list)
        known = {d.id for d in catalogue}
        for key in settings.detections:
            norm = key.replace("_", ".", 1) if "." not in key else key
            if key not in known and norm not in known and not any(d.module_name == key.lower() for d in catalogue):
                raise ConfigError(f"detections.{key}", f"no such detection (known: {', '.join(sorted(known))})")
        for sev_key in settings.severity_overrides:
            if sev_key not in known:
                raise ConfigError(f"severity_overrides.{sev_key}", "no such detection")
        for i, pattern in enumerate(settings.disabled):
            if not any(settings.is_disabled_by(pattern, d.id) for d in catalogue):
                raise ConfigError(f"disabled.{i}", f"{pattern[:200]!r} names no detection (see `adscore detections`)")
        classes: dict[tuple[int, ...], int] = {}
        for det in catalogue:
            try:
                params = det.params.model_validate(settings.params_for(det.id))
            except ValidationError as exc:  # name the setting
                first = exc.errors()[0]
                loc = ".".join(str(p) for p in first["loc"])
                raise ConfigError(f"detections.{det.id}{'.' + loc if loc else ''}", str(first["msg"])) from exc
            if not params.enabled or settings.is_disabled(det.id):
                continue
            severity: Severity = settings.severity_overrides.get(det.id) or params.severity or det.meta.severity
            cls = classes.setdefault(self.suppressor.class_of(det.id), len(classes))
            bound = _Bound(det, params, severity, cls, len(self._bound))
            self._bound[det.id] = bound
            if det.id == CHAIN_DETECTION:
                self._chain = bound
            for action in det.actions:
                for cloud in det.clouds:
                    self._routes[(cloud, action)].append(bound)
        #: Probe records before building their events (:func:`~adscore.sources.probe_record`) unless a
        #: detection reads every AWS event (a Sigma rule set), when no record could be skipped.
        self._probing = ("aws", "") not in self._routes
        #: Detections sharing a :class:`~adscore.detection.Dispatch` (a log source's Sigma rules) are
        #: evaluated only on the events it picks for them; per (cloud, action, denied) route, the
        #: detections without one and, per dispatch, its detections by id (with their route positions).
        self._dispatching = any(b.detection.dispatch is not None for b in self._bound.values())
        self._splits: dict[tuple[str, str, bool], _Split] = {}

    @property
    def detections(self) -> list[Detection]:
        """The enabled detections."""
        return [b.detection for b in self._bound.values()]

    # ------------------------------------------------------------------ batch
    def run(
        self, items: Iterable[tuple[str, Any]], *, send: bool = True, budget: SendBudget | None = None
    ) -> BatchReport:
        """Process one batch of ``(record_ref, raw_record)`` pairs.

        Returns a :class:`BatchReport`; never raises for bad records. A state
        failure marks the records whose writes were lost as failed; a sink
        failure gives back the leases of the unsent alerts (so a retry sends them)
        and marks the records behind them as failed. The send is bounded by
        ``budget`` (default ``send_timeout_seconds``; see :mod:`adscore.send`).

        The cyclic garbage collector is paused while the batch runs (:func:`paused_gc`):
        otherwise it would take about an eighth of a replay's time finding nothing.
        """
        with paused_gc():
            try:
                return self._run(items, send=send, budget=budget)
            finally:
                if isinstance(self.store, WarmStore):
                    self.store.end()

    def _run(self, items: Iterable[tuple[str, Any]], *, send: bool, budget: SendBudget | None) -> BatchReport:
        report = BatchReport()
        counts = report.counts
        events: list[tuple[str, Event]] = []
        seen: set[tuple[str, str, str, str]] = set()
        n_records = n_events = 0
        routes_of = self._routes
        probing = self._probing
        unrouted: list[str] = []  # refs of the records whose one event no detection reads: never built
        for ref, raw in items:
            n_records += 1
            if probing:
                probed = probe_record(raw)
                if probed is not None:
                    cloud, action, outcome, key = probed
                    if not routes_of.get((cloud, action or "")) and not (
                        outcome == "denied" and routes_of.get((cloud, OUTCOME_DENIED))
                    ):
                        n_events += 1
                        if key in seen:
                            counts["duplicates"] += 1
                        else:
                            seen.add(key)
                            unrouted.append(ref)
                        continue
            for item in parse_record(raw, ref):
                if isinstance(item, RecordError):
                    report.errors.append(item)
                    if ref not in report.unreadable:
                        report.unreadable[ref] = (item.reason, raw)
                    counts["errors"] += 1
                    continue
                n_events += 1
                key = (item.source, item.event_id, item.operation, item.outcome)
                if key in seen:
                    counts["duplicates"] += 1
                    continue
                seen.add(key)
                events.append((ref, item))
        if n_records:
            counts["records"] += n_records
        if n_events:
            counts["events"] += n_events
        events.sort(key=_event_time)

        state = BatchedState(self.store)
        cache = self.store if isinstance(self.store, WarmStore) else None
        store_reads = 0
        if cache is not None:  # the batch's reads trust the cache as checked now; its flush checks again
            cache.begin()
            store_reads = cache.store_reads
        if cache is not None and cache.remote and events and cache.keeps(events[-1][1].time):
            self._prefetch(events, cache)
        findings: dict[str, _Merged] = {}
        contexts = self._contexts(state, events)
        counted: list[_Counted] = []
        chained: list[tuple[str, Event]] = []
        n_routed, n_suppressed = self._evaluate_events(events, state, contexts, report, findings, counted, chained)
        self._complete_chains(chained, contexts, report, findings, state)

        if n_routed:
            counts["routed"] += n_routed
        if n_suppressed:
            counts["suppressed"] += n_suppressed
        if self._save(state, report, events, unrouted) and counted:
            self._recount(state, counted, contexts, report, findings, events, unrouted)
        if cache is not None:  # keys the store was asked for; the rest the process cache answered
            read = cache.store_reads - store_reads
            counts["state_reads"] += read
            counts["state_cached_reads"] += state.reads - read
            cache.end()  # sending reads send markers fresh
        else:
            counts["state_reads"] += state.reads
        counts["state_writes"] += state.writes

        alerts: list[tuple[Alert, set[str]]] = []
        for aid, m in findings.items():
            refs = m.refs
            try:
                alert = self._make_alert(aid, m.bound, m.merged_finding(), m.event)
            except Exception as exc:  # the records behind it are retried, the other alerts go out
                for r in sorted(refs):
                    _record_failed(report, r, m.bound.detection.id, m.event.event_id, exc)
                continue
            report.alerts.append(alert)
            report.by_detection[alert.detection] += 1
            alerts.append((alert, refs))
        counts["alerts"] += len(alerts)
        if send:
            self._deliver(alerts, report, budget)
        return report

    # ------------------------------------------------------------------ helpers
    def _contexts(self, state: BatchedState, events: Sequence[tuple[str, Event]]) -> list[Context]:
        start = events[0][1].time if events else _EPOCH  # moved to each event's time before use
        return [Context(params=b.params, settings=self.settings, state=state, now=start) for b in self._bound.values()]

    def _evaluate_events(
        self,
        events: Sequence[tuple[str, Event]],
        state: BatchedState,
        contexts: list[Context],
        report: BatchReport,
        findings: dict[str, _Merged],
        counted: list[_Counted],
        chained: list[tuple[str, Event]],
    ) -> tuple[int, int]:
        """Route, suppress and evaluate the batch's events in time order; return (routed, suppressed)."""
        routes_of = self._routes
        suppressor = self.suppressor
        n_routed = n_suppressed = 0
        uses = state.uses
        for ref, event in events:
            routes: Sequence[_Bound] = routes_of.get((event.cloud, event.action or ""), ())
            if event.outcome == "denied":
                denied = routes_of.get((event.cloud, OUTCOME_DENIED), ())
                routes = [*routes, *(b for b in denied if b not in routes)]
            if not routes:
                continue
            n_routed += 1
            names = principal_names(event)
            allowlisted = suppressor.allowlist_reason(event, names)
            if allowlisted is not None:  # the same reason for every detection the event reaches
                report.suppressed[allowlisted] += len(routes)
                n_suppressed += len(routes)
                continue
            if self._dispatching:
                routes = self._dispatch(routes, event)
            state.current_record = ref
            now = event.time
            verdicts: dict[int, str | None] = {}
            for bound in routes:
                det = bound.detection
                cls = bound.suppression_class
                if cls in verdicts:
                    reason = verdicts[cls]
                else:
                    reason = verdicts[cls] = suppressor.rule_reason(event, det.id, names)
                if reason is not None:
                    report.suppressed[reason] += 1
                    n_suppressed += 1
                    continue
                ctx = contexts[bound.index]
                ctx.now = now
                used = len(uses)
                self._evaluate(bound, event, ref, ctx, report, findings, state, chained)
                if len(uses) != used:
                    counted.append(_Counted(ref, event, bound, used, len(uses)))
        return n_routed, n_suppressed

    def _prefetch(self, events: Sequence[tuple[str, Event]], cache: WarmStore) -> None:
        """Read every item the batch will read in one call per kind, before it runs (remote stores).

        The batch is first evaluated against a store that holds nothing and notes every key asked of
        it (the findings are thrown away); the keys it noted, with the buckets ahead the recount
        reads, are read into the process cache at once. The real evaluation then reads them from
        memory, exactly as it would have from the store (the cache filters each read by its own
        event time); a key it needs that the first pass did not ask for is read as before. So a
        batch costs a few store requests instead of one per window, for about the CPU of a second
        evaluation.
        """
        recorder = _KeyRecorder()
        state = BatchedState(recorder)
        try:
            self._evaluate_events(events, state, self._contexts(state, events), _ScratchReport(), {}, [], [])
        except Exception:  # the real evaluation reports whatever failed here
            log.debug("the prefetch pass stopped early; the batch reads what it misses lazily", exc_info=True)
        cache.prefetch(sorted(recorder.sets | state.ahead), sorted(recorder.values))

    def _dispatch(self, routes: Sequence[_Bound], event: Event) -> Sequence[_Bound]:
        """``routes`` without the dispatched detections that cannot match ``event`` (order kept)."""
        key = (event.cloud, event.action or "", event.outcome == "denied")
        split = self._splits.get(key)
        if split is None:
            plain: list[tuple[int, _Bound]] = []
            gates: dict[int, tuple[Dispatch, dict[str, tuple[int, _Bound]]]] = {}
            for pos, b in enumerate(routes):
                d = b.detection.dispatch
                if d is None:
                    plain.append((pos, b))
                else:
                    gates.setdefault(id(d), (d, {}))[1][b.detection.id] = (pos, b)
            split = self._splits[key] = _Split([b for _, b in plain], plain, list(gates.values()))
        if not split.gates:
            return routes
        chosen: list[tuple[int, _Bound]] = []
        for d, members in split.gates:
            for det_id in d.candidates(event):
                member = members.get(det_id)
                if member is not None:
                    chosen.append(member)
        if not chosen:
            return split.bounds
        return [b for _, b in sorted([*split.plain, *chosen], key=itemgetter(0))]

    def _evaluate(
        self,
        bound: _Bound,
        event: Event,
        ref: str,
        ctx: Context,
        report: BatchReport,
        findings: dict[str, _Merged],
        state: BatchedState,
        chained: list[tuple[str, Event]] | None = None,
    ) -> None:
        """Run one detection on one event and merge its findings by alert id.

        A finding that arms the chained detection (its tactic) also looks for a chain step parked
        before it (``chained`` collects them, with the record behind the finding).
        """
        det = bound.detection
        try:
            result = det.evaluate(event, ctx)
            if not result:
                return
            produced = list(result)
        except StateError:
            raise
        except Exception as exc:  # a detection bug must not lose the batch: the record is retried
            _record_failed(report, ref, det.id, event.event_id, exc)
            return
        for f in produced:
            report.counts["findings"] += 1
            aid = alert_id(det.id, f.entity, f.window_start)
            subject = f.subject if f.subject is not None else event
            merged = findings.get(aid)
            if merged is None:
                findings[aid] = _Merged(bound, f, subject, {ref})
            else:
                merged.add(f, subject, ref)
            self._remember_for_chains(state, det, subject, aid, f)
            if chained is not None and self._chain is not None:
                self._parked_step(state, det, subject, ref, chained)

    def _complete_chains(
        self,
        chained: list[tuple[str, Event]],
        contexts: list[Context],
        report: BatchReport,
        findings: dict[str, _Merged],
        state: BatchedState,
    ) -> None:
        """Evaluate the chained detection on steps parked before the alerts that arm them arrived."""
        chain = self._chain
        if chain is None or not chained:
            return
        ctx = contexts[chain.index]
        for ref, step in chained:
            state.current_record = ref
            ctx.now = step.time
            self._evaluate(chain, step, ref, ctx, report, findings, state)
        chained.clear()

    @staticmethod
    def _save(
        state: BatchedState, report: BatchReport, events: Sequence[tuple[str, Event]], unrouted: Sequence[str] = ()
    ) -> bool:
        """Flush the batch's state; on failure mark the records whose changes were lost. True if all saved.

        When the whole flush fails, every record of the batch is marked, the ``unrouted`` ones (whose
        events no detection reads, never built) too, as when they were built.
        """
        try:
            state.flush()
        except StateWriteError as exc:
            report.state_error = exc
            for r in state.records_for(exc.failed_keys):
                report.failed.setdefault(r, f"state not saved: {exc}")
        except StateError as exc:
            report.state_error = exc
            for r, _ in events:
                report.failed.setdefault(r, f"state not saved: {exc}")
            for r in unrouted:
                report.failed.setdefault(r, f"state not saved: {exc}")
        else:
            return True
        return False

    def _recount(
        self,
        state: BatchedState,
        counted: list[_Counted],
        contexts: list[Context],
        report: BatchReport,
        findings: dict[str, _Merged],
        events: Sequence[tuple[str, Event]],
        unrouted: Sequence[str] = (),
    ) -> None:
        """Judge windowed counts again against the sets as stored, once this batch's members are saved.

        Each instance counted against the sets it read before writing: instances that each hold part
        of a burst may all have stayed under a threshold. After the flush, the stored sets hold the
        union of every batch saved before; if other instances changed a set this batch counted, the
        evaluations that read it run again on the union (every state operation is idempotent, so
        running them twice changes nothing else). The instance that recounts last sees every member;
        claims keep the alert to one.
        """
        try:
            changed = state.recount()
        except StateError as exc:  # the union could not be read back: a retry judges it again
            report.state_error = report.state_error or exc
            for c in counted:
                report.failed.setdefault(c.ref, f"state not recounted: {exc}")
            return
        if not changed:
            return
        uses = state.uses
        again = 0
        chained: list[tuple[str, Event]] = []
        for c in counted:
            if not any(k in changed for keys in uses[c.start : c.end] for k in keys):
                continue
            again += 1
            state.current_record = c.ref
            ctx = contexts[c.bound.index]
            ctx.now = c.event.time
            self._evaluate(c.bound, c.event, c.ref, ctx, report, findings, state, chained)
        self._complete_chains(chained, contexts, report, findings, state)
        report.counts["recounted"] += again
        self._save(state, report, events, unrouted)

    def _remember_for_chains(self, state: BatchedState, det: Detection, event: Event, aid: str, f: Finding) -> None:
        """Remember the principal's latest alert per tactic (for chained detections).

        Written when the alert id changes, or when the remembered time is older than
        :data:`CHAIN_REFRESH`: a principal that keeps alerting costs one write per refresh
        period, not one per batch; a chain's gap is then measured from at most that much earlier.
        """
        key = LAST_ALERT_KEY.format(tactic=det.meta.tactic.lower(), principal=event.principal.id)
        stored = state.recall(key, event.time)
        if stored is not None:
            old = _chain_fact(stored)
            if old is not None and old[0] == aid and event.time - old[1] < CHAIN_REFRESH:
                return
        title = clean_text(f.title, 200)  # no lone surrogate (orjson refuses them) nor control character
        fact = orjson.dumps({"alert_id": aid, "detection": det.id, "time": event.time.isoformat(), "title": title}).decode()
        state.remember(key, fact, event.time, CHAIN_MEMORY)

    def _parked_step(
        self, state: BatchedState, det: Detection, event: Event, ref: str, chained: list[tuple[str, Event]]
    ) -> None:
        """Queue the chain step (a snapshot) its detection parked before this alert's event arrived."""
        chain = self._chain
        if chain is None or det.id == chain.detection.id:
            return
        tactic = str(getattr(chain.params, "tactic", "discovery")).lower()
        if det.meta.tactic.lower() != tactic:
            return
        step = unpark_event(state.recall(CHAIN_PENDING_KEY.format(tactic=tactic, principal=event.principal.id), event.time))
        if step is not None and step.time >= event.time and all(step != e for _, e in chained):
            chained.append((ref, step))

    def _make_alert(self, aid: str, bound: _Bound, f: Finding, event: Event) -> Alert:
        det = bound.detection
        severity = f.severity or bound.severity
        override = self.settings.severity_overrides.get(det.id)
        if override:
            severity = override
        last_seen = max(e.time for e in f.events) if f.events else event.time
        first_seen = f.first_seen or (min(e.time for e in f.events) if f.events else event.time)
        evidence_ids = f.evidence_ids or tuple(e.event_id for e in f.events)
        return make_alert(
            id=aid,
            detection=det.id,
            technique=det.meta.technique,
            technique_name=det.meta.technique_name,
            tactic=det.meta.tactic,
            severity=severity,
            title=f.title,
            summary=f.summary,
            principal=event.principal.to_dict(),
            cloud=event.cloud,
            account=event.account,
            region=event.region,
            resources=[r.to_dict() for r in (f.resources or event.resources)],
            first_seen=first_seen,
            last_seen=last_seen,
            count=f.count,
            event_ids=list(evidence_ids),
            records=[e.raw for e in f.events[:3]],
            response=list(det.meta.response),
            context=dict(f.context),
            entity=f.entity,
            window_start=f.window_start,
            ads_url=self.settings.ads_url(det.id),
            settings_version=self.settings_version,
        )

    def _deliver(self, alerts: list[tuple[Alert, set[str]]], report: BatchReport, budget: SendBudget | None) -> None:
        deliver(self.store, self.sink, alerts, report, self.dedup, budget or SendBudget.of(self.settings))
