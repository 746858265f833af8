"""``container.snapshot``: a Docker container committed to an image, exported, or an image saved to a tar.

``docker commit`` freezes a container's state (with whatever an intruder left or
took in it); ``docker export`` and ``docker save`` write a whole filesystem or image
to a tar that can leave the host. Engine events carry no user: the principal is
the host, and attribution needs another source (auditd, shell history).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from adscore.actions import CONTAINER_COMMIT, CONTAINER_EXPORT, CONTAINER_SAVE
from adscore.detection import AdsMeta, Detection, DetectionParams, Finding, Severity

if TYPE_CHECKING:
    from collections.abc import Iterable

    from adscore.detection import Context
    from adscore.events import Event

DETECTION_ID = "container.snapshot"
_VERBS = {
    CONTAINER_COMMIT: "committed to an image",
    CONTAINER_SAVE: "saved to a tar",
    CONTAINER_EXPORT: "exported to a tar",
}


class Params(DetectionParams):
    """Parameters of ``container.snapshot``.

    Attributes
    ----------
    commit_severity : str
        Severity of a ``docker commit`` (state captured on the host).
    archive_severity : str
        Severity of ``docker save`` / ``docker export`` (a tar that can leave the host).
    """

    commit_severity: Severity = Field(default="medium", description="severity of a docker commit")
    archive_severity: Severity = Field(default="high", description="severity of docker save / docker export")


def _short(resource_id: str) -> str:
    rid = resource_id.removeprefix("sha256:")
    return rid[:12] if len(rid) == 64 and all(c in "0123456789abcdef" for c in rid) else resource_id[:120]


def evaluate(event: Event, ctx: Context) -> Iterable[Finding]:
    """Alert on every container commit, export or image save.

    Parameters
    ----------
    event : Event
        A Docker ``container commit``, ``container export`` or ``image save`` event.
    ctx : Context
        Params (severities) and event time.

    Returns
    -------
    Iterable[Finding]
        One finding per host, container or image, and hour.
    """
    params: Params = ctx.params
    if event.outcome in ("failure", "denied"):
        return
    host = event.principal.name or event.principal.id
    subject_res = event.resources_by_role("source") or event.resources_by_role("target") or event.resources
    subject = subject_res[0] if subject_res else None
    subject_id = subject.id if subject else "unknown"
    subject_type = subject.type if subject else "container"
    created = event.resources_by_role("created")
    verb = _VERBS.get(event.action or "", "snapshotted")
    severity = params.commit_severity if event.action == CONTAINER_COMMIT else params.archive_severity
    where = f" (pod namespace {event.namespace})" if event.namespace else ""
    title = f"{subject_type.capitalize()} {_short(subject_id)} {verb} on host {host[:120]}{where}"
    summary = (
        f"Docker on host {host[:120]} reported '{event.operation}' for {subject_type} {subject_id[:200]}"
        + (f", creating image {created[0].id[:100]}" if created else "")
        + ". A commit freezes a container's state, including what an intruder changed or collected in it; "
        "save and export write a full filesystem or image to a tar that can be carried off the host. "
        "Docker events carry no user: find who ran docker on the host (auditd rules on the docker socket "
        "and binary, shell history, sudo logs) before drawing conclusions."
    )
    yield Finding(
        entity=f"{event.principal.id}|{subject_id}",
        window_start=event.time.replace(minute=0, second=0, microsecond=0),
        title=title,
        summary=summary,
        events=(event,),
        severity=severity,
        context={
            "host": host[:200],
            "operation": event.operation,
            "subject": subject_id[:300],
            "created_image": created[0].id[:300] if created else None,
            "namespace": event.namespace,
            "attribution": "none in Docker events: correlate with auditd / shell history on the host",
        },
    )


_RESPONSE = (
    "Isolate the container and the host: `docker pause <container>` (keeps memory for forensics), or "
    "disconnect it (`docker network disconnect <net> <container>`); cordon the node if it is a Kubernetes "
    "worker (`kubectl cordon <node>`).",
    "Find who ran docker on the host: `ausearch -k docker -ts <time>` (auditd rule on /usr/bin/docker and "
    "/var/run/docker.sock), `journalctl -u docker --since <time>`, shell histories and `last`/sudo logs.",
    "Inspect what was captured: `docker image history --no-trunc <image>`, `docker image inspect <image>`, "
    "`docker diff <container>`; for save/export, look for the tar on disk (`find / -newer ... -name '*.tar*'`) "
    "and outbound transfers from the host.",
    "Forensic analysis: keep the committed image and tar as evidence (`docker save` to a forensics store), "
    "compare the container's filesystem with its original image for tampering.",
    "Review access controls: who may reach the Docker socket (docker group membership, mounted sockets in containers) and "
    "update the IR plan; allowlist CI build hosts whose builds commit containers (allowlists.principals "
    "`docker-host:<ci-host>`).",
)

DETECTION = Detection(
    id=DETECTION_ID,
    meta=AdsMeta(
        title="Docker container committed, exported or image saved",
        goal=(
            "Detect container snapshots (docker commit, save, export) on hosts where they are not part of a "
            "known build, as used to capture or carry off a container's state."
        ),
        technique="T1578.001",
        technique_name="Create Snapshot",
        tactic="Defense Evasion",
        severity="medium",
        platforms=("Containers", "IaaS"),
        strategy=(
            "ADS 'container lifecycle events': every Docker engine commit, export and image save event alerts "
            "(save and export higher: the tar can leave the host). Repeated commits of one container also "
            "feed snapshot.burst's per-source count."
        ),
        technical_context=(
            "The ADS emulation: `docker commit $(docker ps | grep test-pod | awk '{print $1}') snapshot-test` "
            "and `docker save <image> | gzip > image.tar.gz`. The engine emits a `container commit` event "
            "(Actor = container) and an `image save` event (Actor = image); `docker export` emits "
            "`container export`."
        ),
        blind_spots=(
            "Docker events carry no user: the alert names the host; attribution needs auditd or shell history.",
            "Hosts whose engine events are not shipped, and containers not centrally managed.",
            "containerd/CRI-O snapshots (ctr, nerdctl, crictl) do not appear as Docker events.",
            "Copying files out with `docker cp` or a bind mount leaves no commit/save/export event.",
        ),
        false_positives=(
            "Automated testing and CI pipelines: the legacy builder commits a container per build step; "
            "allowlist CI hosts (`docker-host:ci-*`).",
            "Regular backup operations by IT teams that save images to a registry mirror or archive.",
            "Debugging sessions where an engineer commits a broken container to inspect it.",
        ),
        priority="Medium (ADS) for commit; high for save and export.",
        validation=(
            "`docker commit <container> snapshot-test` (examples/docker/container_snapshot.jsonl).",
            "`docker save snapshot-test | gzip > image.tar.gz` (same file).",
        ),
        response=_RESPONSE,
        data_sources=(
            "Docker engine events (`docker events`, shipped with the host name)",
            "Host auditd logs (attribution)",
        ),
        references=(
            "https://attack.mitre.org/techniques/T1578/001/",
            "https://docs.docker.com/reference/cli/docker/system/events/",
            "https://docs.docker.com/reference/cli/docker/container/commit/",
            "https://docs.docker.com/reference/cli/docker/image/save/",
        ),
    ),
    actions=frozenset({CONTAINER_COMMIT, CONTAINER_SAVE, CONTAINER_EXPORT}),
    evaluate=evaluate,
    params=Params,
    clouds=("docker",),
)
