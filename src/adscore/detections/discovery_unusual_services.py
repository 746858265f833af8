"""Detection `discovery.unusual_services` (T1526 Cloud Service Discovery).

A principal with an established history suddenly touches many services it
has never used: the slow form of discovery that stays under the burst
thresholds, and the tell-tale of credentials used by someone other than their
owner. Each (principal, service) pair is a first-seen term; new services are
collected in a one-hour set once the principal's learning period is over.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import Field

from adscore.actions import DISCOVERY_PERMISSION_PROBE, DISCOVERY_READ
from adscore.detection import AdsMeta, Detection, DetectionParams, Finding
from adscore.detections.discovery_api_burst import episode_start, parse_aware_time, where, who

if TYPE_CHECKING:
    from collections.abc import Iterable

    from adscore.detection import Context
    from adscore.events import Event

DETECTION_ID = "discovery.unusual_services"


class Params(DetectionParams):
    """Parameters of `discovery.unusual_services`."""

    threshold: int = Field(default=5, ge=1, description="services never used before, within the window")
    window_minutes: int = Field(default=60, ge=1, le=1440)
    learning_days: float = Field(default=7, ge=0, description="history a principal needs before it can alert")
    history_days: int = Field(default=90, ge=1, le=400, description="how long a known service stays known")
    episode_minutes: int = Field(default=120, ge=1, le=1440)


def _since(event: Event, ctx: Context, history: timedelta) -> datetime:
    """When this principal's history began (remembered at its first event)."""
    key = f"{DETECTION_ID}|{event.principal.id}|since"
    stored = ctx.state.recall(key, ctx.now)
    if stored:
        since = parse_aware_time(stored)
        if since is not None:
            return since
    ctx.state.remember(key, ctx.now.isoformat(), ctx.now, history)
    return ctx.now


def evaluate(event: Event, ctx: Context) -> Iterable[Finding]:
    """Learn each principal's services; alert on many new ones in an hour after the learning period."""
    p: Params = ctx.params
    if event.outcome == "pending":
        return ()
    history = timedelta(days=p.history_days)
    pid = event.principal.id
    service = event.service or "unknown"
    if not ctx.state.first_seen(f"{DETECTION_ID}|{pid}|svc", service, event.event_id, ctx.now, history):
        return ()  # a known service (nearly every event): the history start is not needed
    # A principal's first event always brings a new service, so its history starts there as before.
    since = _since(event, ctx, history)
    if ctx.now - since < timedelta(days=p.learning_days):
        return ()
    window = timedelta(minutes=p.window_minutes)
    count = ctx.state.add(f"{DETECTION_ID}|{pid}|new", (service,), ctx.now, window)
    if count < p.threshold:
        return ()
    start = episode_start(
        ctx.state, f"{DETECTION_ID}|{pid}", ctx.now, window, timedelta(minutes=p.episode_minutes)
    )
    days = (ctx.now - since).days
    title = f"{count} services never used before in {p.window_minutes} min by {who(event)}{where(event)}"
    summary = (
        f"{who(event)} ({event.principal.type}), known for {days} days, used {count} services it had never "
        f"used before within about {p.window_minutes} minutes (threshold {p.threshold}); latest: {service[:80]} "
        f"({event.operation[:120]}) from {(event.source_ip or 'unknown address')[:64]}. A sudden spread to new "
        f"services suggests the credentials are being used to explore the account (T1526)."
    )
    return (
        Finding(
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
        ),
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
