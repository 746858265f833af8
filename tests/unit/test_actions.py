"""The operation -> action table."""

from __future__ import annotations

import pytest

from adscore import actions


@pytest.mark.parametrize(
    ("cloud", "op", "expected"),
    [
        ("aws", "ec2:CreateSnapshot", "snapshot.create"),
        ("aws", "EC2:createsnapshot", "snapshot.create"),
        ("aws", "lightsail:CreateInstanceSnapshot", "snapshot.create"),
        ("aws", "elasticache:CreateSnapshot", "snapshot.create"),
        ("aws", "ec2:CopySnapshot", "snapshot.copy"),
        ("aws", "ec2:ModifySnapshotAttribute", "snapshot.share"),
        ("aws", "rds:StartExportTask", "snapshot.export"),
        ("aws", "rds:RestoreDBInstanceFromDBSnapshot", "snapshot.restore"),
        ("aws", "ec2:CreateReplaceRootVolumeTask", "snapshot.restore"),
        ("aws", "ebs:StartSnapshot", "snapshot.create"),
        ("aws", "redshift:AuthorizeSnapshotAccess", "snapshot.share"),
        ("azure", "MICROSOFT.COMPUTE/SNAPSHOTS/WRITE", "snapshot.create"),
        ("azure", "Microsoft.Compute/snapshots/beginGetAccess/action", "snapshot.export"),
        ("azure", "Microsoft.Compute/galleries/images/versions/write", "image.create"),
        ("gcp", "compute.snapshots.insert", "snapshot.create"),
        ("gcp", "compute.disks.createSnapshot", "snapshot.create"),
        ("gcp", "compute.machineImages.insert", "image.create"),
        ("kubernetes", "create pods/exec", "k8s.exec"),
        ("kubernetes", "create volumesnapshots", "k8s.volume_snapshot"),
        ("kubernetes", "create selfsubjectrulesreviews", "discovery.permission_probe"),
        ("docker", "container commit", "container.commit"),
        ("docker", "image save", "container.save"),
        ("docker", "container export", "container.export"),
    ],
)
def test_lookup(cloud: str, op: str, expected: str) -> None:
    assert actions.lookup(cloud, op) == expected


def test_same_event_name_in_other_service_is_not_confused() -> None:
    assert actions.lookup("aws", "ec2:CreateSnapshot") == "snapshot.create"
    assert actions.lookup("aws", "s3:CreateSnapshot") is None


def test_reads_default_to_discovery_and_writes_to_nothing() -> None:
    assert actions.classify("aws", "servicequotas:ListServiceQuotas", True) == "discovery.read"
    assert actions.classify("aws", "ec2:RunInstances", False) is None
    assert actions.classify("gcp", "compute.snapshots.insert", False) == "snapshot.create"


def test_every_action_is_known_and_every_required_action_is_used() -> None:
    used = {a for table in actions.TABLES.values() for a in table.values()}
    assert used <= actions.ALL_ACTIONS
    # discovery.read is derived from read_only, identity.signin from the log category; every other
    # action has at least one operation
    assert actions.ALL_ACTIONS - used <= {"discovery.read", "identity.signin"}


def test_conditions_name_table_entries() -> None:
    for cloud, op in actions.CONDITIONS:
        assert actions.lookup(cloud, op) is not None, (cloud, op)
        assert actions.is_conditional(cloud, op)


def test_registry_reads() -> None:
    assert actions.is_registry_read("aws", "ecr:DescribeRepositories")
    assert actions.is_registry_read("gcp", "google.devtools.artifactregistry.v1.ArtifactRegistry.ListDockerImages")
    assert not actions.is_registry_read("aws", "ec2:DescribeInstances")


def test_operations_for_infrastructure_filters() -> None:
    ops = actions.operations_for("aws", actions.SNAPSHOT_ACTIONS)
    assert "ec2:CreateSnapshot" in ops and "rds:StartExportTask" in ops
    assert all(actions.lookup("aws", o) in actions.SNAPSHOT_ACTIONS for o in ops)
