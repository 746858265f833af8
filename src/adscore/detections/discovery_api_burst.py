"""Detection `discovery.api_burst` (T1526 Cloud Service Discovery).

One principal makes many distinct read operations across many services in a
short time: the shape of ScoutSuite, CloudSploit, Pacu, MicroBurst and of an
intruder's first minutes with stolen credentials. Normal applications and
people read a few services over and over; enumeration reads many services once.

Counting is per principal and idempotent: the members of a windowed set are
``service\\x1foperation`` (a redelivered or repeated call adds nothing); the
distinct services are read off those members once the operation threshold is
reached. The set only grows (and is only written) when something new is read.

This module also holds :func:`episode_start`, the alert-window anchor the other
T1526 windowed detections share, so a burst that keeps going or crosses a
bucket boundary raises one alert, not one per bucket.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import Field

from adscore import baseline
from adscore.actions import DISCOVERY_PERMISSION_PROBE, DISCOVERY_READ
from adscore.baseline import BASELINE_BLIND_SPOTS, BaselineParams
from adscore.detection import AdsMeta, Detection, Finding
from adscore.detections._shared import episode_start, where, who
from adscore.state.base import fit_part

if TYPE_CHECKING:
    from collections.abc import Iterable
    from collections.abc import Set as AbstractSet

    from adscore.detection import Context
    from adscore.events import Event

DETECTION_ID = "discovery.api_burst"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SEP = "\x1f"
_MAX_OPERATION = 180
_NAME_CAP = 160
_SERVICES_SEEN_MAX = 4096
# key -> (the members set it was counted from, its size then, distinct services). A principal past the
# threshold would otherwise split every member again on each of its events; the entry holds the set
# itself, so it answers only while the state hands back that same set, unchanged in size (sets only grow).
_services_seen: dict[str, tuple[AbstractSet[str], int, int]] = {}


class Params(BaselineParams):
    """Parameters of `discovery.api_burst` (the ``baseline_*`` ones: see :mod:`adscore.baseline`)."""

    threshold: int = Field(default=20, ge=1, description="distinct read operations (service+operation)")
    min_services: int = Field(default=5, ge=1, description="distinct services those reads span")
    window_minutes: int = Field(default=10, ge=1, le=1440)
    episode_minutes: int = Field(default=60, ge=1, le=1440, description="one alert per principal per episode")
    count_denied: bool = Field(default=True, description="denied reads count too (they still enumerate)")
    verbs: tuple[str, ...] = Field(
        default=("get", "list"),
        description="Kubernetes verbs that count (watch is what controllers do all day)",
    )


def _counts(event: Event, ctx: Context) -> tuple[int, int, str]:
    """Distinct ``service<SEP>operation`` members in the window, (only past the threshold) their services, and the member.

    One set per principal: the services are read off its members when the operation
    threshold is reached, so steady traffic writes one key, not two.
    """
    p: Params = ctx.params
    window = timedelta(minutes=p.window_minutes)
    key = f"{DETECTION_ID}|{event.principal.id}|ops"
    # each part canonicalized, so a long operation is never stored hashed whole (its service would be lost)
    service = fit_part(event.service or "unknown")
    member = f"{service}{_SEP}{fit_part(event.operation, _MAX_OPERATION)}"
    ops = ctx.state.add(key, (member,), ctx.now, window)
    if ops < p.threshold:
        return ops, 0, member
    members = ctx.state.members(key, ctx.now, window)
    known = _services_seen.get(key)
    if known is not None and known[0] is members and known[1] == len(members):
        return ops, known[2], member  # the same live set, unchanged since it was last counted
    services = len({m.split(_SEP, 1)[0] for m in members})
    if len(_services_seen) >= _SERVICES_SEEN_MAX:
        _services_seen.clear()
    _services_seen[key] = (members, len(members), services)
    return ops, services, member


def _counts_read(event: Event, p: Params) -> bool:
    if event.outcome == "pending":
        return False
    if event.outcome == "denied" and not p.count_denied:
        return False
    if event.cloud == "kubernetes":
        verb = event.operation.split(" ", 1)[0].lower()
        return verb in p.verbs or event.action == DISCOVERY_PERMISSION_PROBE
    return True


def evaluate(event: Event, ctx: Context) -> Iterable[Finding]:
    """Count the principal's distinct reads and services; alert past both thresholds and the principal's baseline."""
    p: Params = ctx.params
    if not _counts_read(event, p):
        return ()
    ops, services, member = _counts(event, ctx)
    learned = f"{DETECTION_ID}|{event.principal.id}|baseline"
    baseline.learn(ctx.state, learned, ctx.now, (member,), ops, p, p.threshold)
    if ops < p.threshold or services < p.min_services:
        return ()
    window = timedelta(minutes=p.window_minutes)
    members = ctx.state.members(f"{DETECTION_ID}|{event.principal.id}|ops", ctx.now, window)
    verdict = baseline.judge(ctx.state, learned, ctx.now, ops, members, p)
    if not verdict.alert:
        return ()
    entity = event.principal.id
    start = episode_start(
        ctx.state, f"{DETECTION_ID}|{entity}", ctx.now, window, timedelta(minutes=p.episode_minutes)
    )
    title = (
        f"{ops} distinct read operations across {services} services in {p.window_minutes} min "
        f"by {who(event)}{where(event)}"
    )
    summary = (
        f"{who(event)} ({event.principal.type}) made {ops} distinct read operations across {services} "
        f"{event.cloud} services within about {p.window_minutes} minutes (thresholds: {p.threshold} operations, "
        f"{p.min_services} services). Enumerating many services at once is how attackers and tools such as "
        f"ScoutSuite, CloudSploit, Pacu or MicroBurst map an account after getting credentials "
        f"(T1526 Cloud Service Discovery). Last call: {event.operation[:120]} from "
        f"{(event.source_ip or 'unknown address')[:64]}."
    )
    summary += verdict.note("operations")
    return (
        Finding(
            entity=entity,
            window_start=start,
            title=title,
            summary=summary,
            events=(event,),
            count=ops,
            context={
                "distinct_operations": ops,
                "distinct_services": services,
                "threshold_operations": p.threshold,
                "threshold_services": p.min_services,
                "window_minutes": p.window_minutes,
                "last_operation": event.operation[:200],
                "user_agent": (event.user_agent or "")[:200],
                "source_ip": event.source_ip,
                **verdict.context(),
            },
        ),
    )


DETECTION = Detection(
    id=DETECTION_ID,
    meta=AdsMeta(
        title="Burst of distinct read operations across many cloud services",
        goal=(
            "Detect one identity enumerating many cloud services in a short time (T1526 Cloud Service Discovery): "
            "the reconnaissance an adversary runs with fresh credentials, by hand or with enumeration tools, "
            "before moving on to data (snapshots, registries, secrets)."
        ),
        technique="T1526",
        technique_name="Cloud Service Discovery",
        tactic="Discovery",
        severity="medium",
        platforms=("IaaS", "Azure AD", "Office 365", "SaaS", "Google Workspace", "Containers"),
        strategy=(
            "Count, per principal, the distinct read operations (service + operation) and the distinct services "
            "read within a sliding 10-minute window, from AWS CloudTrail read-only calls (Describe/Get/List), GCP "
            "Data Access audit logs (ADMIN_READ, DATA_READ), Azure Activity Log read actions and Microsoft Graph "
            "activity logs (Azure AD / Entra: GET /users, /groups, /applications, ... by collection), and "
            "Kubernetes get/list audit events across resource types. Alert when both thresholds are passed "
            "(default 20 operations across 5 services). Counting operations, not calls, keeps a busy but narrow "
            "application quiet and makes redelivered logs harmless."
            " Per-identity baseline: each principal's day is learned in the state store (the members "
            "it used that day, and its busiest window), kept baseline_days (14) days; an assumed-role session is "
            "learned under its role, the principal id. A window above the floor alerts while the principal has "
            "fewer than baseline_min_days (2) learned days before the window's own UTC day; after that only when "
            "its count, with every operation (service + operation) the principal never used in those days counted"
            " new_weight (4) times, exceeds baseline_factor (2) times its busiest learned window. A CI or scanner"
            " role that makes the same broad sweep every ten minutes is then quiet, and the same role's "
            "credentials used for services and operations it never touches fire. baseline_days: 0 restores the "
            "fixed thresholds."
        ),
        technical_context=(
            "Adversaries with public or compromised credentials first learn what the account runs: "
            "`aws service-quotas list-service-quotas`, `az group list`, `gcloud ... list`, `kubectl get` across "
            "namespaces, or a tool (ScoutSuite, CloudSploit, Prowler, Pacu, MicroBurst, AzureHound, ROADtools) "
            "that calls hundreds of Describe/List APIs in minutes. CloudTrail marks them `readOnly: true`; GCP "
            "logs them in Data Access logs; Azure ARM GETs are not in the Activity Log, so Azure coverage comes "
            "from Graph activity logs, POST read actions (listKeys) and AKS audit logs."
        ),
        blind_spots=(
            *BASELINE_BLIND_SPOTS,
            "GCP Data Access logs are off by default, and AWS EventBridge rules see read-only calls only when "
            "enabled for all management events: without them reads are invisible (use the CloudTrail S3 path).",
            "Azure Resource Manager GET requests (`az group list`, portal browsing) are not in the Activity Log; "
            "only Graph activity logs, POST actions and AKS audit logs show Azure reads.",
            "A slow enumeration (below the threshold per window) or one spread over many identities is missed; "
            "discovery.unusual_services covers the slow case per identity.",
            "Container orchestration platforms other than Kubernetes (custom or less common ones) are not covered.",
            "Assumes logging is enabled in every account, subscription and project; a burst in an unlogged "
            "region or account is not seen.",
            "Office 365 / Google Workspace audit logs are not ingested: SaaS-side enumeration (mailboxes, "
            "SharePoint, Drive) is invisible; Entra reads are covered through Microsoft Graph activity logs.",
            "The ADS's other patterns (container provisioning, configuration changes, tampered images or "
            "pipelines) are not discovery and are left to the T1578.001 container and snapshot detections and to "
            "change monitoring.",
        ),
        false_positives=(
            "Scheduled automated deployment processes initiated by DevOps teams: CI/CD deploy roles describe many "
            "services during a deploy (suppress the deploy role by name, e.g. `arn:aws:iam::*:role/ci-deploy-*`).",
            "Security and inventory scanners (AWS Config, Security Hub, Defender for Cloud, Security Command "
            "Center, the organisation's own Prowler/ScoutSuite runs): their service roles ship suppressed; list "
            "your scanner roles in `suppressions`.",
            "Legitimate use of test and development environments: suppress those accounts or projects by "
            "`accounts:`.",
            "Administrators browsing the console, which loads many Describe calls per page.",
            "Kubernetes controllers and `system:` users read every resource type all day (suppressed by default).",
        ),
        priority=(
            "Medium alone; the ADS rates the technique High because discovery precedes data theft. Raised to "
            "CRITICAL by chain.discovery_then_snapshot when the same principal then snapshots or shares data."
        ),
        validation=(
            "AWS: `aws service-quotas list-service-quotas --service-code <code>` over several services, then a "
            "CloudSploit or ScoutSuite run (examples/aws/discovery_api_burst.jsonl).",
            'Azure: authenticate `az` with a service principal, run `az group list --query "[].{name:name}" '
            "--output table`, then MicroBurst / `microburst enumerate azuread --dump` which reads /users, /groups, "
            "/applications, /servicePrincipals, /directoryRoles via Graph (examples/azure/discovery_api_burst.jsonl).",
            "GCP: `gcloud compute instances list`, `gcloud storage ls`, `gcloud iam service-accounts list`, ... "
            "across services with Data Access logs on (examples/gcp/discovery_api_burst.jsonl).",
            "Kubernetes: `kubectl get pods,secrets,configmaps,deployments,services,roles -A` as a normal user "
            "(examples/kubernetes/discovery_api_burst.jsonl).",
        ),
        response=(
            "Verify the source and context: who is the principal (human, CI, scanner), is the source IP and user "
            "agent expected for it, and was a scan or deployment scheduled at that time.",
            "Investigate the credentials and access: how the principal authenticated (access key id, assumed-role "
            "session, sign-in log, service-account key), whether the key or token is new or used from a new place, "
            "and what the principal's permissions allow; rotate or revoke the credentials if not legitimate.",
            "Review recent configuration and deployment changes by the same principal (IAM, role trust, network, "
            "new keys) and what it did after the burst, especially snapshots, registries and secrets.",
            "Isolate affected workloads: if the calls came from a container or instance role, cordon the node or "
            "quarantine the pod/instance (network policy, security group) to stop further exfiltration.",
            "Tune: if legitimate, add a named suppression for the principal (or account/namespace) with a reason "
            "and an expiry, or raise `detections.discovery.api_burst.threshold` / `min_services`; never widen it "
            "to all principals.",
        ),
        data_sources=(
            "AWS CloudTrail management events (read-only)",
            "GCP Cloud Audit Logs: Data Access (ADMIN_READ, DATA_READ)",
            "Azure Activity Log, Microsoft Graph activity logs, Entra sign-in logs",
            "Kubernetes audit logs (EKS, AKS kube-audit, GKE)",
        ),
        references=(
            "https://attack.mitre.org/techniques/T1526/",
            "https://docs.aws.amazon.com/awscloudtrail/latest/userguide/logging-management-events-with-cloudtrail.html",
            "https://cloud.google.com/logging/docs/audit#data-access",
            "https://learn.microsoft.com/en-us/graph/microsoft-graph-activity-logs-overview",
            "https://kubernetes.io/docs/tasks/debug/debug-cluster/audit/",
            "https://github.com/nccgroup/ScoutSuite",
        ),
    ),
    actions=frozenset({DISCOVERY_READ, DISCOVERY_PERMISSION_PROBE}),
    evaluate=evaluate,
    params=Params,
    clouds=("aws", "azure", "gcp", "kubernetes"),
)
