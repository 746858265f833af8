"""Detection `discovery.k8s_permission_probe` (T1526 Cloud Service Discovery).

Bursts of SelfSubjectRulesReviews / SelfSubjectAccessReviews by a non-system
identity: `kubectl auth can-i --list` (a rules review) and `kubectl auth can-i
<verb> <resource>` loops (access reviews) ask the API server what the current
credentials may do, which is the first thing a stolen token is used for.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import Field

from adscore.actions import DISCOVERY_PERMISSION_PROBE
from adscore.detection import AdsMeta, Detection, DetectionParams, Finding
from adscore.detections._shared import episode_start, where, who

if TYPE_CHECKING:
    from collections.abc import Iterable

    from adscore.detection import Context
    from adscore.events import Event

DETECTION_ID = "discovery.k8s_permission_probe"


class Params(DetectionParams):
    """Parameters of `discovery.k8s_permission_probe`."""

    threshold: int = Field(
        default=3, ge=1, description="self-subject reviews (distinct requests) in the window"
    )
    list_namespaces: int = Field(default=2, ge=1, description="namespaces of `can-i --list` rules reviews")
    window_minutes: int = Field(default=10, ge=1, le=1440)
    episode_minutes: int = Field(default=60, ge=1, le=1440)
    ignore_principal_types: tuple[str, ...] = Field(
        default=("system",), description="`system:` users (kubelets, controllers) probe as part of their work"
    )


def evaluate(event: Event, ctx: Context) -> Iterable[Finding]:
    """Count self-subject reviews per identity; alert on a burst or on --list reviews over namespaces."""
    p: Params = ctx.params
    if event.cloud != "kubernetes" or event.outcome == "pending":
        return ()
    if event.principal.type in p.ignore_principal_types:
        return ()
    op = event.operation.lower()
    if "selfsubject" not in op:
        return ()
    rules = "selfsubjectrulesreviews" in op
    window = timedelta(minutes=p.window_minutes)
    base = f"{DETECTION_ID}|{event.principal.id}"
    reviews = ctx.state.add(f"{base}|reqs", (event.event_id,), ctx.now, window)
    list_ns = 0
    if rules:
        list_ns = ctx.state.add(f"{base}|list-ns", (event.namespace or "(cluster)",), ctx.now, window)
    if reviews < p.threshold and list_ns < p.list_namespaces:
        return ()
    start = episode_start(ctx.state, base, ctx.now, window, timedelta(minutes=p.episode_minutes))
    if list_ns >= p.list_namespaces:
        title = (
            f"`kubectl auth can-i --list` in {list_ns} namespaces ({reviews} reviews) in {p.window_minutes} min "
            f"by {who(event)}{where(event)}"
        )
    else:
        title = f"{reviews} permission self-reviews in {p.window_minutes} min by {who(event)}{where(event)}"
    summary = (
        f"Kubernetes identity {who(event)} ({event.principal.type}) asked the API server what it may do "
        f"{reviews} times within about {p.window_minutes} minutes ({list_ns} namespaces listed with rules "
        f"reviews; thresholds: {p.threshold} reviews or {p.list_namespaces} namespaces). Probing one's own "
        f"permissions is what a stolen kubeconfig or service-account token is used for first (T1526)."
    )
    return (
        Finding(
            entity=event.principal.id,
            window_start=start,
            title=title,
            summary=summary,
            events=(event,),
            count=reviews,
            context={
                "reviews": reviews,
                "rules_review_namespaces": list_ns,
                "threshold_reviews": p.threshold,
                "threshold_list_namespaces": p.list_namespaces,
                "window_minutes": p.window_minutes,
                "last_operation": event.operation[:120],
                "last_namespace": (event.namespace or "")[:120],
                "user_agent": (event.user_agent or "")[:200],
                "source_ip": event.source_ip,
            },
        ),
    )


DETECTION = Detection(
    id=DETECTION_ID,
    meta=AdsMeta(
        title="Kubernetes permission probing (kubectl auth can-i)",
        goal=(
            "Detect a Kubernetes identity enumerating its own permissions (`kubectl auth can-i --list`, "
            "SelfSubjectAccessReview loops), a discovery step of T1526 on container platforms."
        ),
        technique="T1526",
        technique_name="Cloud Service Discovery",
        tactic="Discovery",
        severity="medium",
        platforms=("Containers",),
        strategy=(
            "Count `create selfsubjectrulesreviews` and `create selfsubjectaccessreviews` audit events per "
            "non-system identity (distinct audit ids) within 10 minutes: alert at 3, or as soon as rules reviews "
            "(`--list`) cover 2 namespaces. `system:` users are ignored (kubelets and controllers review access "
            "as part of their work) and kube-system service accounts are suppressed by default."
        ),
        technical_context=(
            "`kubectl auth can-i --list -n <ns>` posts a SelfSubjectRulesReview; `kubectl auth can-i get secrets` "
            "posts a SelfSubjectAccessReview. Tools such as kubectl-who-can, rbac-police, Peirates and "
            "KubiScan automate both. Every authenticated identity may create them, so RBAC never blocks them and "
            "the audit log is the only trace."
        ),
        blind_spots=(
            "Audit policies that do not log authorization.k8s.io requests hide the probe.",
            "Probes through SubjectAccessReview by a privileged identity (impersonating others) are not counted.",
            "Container orchestration platforms other than Kubernetes are not covered.",
        ),
        false_positives=(
            "Scheduled automated deployment processes whose tooling checks permissions before applying "
            "(Helm, Argo CD pre-sync checks): suppress the deploy service account.",
            "IDE and dashboard plugins (Lens, k9s, the Kubernetes dashboard) that review permissions to draw menus.",
            "Legitimate use of test environments by developers learning RBAC.",
        ),
        priority="Medium: cheap for an attacker, rare for people; high value before exec or secret reads.",
        validation=(
            "`kubectl auth can-i --list -n default` then `-n kube-system` and `-n payments` with a low-privilege "
            "kubeconfig (examples/kubernetes/discovery_k8s_permission_probe.jsonl).",
        ),
        response=(
            "Verify the source and context: which user or service account, from which client (user agent) and "
            "IP; a pod's service account asking can-i is a strong sign of a compromised container.",
            "Investigate the credentials and access: where the token or kubeconfig came from, what the rules "
            "reviews returned (its RoleBindings), and what the identity did right after.",
            "Review recent configuration and deployment changes: new RoleBindings, service accounts or "
            "workloads around the time of the probe.",
            "Isolate affected containers: isolate the pod whose token was used (NetworkPolicy), rotate the "
            "service-account token, and cordon its node if exec or privilege escalation followed.",
            "Tune: suppress deployment tools and dashboards by principal, or raise `threshold` in development "
            "clusters.",
        ),
        data_sources=("Kubernetes audit logs (authorization.k8s.io self-subject reviews)",),
        references=(
            "https://attack.mitre.org/techniques/T1526/",
            "https://kubernetes.io/docs/reference/access-authn-authz/authorization/#checking-api-access",
            "https://kubernetes.io/docs/reference/kubernetes-api/authorization-resources/self-subject-rules-review-v1/",
        ),
    ),
    actions=frozenset({DISCOVERY_PERMISSION_PROBE}),
    evaluate=evaluate,
    params=Params,
    clouds=("kubernetes",),
)
