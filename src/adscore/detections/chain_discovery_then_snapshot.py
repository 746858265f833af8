"""Detection `chain.discovery_then_snapshot` (T1526 followed by T1578.001).

A principal that raised any discovery alert then creates, copies, shares,
exports or restores a snapshot or image within two hours: reconnaissance
followed by data collection. The engine remembers each principal's latest
alert per tactic under :data:`adscore.engine.LAST_ALERT_KEY`; this detection
recalls the discovery one when a snapshot event arrives. CRITICAL: either half
alone may be routine, the sequence rarely is.

The chain's own tactic is Defense Evasion (the T1578.001 step that completes
it), so the engine never files a chain alert as the principal's latest
*discovery* alert and the chain cannot re-arm itself.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import Field

from adscore.actions import (
    IMAGE_CREATE,
    SNAPSHOT_COPY,
    SNAPSHOT_CREATE,
    SNAPSHOT_EXPORT,
    SNAPSHOT_RESTORE,
    SNAPSHOT_SHARE,
)
from adscore.detection import AdsMeta, Detection, DetectionParams, Finding
from adscore.detections._shared import where, who
from adscore.events import park_event

if TYPE_CHECKING:
    from collections.abc import Iterable

    from adscore.detection import Context
    from adscore.events import Event

DETECTION_ID = "chain.discovery_then_snapshot"


class Params(DetectionParams):
    """Parameters of `chain.discovery_then_snapshot`."""

    window_minutes: int = Field(
        default=120,
        ge=1,
        le=360,
        description="snapshot within this long after the discovery alert (engine keeps 6 h)",
    )
    tactic: str = Field(default="discovery", description="tactic whose latest alert arms the chain")


def _last_alert_key() -> str:
    # imported here, not at module level: the engine loads the catalogue, a detection should not load the engine
    from adscore.engine import LAST_ALERT_KEY

    return LAST_ALERT_KEY


def _fact(raw: str | None) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        fact = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(fact, dict) or not isinstance(fact.get("alert_id"), str):
        return None
    try:
        t = datetime.fromisoformat(str(fact.get("time")))
    except ValueError:
        return None
    fact["_time"] = t if t.tzinfo is not None else t.replace(tzinfo=UTC)
    return fact


def _park(event: Event, ctx: Context, p: Params) -> None:
    """Keep this step for the window, keyed by principal: a discovery alert dated before it completes it.

    The engine looks for it whenever it remembers an alert of ``p.tactic`` for the principal
    (:data:`adscore.engine.CHAIN_PENDING_KEY`), so the order in which the two arrive never decides.
    """
    from adscore.engine import CHAIN_PENDING_KEY

    key = CHAIN_PENDING_KEY.format(tactic=p.tactic.lower(), principal=event.principal.id)
    ctx.state.remember(key, park_event(event), event.time, timedelta(minutes=p.window_minutes))


def _hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def evaluate(event: Event, ctx: Context) -> Iterable[Finding]:
    """Alert when a snapshot event follows the same principal's discovery alert within the window."""
    p: Params = ctx.params
    if event.outcome not in ("success", "pending"):
        return ()
    key = _last_alert_key().format(tactic=p.tactic.lower(), principal=event.principal.id)
    fact = _fact(ctx.state.recall(key, ctx.now))
    if fact is None or fact.get("detection") == DETECTION_ID or fact["_time"] > ctx.now:
        # no discovery alert known before this step yet: park the step, the alert completes it when it arrives
        _park(event, ctx, p)
        return ()
    found_at: datetime = fact["_time"]
    gap = ctx.now - found_at
    if gap > timedelta(minutes=p.window_minutes):
        _park(event, ctx, p)
        return ()
    disc_id = str(fact["alert_id"])[:128]
    disc_det = str(fact.get("detection", "discovery"))[:80]
    disc_title = str(fact.get("title", ""))[:200]
    minutes = int(gap.total_seconds() // 60)
    created = event.resources_by_role("created") or event.resources_by_role("target") or event.resources
    what = created[0].id[:120] if created else event.operation[:120]
    shared = f" to {', '.join(t[:40] for t in event.targets[:5])}" if event.targets else ""
    title = (
        f"Discovery then {event.action or 'snapshot'} ({event.operation[:60]} {what}{shared}) {minutes} min later "
        f"by {who(event)}{where(event)}"
    )
    summary = (
        f"{who(event)} ({event.principal.type}) raised the discovery alert {disc_det} ({disc_title!r}, alert "
        f"{disc_id}) and {minutes} minutes later called {event.operation[:120]} on {what}{shared}. "
        f"Enumerating the estate and then copying, sharing or restoring its data is the path of data theft "
        f"through snapshots (T1526 then T1578.001)."
    )
    return (
        Finding(
            entity=f"{event.principal.id}|{disc_id}",
            window_start=_hour(ctx.now),
            title=title[:300],
            summary=summary,
            events=(event,),
            severity="critical",
            evidence_ids=(event.event_id, f"alert:{disc_id}"),
            context={
                "discovery_alert_id": disc_id,
                "discovery_detection": disc_det,
                "discovery_title": disc_title,
                "discovery_time": found_at.isoformat(),
                "minutes_after_discovery": minutes,
                "window_minutes": p.window_minutes,
                "snapshot_action": event.action,
                "snapshot_operation": event.operation[:200],
                "targets": list(event.targets[:20]),
            },
        ),
    )


DETECTION = Detection(
    id=DETECTION_ID,
    meta=AdsMeta(
        title="Discovery followed by a snapshot by the same principal",
        goal=(
            "Detect the sequence of cloud service discovery (T1526) followed by snapshot or image creation, copy, "
            "sharing, export or restore (T1578.001) by the same principal: reconnaissance turning into data theft "
            "or evasion."
        ),
        technique="T1578.001",
        technique_name="Create Snapshot",
        tactic="Defense Evasion",
        severity="critical",
        platforms=("IaaS", "Azure AD", "Containers"),
        strategy=(
            "The engine remembers each principal's latest discovery alert (6 h). On every snapshot.create, "
            "image.create, snapshot.copy, snapshot.share, snapshot.export and snapshot.restore event, recall it "
            "and alert CRITICAL when it is at most 2 hours older than the snapshot event. Both alerts are "
            "evidence: the snapshot event and the discovery alert id."
        ),
        technical_context=(
            "The ADS's technique (cloud service discovery) is rarely an end in itself: after mapping the "
            "account, an adversary snapshots a database or disk and shares it with an account it controls "
            "(`ec2:CreateSnapshot` then `ec2:ModifySnapshotAttribute createVolumePermission add` with an external "
            "account), or restores it where it has access. Each step alone may be an administrator's work; the "
            "sequence by the same identity within hours is not."
        ),
        blind_spots=(
            "Discovery and snapshot done by different identities (one to enumerate, another to copy) are not "
            "linked.",
            "A snapshot more than 2 hours (configurable up to 6) after the discovery is missed.",
            "Discovery alerts suppressed by settings do not arm the chain.",
        ),
        false_positives=(
            "Scheduled automated deployment processes that describe many services and then snapshot before a "
            "change (blue/green database migrations): suppress the deploy role for discovery.*, which also "
            "disarms the chain.",
            "Backup tooling run by administrators after an inventory scan, and routine updates by trusted "
            "developers that image a machine after inspecting it.",
            "Legitimate use of test environments where engineers explore and snapshot freely: suppress the account.",
        ),
        priority="Critical: the sequence matches data theft through snapshots.",
        validation=(
            "AWS: a discovery sweep (Describe*/List* across services), then `aws ec2 create-snapshot` and "
            "`aws ec2 modify-snapshot-attribute --attribute createVolumePermission --operation-type add "
            "--user-ids 999988887777` by the same principal (examples/aws/chain_discovery_then_snapshot.jsonl).",
        ),
        response=(
            "Verify the source and context of both halves: the discovery alert (linked by id) and the snapshot "
            "operation: same session, same source IP, same user agent?",
            "Investigate the credentials and access: disable or rotate the principal's keys/tokens now; check "
            "where the snapshot went (shared accounts, copies in other regions, exports to storage).",
            "Review recent configuration and deployment changes: remove createVolumePermission/launchPermission "
            "grants, revoke SAS URLs (beginGetAccess) and IAM bindings on snapshots and images made by the "
            "principal.",
            "Isolate affected containers and instances the principal used or created from the snapshot; "
            "quarantine the snapshot (tag, restrict sharing, keep for forensics rather than delete).",
            "Tune: if a known pipeline legitimately does both, suppress its role for discovery.* with a reason; "
            "shorten `window_minutes` rather than disabling the chain.",
        ),
        data_sources=(
            "Alerts of the discovery.* detections",
            "AWS CloudTrail, Azure Activity Log / Event Grid, GCP Admin Activity audit logs (snapshot events)",
        ),
        references=(
            "https://attack.mitre.org/techniques/T1526/",
            "https://attack.mitre.org/techniques/T1578/001/",
            "https://docs.aws.amazon.com/ebs/latest/userguide/ebs-modifying-snapshot-permissions.html",
        ),
    ),
    actions=frozenset(
        {SNAPSHOT_CREATE, IMAGE_CREATE, SNAPSHOT_COPY, SNAPSHOT_SHARE, SNAPSHOT_EXPORT, SNAPSHOT_RESTORE}
    ),
    evaluate=evaluate,
    params=Params,
    clouds=("aws", "azure", "gcp"),
)
