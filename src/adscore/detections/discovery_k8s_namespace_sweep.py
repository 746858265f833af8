"""Detection `discovery.k8s_namespace_sweep` (T1526 Cloud Service Discovery).

One Kubernetes identity lists or gets resources in many namespaces within
minutes, or is forbidden in several: `kubectl get ... -n <ns>` walked over
the cluster, the ADS's "kubectl commands to access unauthorized namespaces".
Controllers and `system:` users do this all day and are suppressed by default.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import Field

from adscore import baseline
from adscore.actions import DISCOVERY_READ
from adscore.baseline import BASELINE_BLIND_SPOTS, BaselineParams
from adscore.detection import AdsMeta, Detection, Finding
from adscore.detections._shared import episode_start, where, who

if TYPE_CHECKING:
    from collections.abc import Iterable

    from adscore.detection import Context
    from adscore.events import Event

DETECTION_ID = "discovery.k8s_namespace_sweep"


class Params(BaselineParams):
    """Parameters of `discovery.k8s_namespace_sweep` (the ``baseline_*`` ones: see :mod:`adscore.baseline`).

    The baseline quiets only the read sweep: namespaces where the identity is forbidden always count.
    """

    threshold: int = Field(default=5, ge=1, description="distinct namespaces read in the window")
    forbidden_threshold: int = Field(
        default=3, ge=1, description="distinct namespaces where reads were forbidden"
    )
    window_minutes: int = Field(default=10, ge=1, le=1440)
    episode_minutes: int = Field(default=60, ge=1, le=1440)
    verbs: tuple[str, ...] = Field(default=("get", "list"))


def evaluate(event: Event, ctx: Context) -> Iterable[Finding]:
    """Count the namespaces a Kubernetes identity reads in, and those it is forbidden in."""
    p: Params = ctx.params
    if event.cloud != "kubernetes" or not event.namespace or event.outcome == "pending":
        return ()
    verb = event.operation.split(" ", 1)[0].lower()
    if verb not in p.verbs:
        return ()
    window = timedelta(minutes=p.window_minutes)
    base = f"{DETECTION_ID}|{event.principal.id}"
    namespaces = ctx.state.add(f"{base}|ns", (event.namespace,), ctx.now, window)
    forbidden = 0
    if event.outcome == "denied":
        forbidden = ctx.state.add(f"{base}|forbidden", (event.namespace,), ctx.now, window)
    learned = f"{base}|baseline"
    baseline.learn(ctx.state, learned, ctx.now, (event.namespace,), namespaces, p, p.threshold)
    swept = namespaces >= p.threshold
    probed = forbidden >= p.forbidden_threshold
    if not (swept or probed):
        return ()
    verdict = None
    if swept and not probed:
        verdict = baseline.judge(ctx.state, learned, ctx.now, namespaces, ctx.state.members(f"{base}|ns", ctx.now, window), p)
        if not verdict.alert:
            return ()
    start = episode_start(ctx.state, base, ctx.now, window, timedelta(minutes=p.episode_minutes))
    if probed:
        title = (
            f"Forbidden in {forbidden} namespaces ({namespaces} tried) in {p.window_minutes} min "
            f"by {who(event)}{where(event)}"
        )
    else:
        title = (
            f"Reads across {namespaces} namespaces in {p.window_minutes} min by {who(event)}{where(event)}"
        )
    summary = (
        f"Kubernetes identity {who(event)} ({event.principal.type}) listed or read resources in {namespaces} "
        f"namespaces within about {p.window_minutes} minutes and was forbidden in {forbidden} of them "
        f"(thresholds: {p.threshold} namespaces, {p.forbidden_threshold} forbidden). Last: {event.operation[:80]} "
        f"in {event.namespace[:80]} -> {event.error_code or event.outcome}. Walking namespaces, especially ones "
        f"the identity has no RBAC for, is cluster discovery (T1526)."
    ) + (verdict.note("namespaces") if verdict is not None else "")
    return (
        Finding(
            entity=event.principal.id,
            window_start=start,
            title=title,
            summary=summary,
            events=(event,),
            count=max(namespaces, forbidden),
            severity="high" if probed else None,
            context={
                "namespaces": namespaces,
                "forbidden_namespaces": forbidden,
                "threshold_namespaces": p.threshold,
                "threshold_forbidden": p.forbidden_threshold,
                "window_minutes": p.window_minutes,
                "last_namespace": event.namespace[:120],
                "last_operation": event.operation[:120],
                "user_agent": (event.user_agent or "")[:200],
                "source_ip": event.source_ip,
                **(verdict.context() if verdict is not None else {}),
            },
        ),
    )


DETECTION = Detection(
    id=DETECTION_ID,
    meta=AdsMeta(
        title="Kubernetes identity sweeps namespaces",
        goal=(
            "Detect a Kubernetes user or service account reading across many namespaces, or trying namespaces it "
            "is not authorized for (T1526 Cloud Service Discovery on container platforms)."
        ),
        technique="T1526",
        technique_name="Cloud Service Discovery",
        tactic="Discovery",
        severity="medium",
        platforms=("Containers", "IaaS"),
        strategy=(
            "From Kubernetes audit events (EKS, AKS kube-audit, GKE, self-managed webhooks), count per identity "
            "the distinct namespaces of its get/list requests within 10 minutes (alert at 5) and, separately, "
            "the namespaces where those requests were forbidden (403, `authorization.k8s.io/decision: forbid`; "
            "alert at 3, HIGH). Cluster-scoped lists (`-A`) are one request and do not count."
            " Per-identity baseline: each principal's day is learned in the state store (the members "
            "it used that day, and its busiest window), kept baseline_days (14) days; an assumed-role session is "
            "learned under its role, the principal id. A window above the floor alerts while the principal has "
            "fewer than baseline_min_days (2) learned days before the window's own UTC day; after that only when "
            "its count, with every namespace the principal never used in those days counted new_weight (4) times,"
            " exceeds baseline_factor (2) times its busiest learned window. A CI or scanner role that makes the "
            "same broad sweep every ten minutes is then quiet, and the same role's credentials used for "
            "namespaces it never touches fire. baseline_days: 0 restores the fixed thresholds. Only the read "
            "sweep is baselined: namespaces where the identity is forbidden always count at their own threshold."
        ),
        technical_context=(
            "After stealing a kubeconfig or a pod's service-account token, an adversary runs `kubectl get pods, "
            "secrets, configmaps -n <ns>` over the namespaces it can guess to see what the cluster runs and what "
            "the token may read. Forbidden responses are as telling as successes. `system:` users, kube-system "
            "service accounts and managed-service identities (eks:*, aksService) read everywhere legitimately and "
            "are suppressed by the shipped `kubernetes-control-plane` and `kubernetes-system-users` rules."
        ),
        blind_spots=(
            *BASELINE_BLIND_SPOTS,
            "Audit policies that drop get/list at Metadata level or exclude read verbs hide the sweep.",
            "One cluster-wide `kubectl get pods -A` is a single request and does not count as a sweep.",
            "Container orchestration platforms other than Kubernetes (custom or less common ones) are not covered.",
            "A compromised controller service account in kube-system is suppressed by default.",
        ),
        false_positives=(
            "Scheduled automated deployment processes: a CI/CD service account (Argo CD, Flux, a deploy job) "
            "that applies manifests to many namespaces: suppress it by principal or namespace.",
            "Monitoring and security agents running as service accounts outside kube-system (Prometheus, "
            "Datadog, Falco): suppress them by principal.",
            "Legitimate use of test environments: platform engineers inspecting many ephemeral namespaces in a "
            "dev cluster.",
        ),
        priority="Medium for reads; High when the identity is forbidden in several namespaces.",
        validation=(
            "As a user bound to one namespace only, run `kubectl get pods -n <ns>` and `kubectl get secrets -n "
            "<ns>` for kube-system, default, payments, monitoring, prod (403s in each; "
            "examples/kubernetes/discovery_k8s_namespace_sweep.jsonl).",
        ),
        response=(
            "Verify the source and context: who is the user (kubeconfig owner, OIDC subject, pod service "
            "account), from which source IP and user agent (kubectl version, client library).",
            "Investigate the credentials and access: where the kubeconfig or token came from, its RoleBindings "
            "and ClusterRoleBindings, and whether it was used outside its usual pod or workstation.",
            "Review recent configuration and deployment changes: new RoleBindings, service accounts, tokens or "
            "workloads created by the same identity.",
            "Isolate affected containers: if a pod's service account made the calls, cordon its node, isolate "
            "the pod with a deny-all NetworkPolicy and delete its token secret.",
            "Tune: suppress deployment and monitoring service accounts by `principals:` or `namespaces:`, or "
            "raise `threshold` for large multi-tenant clusters.",
        ),
        data_sources=("Kubernetes audit logs (EKS control plane logs, AKS kube-audit, GKE audit logs)",),
        references=(
            "https://attack.mitre.org/techniques/T1526/",
            "https://kubernetes.io/docs/tasks/debug/debug-cluster/audit/",
            "https://docs.aws.amazon.com/eks/latest/userguide/control-plane-logs.html",
            "https://learn.microsoft.com/en-us/azure/aks/monitor-aks-reference",
        ),
    ),
    actions=frozenset({DISCOVERY_READ}),
    evaluate=evaluate,
    params=Params,
    clouds=("kubernetes",),
)
