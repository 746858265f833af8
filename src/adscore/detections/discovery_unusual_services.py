"""Detection `discovery.unusual_services` (T1526 Cloud Service Discovery).

A principal with an established history suddenly touches many services it
has never used: the slow form of discovery that stays under the burst
thresholds, and the tell-tale of credentials used by someone other than their
owner. Each (principal, service) pair is a first-seen term; new services are
collected in a one-hour set once the principal's learning period is over.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import Field

from adscore.actions import DISCOVERY_PERMISSION_PROBE, DISCOVERY_READ
from adscore.detection import AdsMeta, Detection, DetectionParams, Finding
from adscore.detections._shared import episode_start, parse_aware_time, where, who
from adscore.state.base import fit_part
from adscore.windows import epoch_micros

if TYPE_CHECKING:
    from collections.abc import Iterable

    from adscore.detection import Context
    from adscore.events import Event

DETECTION_ID = "discovery.unusual_services"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SERVICE_LEN = 200
_SEP = "\x1f"  # never inside a canonical part (fit_part hashes text with control characters)


class Params(DetectionParams):
    """Parameters of `discovery.unusual_services`."""

    threshold: int = Field(default=5, ge=1, description="services never used before, within the window")
    window_minutes: int = Field(default=60, ge=1, le=1440)
    learning_days: float = Field(default=7, ge=0, description="history a principal needs before it can alert")
    history_days: int = Field(default=90, ge=1, le=400, description="how long a known service stays known")
    episode_minutes: int = Field(default=120, ge=1, le=1440)


def _service(event: Event) -> str:
    """The service as stored and compared (long or odd names canonicalized the same way everywhere)."""
    return fit_part(event.service or "unknown", _SERVICE_LEN)


def evaluate(event: Event, ctx: Context) -> Iterable[Finding]:
    """Learn each principal's services; alert on many new ones in an hour after the learning period.

    A principal's history starts at its earliest event and a service is new at its earliest use
    (:meth:`~adscore.state.base.StateView.earliest`), whatever order they arrive in. A new service
    used inside the learning period as known so far is deferred; an earlier event that arrives
    later and moves the history start back counts the deferred services it leaves outside the
    learning period.
    """
    p: Params = ctx.params
    if event.outcome == "pending":
        return
    history = timedelta(days=p.history_days)
    service = _service(event)
    me = fit_part(event.event_id, 160)
    base = f"{DETECTION_ID}|{event.principal.id}"
    first = ctx.state.earliest(f"{base}|svc|{service}", event.event_id, event.time, history)
    since, first_of_principal = ctx.state.earliest(f"{base}|since", event.event_id, event.time, history)
    legacy = ctx.state.recall(f"{base}|since", event.time)
    legacy_since = parse_aware_time(legacy) if legacy else None
    if legacy_since is not None and legacy_since < since:  # the history start an earlier version recorded
        since = legacy_since
    if since == event.time and first_of_principal == me:
        yield from _undefer(event, ctx, base, since, p)
    if first != (event.time, me):
        return  # a known service (nearly every event)
    if ctx.state.recall(f"{base}|svc|{event.service or 'unknown'}", event.time) is not None:
        return  # known to an earlier version (it kept a first-seen witness per service)
    if event.time - since < timedelta(days=p.learning_days):
        deferred = f"{epoch_micros(event.time):020d}{_SEP}{service}"  # at most 221 characters: stored as is
        ctx.state.add(f"{base}|deferred", (deferred,), event.time, history, history)
        return
    yield from _judge(event, ctx, since, p, service, event.time)


def _undefer(event: Event, ctx: Context, base: str, since: datetime, p: Params) -> Iterable[Finding]:
    """Count the services deferred during learning that the earlier history start (``event``'s) leaves outside it."""
    history = timedelta(days=p.history_days)
    learning = timedelta(days=p.learning_days)
    for member in sorted(ctx.state.members(f"{base}|deferred", since + history, history)):
        micros, sep, service = member.partition(_SEP)
        if not sep or not micros.isdigit():
            continue
        at = _EPOCH + timedelta(microseconds=int(micros))
        if at - since < learning:
            continue
        first = ctx.state.earliest_seen(f"{base}|svc|{service}", at)
        if first is not None and first[0] == at:  # still the service's first use
            yield from _judge(event, ctx, since, p, service, at)


def _judge(event: Event, ctx: Context, since: datetime, p: Params, service: str, at: datetime) -> Iterable[Finding]:
    """Count ``service``, first used at ``at``, in the principal's window of new services; a finding past the threshold."""
    pid = event.principal.id
    window = timedelta(minutes=p.window_minutes)
    count = ctx.state.add(f"{DETECTION_ID}|{pid}|new", (service,), at, window)
    if count < p.threshold:
        return
    start = episode_start(ctx.state, f"{DETECTION_ID}|{pid}", at, window, timedelta(minutes=p.episode_minutes))
    days = (at - since).days
    title = f"{count} services never used before in {p.window_minutes} min by {who(event)}{where(event)}"
    summary = (
        f"{who(event)} ({event.principal.type}), known for {days} days, used {count} services it had never "
        f"used before within about {p.window_minutes} minutes (threshold {p.threshold}); latest: {service[:80]} "
        f"({event.operation[:120]}) from {(event.source_ip or 'unknown address')[:64]}. A sudden spread to new "
        f"services suggests the credentials are being used to explore the account (T1526)."
    )
    yield Finding(
        entity=pid,
        window_start=start,
        title=title,
        summary=summary,
        events=(event,),
        count=count,
        context={
            "new_services": count,
            "threshold": p.threshold,
            "window_minutes": p.window_minutes,
            "latest_new_service": service[:120],
            "history_since": since.isoformat(),
            "learning_days": p.learning_days,
            "source_ip": event.source_ip,
        },
    )


DETECTION = Detection(
    id=DETECTION_ID,
    meta=AdsMeta(
        title="Principal touches many services it has never used",
        goal=(
            "Detect an identity with an established pattern that suddenly reaches into many services it never "
            "used (T1526 Cloud Service Discovery), including enumeration too slow for the burst thresholds."
        ),
        technique="T1526",
        technique_name="Cloud Service Discovery",
        tactic="Discovery",
        severity="medium",
        platforms=("IaaS", "Azure AD", "Office 365", "SaaS", "Google Workspace", "Containers"),
        strategy=(
            "Keep, per principal, the services it has used (first-seen terms kept 90 days) and when its history "
            "began. After a learning period (7 days), collect the services it uses for the first time in a "
            "one-hour set, and alert when 5 or more appear. New services are services in the provider's sense "
            "(AWS eventSource, GCP serviceName, Azure resource provider, Graph collection, Kubernetes resource "
            "type)."
        ),
        technical_context=(
            "Stolen access keys, tokens and service-account keys are used by someone whose needs differ from "
            "the owner's: a CI role that only pushed images starts listing IAM, KMS, RDS and Secrets Manager. "
            "First-seen state answers a redelivered event as it answered the first delivery, so retries never "
            "inflate the count."
        ),
        blind_spots=(
            "Principals younger than the learning period (new keys, new roles) never alert here; the burst "
            "detections cover them.",
            "An adversary who stays within the services the identity already uses is invisible to this rule.",
            "Services only used less than once per history period look new each time they return.",
            "Reads need read-only/Data Access logging enabled (see discovery.api_burst).",
        ),
        false_positives=(
            "Scheduled automated deployment processes that add a new service to a stack (the CI role's first "
            "deploy of a new component).",
            "Routine updates and patches to container images by trusted developers that start using a new "
            "registry or service.",
            "Legitimate use of test environments where engineers try new services: suppress those accounts.",
            "People changing jobs or on-call rotations.",
        ),
        priority="Medium: behaviour change of a known identity; raise when it follows an unusual sign-in.",
        validation=(
            "Let a principal work normally for the learning period, then use it to list five or more services "
            "it never touched (e.g. `aws iam list-users`, `aws kms list-keys`, `aws rds describe-db-instances`, "
            "`aws secretsmanager list-secrets`, `aws lambda list-functions`).",
        ),
        response=(
            "Verify the source and context: compare the new services with the principal's role and with any "
            "change ticket; check the source IP and user agent against its usual ones.",
            "Investigate the credentials and access: which key or token was used, whether it was used from a "
            "new location, and whether the owner confirms the activity; rotate if not.",
            "Review recent configuration and deployment changes that could explain new services (a new stack "
            "component, a new pipeline stage).",
            "Isolate affected containers or instances whose role made the calls if the owner does not confirm.",
            "Tune: raise `threshold` or `learning_days` for identities whose work legitimately varies, or "
            "suppress them by principal with a reason.",
        ),
        data_sources=(
            "AWS CloudTrail",
            "GCP Cloud Audit Logs (Admin Activity and Data Access)",
            "Azure Activity Log and Microsoft Graph activity logs",
            "Kubernetes audit logs",
        ),
        references=(
            "https://attack.mitre.org/techniques/T1526/",
            "https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html",
            "https://cloud.google.com/logging/docs/audit",
        ),
    ),
    actions=frozenset({DISCOVERY_READ, DISCOVERY_PERMISSION_PROBE}),
    evaluate=evaluate,
    params=Params,
    clouds=("aws", "azure", "gcp", "kubernetes"),
)
