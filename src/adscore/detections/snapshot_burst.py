"""``snapshot.burst``: many snapshots or images in a short time, by one principal or of one source.

Counts are sets of created-resource ids (or event ids when the log names none), so a
redelivered batch, or the Started and Succeeded records of one Azure operation,
never count twice. Two counters: per principal (someone snapshotting everything)
and per source volume, instance or container (one source snapshotted again and again).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import Field

from adscore import baseline
from adscore.actions import CREATE_ACTIONS
from adscore.baseline import SCHEDULE_BLIND_SPOTS, CountedScheduleParams
from adscore.detection import AdsMeta, Detection, Finding
from adscore.detections._shared import mirrors_volume_snapshot, principal_label, short_id
from adscore.state.base import make_key
from adscore.windows import bucket_index

if TYPE_CHECKING:
    from collections.abc import Iterable

    from adscore.detection import Context
    from adscore.events import Event

DETECTION_ID = "snapshot.burst"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Params(CountedScheduleParams):
    """Parameters of ``snapshot.burst`` (the ``schedule_*`` ones: see :func:`adscore.baseline.schedule`).

    A principal's count that follows its learned schedule (its usual hour, sources it snapshotted
    before, at most ``schedule_factor`` times its busiest learned window) does not alert; the
    per-source count is not learned.

    Attributes
    ----------
    threshold : int
        Distinct creations by one principal within the window that alert.
    source_threshold : int
        Distinct snapshots of one source (volume, disk, instance, container) within the window that alert.
    window_minutes : int
        Counting window.
    escalate_factor : int
        A count of at least ``threshold * escalate_factor`` raises the severity to high.
    """

    threshold: int = Field(
        default=5, ge=2, description="distinct creations by one principal in the window that alert"
    )
    source_threshold: int = Field(
        default=5,
        ge=2,
        description="snapshots of one volume, disk, instance or container in the window that alert",
    )
    window_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60, description="counting window (minutes)")
    escalate_factor: int = Field(
        default=2, ge=1, description="a count of threshold x this factor is high severity"
    )




def _members(event: Event) -> tuple[str, ...]:
    created = event.resources_by_role("created")
    if created:
        return tuple(f"{r.type}:{r.id}" for r in created)
    return (f"event:{event.event_id}",)


def _window_start(at: datetime, window: timedelta) -> datetime:
    return _EPOCH + window * bucket_index(at, window)



def evaluate(event: Event, ctx: Context) -> Iterable[Finding]:
    """Count creations per principal and per source; alert when a count reaches its threshold.

    Parameters
    ----------
    event : Event
        A creation event (snapshot, image, copy, container commit/save/export, VolumeSnapshot).
    ctx : Context
        Params (thresholds, window), state (distinct counts) and event time.

    Returns
    -------
    Iterable[Finding]
        A per-principal finding, or else a per-source finding (never both for one event).
    """
    if event.outcome in ("failure", "denied") or mirrors_volume_snapshot(event):
        return
    params: Params = ctx.params
    window = timedelta(minutes=params.window_minutes)
    members = _members(event)
    p = event.principal
    where = f" in {event.account}" if event.account else ""
    start = _window_start(event.time, window)
    by_principal = ctx.state.add(make_key(DETECTION_ID, "principal", p.id), members, event.time, window)
    sources = event.resources_by_role("source")
    by_source: list[tuple[str, str, int]] = []
    for src in sources[:5]:
        n = ctx.state.add(make_key(DETECTION_ID, "source", src.type, src.id), members, event.time, window)
        by_source.append((src.type, src.id, n))
    context = {
        "threshold": params.threshold,
        "source_threshold": params.source_threshold,
        "window_minutes": params.window_minutes,
        "principal_count": by_principal,
        "source_counts": {f"{t}:{i}"[:200]: n for t, i, n in by_source},
        "operation": event.operation,
    }
    escalate = params.threshold * params.escalate_factor
    source = sources[0].id if sources else None
    baseline.learn_schedule(ctx.state, p.id, event.time, source, params, by_principal, params.threshold)
    learned = None
    if by_principal >= params.threshold:
        learned = baseline.schedule(ctx.state, p.id, event.time, source, params, by_principal)
    if learned is not None and not learned.on_schedule:
        context.update(learned.context())
        yield Finding(
            entity=p.id,
            window_start=start,
            title=f"{by_principal} snapshots in {params.window_minutes} min by {principal_label(p)}{where}",
            summary=(
                f"{principal_label(p)} created {by_principal} distinct snapshots, images or copies within "
                f"{params.window_minutes} minutes (threshold {params.threshold}); the latest is "
                f"{event.operation}{where}. Mass snapshotting is how adversaries copy many disks or "
                "databases at once before sharing or restoring them elsewhere (T1578.001)."
                + learned.note()
            ),
            events=(event,),
            severity="high" if by_principal >= escalate else None,
            count=by_principal,
            context=context,
        )
        return
    for src_type, src_id, n in by_source:
        if n < params.source_threshold:
            continue
        yield Finding(
            entity=f"source|{src_type}:{src_id}",
            window_start=start,
            title=f"{src_type} {short_id(src_id)} snapshotted {n} times in {params.window_minutes} min",
            summary=(
                f"The same {src_type} {src_id[:200]} was snapshotted or committed {n} times within "
                f"{params.window_minutes} minutes (threshold {params.source_threshold}); the latest by "
                f"{principal_label(p)} ({event.operation}){where}. Repeated snapshots of one volume or container "
                "capture its state again and again: staging for exfiltration, or restore points for reverting "
                "tampering."
            ),
            events=(event,),
            severity="high" if n >= params.source_threshold * params.escalate_factor else None,
            count=n,
            context=context,
        )
        return


_RESPONSE = (
    "Isolate the source: if the principal is not a known backup job, disable its keys or sessions "
    "(`aws iam update-access-key --status Inactive`, `aws iam put-role-policy` with an explicit deny on "
    "ec2:CreateSnapshot*, `az role assignment delete`, `gcloud iam service-accounts disable`) and "
    "quarantine the affected instances or containers.",
    "List everything created in the window: `aws ec2 describe-snapshots --owner-ids <account> --filters "
    "Name=start-time,...`, `az snapshot list`, `gcloud compute snapshots list --filter=creationTimestamp>...`, "
    "`kubectl get volumesnapshots -A`, `docker images` on the host.",
    "Check whether any of them was shared, copied, exported or restored (snapshot.shared_external and "
    "snapshot.restore_after_create alerts; `aws ec2 describe-snapshot-attribute`; SharedSnapshotCopyInitiated "
    "in the trail) and revoke shares before deleting.",
    "Forensic analysis: keep the snapshots and logs as evidence (tag, lock), then delete unneeded copies.",
    "Review access controls and privileges of the principal; if the burst was a legitimate DR or backup run, "
    "allowlist its role or declare a maintenance window, and record the procedure in the IR plan.",
)

DETECTION = Detection(
    id=DETECTION_ID,
    meta=AdsMeta(
        title="Burst of snapshot or image creation",
        goal=(
            "Detect one identity creating many snapshots or images in a short time, or one volume, instance "
            "or container being snapshotted repeatedly: mass copying of data or restore points for evasion."
        ),
        technique="T1578.001",
        technique_name="Create Snapshot",
        tactic="Defense Evasion",
        severity="medium",
        platforms=("IaaS", "AWS", "Azure", "GCP", "Kubernetes", "Containers"),
        strategy=(
            "ADS pattern 'unusual frequency of snapshot creation from a single container': counts distinct "
            "created resources (snapshot ids, image ids, or event ids when none is logged) per principal and "
            "per source (volume, disk, instance, container) over a sliding window (default 5 within 60 "
            "minutes). Counts are idempotent sets, so redelivered logs never inflate them."
            " Learned schedule: each principal's creations are learned per UTC day in the state store "
            "(the UTC hour and the source volume, instance or database), kept schedule_days (14) days. A creation"
            " in an hour the principal used on at least schedule_min_days (2) earlier days, of a source it "
            "snapshotted before, and at most schedule_factor (1.5) times its busiest learned window, is on its "
            "schedule and does not alert; a departure (a new hour, a new source, many more than usual) alerts and"
            " says which. schedule_days: 0 turns this off."
        ),
        technical_context=(
            "An attacker with snapshot rights can copy every disk of an account in minutes "
            "(`for v in $(aws ec2 describe-volumes ...); do aws ec2 create-snapshot --volume-id $v; done`), "
            "or repeatedly commit a container to capture its state. CreateSnapshots (multi-volume) counts each "
            "snapshot it creates."
        ),
        blind_spots=(
            *SCHEDULE_BLIND_SPOTS,
            "Slow campaigns below the threshold, or spread over several principals (each stays under it).",
            "Sources the log does not name (the per-source count needs the volume, disk or container id).",
            "Counting spans between one and one and a half windows (bucketed sliding window).",
            "Logs not delivered to the detector (for example Data Access logs off, audit logs not shipped).",
        ),
        false_positives=(
            "Regular backup operations by IT teams (AWS Backup, DLM policies, Azure Backup, GCP snapshot "
            "schedules, Velero): silenced by the service allowlists and default suppressions.",
            "Automated testing scenarios in CI pipelines that snapshot and delete: allowlist the CI role.",
            "Disaster recovery or high-availability runs that snapshot many volumes: declare a maintenance window.",
        ),
        priority="Medium (ADS); high when the count reaches twice the threshold.",
        validation=(
            "AWS: six `aws ec2 create-snapshot` calls within ten minutes (examples/aws/snapshot_burst.jsonl).",
            "Azure: six `az snapshot create` calls (examples/azure/snapshot_burst.jsonl).",
            "Docker: `docker commit` of the same container five times (examples/docker/snapshot_burst.jsonl).",
            "Replay them with `adscore replay examples/aws/snapshot_burst.jsonl`.",
        ),
        response=_RESPONSE,
        data_sources=(
            "AWS CloudTrail management events",
            "Azure Activity Log / Event Grid",
            "GCP Admin Activity audit logs",
            "Kubernetes audit logs",
            "Docker engine events",
        ),
        references=(
            "https://attack.mitre.org/techniques/T1578/001/",
            "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSnapshots.html",
            "https://learn.microsoft.com/en-us/azure/virtual-machines/snapshot-copy-managed-disk",
            "https://cloud.google.com/compute/docs/disks/create-snapshots",
        ),
    ),
    actions=CREATE_ACTIONS,
    evaluate=evaluate,
    params=Params,
)
