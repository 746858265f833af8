"""``container.snapshot``: a Docker container committed to an image, exported, or an image saved to a tar.

``docker commit`` freezes a container's state (with whatever an intruder left or
took in it); ``docker export`` and ``docker save`` write a whole filesystem or image
to a tar that can leave the host. Engine events carry no user: the principal is
the host, unless ``adscore forward docker`` found the user in the host's audit log.
Events from the forwarder also summarize the container's filesystem changes against
its image (``docker.changes.*`` tags): a commit or export that captured data, backup
or secret paths is raised to ``sensitive_commit_severity`` / ``sensitive_archive_severity``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from adscore.actions import CONTAINER_COMMIT, CONTAINER_EXPORT, CONTAINER_SAVE
from adscore.detection import AdsMeta, Detection, DetectionParams, Finding, Severity
from adscore.sources.docker import CHANGE_TAGS, MAX_CHANGE_PATHS

if TYPE_CHECKING:
    from collections.abc import Iterable

    from adscore.detection import Context
    from adscore.events import Event

DETECTION_ID = "container.snapshot"
_KIND_WORDS = {"A": "added", "C": "changed", "D": "deleted"}
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
    sensitive_commit_severity, sensitive_archive_severity : str
        The same when the forwarder's change summary shows data, backup or secret paths changed.
    """

    commit_severity: Severity = Field(default="medium", description="severity of a docker commit")
    archive_severity: Severity = Field(default="high", description="severity of docker save / docker export")
    sensitive_commit_severity: Severity = Field(
        default="high", description="severity of a docker commit whose changes touch data, backup or secret paths"
    )
    sensitive_archive_severity: Severity = Field(
        default="critical", description="severity of a docker export whose changes touch data, backup or secret paths"
    )


def _short(resource_id: str) -> str:
    rid = resource_id.removeprefix("sha256:")
    return rid[:12] if len(rid) == 64 and all(c in "0123456789abcdef" for c in rid) else resource_id[:120]


def _host(event: Event) -> str:
    """The Docker host: the principal itself, or the host a known user acted through."""
    p = event.principal
    if p.type == "user" and p.invoked_by:
        return p.invoked_by.removeprefix("docker-host:")
    return p.name or p.id


def _changes(event: Event) -> dict[str, Any] | None:
    """The forwarder's change summary from the event's ``docker.changes.*`` tags, or None."""
    tags = dict(event.tags)
    if "docker.changes.total" not in tags:
        return None
    out: dict[str, Any] = {k: int(tags.get(f"docker.changes.{k}", "0")) for k in CHANGE_TAGS}
    paths = []
    for i in range(MAX_CHANGE_PATHS):
        value = tags.get(f"docker.changes.path.{i}")
        if value is None:
            break
        kind, category, path = value.split(" ", 2)
        paths.append({"kind": _KIND_WORDS.get(kind, kind), "category": category, "path": path})
    out["sensitive_paths"] = paths
    out["truncated"] = tags.get("docker.changes.truncated") == "true"
    return out


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
    host = _host(event)
    user = event.principal.name if event.principal.type == "user" else None
    changes = _changes(event)
    sensitive = bool(changes and changes["sensitive"])
    subject_res = event.resources_by_role("source") or event.resources_by_role("target") or event.resources
    subject = subject_res[0] if subject_res else None
    subject_id = subject.id if subject else "unknown"
    subject_type = subject.type if subject else "container"
    created = event.resources_by_role("created")
    verb = _VERBS.get(event.action or "", "snapshotted")
    if event.action == CONTAINER_COMMIT:
        severity = params.sensitive_commit_severity if sensitive else params.commit_severity
    else:
        severity = params.sensitive_archive_severity if sensitive else params.archive_severity
    where = f" (pod namespace {event.namespace})" if event.namespace else ""
    by = f" by {user[:64]}" if user else ""
    what = f", {changes['sensitive']} sensitive paths changed" if changes and sensitive else ""
    title = f"{subject_type.capitalize()} {_short(subject_id)} {verb} on host {host[:120]}{by}{where}{what}"
    if user:
        attribution = (
            f"The host's audit log names {user[:64]} as who ran the command (login uid, kept across sudo); "
            "confirm with `ausearch -k docker` on the host."
        )
    else:
        attribution = (
            "Docker events carry no user: find who ran docker on the host (auditd rules on the docker socket "
            "and binary, shell history, sudo logs) before drawing conclusions."
        )
    captured = ""
    if changes is not None:
        first = "; ".join(f"{p['path'][:200]} ({p['category']}, {p['kind']})" for p in changes["sensitive_paths"][:5])
        captured = (
            f" Its filesystem differs from its image by {changes['added']} added, {changes['changed']} changed "
            f"and {changes['deleted']} deleted paths"
            + (f"; {changes['sensitive']} in data, backup or secret locations, first: {first}" if sensitive else "")
            + "."
        )
    summary = (
        f"Docker on host {host[:120]} reported '{event.operation}' for {subject_type} {subject_id[:200]}"
        + (f", creating image {created[0].id[:100]}" if created else "")
        + "."
        + captured
        + " A commit freezes a container's state, including what an intruder changed or collected in it; "
        "save and export write a full filesystem or image to a tar that can be carried off the host. "
        + attribution
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
            "user": user,
            "instance_id": dict(event.tags).get("docker.host_id"),
            "filesystem_changes": changes,
            "attribution": (
                "host audit log (login uid of the docker command)"
                if user
                else "none in Docker events: correlate with auditd / shell history on the host"
            ),
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
            "feed snapshot.burst's per-source count. ADS 'discrepancies in file system states pre- and "
            "post-snapshot': events from `adscore forward docker` carry the container's changes against its "
            "image, and a commit or export that captured data, backup or secret paths is raised a level."
        ),
        technical_context=(
            "The ADS emulation: `docker commit $(docker ps | grep test-pod | awk '{print $1}') snapshot-test` "
            "and `docker save <image> | gzip > image.tar.gz`. The engine emits a `container commit` event "
            "(Actor = container) and an `image save` event (Actor = image); `docker export` emits "
            "`container export`."
        ),
        blind_spots=(
            "Docker events carry no user: the alert names the host unless `adscore forward docker` reads the "
            "host's audit log (rules on /usr/bin/docker); API clients other than the docker CLI (SDKs, curl on "
            "the socket, a mounted socket in a container) are not attributed.",
            "The filesystem summary (forwarder only) is taken when the event is read: a container removed "
            "right after its commit or export has none, and `docker save` has none (an image is not a container).",
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
            "Docker engine events (`docker events`, shipped with the host name; `adscore forward docker`)",
            "Docker Engine API container changes (`/containers/{id}/changes`, read by the forwarder)",
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
