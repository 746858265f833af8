"""``snapshot.new_principal``: a principal creating a snapshot in an account for the first time.

A fresh deployment knows no one, so each account first goes through a learning
period (default seven days of its history, counted from the first creation event
seen in it): principals seen then are recorded but not alerted on. After it, a
principal never seen creating a snapshot in that account alerts once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import Field

from adscore.actions import IMAGE_CREATE, K8S_VOLUME_SNAPSHOT, SNAPSHOT_COPY, SNAPSHOT_CREATE
from adscore.detection import AdsMeta, Detection, DetectionParams, Finding
from adscore.detections._shared import mirrors_volume_snapshot, principal_label
from adscore.events import park_event, unpark_event
from adscore.state.base import fit_part, make_key
from adscore.windows import epoch_micros

if TYPE_CHECKING:
    from collections.abc import Iterable

    from adscore.detection import Context
    from adscore.events import Event

DETECTION_ID = "snapshot.new_principal"
_LEARNING_TERM = "learning-start"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Params(DetectionParams):
    """Parameters of ``snapshot.new_principal``.

    Attributes
    ----------
    learning_days : float
        Days of an account's history (from its first creation event seen) during which
        principals are only recorded.
    memory_days : int
        How long a principal stays known after it was first recorded.
    account_memory_days : int
        How long the start of an account's learning period is kept; after that the
        account learns again.
    """

    learning_days: float = Field(
        default=7.0,
        ge=0,
        description="days of an account's history during which principals are only recorded",
    )
    memory_days: int = Field(default=180, ge=1, description="how long a principal stays known")
    account_memory_days: int = Field(
        default=400,
        ge=1,
        description="how long an account's learning start is kept (after it, the account learns again)",
    )




def _learning_since(raw: str | None) -> datetime | None:
    """Read the time from a witness ``"<iso time>|<event id>"``."""
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw.split("|", 1)[0])
    except ValueError:
        return None



def _deferred(at: datetime, event_id: str) -> str:
    return f"{epoch_micros(at):020d}|{fit_part(event_id, 160)}"


def _read_deferred(member: str) -> tuple[datetime, str] | None:
    micros, sep, event_id = member.partition("|")
    if not sep or not micros.isdigit():
        return None
    return _EPOCH + timedelta(microseconds=int(micros)), event_id


def _finding(event: Event, account: str, since: datetime, params: Params, *, subject: bool = False) -> Finding:
    p = event.principal
    return Finding(
        entity=f"{p.id}|{account}",
        window_start=event.time.replace(minute=0, second=0, microsecond=0),
        title=f"First snapshot by {principal_label(p)} in {account} ({event.operation})",
        summary=(
            f"{principal_label(p)} ({p.type}) created a snapshot or image in {account} for the first time since "
            f"{since:%Y-%m-%d} (history learned for {params.learning_days:g} days; principals remembered "
            f"{params.memory_days} days). A new identity taking snapshots is how stolen credentials or a "
            "freshly created backdoor role copy data or prepare a restore point (T1578.001)."
        ),
        events=(event,),
        context={
            "learning_days": params.learning_days,
            "learning_since": since.isoformat(),
            "principal_type": p.type,
            "operation": event.operation,
        },
        subject=event if subject else None,
    )


def evaluate(event: Event, ctx: Context) -> Iterable[Finding]:
    """Record the principal; alert when it is new and the account's learning period is over.

    Both the start of the account's learning period and a principal's first snapshot are the
    earliest event times recorded (:meth:`~adscore.state.base.StateView.earliest`), not the first
    events processed. A principal first seen inside the learning period as known so far is
    deferred; when an earlier event of the account arrives later and moves the learning period
    back, the deferred principals it leaves outside the period alert then.

    Parameters
    ----------
    event : Event
        A snapshot, image, copy or VolumeSnapshot creation.
    ctx : Context
        Params (learning period, memory), state (earliest times) and event time.

    Returns
    -------
    Iterable[Finding]
        One finding for a principal's first creation in an account after learning.
    """
    if event.outcome in ("failure", "denied") or mirrors_volume_snapshot(event):
        return
    params: Params = ctx.params
    p = event.principal
    account = event.account or p.account or "unknown"
    account_key = make_key(DETECTION_ID, "account", account)
    account_memory = timedelta(days=params.account_memory_days)
    memory = timedelta(days=params.memory_days)
    learning = timedelta(days=params.learning_days)
    since, first_in_account = ctx.state.earliest(account_key, event.event_id, event.time, account_memory)
    legacy = _learning_since(ctx.state.recall(f"{account_key}|{_LEARNING_TERM}", event.time))
    if legacy is not None and legacy < since:  # the learning start an earlier version recorded
        since = legacy
    me = fit_part(event.event_id, 160)
    if since == event.time and first_in_account == me:
        yield from _undefer(ctx, account, since, params)
    first_at, first_id = ctx.state.earliest(make_key(DETECTION_ID, "principal", account, p.id), event.event_id, event.time, memory)
    if first_at != event.time or first_id != me:
        return  # an earlier snapshot by this principal is known: it decided
    legacy_witness = ctx.state.recall(f"{make_key(DETECTION_ID, 'principals', account)}|{p.id}", event.time)
    if legacy_witness is not None and legacy_witness != event.event_id:
        return  # known to an earlier version
    if event.time - since < learning:
        # inside the learning period as known now; an earlier event of the account may still end it
        deferred_key = make_key(DETECTION_ID, "deferred", account)
        ctx.state.add(deferred_key, (_deferred(event.time, event.event_id),), event.time, account_memory, account_memory)
        ctx.state.remember(make_key(DETECTION_ID, "event", account, me), park_event(event), event.time, account_memory)
        return
    yield _finding(event, account, since, params)


def _undefer(ctx: Context, account: str, since: datetime, params: Params) -> Iterable[Finding]:
    """Principals deferred during learning that the earlier learning start ``since`` leaves outside it."""
    account_memory = timedelta(days=params.account_memory_days)
    learning = timedelta(days=params.learning_days)
    deferred_key = make_key(DETECTION_ID, "deferred", account)
    # a deferred principal alerts if first seen at least learning_days after ``since`` (and before the
    # start expires): the window ending account_memory after ``since`` holds every such candidate
    for member in sorted(ctx.state.members(deferred_key, since + account_memory, account_memory)):
        found = _read_deferred(member)
        if found is None or found[0] - since < learning:
            continue
        at, event_id = found
        event = unpark_event(ctx.state.recall(make_key(DETECTION_ID, "event", account, event_id), at))
        if event is None:
            continue
        key = make_key(DETECTION_ID, "principal", account, event.principal.id)
        first = ctx.state.earliest(key, event.event_id, at, timedelta(days=params.memory_days))
        if first == (at, event_id):
            yield _finding(event, account, since, params, subject=True)


_RESPONSE = (
    "Identify the principal: who owns it, when it was created (`aws iam get-role`/`get-user`, "
    "`az ad sp show`, `gcloud iam service-accounts describe`) and where its session came from "
    "(source IP, user agent, `aws cloudtrail lookup-events --lookup-attributes AttributeKey=Username,...`).",
    "If unknown, isolate: deactivate its keys, revoke sessions (`aws iam put-role-policy` "
    "AWSRevokeOlderSessions, `az ad user revoke-sign-in-sessions`), and quarantine the snapshot's source "
    "instance or container.",
    "Forensic analysis: check whether the new snapshot was shared, copied, exported or restored "
    "(`aws ec2 describe-snapshot-attribute --attribute createVolumePermission`), and what else the principal did.",
    "Review access controls: which policy granted snapshot creation to this principal; remove it if unneeded.",
    "If legitimate (new backup role, new team member), it is remembered from now on; add service roles to "
    "allowlists and record the onboarding step in the IR plan.",
)

DETECTION = Detection(
    id=DETECTION_ID,
    meta=AdsMeta(
        title="Principal creates a snapshot in an account for the first time",
        goal=(
            "Detect an identity that has never created snapshots or images in an account starting to do so, "
            "a sign of stolen credentials or a new backdoor identity copying data."
        ),
        technique="T1578.001",
        technique_name="Create Snapshot",
        tactic="Defense Evasion",
        severity="medium",
        platforms=("IaaS", "AWS", "Azure", "GCP", "Kubernetes"),
        strategy=(
            "ADS assumption 'baseline behavior of legitimate snapshot usage is well-understood', made "
            "concrete: per account, the set of principals that create snapshots is learned (first-seen "
            "terms keyed by account, witnessed by event id so redelivery answers the same). After a learning "
            "period (default 7 days of that account's history), a principal outside the set alerts once."
        ),
        technical_context=(
            "Attackers rarely reuse the backup role: they snapshot with the identity they stole or created. "
            "The first CreateSnapshot / snapshots/write / snapshots.insert / VolumeSnapshot by that identity "
            "in the account stands out against the learned set."
        ),
        blind_spots=(
            "During an account's learning period nothing alerts (an attacker already present is learned).",
            "An attacker using an identity that already snapshots (the backup role itself) is not new.",
            "Principals forgotten after memory_days alert again on their next snapshot.",
            "Docker commits are left to container.snapshot: their principal is the host, not a person.",
        ),
        false_positives=(
            "New backup or DR automation roles (AWS Backup, DLM, Azure Backup, GCP schedules are silenced "
            "by default; other backup tools need an allowlist entry).",
            "New CI pipelines whose automated tests create snapshots: allowlist the CI role.",
            "A new team member taking a first legitimate snapshot during a maintenance window (declare it).",
        ),
        priority="Medium (ADS).",
        validation=(
            "AWS: the ops role snapshots on day 1, eight days later an unknown user snapshots "
            "(examples/aws/snapshot_new_principal.jsonl).",
            "GCP: a new user runs `gcloud compute snapshots create` after the project's learning period "
            "(examples/gcp/snapshot_new_principal.jsonl).",
        ),
        response=_RESPONSE,
        data_sources=(
            "AWS CloudTrail management events",
            "Azure Activity Log / Event Grid",
            "GCP Admin Activity audit logs",
            "Kubernetes audit logs",
        ),
        references=(
            "https://attack.mitre.org/techniques/T1578/001/",
            "https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html",
            "https://cloud.google.com/logging/docs/audit",
        ),
    ),
    actions=frozenset({SNAPSHOT_CREATE, IMAGE_CREATE, SNAPSHOT_COPY, K8S_VOLUME_SNAPSHOT}),
    evaluate=evaluate,
    params=Params,
    clouds=("aws", "azure", "gcp", "kubernetes"),
)
