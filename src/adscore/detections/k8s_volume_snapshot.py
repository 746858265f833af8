"""``k8s.volume_snapshot``: a ``VolumeSnapshot`` (or ``VolumeSnapshotContent``) created outside the backup operators.

In a cluster, volume snapshots are the backup operator's job (Velero, Kasten K10,
the CSI snapshot controller). A person or an unexpected service account creating
one copies a persistent volume with the storage layer's own tools; a
``VolumeSnapshotContent`` created by hand imports an existing cloud snapshot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from adscore.actions import K8S_VOLUME_SNAPSHOT
from adscore.detection import AdsMeta, Detection, DetectionParams, Finding
from adscore.patterns import glob_matcher

if TYPE_CHECKING:
    from collections.abc import Iterable

    from adscore.detection import Context
    from adscore.events import Event

DETECTION_ID = "k8s.volume_snapshot"


class Params(DetectionParams):
    """Parameters of ``k8s.volume_snapshot``.

    Attributes
    ----------
    allowed_principals : tuple[str, ...]
        Username globs allowed to create volume snapshots: backup operators and the snapshot controller.
    """

    allowed_principals: tuple[str, ...] = Field(
        default=(
            "system:serviceaccount:velero:*",
            "system:serviceaccount:*:velero",
            "system:serviceaccount:*:velero-server",
            "system:serviceaccount:kasten-io:*",
            "system:serviceaccount:*:k10-k10",
            "system:serviceaccount:*:snapshot-controller",
            "system:serviceaccount:*:csi-snapshotter*",
            "system:serviceaccount:*:ebs-csi-controller-sa",
            "system:serviceaccount:*:csi-azuredisk-controller-sa",
            "system:serviceaccount:trilio-system:*",
            "system:serviceaccount:*:stork*",
            "system:serviceaccount:longhorn-system:*",
        ),
        description="username globs allowed to create volume snapshots (backup operators, snapshot controller)",
    )


def evaluate(event: Event, ctx: Context) -> Iterable[Finding]:
    """Alert when a principal outside ``allowed_principals`` creates a volume snapshot.

    Parameters
    ----------
    event : Event
        A ``create volumesnapshots`` or ``create volumesnapshotcontents`` audit event.
    ctx : Context
        Params (allowed principals) and event time.

    Returns
    -------
    Iterable[Finding]
        One finding per principal, snapshot and hour.
    """
    if event.outcome in ("failure", "denied"):
        return
    params: Params = ctx.params
    p = event.principal
    names = tuple(n for n in (p.id, p.name) if n)
    if params.allowed_principals and any(glob_matcher(params.allowed_principals).match(n) for n in names):
        return
    created = event.resources_by_role("created") or event.resources_by_role("target")
    snap = created[0] if created else None
    snap_id = snap.id[:200] if snap else f"{event.namespace or '?'}/?"
    content = snap is not None and snap.type == "volumesnapshotcontent"
    sources = event.resources_by_role("source")
    source = f" of {sources[0].type} {sources[0].id[:160]}" if sources else ""
    who = (p.name or p.id)[:120]
    if content:
        title = f"VolumeSnapshotContent {snap_id} created by {who}{source}"
        why = (
            "A VolumeSnapshotContent made by hand binds an existing storage snapshot into the cluster, where "
            "any VolumeSnapshot bound to it can be restored into a new volume and read."
        )
    else:
        title = f"VolumeSnapshot {snap_id} created by {who}{source}"
        why = (
            "A VolumeSnapshot copies a persistent volume with the storage layer's own tools; outside the "
            "backup operators it is a way to copy data or keep a restore point (T1578.001)."
        )
    yield Finding(
        entity=f"{p.id}|{snap_id}",
        window_start=event.time.replace(minute=0, second=0, microsecond=0),
        title=title,
        summary=(
            f"{who} ({p.type}) created {snap.type if snap else 'a volume snapshot'} {snap_id}{source} "
            f"({event.operation}), and is not one of the allowed backup operators. {why}"
        ),
        events=(event,),
        context={
            "snapshot": snap_id,
            "source": sources[0].id[:300] if sources else None,
            "namespace": event.namespace,
            "principal_type": p.type,
            "allowed_principals": list(params.allowed_principals)[:20],
        },
    )


_RESPONSE = (
    "Isolate: restrict the namespace's workloads that mount the source PVC (deny-all NetworkPolicy) and "
    "suspend the principal (`kubectl delete rolebinding ...`, revoke its kubeconfig/cloud IAM mapping).",
    "Inspect the snapshot: `kubectl get volumesnapshot <name> -n <ns> -o yaml` (source PVC, class, "
    "boundVolumeSnapshotContentName), `kubectl get volumesnapshotcontent <content> -o yaml` (the cloud "
    "snapshotHandle), then look the handle up in the cloud (`aws ec2 describe-snapshots --snapshot-ids`, "
    "`az snapshot show`, `gcloud compute snapshots describe`) for shares or copies.",
    "Find restores: PVCs with `dataSource.kind: VolumeSnapshot` naming it (`kubectl get pvc -A -o json | "
    "jq '.items[] | select(.spec.dataSource.name==\"<name>\")'`) and the pods that mount them.",
    "Forensic analysis: keep the snapshot and the audit trail of the principal; delete the snapshot only "
    "after evidence is secured (its deletionPolicy may delete the cloud snapshot too).",
    "Review access controls: who may create volumesnapshots and volumesnapshotcontents (RBAC); if a new backup operator is "
    "legitimate, add its service account to allowed_principals and record it in the IR plan.",
)

DETECTION = Detection(
    id=DETECTION_ID,
    meta=AdsMeta(
        title="Kubernetes VolumeSnapshot created outside the backup operators",
        goal=(
            "Detect Kubernetes volume snapshots created by principals other than the cluster's backup "
            "operators, a copy of persistent data through the storage layer."
        ),
        technique="T1578.001",
        technique_name="Create Snapshot",
        tactic="Defense Evasion",
        severity="medium",
        platforms=("Kubernetes", "Containers", "IaaS"),
        strategy=(
            "ADS 'container orchestrator logs' and 'snapshot activity logs': Kubernetes audit events "
            "`create volumesnapshots` / `create volumesnapshotcontents` (snapshot.storage.k8s.io) whose user "
            "matches none of the allowed principal globs (default: Velero, Kasten K10, CSI snapshot "
            "controller and snapshotter sidecars, Trilio, Stork, Longhorn)."
        ),
        technical_context=(
            "`kubectl apply -f snap.yaml` with `kind: VolumeSnapshot, spec.source.persistentVolumeClaimName: "
            "data-db-0` makes the CSI driver snapshot the disk; a PVC with `dataSource: {kind: VolumeSnapshot}` "
            "restores it anywhere in the namespace."
        ),
        blind_spots=(
            "Snapshots made directly in the cloud (covered by the cloud snapshot detections, not this one).",
            "An attacker acting as an allowed operator's service account (stolen token) is allowlisted.",
            "Audit policies that drop snapshot.storage.k8s.io requests, or clusters not shipping audit logs.",
        ),
        false_positives=(
            "Regular backup operations by IT teams with an operator not in the default list: add its service "
            "account to allowed_principals.",
            "Automated testing in CI pipelines that snapshot test volumes: allowlist the CI identity.",
            "Disaster recovery drills taking manual snapshots during a declared maintenance window.",
        ),
        priority="Medium (ADS).",
        validation=(
            "`kubectl apply -f` a VolumeSnapshot of the test pod's PVC as a user "
            "(examples/kubernetes/k8s_volume_snapshot.jsonl); Velero's scheduled snapshots stay quiet "
            "(examples/kubernetes/benign_k8s_backup_operator.jsonl).",
        ),
        response=_RESPONSE,
        data_sources=("Kubernetes audit logs (EKS, AKS kube-audit, GKE, self-managed webhook)",),
        references=(
            "https://attack.mitre.org/techniques/T1578/001/",
            "https://kubernetes.io/docs/concepts/storage/volume-snapshots/",
            "https://kubernetes.io/docs/concepts/storage/volume-snapshot-classes/",
            "https://velero.io/docs/main/csi/",
        ),
    ),
    actions=frozenset({K8S_VOLUME_SNAPSHOT}),
    evaluate=evaluate,
    params=Params,
    clouds=("kubernetes",),
)
