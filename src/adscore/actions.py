"""Provider operation -> semantic action: the one table every part of adscore reads.

Parsers set :attr:`Event.action` from here; the engine routes events to the
detections subscribed to an action; the Terraform filters (EventBridge
patterns, Event Grid filters, log sink filter) are checked against it so the
infrastructure never drifts from the core.

Operation keys are lowercase:

- AWS: ``<eventSource without .amazonaws.com>:<eventName>`` (``ec2:createsnapshot``).
  Matching on the source *and* the name matters: ``CreateSnapshot`` also exists
  in ElastiCache, Lightsail and Redshift.
- Azure: the ARM ``operationName`` (``microsoft.compute/snapshots/write``);
  the feeds disagree on casing, so everything is compared lowercased.
- GCP: the audit ``methodName`` without its API version prefix
  (``compute.snapshots.insert`` for ``v1.compute.snapshots.insert``).
- Kubernetes: ``<verb> <resource>[/<subresource>]`` (``create pods/exec``).
- Docker: ``<Type> <Action>`` of an engine event (``container commit``).

Reads that are not in the table become ``discovery.read`` through
:func:`classify` (AWS ``readOnly``, GCP ``ADMIN_READ``/``DATA_READ`` and
``.list``/``.get``/``aggregatedList`` methods, Azure ``/read`` operations and
Graph ``GET`` requests, Kubernetes ``get``/``list``/``watch``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from adscore.detection import Severity

SNAPSHOT_CREATE = "snapshot.create"
IMAGE_CREATE = "image.create"
#: An image imported from object storage (GCP ``images.insert`` with ``rawDisk.source``): it copies
#: no existing disk, snapshot or image, so it is not the technique's create (no detection watches it).
IMAGE_IMPORT = "image.import"
SNAPSHOT_COPY = "snapshot.copy"
SNAPSHOT_SHARE = "snapshot.share"
SNAPSHOT_EXPORT = "snapshot.export"
SNAPSHOT_RESTORE = "snapshot.restore"
SNAPSHOT_DELETE = "snapshot.delete"
CONTAINER_COMMIT = "container.commit"
CONTAINER_SAVE = "container.save"
CONTAINER_EXPORT = "container.export"
K8S_EXEC = "k8s.exec"
K8S_VOLUME_SNAPSHOT = "k8s.volume_snapshot"
DISCOVERY_READ = "discovery.read"
DISCOVERY_PERMISSION_PROBE = "discovery.permission_probe"
#: An Entra ID sign-in (set by the sign-in log parser, not by a table): enumeration tools sign in
#: before they read, with their own user agent.
IDENTITY_SIGNIN = "identity.signin"

#: Pseudo-action the engine uses to route every denied call, whatever its action.
OUTCOME_DENIED = "outcome.denied"

ALL_ACTIONS: frozenset[str] = frozenset(
    {
        SNAPSHOT_CREATE,
        IMAGE_CREATE,
        IMAGE_IMPORT,
        SNAPSHOT_COPY,
        SNAPSHOT_SHARE,
        SNAPSHOT_EXPORT,
        SNAPSHOT_RESTORE,
        SNAPSHOT_DELETE,
        CONTAINER_COMMIT,
        CONTAINER_SAVE,
        CONTAINER_EXPORT,
        K8S_EXEC,
        K8S_VOLUME_SNAPSHOT,
        DISCOVERY_READ,
        DISCOVERY_PERMISSION_PROBE,
        IDENTITY_SIGNIN,
    }
)

#: Actions that make a new point-in-time copy of data.
CREATE_ACTIONS: frozenset[str] = frozenset(
    {SNAPSHOT_CREATE, IMAGE_CREATE, SNAPSHOT_COPY, CONTAINER_COMMIT, CONTAINER_SAVE, CONTAINER_EXPORT, K8S_VOLUME_SNAPSHOT}
)
#: Actions that move a snapshot's data towards someone else.
EGRESS_ACTIONS: frozenset[str] = frozenset({SNAPSHOT_SHARE, SNAPSHOT_EXPORT})
#: Every snapshot-technique action (T1578.001).
SNAPSHOT_ACTIONS: frozenset[str] = CREATE_ACTIONS | EGRESS_ACTIONS | frozenset({SNAPSHOT_RESTORE, SNAPSHOT_DELETE, K8S_EXEC})
#: Every discovery-technique action (T1526).
DISCOVERY_ACTIONS: frozenset[str] = frozenset({DISCOVERY_READ, DISCOVERY_PERMISSION_PROBE})

# --------------------------------------------------------------------------------------------
# AWS CloudTrail: "<eventSource prefix>:<eventName>"
# --------------------------------------------------------------------------------------------
AWS: dict[str, str] = {
    # EC2 / EBS snapshots and AMIs
    "ec2:CreateSnapshot": SNAPSHOT_CREATE,
    "ec2:CreateSnapshots": SNAPSHOT_CREATE,
    "ec2:CopySnapshot": SNAPSHOT_COPY,
    "ec2:CreateImage": IMAGE_CREATE,
    "ec2:RegisterImage": IMAGE_CREATE,
    "ec2:CopyImage": SNAPSHOT_COPY,
    "ec2:CreateRestoreImageTask": IMAGE_CREATE,
    # VM import from an S3 disk image: an upload, not a copy of anything in the account
    "ec2:ImportImage": IMAGE_IMPORT,
    "ec2:ImportSnapshot": IMAGE_IMPORT,
    "ec2:CreateStoreImageTask": SNAPSHOT_EXPORT,
    "ec2:ExportImage": SNAPSHOT_EXPORT,
    "ec2:CreateInstanceExportTask": SNAPSHOT_EXPORT,
    "ec2:ModifySnapshotAttribute": SNAPSHOT_SHARE,
    "ec2:ModifyImageAttribute": SNAPSHOT_SHARE,
    "ec2:DisableSnapshotBlockPublicAccess": SNAPSHOT_SHARE,
    "ec2:DisableImageBlockPublicAccess": SNAPSHOT_SHARE,
    "ec2:CreateVolume": SNAPSHOT_RESTORE,
    "ec2:CreateReplaceRootVolumeTask": SNAPSHOT_RESTORE,
    "ec2:RestoreSnapshotFromRecycleBin": SNAPSHOT_RESTORE,
    "ec2:RestoreImageFromRecycleBin": SNAPSHOT_RESTORE,
    "ec2:DeleteSnapshot": SNAPSHOT_DELETE,
    "ec2:DeregisterImage": SNAPSHOT_DELETE,
    # another account copied a shared snapshot or made a volume of it: data left
    "ec2:SharedSnapshotCopyInitiated": SNAPSHOT_EXPORT,
    "ec2:SharedSnapshotVolumeCreated": SNAPSHOT_EXPORT,
    # EBS direct APIs
    "ebs:StartSnapshot": SNAPSHOT_CREATE,
    "ebs:ListSnapshotBlocks": SNAPSHOT_EXPORT,
    "ebs:ListChangedBlocks": SNAPSHOT_EXPORT,
    # RDS, Aurora, DocumentDB and Neptune (all log as rds.amazonaws.com)
    "rds:CreateDBSnapshot": SNAPSHOT_CREATE,
    "rds:CreateDBClusterSnapshot": SNAPSHOT_CREATE,
    "rds:CopyDBSnapshot": SNAPSHOT_COPY,
    "rds:CopyDBClusterSnapshot": SNAPSHOT_COPY,
    "rds:ModifyDBSnapshotAttribute": SNAPSHOT_SHARE,
    "rds:ModifyDBClusterSnapshotAttribute": SNAPSHOT_SHARE,
    "rds:StartExportTask": SNAPSHOT_EXPORT,
    "rds:RestoreDBInstanceFromDBSnapshot": SNAPSHOT_RESTORE,
    "rds:RestoreDBClusterFromSnapshot": SNAPSHOT_RESTORE,
    "rds:RestoreDBInstanceToPointInTime": SNAPSHOT_RESTORE,
    "rds:RestoreDBClusterToPointInTime": SNAPSHOT_RESTORE,
    "rds:RestoreDBInstanceFromS3": SNAPSHOT_RESTORE,
    "rds:DeleteDBSnapshot": SNAPSHOT_DELETE,
    "rds:DeleteDBClusterSnapshot": SNAPSHOT_DELETE,
    # Redshift
    "redshift:CreateClusterSnapshot": SNAPSHOT_CREATE,
    "redshift:CopyClusterSnapshot": SNAPSHOT_COPY,
    "redshift:AuthorizeSnapshotAccess": SNAPSHOT_SHARE,
    "redshift:RestoreFromClusterSnapshot": SNAPSHOT_RESTORE,
    "redshift:RestoreTableFromClusterSnapshot": SNAPSHOT_RESTORE,
    "redshift:DeleteClusterSnapshot": SNAPSHOT_DELETE,
    # Lightsail
    "lightsail:CreateInstanceSnapshot": SNAPSHOT_CREATE,
    "lightsail:CreateDiskSnapshot": SNAPSHOT_CREATE,
    "lightsail:CreateRelationalDatabaseSnapshot": SNAPSHOT_CREATE,
    "lightsail:CopySnapshot": SNAPSHOT_COPY,
    "lightsail:ExportSnapshot": SNAPSHOT_EXPORT,
    "lightsail:CreateInstancesFromSnapshot": SNAPSHOT_RESTORE,
    "lightsail:CreateDiskFromSnapshot": SNAPSHOT_RESTORE,
    "lightsail:CreateRelationalDatabaseFromSnapshot": SNAPSHOT_RESTORE,
    "lightsail:DeleteInstanceSnapshot": SNAPSHOT_DELETE,
    "lightsail:DeleteDiskSnapshot": SNAPSHOT_DELETE,
    "lightsail:DeleteRelationalDatabaseSnapshot": SNAPSHOT_DELETE,
    # ElastiCache and MemoryDB
    "elasticache:CreateSnapshot": SNAPSHOT_CREATE,
    "elasticache:CopySnapshot": SNAPSHOT_COPY,
    "elasticache:DeleteSnapshot": SNAPSHOT_DELETE,
    "memorydb:CreateSnapshot": SNAPSHOT_CREATE,
    "memorydb:CopySnapshot": SNAPSHOT_COPY,
    # permission probing
    "iam:SimulatePrincipalPolicy": DISCOVERY_PERMISSION_PROBE,
    "iam:SimulateCustomPolicy": DISCOVERY_PERMISSION_PROBE,
}

# --------------------------------------------------------------------------------------------
# Azure Resource Manager operationName (Activity Log, Event Grid)
# --------------------------------------------------------------------------------------------
AZURE: dict[str, str] = {
    "Microsoft.Compute/snapshots/write": SNAPSHOT_CREATE,
    "Microsoft.Compute/snapshots/beginGetAccess/action": SNAPSHOT_EXPORT,
    "Microsoft.Compute/snapshots/delete": SNAPSHOT_DELETE,
    "Microsoft.Compute/disks/beginGetAccess/action": SNAPSHOT_EXPORT,
    "Microsoft.Compute/disks/write": SNAPSHOT_RESTORE,
    "Microsoft.Compute/images/write": IMAGE_CREATE,
    "Microsoft.Compute/images/delete": SNAPSHOT_DELETE,
    "Microsoft.Compute/virtualMachines/capture/action": IMAGE_CREATE,
    "Microsoft.Compute/galleries/images/versions/write": IMAGE_CREATE,
    "Microsoft.Compute/galleries/images/versions/delete": SNAPSHOT_DELETE,
    "Microsoft.Compute/galleries/share/action": SNAPSHOT_SHARE,
    "Microsoft.Compute/restorePointCollections/restorePoints/write": SNAPSHOT_CREATE,
    "Microsoft.Compute/restorePointCollections/restorePoints/delete": SNAPSHOT_DELETE,
    "Microsoft.Compute/restorePointCollections/delete": SNAPSHOT_DELETE,
    "Microsoft.Compute/restorePointCollections/restorePoints/diskRestorePoints/beginGetAccess/action": SNAPSHOT_EXPORT,
    # POST actions that read: the only reads the Activity Log carries
    "Microsoft.Storage/storageAccounts/listKeys/action": DISCOVERY_READ,
    "Microsoft.Web/sites/config/list/action": DISCOVERY_READ,
    "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action": DISCOVERY_READ,
    "Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action": DISCOVERY_READ,
    "Microsoft.ContainerRegistry/registries/listCredentials/action": DISCOVERY_READ,
    "Microsoft.Authorization/permissions/read": DISCOVERY_PERMISSION_PROBE,
}

# --------------------------------------------------------------------------------------------
# GCP audit methodName without its version prefix
# --------------------------------------------------------------------------------------------
GCP: dict[str, str] = {
    "compute.snapshots.insert": SNAPSHOT_CREATE,
    "compute.disks.createSnapshot": SNAPSHOT_CREATE,
    "compute.regionDisks.createSnapshot": SNAPSHOT_CREATE,
    "compute.instantSnapshots.insert": SNAPSHOT_CREATE,
    "compute.regionInstantSnapshots.insert": SNAPSHOT_CREATE,
    "compute.images.insert": IMAGE_CREATE,
    "compute.machineImages.insert": IMAGE_CREATE,
    "compute.snapshots.setIamPolicy": SNAPSHOT_SHARE,
    "compute.images.setIamPolicy": SNAPSHOT_SHARE,
    "compute.machineImages.setIamPolicy": SNAPSHOT_SHARE,
    "compute.disks.setIamPolicy": SNAPSHOT_SHARE,
    "compute.disks.insert": SNAPSHOT_RESTORE,
    "compute.regionDisks.insert": SNAPSHOT_RESTORE,
    "compute.instances.insert": SNAPSHOT_RESTORE,
    "compute.snapshots.delete": SNAPSHOT_DELETE,
    "compute.images.delete": SNAPSHOT_DELETE,
    "compute.machineImages.delete": SNAPSHOT_DELETE,
    "cloudsql.backupRuns.insert": SNAPSHOT_CREATE,
    "cloudsql.instances.restoreBackup": SNAPSHOT_RESTORE,
    "cloudsql.instances.export": SNAPSHOT_EXPORT,
    "cloudsql.backupRuns.delete": SNAPSHOT_DELETE,
    "google.iam.v1.IAMPolicy.TestIamPermissions": DISCOVERY_PERMISSION_PROBE,
}

# --------------------------------------------------------------------------------------------
# Kubernetes audit: "<verb> <resource>[/<subresource>]"
# --------------------------------------------------------------------------------------------
KUBERNETES: dict[str, str] = {
    "create pods/exec": K8S_EXEC,
    # exec over websockets is authorized and logged as a get on pods/exec
    "get pods/exec": K8S_EXEC,
    "create volumesnapshots": K8S_VOLUME_SNAPSHOT,
    "create volumesnapshotcontents": K8S_VOLUME_SNAPSHOT,
    "create selfsubjectrulesreviews": DISCOVERY_PERMISSION_PROBE,
    "create selfsubjectaccessreviews": DISCOVERY_PERMISSION_PROBE,
}

# --------------------------------------------------------------------------------------------
# Docker engine events: "<Type> <Action>"
# --------------------------------------------------------------------------------------------
DOCKER: dict[str, str] = {
    "container commit": CONTAINER_COMMIT,
    "image save": CONTAINER_SAVE,
    "container export": CONTAINER_EXPORT,
}

TABLES: dict[str, dict[str, str]] = {
    "aws": AWS,
    "azure": AZURE,
    "gcp": GCP,
    "kubernetes": KUBERNETES,
    "docker": DOCKER,
}

#: Mappings that hold only when the request says so. The parser of each family checks the
#: condition and leaves ``action`` None when it does not hold.
CONDITIONS: dict[tuple[str, str], str] = {
    ("aws", "ec2:CreateVolume"): "created from a snapshot (requestParameters.snapshotId)",
    ("aws", "ec2:ModifySnapshotAttribute"): "createVolumePermission add (userId or group all)",
    ("aws", "ec2:ModifyImageAttribute"): "launchPermission add (userId, group all, organization or OU ARN)",
    ("aws", "rds:ModifyDBSnapshotAttribute"): "attributeName restore with valuesToAdd",
    ("aws", "rds:ModifyDBClusterSnapshotAttribute"): "attributeName restore with valuesToAdd",
    ("azure", "Microsoft.Compute/disks/write"): "creationData names a snapshot, restore point or image as its source",
    ("gcp", "compute.disks.insert"): (
        "sourceSnapshot, sourceInstantSnapshot, or a sourceImage outside Google's public image projects"
    ),
    ("gcp", "compute.regionDisks.insert"): "sourceSnapshot in the request",
    ("gcp", "compute.instances.insert"): "sourceMachineImage, or a boot disk from a snapshot",
    ("gcp", "compute.snapshots.setIamPolicy"): "a binding was added",
    ("gcp", "compute.images.setIamPolicy"): "a binding was added",
    ("gcp", "compute.machineImages.setIamPolicy"): "a binding was added",
    ("gcp", "compute.disks.setIamPolicy"): "a binding was added",
}

#: Container registry reads that enumerate (list or describe repositories and images), for
#: ``discovery.registry_enumeration``. Image pulls (``BatchGetImage``, ``GetDownloadUrlForLayer``,
#: ``pull/read``) are left out on purpose: nodes and CI runners pull all day (ADS false positive
#: "routine updates to container images by trusted developers"), and a pull names one known image.
REGISTRY_READS: dict[str, frozenset[str]] = {
    "aws": frozenset(
        s.lower()
        for s in (
            "ecr:DescribeRepositories",
            "ecr:DescribeImages",
            "ecr:ListImages",
            "ecr:DescribeImageScanFindings",
            "ecr:GetRepositoryPolicy",
            "ecr-public:DescribeRepositories",
            "ecr-public:DescribeImages",
        )
    ),
    "azure": frozenset(
        s.lower()
        for s in (
            "Microsoft.ContainerRegistry/registries/read",
            "Microsoft.ContainerRegistry/registries/listCredentials/action",
            "Microsoft.ContainerRegistry/registries/metadata/read",
            "Microsoft.ContainerRegistry/registries/repositories/read",
        )
    ),
    "gcp": frozenset(
        s.lower()
        for s in (
            "google.devtools.artifactregistry.v1.ArtifactRegistry.ListRepositories",
            "google.devtools.artifactregistry.v1.ArtifactRegistry.GetRepository",
            "google.devtools.artifactregistry.v1.ArtifactRegistry.ListDockerImages",
            "google.devtools.artifactregistry.v1.ArtifactRegistry.GetDockerImage",
            "google.devtools.artifactregistry.v1.ArtifactRegistry.ListPackages",
            "google.devtools.artifactregistry.v1.ArtifactRegistry.ListVersions",
            "google.devtools.artifactregistry.v1.ArtifactRegistry.ListTags",
            "google.devtools.artifactregistry.v1.ArtifactRegistry.ListFiles",
            "containerregistry.googleapis.com.images.list",
            "docker-read",
        )
    ),
}

_LOWER: dict[str, dict[str, str]] = {cloud: {k.lower(): v for k, v in t.items()} for cloud, t in TABLES.items()}
_CONDITIONAL: frozenset[tuple[str, str]] = frozenset((c, op.lower()) for c, op in CONDITIONS)


def lookup(cloud: str, operation: str) -> str | None:
    """Return the semantic action of a provider operation, or None.

    Parameters
    ----------
    cloud : str
        ``aws``, ``azure``, ``gcp``, ``kubernetes`` or ``docker``.
    operation : str
        The operation key described in this module's docstring (any casing).

    Example
    -------
    >>> lookup("aws", "ec2:CreateSnapshot")
    'snapshot.create'
    """
    table = _LOWER.get(cloud)
    if table is None:
        return None
    return table.get(operation.lower())


def classify(cloud: str, operation: str, read_only: bool) -> str | None:
    """Return the action of an operation: the table's entry, else ``discovery.read`` for reads."""
    action = lookup(cloud, operation)
    if action is not None:
        return action
    return DISCOVERY_READ if read_only else None


def is_conditional(cloud: str, operation: str) -> bool:
    """Whether the table's action for ``operation`` holds only under a request condition."""
    return (cloud, operation.lower()) in _CONDITIONAL


def is_registry_read(cloud: str, operation: str) -> bool:
    """Whether ``operation`` lists or describes container repositories or images."""
    op = operation.lower()
    reads = REGISTRY_READS.get(cloud)
    if reads is None:
        return False
    if op in reads:
        return True
    if cloud == "gcp":
        return op.startswith("google.devtools.artifactregistry.") and (".list" in op or ".get" in op)
    return False


def operations_for(cloud: str, actions: Iterable[str] | None = None) -> list[str]:
    """Return the provider operations (original casing) of ``cloud`` that map to ``actions``.

    Used to generate and check the infrastructure filters (EventBridge patterns, Event Grid
    filters, log sink filter).
    """
    wanted = frozenset(actions) if actions is not None else ALL_ACTIONS
    table: Mapping[str, str] = TABLES.get(cloud, {})
    return sorted(op for op, action in table.items() if action in wanted)


# --------------------------------------------------------------------------------------------
# Attributes of operations the snapshot detections read (lowercased provider operations): kept
# here with the rest of the provider knowledge, so the detections hold no provider strings.
# --------------------------------------------------------------------------------------------
#: Export-like operations -> (what happened to the snapshot's data, severity).
EXPORT_OPERATIONS: dict[str, tuple[str, Severity]] = {
    "ec2:sharedsnapshotcopyinitiated": ("copied by another account", "critical"),
    "ec2:sharedsnapshotvolumecreated": ("turned into a volume by another account", "critical"),
    "microsoft.compute/snapshots/begingetaccess/action": ("given a SAS download URL", "high"),
    "microsoft.compute/disks/begingetaccess/action": ("given a SAS download URL", "high"),
    "microsoft.compute/restorepointcollections/restorepoints/diskrestorepoints/begingetaccess/action": (
        "given a SAS download URL",
        "high",
    ),
    "rds:startexporttask": ("exported to S3", "high"),
    "ec2:exportimage": ("exported to S3", "high"),
    "ec2:createinstanceexporttask": ("exported to S3", "high"),
    "ec2:createstoreimagetask": ("stored to S3", "high"),
    "lightsail:exportsnapshot": ("exported to EC2", "high"),
    "ebs:listsnapshotblocks": ("read block by block (EBS direct APIs)", "high"),
    "ebs:listchangedblocks": ("read block by block (EBS direct APIs)", "high"),
    "cloudsql.instances.export": ("exported to Cloud Storage", "high"),
}
#: Operations that turn off a guardrail against public snapshots or images.
GUARDRAIL_OFF_OPERATIONS = frozenset({"ec2:disablesnapshotblockpublicaccess", "ec2:disableimageblockpublicaccess"})
#: Service events in the owner's trail: another account copied the shared snapshot, or made a volume of it.
COPIED_BY_ANOTHER_ACCOUNT = frozenset({"ec2:sharedsnapshotcopyinitiated", "ec2:sharedsnapshotvolumecreated"})
#: A restore made in another account from a snapshot shared with it (the owner's trail records it).
RESTORED_ELSEWHERE = frozenset({"ec2:sharedsnapshotvolumecreated"})
