"""Detection `discovery.registry_enumeration` (T1526 Cloud Service Discovery).

One principal lists or describes many container repositories or images (ECR,
ACR, Artifact Registry / GCR) within minutes: mapping what the organisation
builds and ships, the ADS's "unexpected access to container registries". A
CI job pulls and pushes a handful of repositories; an enumeration walks them all.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import Field

from adscore import baseline
from adscore.actions import DISCOVERY_READ, is_registry_read
from adscore.baseline import BASELINE_BLIND_SPOTS, BaselineParams
from adscore.detection import AdsMeta, Detection, Finding
from adscore.detections._shared import episode_start, where, who

if TYPE_CHECKING:
    from collections.abc import Iterable

    from adscore.detection import Context
    from adscore.events import Event

DETECTION_ID = "discovery.registry_enumeration"


class Params(BaselineParams):
    """Parameters of `discovery.registry_enumeration` (the ``baseline_*`` ones: see :mod:`adscore.baseline`)."""

    threshold: int = Field(default=10, ge=1, description="distinct repositories/images read in the window")
    window_minutes: int = Field(default=10, ge=1, le=1440)
    episode_minutes: int = Field(default=60, ge=1, le=1440)
    per_call_operations: tuple[str, ...] = Field(
        default=(
            "ecr:DescribeImages",
            "ecr:ListImages",
            "ecr:DescribeImageScanFindings",
            "ecr:GetRepositoryPolicy",
            "ecr-public:DescribeImages",
        ),
        description=(
            "operations that read one repository per call: when the log names no repository, each call "
            "counts as one (pulls and repository listings without a name count once per operation)"
        ),
    )


def _members(event: Event, p: Params) -> tuple[str, ...]:
    """Distinct repositories or images the call read.

    When the parsed event names none: one member per call for the per-repository operations
    (``ecr:DescribeImages`` takes one ``repositoryName``), else the operation itself, so layer
    pulls and paginated listings never inflate the count.
    """
    ids = tuple(r.id for r in event.resources if r.id)
    if ids:
        return ids
    op = event.operation.lower()
    if any(op == c.lower() for c in p.per_call_operations):
        return (f"call:{event.operation}\x1f{event.event_id}",)
    return (f"op:{event.operation}",)


def _learned(members: Iterable[str]) -> set[str]:
    """What the baseline learns of window members: a per-call member (it never recurs) as its operation."""
    return {m.split("\x1f", 1)[0] if m.startswith("call:") else m for m in members}


def evaluate(event: Event, ctx: Context) -> Iterable[Finding]:
    """Count distinct registry repositories/images a principal reads; alert past the threshold."""
    p: Params = ctx.params
    if event.outcome == "pending" or not is_registry_read(event.cloud, event.operation):
        return ()
    window = timedelta(minutes=p.window_minutes)
    base = f"{DETECTION_ID}|{event.principal.id}"
    members = _members(event, p)
    count = ctx.state.add(base, members, ctx.now, window)
    learned = f"{base}|baseline"
    baseline.learn(ctx.state, learned, ctx.now, _learned(members), count, p, p.threshold)
    if count < p.threshold:
        return ()
    verdict = baseline.judge(ctx.state, learned, ctx.now, count, _learned(ctx.state.members(base, ctx.now, window)), p)
    if not verdict.alert:
        return ()
    start = episode_start(ctx.state, base, ctx.now, window, timedelta(minutes=p.episode_minutes))
    title = (
        f"{count} container repositories/images read in {p.window_minutes} min by {who(event)}{where(event)}"
    )
    summary = (
        f"{who(event)} ({event.principal.type}) listed or described {count} distinct container repositories or "
        f"images within about {p.window_minutes} minutes (threshold {p.threshold}); last: {event.operation[:120]} "
        f"from {(event.source_ip or 'unknown address')[:64]}. Walking a registry maps what the organisation builds "
        f"and can precede pulling images for secrets or planting a malicious one (T1526)."
    ) + verdict.note("repositories/images")
    return (
        Finding(
            entity=event.principal.id,
            window_start=start,
            title=title,
            summary=summary,
            events=(event,),
            count=count,
            context={
                "distinct_repositories_or_images": count,
                "threshold": p.threshold,
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
        title="Container registry enumeration",
        goal=(
            "Detect an identity enumerating container registries (repositories and images in ECR, ACR, Artifact "
            "Registry or GCR): unexpected access to container registries, a T1526 discovery step that precedes "
            "image theft or tampering."
        ),
        technique="T1526",
        technique_name="Cloud Service Discovery",
        tactic="Discovery",
        severity="medium",
        platforms=("IaaS", "Containers"),
        strategy=(
            "Select registry reads (ECR DescribeRepositories/DescribeImages/ListImages/BatchGetImage, ACR "
            "registries and repositories reads and listCredentials, Artifact Registry List*/Get* and GCR reads: "
            "`actions.is_registry_read`) and count, per principal, the distinct repositories or images they name "
            "within 10 minutes. When the log names none, a per-repository call (ECR DescribeImages, ListImages) "
            "counts once per call and any other read once per operation, so image pulls with many layers never "
            "add up. Alert at 10."
            " Per-identity baseline: each principal's day is learned in the state store (the members "
            "it used that day, and its busiest window), kept baseline_days (14) days; an assumed-role session is "
            "learned under its role, the principal id. A window above the floor alerts while the principal has "
            "fewer than baseline_min_days (2) learned days before the window's own UTC day; after that only when "
            "its count, with every repository or image the principal never used in those days counted new_weight "
            "(4) times, exceeds baseline_factor (2) times its busiest learned window. A CI or scanner role that "
            "makes the same broad sweep every ten minutes is then quiet, and the same role's credentials used for"
            " repositories it never touches fire. baseline_days: 0 restores the fixed thresholds."
        ),
        technical_context=(
            "Images carry source, configuration and often secrets; knowing the repositories tells an adversary "
            "what runs where and which image to backdoor. `aws ecr describe-repositories` followed by "
            "`describe-images` per repository, `az acr repository list`, or `gcloud artifacts docker images list` "
            "over every repository leave one read per repository."
        ),
        blind_spots=(
            *BASELINE_BLIND_SPOTS,
            "Registry data-plane pulls (docker pull) are logged only where the provider logs them (ECR yes, ACR "
            "with diagnostic settings, Artifact Registry with Data Access logs).",
            "Public registries and registries outside the logged accounts are invisible.",
            "Custom or self-hosted registries (Harbor, Quay, Nexus) are not covered.",
        ),
        false_positives=(
            "Routine updates and patches to container images by trusted developers and CI: a build pushes and "
            "pulls a few repositories (stays under the threshold); suppress the CI role if it builds many.",
            "Scheduled automated deployment processes that resolve many image digests (Argo CD Image Updater, "
            "Renovate): suppress by principal.",
            "Image scanners (ECR enhanced scanning via Inspector, Defender for Containers, Artifact Analysis) "
            "walk every repository: their service identities ship suppressed.",
            "Legitimate use of test environments with many throw-away repositories: suppress those accounts.",
        ),
        priority="Medium: registries are high-value; a sweep by a non-CI identity deserves a look.",
        validation=(
            "AWS: `aws ecr describe-repositories` then `aws ecr describe-images --repository-name <r>` for a dozen "
            "repositories (examples/aws/discovery_registry_enumeration.jsonl).",
        ),
        response=(
            "Verify the source and context: is the principal a build or deploy identity, and does the set of "
            "repositories match its job?",
            "Investigate the credentials and access: which key or token, from where; check registry "
            "authorization tokens issued (ecr:GetAuthorizationToken, ACR token exchanges) and images pulled.",
            "Review recent configuration and deployment changes: pushes of new tags, changed repository "
            "policies, replication rules or pipelines that reference new images.",
            "Isolate affected containers: stop deployments of images pushed by the principal since the sweep and "
            "quarantine workloads already running them.",
            "Tune: suppress known build and scanner identities by principal, or raise `threshold` for "
            "organisations with many repositories per pipeline.",
        ),
        data_sources=(
            "AWS CloudTrail (ecr.amazonaws.com)",
            "Azure Activity Log / ACR diagnostic logs",
            "GCP Cloud Audit Logs for Artifact Registry (Data Access)",
        ),
        references=(
            "https://attack.mitre.org/techniques/T1526/",
            "https://docs.aws.amazon.com/AmazonECR/latest/userguide/logging-using-cloudtrail.html",
            "https://cloud.google.com/artifact-registry/docs/audit-logging",
            "https://learn.microsoft.com/en-us/azure/container-registry/monitor-service-reference",
        ),
    ),
    actions=frozenset({DISCOVERY_READ}),
    evaluate=evaluate,
    params=Params,
    clouds=("aws", "azure", "gcp"),
)
