"""Helpers the detections share (not a detection: the catalogue lists ``family_name.py`` modules only).

Readable names for titles (:func:`who`, :func:`principal_label`, :func:`short_id`, :func:`where`),
the episode anchor that gives one alert per entity and episode (:func:`episode_start`), and the
check that a Kubernetes ``VolumeSnapshotContent`` mirrors a snapshot already counted.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from adscore.windows import bucket_index, bucket_width

if TYPE_CHECKING:
    from adscore.events import Event, Principal
    from adscore.state.base import StateView

__all__ = ["episode_start", "mirrors_volume_snapshot", "parse_aware_time", "principal_label", "short_id", "where", "who"]

_NAME_CAP = 160
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def who(event: Event) -> str:
    """Short readable name of the event's principal (name, else id), capped."""
    p = event.principal
    name = p.name or p.id
    return name[:_NAME_CAP]



def where(event: Event) -> str:
    """``" in <account>"`` when the event names an account, else ``""``."""
    acct = event.account or event.principal.account
    return f" in {acct[:80]}" if acct else ""



def short_id(resource_id: str) -> str:
    """The last segment of a long path id (ARM, GCP), for titles; the full id stays in the summary."""
    return resource_id.rsplit("/", 1)[-1][:120] if resource_id.count("/") >= 3 else resource_id[:120]


def principal_label(p: Principal) -> str:
    """A short readable name: ``role/ops`` for an AWS ARN, else the display name or id."""
    if p.id.startswith("arn:"):
        return p.id.split(":", 5)[-1][:120]
    name = p.name or p.id
    return short_id(name) if name.startswith("/subscriptions/") else name[:120]


def mirrors_volume_snapshot(event: Event) -> bool:
    """A VolumeSnapshotContent made from a volume mirrors a VolumeSnapshot already counted (dynamic provisioning)."""
    created = event.resources_by_role("created")
    return (
        bool(created)
        and created[0].type == "volumesnapshotcontent"
        and any(r.type == "volume" for r in event.resources_by_role("source"))
    )


@lru_cache(maxsize=4096)
def parse_aware_time(stored: str) -> datetime | None:
    """A remembered time (an episode anchor, a history start), or None unless an aware ISO time; parsed once."""
    try:
        anchor = datetime.fromisoformat(stored)
    except ValueError:
        return None
    return anchor if anchor.tzinfo is not None else None



def episode_start(
    state: StateView, key: str, at: datetime, window: timedelta, episode: timedelta
) -> datetime:
    """Return the start of the alert window (episode) an over-threshold event belongs to.

    The first event over a threshold anchors the episode at the start of its
    bucket and remembers it; later events of the same entity within
    ``episode`` reuse that anchor, so they share one alert id (the engine then
    sends it once). A redelivered batch recalls the same anchor.

    Parameters
    ----------
    state : StateView
    key : str
        Entity key of the detection (e.g. ``"discovery.api_burst|<principal>"``).
    at : datetime
        Event time.
    window : timedelta
        The counting window (its bucket width is the anchor's grid).
    episode : timedelta
        How long one anchor lasts.

    Returns
    -------
    datetime
        The episode start (timezone-aware UTC).
    """
    anchor_key = f"{key}|episode"
    stored = state.recall(anchor_key, at)
    if stored:
        anchor = parse_aware_time(stored)
        if anchor is not None and abs(at - anchor) < episode:
            return anchor
    width = bucket_width(window)
    start = _EPOCH + width * bucket_index(at, width)
    state.remember(anchor_key, start.isoformat(), at, episode)
    return start
