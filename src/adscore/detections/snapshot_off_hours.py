"""``snapshot.off_hours``: a snapshot, image or container snapshot made outside business hours.

Business hours come from ``settings.calendar`` (per account, with its time zone and
holidays); declared maintenance windows are silenced by the engine before this runs.
One alert per principal, account and hour, counting the creations of that hour.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import Field

from adscore import baseline
from adscore.actions import (
    CONTAINER_COMMIT,
    CONTAINER_EXPORT,
    CONTAINER_SAVE,
    IMAGE_CREATE,
    K8S_VOLUME_SNAPSHOT,
    SNAPSHOT_COPY,
    SNAPSHOT_CREATE,
)
from adscore.baseline import SCHEDULE_BLIND_SPOTS, ScheduleParams
from adscore.calendar import hours_for, is_business_time, zone
from adscore.detection import AdsMeta, Detection, Finding
from adscore.detections._shared import mirrors_volume_snapshot, principal_label
from adscore.state.base import make_key

if TYPE_CHECKING:
    from collections.abc import Iterable

    from adscore.detection import Context
    from adscore.events import Event

DETECTION_ID = "snapshot.off_hours"
_HOUR = timedelta(hours=1)
_CONTAINER_ACTIONS = frozenset({CONTAINER_COMMIT, CONTAINER_SAVE, CONTAINER_EXPORT})


class Params(ScheduleParams):
    """Parameters of ``snapshot.off_hours`` (the ``schedule_*`` ones: see :func:`adscore.baseline.schedule`).

    Attributes
    ----------
    include_failed : bool
        Also alert on failed or denied creation attempts (default: only calls that worked).
    """

    include_failed: bool = Field(
        default=False, description="also alert on failed or denied creation attempts"
    )


def _short(resource_id: str) -> str:
    """The last segment of a long path id (ARM, GCP), 12 digits of a digest, for titles."""
    if resource_id.startswith("sha256:"):
        return resource_id[7:19]
    return resource_id.rsplit("/", 1)[-1][:120] if resource_id.count("/") >= 3 else resource_id[:120]



def _what(event: Event) -> str:
    created = event.resources_by_role("created") or event.resources_by_role("target") or event.resources
    kind = {
        IMAGE_CREATE: "image",
        SNAPSHOT_COPY: "snapshot copy",
        CONTAINER_COMMIT: "container commit",
        CONTAINER_SAVE: "image save",
        CONTAINER_EXPORT: "container export",
        K8S_VOLUME_SNAPSHOT: "VolumeSnapshot",
    }.get(event.action or "", "snapshot")
    return f"{kind} {_short(created[0].id)}" if created else kind



def evaluate(event: Event, ctx: Context) -> Iterable[Finding]:
    """Alert when a creation falls outside the account's business hours.

    Parameters
    ----------
    event : Event
        A creation event (snapshot, image, copy, container commit/save/export, VolumeSnapshot).
    ctx : Context
        Settings (calendar), state (hourly count) and event time.

    Returns
    -------
    Iterable[Finding]
        One finding per principal, account and hour.
    """
    params: Params = ctx.params
    if (event.outcome in ("failure", "denied") and not params.include_failed) or mirrors_volume_snapshot(
        event
    ):
        return
    p = event.principal
    sources = event.resources_by_role("source")
    source = sources[0].id if sources else None
    baseline.learn_schedule(ctx.state, p.id, event.time, source, params)
    hours = hours_for(ctx.settings.calendar, event.account)
    if is_business_time(event.time, hours):
        return
    learned = baseline.schedule(ctx.state, p.id, event.time, source, params)
    if learned.on_schedule:
        return
    local = event.time.astimezone(zone(hours.timezone))
    holiday = local.date() in hours.holidays
    non_working_day = holiday or local.isoweekday() not in hours.days
    hour = event.time.replace(minute=0, second=0, microsecond=0)
    account = event.account or "unknown"
    count = ctx.state.add(
        make_key(DETECTION_ID, p.id, account, hour.isoformat()), (event.event_id,), event.time, _HOUR
    )
    why = "a holiday" if holiday else ("a non-working day" if non_working_day else "outside working hours")
    stamp = f"{local:%a %Y-%m-%d %H:%M} {hours.timezone}"
    where = f" in {event.account}" if event.account else ""
    title = f"Off-hours {_what(event)} by {principal_label(p)}{where} ({stamp})"
    summary = (
        f"{principal_label(p)} made {count} snapshot/image creation(s){where} during the hour starting "
        f"{hour:%Y-%m-%d %H:00} UTC; the latest ({event.operation}) at {stamp} is {why} "
        f"(business hours {hours.start:%H:%M}-{hours.end:%H:%M}, days {list(hours.days)}). "
        "Snapshots taken when nobody is watching are a way to copy data or keep a restore point "
        "for later evasion (T1578.001)."
    ) + learned.note()
    if event.action in _CONTAINER_ACTIONS:
        summary += " Docker events carry no user: find who ran docker on the host (auditd, shell history)."
    yield Finding(
        entity=f"{p.id}|{account}",
        window_start=hour,
        title=title,
        summary=summary,
        events=(event,),
        count=count,
        context={
            "local_time": local.isoformat(),
            "timezone": hours.timezone,
            "business_start": hours.start.isoformat(),
            "business_end": hours.end.isoformat(),
            "business_days": list(hours.days),
            "holiday": holiday,
            "non_working_day": non_working_day,
            "creations_this_hour": count,
            "operation": event.operation,
            **learned.context(),
        },
    )


_RESPONSE = (
    "Ask the principal's owner (or the on-call change log) whether this off-hours snapshot was planned; "
    "if not, treat it as an intrusion and isolate the affected instance, container or pod (quarantine "
    "security group / network policy) to prevent further exploitation.",
    "List what was created and whether it was shared, copied or restored afterwards: AWS `aws ec2 "
    "describe-snapshots --snapshot-ids <id>` and `aws ec2 describe-snapshot-attribute --attribute "
    "createVolumePermission`; Azure `az snapshot show`; GCP `gcloud compute snapshots describe`; K8s "
    "`kubectl get volumesnapshot -A`; Docker `docker image history <image>`.",
    "Forensic analysis: preserve the snapshot (tag it, block deletion) and the surrounding logs; attach a "
    "copy to an isolated forensics host and compare it with the live system for tampering.",
    "Review access controls: which policies let this principal create snapshots at this hour; revoke its "
    "sessions and keys if the activity is not explained (`aws iam` / `az role assignment` / `gcloud iam`).",
    "If the work was legitimate, declare it as a maintenance window (settings calendar.maintenance) or "
    "adjust the account's business hours, and update the incident response plan with the procedure.",
)

DETECTION = Detection(
    id=DETECTION_ID,
    meta=AdsMeta(
        title="Snapshot or image created outside business hours",
        goal=(
            "Detect snapshots, images and container snapshots created outside the owning account's business "
            "hours, when adversaries copy data or keep restore points to evade monitoring."
        ),
        technique="T1578.001",
        technique_name="Create Snapshot",
        tactic="Defense Evasion",
        severity="medium",
        platforms=("IaaS", "AWS", "Azure", "GCP", "Kubernetes", "Containers"),
        strategy=(
            "ADS pattern 'snapshots being created during off-hours or periods with low legitimate activity': "
            "every successful snapshot, image, copy, container commit/save/export or VolumeSnapshot creation "
            "is checked against the business hours of its account (settings calendar: time zone, working "
            "days, hours, holidays). Declared maintenance windows and backup services are silenced by the "
            "engine. One alert per principal, account and hour."
            " Learned schedule: each principal's creations are learned per UTC day in the state store "
            "(the UTC hour and the source volume, instance or database), kept schedule_days (14) days. A creation"
            " in an hour the principal used on at least schedule_min_days (2) earlier days, of a source it "
            "snapshotted before is on its schedule and does not alert; a departure (a new hour, a new source) "
            "alerts and says which. schedule_days: 0 turns this off."
        ),
        technical_context=(
            "Adversaries snapshot disks, databases or containers when nobody watches, to restore them later "
            "elsewhere or to revert a compromised system. CloudTrail (ec2/rds/redshift/lightsail "
            "CreateSnapshot, CreateImage, CopySnapshot), Azure Activity Log (Microsoft.Compute/snapshots/"
            "write, images/write), GCP Admin Activity (compute.snapshots.insert, disks.createSnapshot), "
            "Kubernetes audit (create volumesnapshots) and Docker events (commit, save, export) record it."
        ),
        blind_spots=(
            *SCHEDULE_BLIND_SPOTS,
            "Snapshots made during business hours, or by an attacker who times work to the victim's day.",
            "Accounts whose teams work around the clock need their own calendar entry, else they alert.",
            "Docker events carry no user: the principal is the host; attribution needs auditd or shell history.",
            "Snapshots made by a backup service on the attacker's behalf (e.g. an AWS Backup on-demand job) "
            "are silenced with the service.",
            "Clusters or hosts whose audit logs are not shipped, and containers not centrally managed.",
        ),
        false_positives=(
            "Regular backup operations by IT teams (AWS Backup, Data Lifecycle Manager, Azure Backup, GCP "
            "snapshot schedules): silenced by allowlists.services and the default suppressions.",
            "Disaster recovery and high-availability work done at night: declare it in calendar.maintenance.",
            "Automated testing in CI pipelines that snapshot at night: allowlist the CI role or host.",
        ),
        priority=(
            "Medium (ADS): off-hours creation alone is weak evidence, but cheap to triage and a strong "
            "signal when combined with burst, sharing or restore alerts."
        ),
        validation=(
            "AWS: `aws ec2 create-snapshot --volume-id vol-0a1b2c3d4e5f60001` on a Saturday 02:00 UTC "
            "(examples/aws/snapshot_off_hours.jsonl).",
            "Azure: `az snapshot create -g rg -n snap --source <disk id>` at night "
            "(examples/azure/snapshot_off_hours.jsonl).",
            "GCP: `gcloud compute snapshots create s1 --source-disk d1 --source-disk-zone europe-west1-b` "
            "at night (examples/gcp/snapshot_off_hours.jsonl).",
            "Docker: `docker commit <container> snapshot-test` at night (examples/docker/snapshot_off_hours.jsonl).",
            "Replay: `adscore replay examples/aws/snapshot_off_hours.jsonl` prints one snapshot.off_hours alert.",
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
            "https://docs.aws.amazon.com/ebs/latest/userguide/logging-ebs-apis-using-cloudtrail.html",
            "https://learn.microsoft.com/en-us/azure/azure-monitor/essentials/activity-log-schema",
            "https://cloud.google.com/compute/docs/logging/audit-logging",
            "https://kubernetes.io/docs/concepts/storage/volume-snapshots/",
            "https://docs.docker.com/reference/cli/docker/system/events/",
        ),
    ),
    actions=frozenset(
        {
            SNAPSHOT_CREATE,
            IMAGE_CREATE,
            SNAPSHOT_COPY,
            CONTAINER_COMMIT,
            CONTAINER_SAVE,
            CONTAINER_EXPORT,
            K8S_VOLUME_SNAPSHOT,
        }
    ),
    evaluate=evaluate,
    params=Params,
)
