"""``snapshot.restore_after_create``: a volume, disk, instance or database restored from a fresh snapshot.

The revert-and-carry-off pattern: snapshot a system, then restore the snapshot
(in place of the root volume to undo tampering evidence, or as a new volume to
read the data somewhere unwatched). Every created snapshot is remembered (id ->
principal, account, time) for the window; a restore from one of them alerts,
critical when another principal or another account restores it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import Field

from adscore.actions import (
    IMAGE_CREATE,
    RESTORED_ELSEWHERE,
    SNAPSHOT_COPY,
    SNAPSHOT_CREATE,
    SNAPSHOT_EXPORT,
    SNAPSHOT_RESTORE,
)
from adscore.detection import AdsMeta, Detection, DetectionParams, Finding
from adscore.detections._shared import principal_label, short_id
from adscore.events import park_event, unpark_event
from adscore.state.base import fit_part, make_key

if TYPE_CHECKING:
    from collections.abc import Iterable

    from adscore.detection import Context, Severity
    from adscore.events import Event, Resource

DETECTION_ID = "snapshot.restore_after_create"
_CREATE = frozenset({SNAPSHOT_CREATE, SNAPSHOT_COPY, IMAGE_CREATE})
#: Service events in the owner's trail where another account made a volume of a shared snapshot.
_SNAPSHOT_TYPES = ("snapshot", "image")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Params(DetectionParams):
    """Parameters of ``snapshot.restore_after_create``.

    Attributes
    ----------
    window_hours : float
        A restore from a snapshot created at most this long before alerts.
    """

    window_hours: float = Field(
        default=24.0,
        gt=0,
        le=24 * 90,
        description="a restore from a snapshot created at most this long before alerts",
    )




def snapshot_key(cloud: str, resource_id: str) -> str:
    """The state key of a created snapshot, from the last segment of its id (lowercase).

    ``arn:aws:rds:...:snapshot:db-snap``, ``db-snap``, an ARM id ``.../snapshots/Snap1`` and its
    lowercase copy, or a GCP URL ``https://.../projects/p/global/snapshots/s`` and ``projects/p/global/snapshots/s``
    name the same snapshot in different logs.
    """
    rid = resource_id.strip().rstrip("/").lower()
    tail = rid.rsplit("/", 1)[-1].rsplit(":", 1)[-1] or rid
    return make_key(DETECTION_ID, cloud, tail)


def _restored_from(event: Event) -> tuple[Resource, ...]:
    sources = event.resources_by_role("source")
    if event.operation.lower() in RESTORED_ELSEWHERE or not sources:
        sources = sources + tuple(
            r for r in event.resources if r.role != "source" and any(t in r.type for t in _SNAPSHOT_TYPES)
        )
    return sources


def _remember(event: Event, ctx: Context, window: timedelta) -> None:
    """Remember the creation: the latest of each snapshot name, and the earliest with its own fact.

    A name can be created again (a snapshot deleted and made anew): the latest creation is what a
    restore in live order meets; the earliest stays readable for a restore that arrives after a
    later creation of the same name, so order never hides the one before it.
    """
    fact = orjson.dumps(_fact_of(event)).decode()
    for r in event.resources_by_role("created")[:20]:
        key = snapshot_key(event.cloud, r.id)
        ctx.state.remember(key, fact, event.time, window)
        first, witness = ctx.state.earliest(key, event.event_id, event.time, window)
        if first == event.time and witness == fit_part(event.event_id, 160):
            ctx.state.remember(f"{key}|{witness}", fact, event.time, window)


def _created_before(ctx: Context, key: str, at: datetime) -> dict[str, Any] | None:
    """The remembered creation of ``key`` at or before ``at``: the latest one, else the earliest."""
    candidate: str | None = key
    while candidate is not None:
        raw = ctx.state.recall(candidate, at)
        try:
            fact = orjson.loads(raw) if raw is not None else None
        except orjson.JSONDecodeError:
            fact = None
        if isinstance(fact, dict) and _made_at(fact) <= at:
            return fact
        if candidate != key:
            return None
        first = ctx.state.earliest_seen(key, at)
        candidate = f"{key}|{first[1]}" if first is not None and first[0] <= at else None
    return None


def _pending_key(cloud: str, resource_id: str) -> str:
    """Where a restore from a snapshot not yet known is parked (until its creation arrives)."""
    return snapshot_key(cloud, resource_id) + "|restore"


def evaluate(event: Event, ctx: Context) -> Iterable[Finding]:
    """Remember created snapshots; alert on a restore from one created within the window.

    Either half may arrive first. A creation is remembered and completes a restore of the same
    snapshot parked before it; a restore is checked against the creation remembered, or parked
    (:func:`~adscore.events.park_event`) until its creation arrives: delivery order never decides.

    Parameters
    ----------
    event : Event
        A creation (remembered) or a restore / shared-snapshot-volume event (checked).
    ctx : Context
        Params (window), state (remember/recall) and event time.

    Returns
    -------
    Iterable[Finding]
        One finding per restored snapshot that was created within the window.
    """
    if event.outcome in ("failure", "denied"):
        return
    params: Params = ctx.params
    window = timedelta(hours=params.window_hours)
    if event.action in _CREATE:
        _remember(event, ctx, window)
        fact = _fact_of(event)
        for r in event.resources_by_role("created")[:20]:
            restore = unpark_event(ctx.state.recall(_pending_key(event.cloud, r.id), event.time))
            if restore is None:
                continue
            for src in _restored_from(restore)[:10]:
                if snapshot_key(restore.cloud, src.id) == snapshot_key(event.cloud, r.id):
                    yield from _check(restore, src, fact, params, subject=restore)
        return
    if event.action == SNAPSHOT_EXPORT and event.operation.lower() not in RESTORED_ELSEWHERE:
        return
    for src in _restored_from(event)[:10]:
        made = _created_before(ctx, snapshot_key(event.cloud, src.id), event.time)
        if made is None:
            # no creation known before this restore yet (a later one of the same name may be): park it
            ctx.state.remember(_pending_key(event.cloud, src.id), park_event(event), event.time, window)
            continue
        yield from _check(event, src, made, params)


def _made_at(fact: dict[str, Any]) -> datetime:
    """When the remembered creation happened (the epoch if unreadable, so it never looks later)."""
    try:
        made_at = datetime.fromisoformat(str(fact["time"]))
    except (KeyError, ValueError):
        return _EPOCH
    return made_at if made_at.tzinfo is not None else made_at.replace(tzinfo=UTC)


def _fact_of(event: Event) -> dict[str, Any]:
    return {
        "principal": event.principal.id,
        "account": event.account,
        "time": event.time.isoformat(),
        "event_id": event.event_id,
        "operation": event.operation,
    }


def _check(
    event: Event, src: Resource, fact: dict[str, Any], params: Params, subject: Event | None = None
) -> Iterable[Finding]:
    """A finding if restore ``event`` of ``src`` comes within the window after the creation ``fact``."""
    window = timedelta(hours=params.window_hours)
    p = event.principal
    account = event.account or "unknown"
    elsewhere = event.operation.lower() in RESTORED_ELSEWHERE
    # the owner's trail logs another account's restore: the restorer is the principal's account
    restorer_account = (p.account or account) if elsewhere else account
    revert = "replacerootvolume" in event.operation.lower()
    created = event.resources_by_role("created") or event.resources_by_role("target")
    into = created[0].id[:160] if created else "a new resource"
    try:
        made_at = datetime.fromisoformat(fact["time"])
    except (KeyError, TypeError, ValueError):
        return
    age = event.time - made_at
    if age < timedelta(0) or age > window:
        return
    creator = str(fact.get("principal") or "unknown")
    creator_account = str(fact.get("account") or "unknown")
    other_principal = creator != p.id
    other_account = creator_account != restorer_account
    severity: Severity = "critical" if (other_principal or other_account) else "high"
    hours = age.total_seconds() / 3600
    if revert:
        title = f"Root volume of {short_id(into)} reverted to snapshot {short_id(src.id)} made {hours:.1f} h earlier"
    elif elsewhere:
        title = (
            f"Snapshot {short_id(src.id)} made {hours:.1f} h earlier restored by account {restorer_account}"
        )
    else:
        title = f"{src.type.capitalize()} {short_id(src.id)} restored {hours:.1f} h after creation by {principal_label(p)} in {account}"
    who_else = []
    if other_principal:
        who_else.append(f"a different principal ({creator[:120]} created it)")
    if other_account:
        who_else.append(f"a different account (created in {creator_account})")
    summary = (
        f"{principal_label(p)} restored {src.type} {src.id[:200]} into {into} ({event.operation}) in {account}, "
        f"{hours:.1f} hours after {creator[:120]} created it ({fact.get('operation', '?')}). "
        + (f"The restore was made by {' and '.join(who_else)}. " if who_else else "")
        + (
            "Replacing a root volume with a fresh snapshot reverts the instance: evidence of tampering "
            "made after the snapshot disappears."
            if revert
            else "Snapshot then restore is how a disk is carried to where nobody watches, or a system "
            "reverted to hide changes (T1578.001)."
        )
    )
    yield Finding(
        entity=f"{p.id}|{src.id}",
        window_start=event.time.replace(minute=0, second=0, microsecond=0),
        title=title,
        summary=summary,
        events=(event,),
        severity=severity,
        evidence_ids=(str(fact.get("event_id") or ""), event.event_id) if fact.get("event_id") else (),
        resources=event.resources,
        subject=subject,
        context={
            "snapshot": src.id[:300],
            "created_by": creator[:300],
            "created_account": creator_account,
            "created_at": made_at.isoformat(),
            "hours_between": round(hours, 2),
            "window_hours": params.window_hours,
            "other_principal": other_principal,
            "other_account": other_account,
            "revert": revert,
        },
    )


_RESPONSE = (
    "Isolate what was restored: stop or quarantine the new volume's instance, detach the volume "
    "(`aws ec2 detach-volume`), block the database's network access (`aws rds modify-db-instance "
    "--vpc-security-group-ids <quarantine-sg>`), Azure `az disk revoke-access` / NSG deny, GCP firewall deny.",
    "For a root-volume revert (CreateReplaceRootVolumeTask): the replaced root volume is kept by default; "
    "preserve it (`aws ec2 describe-replace-root-volume-tasks`, snapshot it) and compare it with the restored "
    "one to see what the revert erased.",
    "Forensic analysis of the snapshot and the restored copy: who created and restored them, from which "
    "IPs, and what the restoring principal did next (attach, mount, share, copy).",
    "If another principal or account restored it, revoke the snapshot's shares (`aws ec2 "
    "modify-snapshot-attribute ... --operation-type remove`), disable that principal's credentials, and "
    "rotate secrets stored on the disk.",
    "Review access controls: who may both create and restore snapshots (split the permissions), and "
    "update the IR plan with the revert-and-restore scenario.",
)

DETECTION = Detection(
    id=DETECTION_ID,
    meta=AdsMeta(
        title="Restore from a recently created snapshot",
        goal=(
            "Detect a volume, disk, instance or database restored from a snapshot created shortly before, "
            "the pattern of reverting a compromised system or carrying its data off."
        ),
        technique="T1578.001",
        technique_name="Create Snapshot",
        tactic="Defense Evasion",
        severity="high",
        platforms=("IaaS", "AWS", "Azure", "GCP"),
        strategy=(
            "ADS patterns 'discrepancies in file system states pre- and post-snapshot creation' and the "
            "emulation step 'restore the snapshot to observe if security controls are bypassed': each created "
            "snapshot is remembered (id -> principal, account, time) for 24 h; a restore naming it "
            "(CreateVolume with snapshotId, CreateReplaceRootVolumeTask, RDS RestoreDBInstanceFromDBSnapshot, "
            "Azure disks/write with creationData.sourceResourceId, GCP disks.insert with sourceSnapshot, "
            "SharedSnapshotVolumeCreated in the owner's trail) alerts; critical when another principal or "
            "another account restores it."
        ),
        technical_context=(
            "`aws ec2 create-snapshot` then `aws ec2 create-replace-root-volume-task --instance-id i-1 "
            "--snapshot-id snap-1` reverts an instance to the snapshot's state, wiping later evidence; "
            "`aws ec2 create-volume --snapshot-id snap-1` in an attacker-controlled instance reads the data."
        ),
        blind_spots=(
            "Snapshots older than the window (default 24 h), or created before the detector ran.",
            "Restores logged only in another account's trail (unless an organisation trail delivers it, or "
            "SharedSnapshotVolumeCreated appears in ours).",
            "Restores that name the snapshot in a form the parser cannot read, or point-in-time restores.",
            "Azure Event Grid carries no request body: disk restores from a snapshot are seen in the Activity Log only.",
            "Pre- and post-snapshot file system contents are not compared (no agent on the disks).",
        ),
        false_positives=(
            "Disaster recovery and high-availability tests that snapshot and restore on purpose: declare a "
            "maintenance window or allowlist the DR role.",
            "Automated testing pipelines that create a volume from a fresh snapshot: allowlist the CI role.",
            "Backup services restoring on request (AWS Backup restore jobs act as backup.amazonaws.com).",
        ),
        priority="High (above the ADS's medium): a restore completes the snapshot pattern.",
        validation=(
            "AWS: `aws ec2 create-snapshot --volume-id vol-1`, then `aws ec2 create-replace-root-volume-task "
            "--instance-id i-1 --snapshot-id <snap>` (examples/aws/snapshot_restore_after_create.jsonl).",
            "GCP: `gcloud compute snapshots create s1 --source-disk d1`, then `gcloud compute disks create d2 "
            "--source-snapshot s1` (examples/gcp/snapshot_restore_after_create.jsonl).",
            "Azure: `az snapshot create`, then `az disk create --source <snapshot>` "
            "(examples/azure/snapshot_restore_after_create.jsonl).",
        ),
        response=_RESPONSE,
        data_sources=(
            "AWS CloudTrail management events (including AwsServiceEvent records)",
            "Azure Activity Log / Event Grid",
            "GCP Admin Activity audit logs",
        ),
        references=(
            "https://attack.mitre.org/techniques/T1578/001/",
            "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/replace-root.html",
            "https://docs.aws.amazon.com/ebs/latest/userguide/ebs-creating-volume.html",
            "https://learn.microsoft.com/en-us/azure/virtual-machines/scripts/create-managed-disk-from-snapshot",
            "https://cloud.google.com/compute/docs/disks/restore-snapshot",
        ),
    ),
    actions=frozenset({SNAPSHOT_CREATE, SNAPSHOT_COPY, IMAGE_CREATE, SNAPSHOT_RESTORE, SNAPSHOT_EXPORT}),
    evaluate=evaluate,
    params=Params,
    clouds=("aws", "azure", "gcp"),
)
