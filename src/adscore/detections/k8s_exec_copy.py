"""``k8s.exec_copy``: ``kubectl exec`` that copies or archives a pod's data, and ``kubectl cp``.

The ADS emulation ``kubectl exec test-pod -- sh -c "cp -R /app/data /snapshot"``
snapshots a pod's data from inside; ``kubectl cp`` runs ``tar cf -`` (from the pod)
or ``tar xf -`` (into it) through exec. The command is read from the audit
event (``requestURI`` ``command=`` parameters, or ``requestObject``); every
pattern is a regular expression in :class:`Params`, compiled by RE2 (:mod:`adscore.patterns`):
the command is attacker text, so matching it must take linear time whatever the pattern.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from adscore.actions import K8S_EXEC
from adscore.detection import AdsMeta, Detection, DetectionParams, Finding
from adscore.patterns import check_linear, compile_linear, matchable
from adscore.state.base import make_key

if TYPE_CHECKING:
    from collections.abc import Iterable

    from adscore.detection import Context, Severity
    from adscore.events import Event

DETECTION_ID = "k8s.exec_copy"
_HOUR = timedelta(hours=1)
_MAX_TEXT = 4096
#: Start of a command word: line start, a shell separator, a quote or a path (``/usr/bin/tar``).
_B = r"(?:^|[\s;&|(`'\"/])"


class Params(DetectionParams):
    """Parameters of ``k8s.exec_copy`` (all patterns are RE2 regular expressions: Python syntax without
    lookaround or backreferences, matched in linear time).

    Attributes
    ----------
    copy_commands : tuple[str, ...]
        Commands that copy or archive data; they alert when a destination pattern also matches.
    destination_paths : tuple[str, ...]
        Where copied data is staged: backup/snapshot/temp paths, stdout (``-``), a remote host, a pipe
        to a network tool.
    dump_commands : tuple[str, ...]
        Commands whose output is a full copy of a database; they alert without a destination (their
        output goes to a file or back to the caller).
    kubectl_cp_from_pod : tuple[str, ...]
        ``kubectl cp <pod>:<path> <local>``: a tar archive written to stdout.
    kubectl_cp_to_pod : tuple[str, ...]
        ``kubectl cp <local> <pod>:<path>``: a tar archive read from stdin.
    """

    copy_commands: tuple[str, ...] = Field(
        default=(
            _B + r"cp\s+(?:\S+\s+)*?(?:-[a-zA-Z]*[rRa][a-zA-Z]*|--recursive|--archive)(?:\s|$)",
            _B + r"tar\s",
            _B + r"rsync\s",
            _B + r"dd\s+(?:\S+\s+)*?if=",
            _B + r"scp\s",
            _B + r"(?:zip|gzip|bzip2|xz|zstd|pigz|7z|7za)\s",
            _B + r"cpio\s",
        ),
        description="regexes of commands that copy or archive data (alert with a destination match)",
    )
    destination_paths: tuple[str, ...] = Field(
        default=(
            r"(?:^|[\s=>:'\"])/(?:backups?|snapshots?)(?:[/\s'\"]|$)",
            r"(?:^|[\s=>:'\"])/(?:tmp|var/tmp|dev/shm)(?:[/\s'\"]|$)",
            r"(?:^|[\s=>:'\"])/(?:mnt|media)(?:[/\s'\"]|$)",
            r"(?:^|\s)-(?:\s|$)",
            r"\s[\w.-]+@[\w.-]+:",
            r"\|\s*(?:nc|ncat|netcat|socat|curl|wget)\b",
        ),
        description="regexes of staging destinations: backup/snapshot/temp paths, stdout '-', remote hosts, pipes to network tools",
    )
    dump_commands: tuple[str, ...] = Field(
        default=(
            _B + r"(?:pg_dump|pg_dumpall|pg_basebackup|mysqldump|mariadb-dump|mongodump|mongoexport)\b",
            _B + r"etcdctl\s.*\bsnapshot\s+save\b",
            _B + r"redis-cli\s.*--rdb\b",
        ),
        description="regexes of database dump commands (alert without a destination)",
    )
    kubectl_cp_from_pod: tuple[str, ...] = Field(
        default=(_B + r"tar\s+(?:-[\w-]+\s+)*-?[a-zA-Z]*c[a-zA-Z]*f\s+-(?:\s|$)",),
        description="regexes of kubectl cp from a pod (tar archive to stdout)",
    )
    kubectl_cp_to_pod: tuple[str, ...] = Field(
        default=(_B + r"tar\s+(?:-[\w-]+\s+)*-?[a-zA-Z]*x[a-zA-Z]*f\s+-(?:\s|$)",),
        description="regexes of kubectl cp into a pod (tar archive from stdin)",
    )

    @field_validator(
        "copy_commands", "destination_paths", "dump_commands", "kubectl_cp_from_pod", "kubectl_cp_to_pod"
    )
    @classmethod
    def _valid_patterns(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in v:
            check_linear(pattern)
        return v


def _first(patterns: tuple[str, ...], text: str) -> str | None:
    for pattern in patterns:
        m = compile_linear(pattern).search(text)
        if m is not None:
            return m.group(0).strip()[:200]
    return None


def command_text(argv: tuple[str, ...]) -> str:
    """Join an exec argv into one line (``sh -c "<script>"`` keeps its script), capped."""
    return " ".join(a[:_MAX_TEXT] for a in argv[:256])[:_MAX_TEXT]


def evaluate(event: Event, ctx: Context) -> Iterable[Finding]:
    """Alert when an exec's command copies, archives or dumps data, or is a ``kubectl cp``.

    Parameters
    ----------
    event : Event
        A ``pods/exec`` audit event.
    ctx : Context
        Params (patterns) and event time.

    Returns
    -------
    Iterable[Finding]
        One finding per principal, pod and hour.
    """
    if event.outcome in ("failure", "denied") or not event.command:
        return
    params: Params = ctx.params
    text = matchable(command_text(event.command))
    p = event.principal
    who = (p.name or p.id)[:120]
    pods = event.resources_by_role("target") or event.resources
    pod = pods[0].id[:200] if pods else f"{event.namespace or '?'}/?"
    shown = text if len(text) <= 120 else text[:117] + "..."
    severity: Severity | None = None
    dest: str | None = "-"
    if (matched := _first(params.kubectl_cp_from_pod, text)) is not None:
        kind, severity = "kubectl cp from the pod: a tar archive streamed to the client", "high"
        title = f"kubectl cp from pod {pod} by {who}: {shown}"
    elif (matched := _first(params.kubectl_cp_to_pod, text)) is not None:
        kind = "kubectl cp into the pod: a tar archive unpacked in it"
        title = f"kubectl cp into pod {pod} by {who}: {shown}"
    elif (matched := _first(params.dump_commands, text)) is not None:
        kind, severity = "database dump", "high"
        dest = _first(params.destination_paths, text)
        title = f"Database dump in pod {pod} by {who}: {shown}"
    elif (matched := _first(params.copy_commands, text)) is not None:
        dest = _first(params.destination_paths, text)
        if dest is None:
            return
        kind = "copy or archive to a staging path"
        title = f"Pod data copied to {dest} in {pod} by {who}: {shown}"
    else:
        return
    hour = event.time.replace(minute=0, second=0, microsecond=0)
    key = make_key(DETECTION_ID, p.id, pod, hour.isoformat())
    count = ctx.state.add(key, (event.event_id,), event.time, _HOUR)
    # one alert per principal, pod and hour: it keeps the highest severity any of its commands had
    highs = ctx.state.add(f"{key}|high", (event.event_id,) if severity == "high" else (), event.time, _HOUR)
    if highs:
        severity = "high"
    yield Finding(
        entity=f"{p.id}|{pod}",
        window_start=hour,
        count=count,
        title=title,
        summary=(
            f"{who} ({p.type}) ran `{shown}` in pod {pod} through pods/exec ({kind}; matched "
            f"`{matched}`"
            + (f", destination `{dest}`" if dest else "")
            + "). "
            + (f"It is the latest of {count} such commands in this pod this hour. " if count > 1 else "")
            + "Copying a pod's data to a "
            "backup, snapshot or temp path, or streaming it out with kubectl cp or a dump, snapshots it "
            "outside the storage layer's controls (T1578.001)."
        ),
        events=(event,),
        severity=severity,
        context={
            "command": text[:1024],
            "kind": kind,
            "matched": matched,
            "destination": dest,
            "namespace": event.namespace,
            "pod": pod[:300],
            "copies_this_hour": count,
        },
    )


_RESPONSE = (
    "Isolate the pod: label it for a deny-all NetworkPolicy (`kubectl label pod <pod> -n <ns> quarantine=true`), "
    "or cordon its node; do not delete it before the evidence is collected.",
    "Find the copy: `kubectl exec <pod> -n <ns> -- ls -la /backup /snapshot /tmp /dev/shm`; for kubectl cp, "
    "the archive is on the caller's machine: identify it from the audit event's sourceIPs and userAgent.",
    "Forensic analysis: collect the pod's filesystem diff (`kubectl debug` / `crictl` on the node, or a "
    "VolumeSnapshot of its PVC taken by the responders), the full audit trail of the user (exec, cp, "
    "port-forward) and the container logs.",
    "Review access controls: who holds `pods/exec` in this namespace (`kubectl auth can-i create pods/exec "
    "--as <user> -n <ns>`, `kubectl get rolebindings,clusterrolebindings -A -o wide`); remove exec from "
    "roles that do not need it.",
    "If the user was a backup operator's hook (Velero, Kasten), add a suppression for its service account; "
    "update the IR plan with the pod-exec copy scenario.",
)

DETECTION = Detection(
    id=DETECTION_ID,
    meta=AdsMeta(
        title="Pod data copied, archived or dumped through kubectl exec / kubectl cp",
        goal=(
            "Detect kubectl exec sessions that copy, archive or dump a pod's data to backup, snapshot or "
            "temporary locations, and kubectl cp transfers, a container-level snapshot outside storage controls."
        ),
        technique="T1578.001",
        technique_name="Create Snapshot",
        tactic="Defense Evasion",
        severity="medium",
        platforms=("Kubernetes", "Containers", "IaaS"),
        strategy=(
            "ADS 'container orchestrator logs': Kubernetes audit events for pods/exec carry the command "
            "(requestURI command= parameters on upstream/EKS/AKS, requestObject on some managed services). "
            "The command is matched against configurable regular expressions: copy/archive commands (cp -R, "
            "tar, rsync, dd, scp, zip, gzip, ...) with a staging destination (/backup, /snapshot, /tmp, "
            "/dev/shm, /mnt, stdout '-', a remote host), database dumps (pg_dump, mysqldump, mongodump, etcdctl "
            "snapshot save), and kubectl cp's `tar cf -` / `tar xf -`."
        ),
        technical_context=(
            'The ADS emulation `kubectl exec test-pod -- sh -c "cp -R /app/data /snapshot"` is logged as '
            "`create pods/exec` with requestURI `...exec?command=sh&command=-c&command=cp+-R+%2Fapp%2Fdata+"
            "%2Fsnapshot`. `kubectl cp pod:/app/secrets ./x` runs `tar cf - /app/secrets` through exec."
        ),
        blind_spots=(
            "Interactive shells (`kubectl exec -it pod -- bash`) log only `bash`: what is typed inside is invisible.",
            "Audit policies at level None for pods/exec, or clusters whose audit logs are not shipped.",
            "Copies through a node shell, ephemeral debug containers, port-forward, or a sidecar's own process.",
            "Commands written to evade the patterns (base64-encoded scripts, renamed binaries).",
        ),
        false_positives=(
            "Regular backup operations by IT teams: Velero and Kasten pre/post-backup hooks run commands such "
            "as pg_dump or fsfreeze through exec; suppress their service accounts.",
            "Automated testing in CI pipelines that copy fixtures into pods with kubectl cp: allowlist the CI "
            "identity.",
            "Engineers copying logs or heap dumps to /tmp while debugging during a declared maintenance window.",
        ),
        priority="Medium (ADS); high for kubectl cp out of a pod and database dumps.",
        validation=(
            "`kubectl run test-pod --image=busybox --restart=Never -- sleep 3600`, then "
            '`kubectl exec test-pod -- sh -c "cp -R /app/data /snapshot"` '
            "(examples/kubernetes/k8s_exec_copy.jsonl).",
            "`kubectl cp test-pod:/app/data ./data` (same file: exec with `tar cf - /app/data`).",
        ),
        response=_RESPONSE,
        data_sources=("Kubernetes audit logs (EKS, AKS kube-audit, GKE, self-managed webhook)",),
        references=(
            "https://attack.mitre.org/techniques/T1578/001/",
            "https://kubernetes.io/docs/tasks/debug/debug-cluster/audit/",
            "https://kubernetes.io/docs/reference/kubectl/generated/kubectl_cp/",
            "https://velero.io/docs/main/backup-hooks/",
        ),
    ),
    actions=frozenset({K8S_EXEC}),
    evaluate=evaluate,
    params=Params,
    clouds=("kubernetes",),
)
