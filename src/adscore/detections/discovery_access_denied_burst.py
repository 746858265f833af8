"""Detection `discovery.access_denied_burst` (T1526 Cloud Service Discovery).

One principal collects many denied calls across several services or
namespaces in a short time: credentials being tried against everything to see
what they may do (enumerate-iam, Pacu, WeirdAAL, `kubectl` into namespaces it
has no access to). The engine routes every denied event here
(:data:`adscore.actions.OUTCOME_DENIED`), whatever its action.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import Field

from adscore import baseline
from adscore.actions import OUTCOME_DENIED
from adscore.baseline import BASELINE_BLIND_SPOTS, BaselineParams
from adscore.detection import AdsMeta, Detection, Finding
from adscore.detections._shared import episode_start, where, who
from adscore.state.base import fit_part

if TYPE_CHECKING:
    from collections.abc import Iterable

    from adscore.detection import Context
    from adscore.events import Event

DETECTION_ID = "discovery.access_denied_burst"


class Params(BaselineParams):
    """Parameters of `discovery.access_denied_burst` (the ``baseline_*`` ones: see :mod:`adscore.baseline`)."""

    threshold: int = Field(default=10, ge=1, description="denied calls (distinct event ids)")
    min_scopes: int = Field(default=3, ge=1, description="distinct services or Kubernetes namespaces")
    window_minutes: int = Field(default=10, ge=1, le=1440)
    episode_minutes: int = Field(default=60, ge=1, le=1440)
    single_api_threshold: int = Field(
        default=15, ge=2, description="denied calls of one operation (distinct event ids) that alert on their own"
    )
    single_api_seconds: int = Field(
        default=15, ge=1, le=3600, description="window of the one-operation count: a fast stream, not a retrying job"
    )


_SEP = "\x1f"


def _member(event: Event) -> str:
    """One denied call: its service and namespace (the scopes it spans) and its event id.

    Counting event ids makes redelivered logs harmless; carrying the scopes in the member keeps
    one set per principal (the scopes are read off it once the call threshold is reached). Each
    part is canonicalized (:func:`~adscore.state.base.fit_part`) so the member stays short enough
    to be stored as written and split again: a 300-character namespace counts as one scope.
    """
    return _SEP.join((fit_part(event.service or "unknown"), fit_part(event.namespace or ""), fit_part(event.event_id)))


def _scopes(members: Iterable[str]) -> int:
    """Distinct services and Kubernetes namespaces the denied calls span (unsplittable members are skipped)."""
    return len(_scope_set(members))


def _event_scopes(event: Event) -> tuple[str, ...]:
    """The scopes of one denied call, as :func:`_scope_set` names them (what the baseline learns)."""
    service = f"svc:{fit_part(event.service or 'unknown')}"
    return (service, f"ns:{fit_part(event.namespace)}") if event.namespace else (service,)


def _scope_set(members: Iterable[str]) -> set[str]:
    """The services (``svc:``) and Kubernetes namespaces (``ns:``) the denied calls span."""
    scopes: set[str] = set()
    for m in members:
        parts = m.split(_SEP, 2)
        if len(parts) != 3:  # written by another version, or stored hashed: never let it stop the count
            continue
        service, namespace, _ = parts
        scopes.add(f"svc:{service}")
        if namespace:
            scopes.add(f"ns:{namespace}")
    return scopes


def _one_operation_stream(event: Event, ctx: Context, p: Params, base: str) -> Iterable[Finding]:
    """A fast stream of denials of one operation: a sweep of one sensitive read (userData, passwords).

    Seen in real enumeration runs: 15 denied ``DescribeInstanceAttribute`` (userData) in 7 s and 30
    denied ``GetPasswordData`` in 11 s by one identity, one service, so the cross-service count
    never fires. A job missing a permission fails once per run (SDKs do not retry a denial), so 15
    in 15 seconds is a loop over resources, not a schedule.
    """
    window = timedelta(seconds=p.single_api_seconds)
    key = f"{base}|op|{fit_part(event.operation)}"
    count = ctx.state.add(key, (fit_part(event.event_id),), ctx.now, window)
    if count < p.single_api_threshold:
        return ()
    start = episode_start(ctx.state, key, ctx.now, window, timedelta(minutes=p.episode_minutes))
    code = (event.error_code or "denied")[:64]
    return (
        Finding(
            entity=f"{event.principal.id}|{event.operation[:200]}",
            window_start=start,
            title=f"{count} denied {event.operation[:120]} calls in {p.single_api_seconds} s by {who(event)}{where(event)}",
            summary=(
                f"{who(event)} ({event.principal.type}) was refused {count} times on {event.operation[:120]} "
                f"within {p.single_api_seconds} seconds (threshold {p.single_api_threshold}) -> {code}. A fast "
                "stream of denials on one API is a sweep of one sensitive read across resources (instance user "
                "data, passwords, secrets) with credentials that lack it (T1526)."
            ),
            events=(event,),
            count=count,
            context={
                "denied_calls": count,
                "operation": event.operation[:200],
                "threshold_single_api": p.single_api_threshold,
                "window_seconds": p.single_api_seconds,
                "last_error_code": code,
                "user_agent": (event.user_agent or "")[:200],
                "source_ip": event.source_ip,
            },
        ),
    )


def evaluate(event: Event, ctx: Context) -> Iterable[Finding]:
    """Count the principal's denied calls and the services/namespaces they span."""
    p: Params = ctx.params
    if event.outcome != "denied":
        return ()
    window = timedelta(minutes=p.window_minutes)
    base = f"{DETECTION_ID}|{event.principal.id}"
    found = list(_one_operation_stream(event, ctx, p, base))
    key = f"{base}|calls"
    denied = ctx.state.add(key, (_member(event),), ctx.now, window)
    learned = f"{base}|baseline"
    baseline.learn(ctx.state, learned, ctx.now, _event_scopes(event), denied, p, p.threshold)
    if denied < p.threshold:
        return found
    calls = ctx.state.members(key, ctx.now, window)
    scope_set = _scope_set(calls)
    scopes = len(scope_set)
    if scopes < p.min_scopes:
        return found

    def on_new_scopes(known: frozenset[str]) -> int:
        """Denied calls in a service or namespace the principal was never refused in before."""
        return sum(1 for call in calls if not _scope_set((call,)) <= known)

    verdict = baseline.judge(ctx.state, learned, ctx.now, denied, scope_set, p, on_new_scopes)
    if not verdict.alert:
        return found
    start = episode_start(ctx.state, base, ctx.now, window, timedelta(minutes=p.episode_minutes))
    code = (event.error_code or "denied")[:64]
    title = f"{denied} denied calls across {scopes} services/namespaces in {p.window_minutes} min by {who(event)}{where(event)}"
    summary = (
        f"{who(event)} ({event.principal.type}) was refused {denied} times across {scopes} distinct services or "
        f"namespaces within about {p.window_minutes} minutes (thresholds: {p.threshold} denials, {p.min_scopes} "
        f"scopes); last: {event.operation[:120]} -> {code}. Credentials that probe what they may do across the "
        f"estate are a classic sign of discovery with stolen or newly created credentials (T1526)."
    ) + verdict.note("denied calls", "services/namespaces denied")
    return (
        *found,
        Finding(
            entity=event.principal.id,
            window_start=start,
            title=title,
            summary=summary,
            events=(event,),
            count=denied,
            context={
                "denied_calls": denied,
                "distinct_scopes": scopes,
                "threshold_denied": p.threshold,
                "threshold_scopes": p.min_scopes,
                "window_minutes": p.window_minutes,
                "last_error_code": code,
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
        title="Burst of access-denied calls across services or namespaces",
        goal=(
            "Detect an identity probing many services or namespaces and being refused (T1526 Cloud Service "
            "Discovery): credentials tested against everything to learn what they can reach."
        ),
        technique="T1526",
        technique_name="Cloud Service Discovery",
        tactic="Discovery",
        severity="high",
        platforms=("IaaS", "Azure AD", "SaaS", "Containers"),
        strategy=(
            "Every denied event (AWS AccessDenied*, UnauthorizedOperation, Client.UnauthorizedOperation; GCP "
            "PERMISSION_DENIED; Azure AuthorizationFailed and Graph 403; Kubernetes 403 Forbidden) is counted per "
            "principal by event id within 10 minutes, together with the distinct services (and Kubernetes "
            "namespaces) the denials span. Alert at 10 denials across 3 services or namespaces: a misconfigured "
            "application fails on one call repeatedly, an enumeration fails everywhere. Apart from that, a fast "
            "stream on one operation alerts on its own: 15 denials of one operation within 15 seconds "
            "(`single_api_threshold`, `single_api_seconds`). Two real enumeration runs were refused 15 "
            "DescribeInstanceAttribute (userData) calls in 7 s and 30 GetPasswordData calls in 11 s, one service "
            "each, and raised nothing before; a job missing a permission fails once per run (SDKs do not retry "
            "a denial), so 15 in 15 seconds is a loop over resources, not a schedule."
            " Per-identity baseline: each principal's day is learned in the state store (the services "
            "and namespaces it was refused in that day, and its busiest window), kept baseline_days (14) days; an"
            " assumed-role session is learned under its role, the principal id. A window above the floor alerts "
            "while the principal has fewer than baseline_min_days (2) learned days before the window's own UTC "
            "day; after that only when its count, with every denied call in a service or namespace the principal "
            "never used in those days counted new_weight (4) times, exceeds baseline_factor (2) times its busiest"
            " learned window. A CI or scanner role that makes the same broad sweep every ten minutes is then "
            "quiet, and the same role's credentials used for services or namespaces it never touches fire. "
            "baseline_days: 0 restores the fixed thresholds. The one-operation stream is not baselined."
        ),
        technical_context=(
            "Tools such as enumerate-iam, Pacu's iam__bruteforce_permissions, WeirdAAL and CloudFox call one API "
            "of every service to map permissions; `kubectl get` into namespaces the user has no RBAC for returns "
            "403 and is audited with `authorization.k8s.io/decision: forbid`. The ADS emulation "
            "'use kubectl commands to access unauthorized namespaces' produces exactly this."
        ),
        blind_spots=(
            *BASELINE_BLIND_SPOTS,
            "Denials the provider does not log (some data-plane APIs, S3 object reads without data events) are "
            "not counted.",
            "A patient adversary who stays under 10 denials per window, or spreads them over several identities, "
            "is missed.",
            "Custom or less common container orchestration platforms are not covered, only Kubernetes audit logs.",
            "Assumes audit logging is enabled everywhere; GCP Data Access denials need Data Access logs.",
        ),
        false_positives=(
            "Scheduled automated deployment processes (CI/CD roles) that hit missing permissions after a "
            "policy change fail repeatedly across services: suppress the deploy role, fix the policy.",
            "Security scanners running with too few permissions (ReadOnly without some services).",
            "Legitimate use of test or development environments where permissions are being tried out: "
            "suppress those accounts by `accounts:`.",
            "Routine updates by trusted developers whose new tooling lacks permissions in some namespaces.",
        ),
        priority="High: repeated denials across services rarely come from working software.",
        validation=(
            "Kubernetes: as a user with rights in one namespace only, `kubectl get pods,secrets -n <ns>` in "
            "several other namespaces (403s; examples/kubernetes/discovery_access_denied_burst.jsonl).",
            "AWS: with a low-privilege key run an enumeration script that calls Describe/List on many services "
            "(AccessDenied, UnauthorizedOperation; examples/aws/discovery_access_denied_burst.jsonl).",
        ),
        response=(
            "Verify the source and context: is this identity expected to call these services, from this IP and "
            "user agent, now? Look for the enumeration tool in the user agent.",
            "Investigate the credentials and access: which key, token or service account was used, where it was "
            "created or leaked, and whether any call among the denials succeeded (those show what was reached).",
            "Review recent configuration and deployment changes: a new policy, role binding or deployment that "
            "explains the failures, or a new key/SA the attacker created.",
            "Isolate affected containers or hosts: if the identity is a pod's service account or an instance "
            "role, quarantine that workload and revoke its token.",
            "Tune: suppress a known misconfigured job by principal with a reason and expiry (and fix its "
            "permissions), or raise `threshold`/`min_scopes` for noisy environments.",
        ),
        data_sources=(
            "AWS CloudTrail (errorCode)",
            "GCP Cloud Audit Logs (status.code 7)",
            "Azure Activity Log, Microsoft Graph activity logs",
            "Kubernetes audit logs (responseStatus.code 403)",
        ),
        references=(
            "https://attack.mitre.org/techniques/T1526/",
            "https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html",
            "https://kubernetes.io/docs/reference/access-authn-authz/authorization/",
            "https://cloud.google.com/logging/docs/audit/understanding-audit-logs",
        ),
    ),
    actions=frozenset({OUTCOME_DENIED}),
    evaluate=evaluate,
    params=Params,
    clouds=("aws", "azure", "gcp", "kubernetes"),
)
