"""The detection contract: metadata, parameters, findings and the evaluation context.

Types only, no logic. A detection module in :mod:`adscore.detections` exposes one
``DETECTION`` built from these; the engine indexes it by the actions it
subscribes to and calls ``evaluate`` for matching events only.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from datetime import datetime, timedelta

    from adscore.events import Event, Resource
    from adscore.settings import Settings
    from adscore.state.base import StateView

Severity = Literal["info", "low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "low", "medium", "high", "critical")


@dataclass(frozen=True, slots=True)
class AdsMeta:
    """Alerting & Detection Strategy metadata, rendered by ``adscore ads``.

    The sections follow the ADS framework (and the reports in ``shared/ads``):
    Goal, Categorization, Strategy Abstract, Technical Context, Blind Spots and
    Assumptions, False Positives, Priority, Validation, Response, Additional
    Resources.
    """

    title: str
    goal: str
    technique: str
    technique_name: str
    tactic: str
    severity: Severity
    platforms: tuple[str, ...]
    strategy: str
    technical_context: str
    blind_spots: tuple[str, ...]
    false_positives: tuple[str, ...]
    priority: str
    validation: tuple[str, ...]
    response: tuple[str, ...]
    data_sources: tuple[str, ...] = ()
    references: tuple[str, ...] = ()


class DetectionParams(BaseModel):
    """Settings every detection has; a detection subclasses it with its own fields and defaults.

    Values come from the ``detections.<id>`` section of the settings file or from
    ``ADSCORE_DETECTIONS__<ID_WITH_UNDERSCORES>__<FIELD>`` environment variables.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    severity: Severity | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    """What a detection returns; the engine turns it into an :class:`~adscore.alerts.Alert`.

    ``entity`` and ``window_start`` identify the alert: findings with the same
    detection, entity and window share one deterministic alert id, so a
    redelivered batch or a burst that keeps growing alerts once.
    """

    entity: str
    window_start: datetime
    title: str
    summary: str
    events: tuple[Event, ...]
    severity: Severity | None = None
    count: int = 1
    first_seen: datetime | None = None
    resources: tuple[Resource, ...] = ()
    evidence_ids: tuple[str, ...] = ()
    context: Mapping[str, Any] = field(default_factory=dict)
    dedup: timedelta | None = None
    subject: Event | None = None
    """The event the alert is about when it is not the one evaluated: the half of a sequence that
    arrived first and was parked (its principal, account, region and resources go into the alert)."""


@dataclass(slots=True)
class Context:
    """All a detection's ``evaluate`` is given besides the event.

    The engine keeps one per detection and batch and moves ``now`` to each event's time
    (detections read it; they never change it).

    Attributes
    ----------
    params : DetectionParams
        This detection's typed settings.
    settings : Settings
        The whole settings (calendar, organisation accounts, allowlists).
    state : StateView
        The idempotent state for this batch.
    now : datetime
        The event's time: windows use event time, never the wall clock.
    """

    params: Any
    settings: Settings
    state: StateView
    now: datetime


Evaluate = Callable[["Event", Context], Iterable[Finding]]
"""A detection's logic: findings for one event, from the event and ``ctx.state`` only.

It must have no other effect (no files, requests or globals that change its answers): the engine may
run it more than once on an event (the recount after a flush; on a remote store, a first pass that
notes which state keys the batch reads, whose findings are thrown away).
"""


class Dispatch(Protocol):
    """Picks, for one event, which of the detections sharing it can possibly match (a rule index).

    Detections that share a dispatch (the Sigma rules of one log source) are evaluated on an event
    only when their id is among ``candidates(event)``; the dispatch must never leave out one that
    would have matched.
    """

    def candidates(self, event: Event) -> Collection[str]:
        """The ids of the detections that may match ``event`` (a superset of those that do)."""
        ...


@dataclass(frozen=True, slots=True)
class Detection:
    """A detection: ADS metadata, the actions it subscribes to, its parameters and its logic."""

    id: str
    meta: AdsMeta
    actions: frozenset[str]
    evaluate: Evaluate
    params: type[DetectionParams] = DetectionParams
    clouds: tuple[str, ...] = ("aws", "azure", "gcp", "kubernetes", "docker")
    dispatch: Dispatch | None = None
    """Shared with other detections: the engine evaluates this one only on events it is a candidate for."""

    @property
    def module_name(self) -> str:
        """The module (and settings key) name: the id with ``.`` replaced by ``_``."""
        return self.id.replace(".", "_")
