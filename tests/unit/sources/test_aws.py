"""AWS family: CloudTrail records, EventBridge, CloudWatch Logs and S3 delivery helpers."""

from __future__ import annotations

import base64
import copy
import gzip
import io
import json
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adscore import actions
from adscore.events import Event, RecordError
from adscore.sources import aws

SAMPLES = (Path(__file__).resolve().parents[3] / ".." / "shared" / "samples").resolve()
PANTHER = SAMPLES / "panther"

A = "111122223333"
EXT = "444455556666"


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def role_identity(role: str = "ops", session: str = "alice", **extra: Any) -> dict[str, Any]:
    ui: dict[str, Any] = {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLE:{session}",
        "arn": f"arn:aws:sts::{A}:assumed-role/{role}/{session}",
        "accountId": A,
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROAEXAMPLE",
                "arn": f"arn:aws:iam::{A}:role/team/{role}",
                "accountId": A,
                "userName": role,
            },
            "attributes": {"creationDate": "2024-05-06T09:00:00Z", "mfaAuthenticated": "false"},
        },
    }
    ui.update(extra)
    return ui


def rec(source: str = "ec2", name: str = "DescribeInstances", **fields: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": role_identity(),
        "eventTime": "2024-05-06T10:15:00Z",
        "eventSource": f"{source}.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2.15.30",
        "requestParameters": None,
        "responseElements": None,
        "requestID": "req-1",
        "eventID": "evt-1",
        "readOnly": name.startswith(("Describe", "Get", "List")),
        "eventType": "AwsApiCall",
        "recipientAccountId": A,
    }
    r.update(fields)
    return r


def one(obj: Any, location: str = "t") -> Event:
    out = aws.parse(obj, location)
    assert len(out) == 1, out
    assert isinstance(out[0], Event), out[0]
    return out[0]


def error(obj: Any, location: str = "t") -> RecordError:
    out = aws.parse(obj, location)
    assert len(out) == 1, out
    assert isinstance(out[0], RecordError), out[0]
    return out[0]


def awslogs(msg: Any) -> dict[str, Any]:
    raw = msg if isinstance(msg, bytes) else json.dumps(msg).encode()
    return {"awslogs": {"data": base64.b64encode(gzip.compress(raw)).decode()}}


def data_message(*messages: str, group: str = "aws-cloudtrail-logs-x", owner: str = A) -> dict[str, Any]:
    return {
        "messageType": "DATA_MESSAGE",
        "owner": owner,
        "logGroup": group,
        "logStream": f"{A}_CloudTrail_us-east-1",
        "subscriptionFilters": ["f"],
        "logEvents": [
            {"id": str(i), "timestamp": 1714990500000, "message": m} for i, m in enumerate(messages)
        ],
    }


class Trickle(io.RawIOBase):
    """A real byte stream that hands out at most ``step`` bytes per read (like a slow socket)."""

    def __init__(self, data: bytes, step: int = 7) -> None:
        self._buf = io.BytesIO(data)
        self._step = step

    def read(self, size: int = -1, /) -> bytes:
        n = self._step if size is None or size < 0 else min(size, self._step)
        return self._buf.read(n)


# ------------------------------------------------------------------------------------------
# real samples (Panther rule tests)
# ------------------------------------------------------------------------------------------

#: Panther test logs that are not CloudTrail as AWS writes it, with the reason.
MALFORMED_SAMPLES = {
    (
        "AWS.CloudTrail.Password.Policy.Discovery",
        name,
    ): "Panther test log with lower-cased keys (eventname, ...)"
    for name in ("Non-Discovery Event", "Password Discovery ARN", "Password Discovery Service")
}


def _panther_aws_logs() -> list[tuple[str, str, dict[str, Any]]]:
    out: list[tuple[str, str, dict[str, Any]]] = []
    for path in sorted(PANTHER.glob("*/*.json")):
        spec = json.loads(path.read_text(encoding="utf-8"))
        if not any("AWS.CloudTrail" in t for t in spec.get("LogTypes") or ()):
            continue
        for test in spec.get("Tests") or ():
            if isinstance(test.get("Log"), dict):
                out.append((spec["RuleID"], test["Name"], test["Log"]))
    for line in (PANTHER / "all_tests.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if item.get("log_type") == "AWS.CloudTrail" and isinstance(item.get("log"), dict):
            out.append((item["rule_id"], item["test_name"], item["log"]))
    return out


def _panther(rule: str, test: str) -> dict[str, Any]:
    for r, t, log in _panther_aws_logs():
        if r == rule and t == test:
            return log
    raise AssertionError(f"no Panther test {rule} / {test}")


needs_samples = pytest.mark.skipif(not PANTHER.is_dir(), reason=f"{PANTHER} is absent")


@needs_samples
def test_every_panther_cloudtrail_record_parses() -> None:
    logs = _panther_aws_logs()
    assert len(logs) > 200
    seen_malformed = set()
    for rule, test, log in logs:
        out = aws.parse(log, f"{rule}#{test}")
        assert len(out) == 1
        if (rule, test) in MALFORMED_SAMPLES:
            assert isinstance(out[0], RecordError), (rule, test)
            assert "unrecognised AWS record shape" in out[0].reason
            seen_malformed.add((rule, test))
            continue
        assert isinstance(out[0], Event), (rule, test, out[0])
        ev = out[0]
        assert ev.cloud == "aws" and ev.time.tzinfo is UTC
        assert ev.operation.endswith(":" + log["eventName"])
        assert ev.raw is log
    assert seen_malformed == set(MALFORMED_SAMPLES)


@needs_samples
def test_panther_rds_snapshot_shared() -> None:
    ev = one(_panther("AWS.RDS.SnapshotShared", "Snapshot shared with another account"))
    assert ev.action == actions.SNAPSHOT_SHARE
    assert ev.targets == ("193672423079",)
    assert [r.to_dict() for r in ev.resources] == [
        {"type": "db-snapshot", "id": "exfiltration", "role": "target"}
    ]
    assert ev.principal.id.endswith(
        ":role/aws-reserved/sso.amazonaws.com/us-west-2/AWSReservedSSO_DevAdmin_635426549a280cc6"
    )
    assert ev.principal.session == "fake.user"
    # valuesToAdd empty: nothing is shared
    assert one(_panther("AWS.RDS.SnapshotShared", "Snapshot shared with no accounts")).action is None


@needs_samples
def test_panther_snapshot_and_ami_made_public() -> None:
    public = one(_panther("AWS.CloudTrail.SnapshotMadePublic", "Snapshot Made Publicly Accessible"))
    assert public.action == actions.SNAPSHOT_SHARE and "all" in public.targets
    assert public.resources[0].id == "snap-1111"
    # group "none" is not a grant
    assert (
        one(_panther("AWS.CloudTrail.SnapshotMadePublic", "Snapshot Not Made Publicly Accessible")).action
        is None
    )
    ami = one(_panther("AWS.CloudTrail.AMIModifiedForPublicAccess", "AMI Made Public"))
    assert ami.action == actions.SNAPSHOT_SHARE and ami.targets == ("all",)
    denied = one(_panther("AWS.CloudTrail.AMIModifiedForPublicAccess", "Error Making AMI Public"))
    assert denied.outcome == "denied" and denied.error_code == "UnauthorizedOperation"
    # a different attribute, same grant shape: not a launch permission
    other = one(_panther("AWS.CloudTrail.AMIModifiedForPublicAccess", "AMI Launch Permissions Not Modified"))
    assert other.action is None


@needs_samples
def test_panther_panther_style_times_and_string_booleans() -> None:
    times = {log["eventTime"] for _, _, log in _panther_aws_logs() if isinstance(log.get("eventTime"), str)}
    nine = next(t for t in times if len(t) == 29)  # "2024-04-02 15:13:06.000000000"
    assert one(rec(eventTime=nine)).time == datetime.fromisoformat(nine[:26]).replace(tzinfo=UTC)
    acct = [
        log
        for _, _, log in _panther_aws_logs()
        if (log.get("userIdentity") or {}).get("type") == "AWSAccount"
    ]
    ev = one(acct[0])
    assert ev.principal.id == f"arn:aws:iam::{acct[0]['userIdentity']['accountId']}:root"
    assert ev.read_only is True  # "readOnly": "True"


# ------------------------------------------------------------------------------------------
# normalization of one record
# ------------------------------------------------------------------------------------------


def test_read_event_fields() -> None:
    ev = one(rec())
    assert ev.event_id == "evt-1" and ev.correlation_id == "req-1"
    assert ev.operation == "ec2:DescribeInstances" and ev.service == "ec2"
    assert ev.action == actions.DISCOVERY_READ and ev.read_only is True
    assert ev.outcome == "success" and ev.error_code is None
    assert ev.account == A and ev.region == "us-east-1"
    assert ev.source_ip == "203.0.113.10" and ev.user_agent == "aws-cli/2.15.30"
    assert ev.source == "cloudtrail" and ev.time == datetime(2024, 5, 6, 10, 15, tzinfo=UTC)


def test_assumed_role_sessions_share_the_role_id() -> None:
    a = one(rec(userIdentity=role_identity(session="alice")))
    b = one(rec(userIdentity=role_identity(session="bob", principalId="AROAEXAMPLE:bob")))
    assert a.principal.id == b.principal.id == f"arn:aws:iam::{A}:role/team/ops"
    assert (a.principal.session, b.principal.session) == ("alice", "bob")
    assert a.principal.type == "role" and a.principal.name == "ops" and a.principal.account == A


def test_assumed_role_without_session_context_derives_the_role_arn() -> None:
    ui = role_identity()
    del ui["sessionContext"]
    p = one(rec(userIdentity=ui)).principal
    assert (p.id, p.name, p.session) == (f"arn:aws:iam::{A}:role/ops", "ops", "alice")


@pytest.mark.parametrize(
    ("ui", "pid", "ptype", "name", "invoked_by"),
    [
        (
            {
                "type": "IAMUser",
                "principalId": "AIDA1",
                "arn": f"arn:aws:iam::{A}:user/bob",
                "accountId": A,
                "userName": "bob",
            },
            f"arn:aws:iam::{A}:user/bob",
            "user",
            "bob",
            None,
        ),
        (
            {"type": "Root", "principalId": A, "arn": f"arn:aws:iam::{A}:root", "accountId": A},
            f"arn:aws:iam::{A}:root",
            "user",
            "root",
            None,
        ),
        (
            {"type": "AWSService", "invokedBy": "config.amazonaws.com"},
            "config.amazonaws.com",
            "service",
            "config.amazonaws.com",
            "config.amazonaws.com",
        ),
        (
            {"type": "AWSAccount", "principalId": "AIDAX", "accountId": EXT},
            f"arn:aws:iam::{EXT}:root",
            "unknown",
            EXT,
            None,
        ),
        (
            {
                "type": "IdentityCenterUser",
                "accountId": A,
                "onBehalfOf": {"userId": "uid-123", "identityStoreArn": "arn:x"},
            },
            "uid-123",
            "user",
            "uid-123",
            None,
        ),
        (
            {
                "type": "FederatedUser",
                "principalId": f"{A}:carol",
                "arn": f"arn:aws:sts::{A}:federated-user/carol",
                "accountId": A,
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "IAMUser",
                        "arn": f"arn:aws:iam::{A}:user/fed",
                        "userName": "fed",
                    }
                },
            },
            f"arn:aws:iam::{A}:user/fed",
            "user",
            "fed",
            None,
        ),
        (
            role_identity("AWSBackupDefaultServiceRole", "AWSBackup-x", invokedBy="backup.amazonaws.com"),
            f"arn:aws:iam::{A}:role/team/AWSBackupDefaultServiceRole",
            "role",
            "AWSBackupDefaultServiceRole",
            "backup.amazonaws.com",
        ),
        (
            role_identity("AWSDataLifecycleManagerDefaultRole", "dlm", invokedBy="dlm.amazonaws.com"),
            f"arn:aws:iam::{A}:role/team/AWSDataLifecycleManagerDefaultRole",
            "role",
            "AWSDataLifecycleManagerDefaultRole",
            "dlm.amazonaws.com",
        ),
    ],
    ids=["iam-user", "root", "aws-service", "aws-account", "identity-center", "federated", "backup", "dlm"],
)
def test_principal_rules(ui: dict[str, Any], pid: str, ptype: str, name: str, invoked_by: str | None) -> None:
    p = one(rec(userIdentity=ui)).principal
    assert (p.id, p.type, p.name, p.invoked_by) == (pid, ptype, name, invoked_by)


def test_missing_user_identity_gives_unknown_principal() -> None:
    r = rec()
    del r["userIdentity"]
    assert one(r).principal.id == "unknown"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2022-11-21T18:06:52Z", datetime(2022, 11, 21, 18, 6, 52, tzinfo=UTC)),
        ("2022-11-21 18:06:52", datetime(2022, 11, 21, 18, 6, 52, tzinfo=UTC)),
        ("2022-11-21 18:06:52.123", datetime(2022, 11, 21, 18, 6, 52, 123000, tzinfo=UTC)),
        ("2022-11-21T20:06:52.123456789+02:00", datetime(2022, 11, 21, 18, 6, 52, 123456, tzinfo=UTC)),
    ],
)
def test_event_time_forms(value: str, expected: datetime) -> None:
    ev = one(rec(eventTime=value))
    assert ev.time == expected and ev.time.utcoffset() is not None and not ev.time.utcoffset()


@pytest.mark.parametrize(
    "value", [123, None, "", "yesterday", "2022-13-45T99:00:00Z", ["2022-11-21T18:06:52Z"]]
)
def test_bad_event_time_is_a_record_error(value: Any) -> None:
    assert "eventTime" in error(rec(eventTime=value)).reason


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        ("AccessDenied", "denied"),
        ("AccessDeniedException", "denied"),
        ("UnauthorizedOperation", "denied"),
        ("Client.UnauthorizedOperation", "denied"),
        ("VpceAccessDenied", "denied"),
        ("UnauthorizedAccessException", "denied"),
        ("Client.DryRunOperation", "failure"),
        ("ThrottlingException", "failure"),
        ("InvalidSnapshot.NotFound", "failure"),
    ],
)
def test_outcome_from_error_code(code: str, outcome: str) -> None:
    ev = one(rec(errorCode=code, errorMessage="m"))
    assert (ev.outcome, ev.error_code) == (outcome, code)
    assert ev.action == actions.DISCOVERY_READ  # the action stays: a denied read is still a read


def test_error_message_without_code_is_a_failure() -> None:
    ev = one(rec("signin", "ConsoleLogin", errorMessage="Failed authentication"))
    assert (ev.outcome, ev.error_code) == ("failure", None)


def test_read_only_falls_back_to_the_name_and_reads_string_booleans() -> None:
    r = rec("servicequotas", "ListServiceQuotas")
    del r["readOnly"]
    assert one(r).read_only is True and one(r).action == actions.DISCOVERY_READ
    w = rec("ec2", "RunInstances")
    del w["readOnly"]
    assert one(w).read_only is False and one(w).action is None
    assert one(rec("ec2", "RunInstances", readOnly="true")).read_only is True


def test_same_event_name_in_different_services() -> None:
    ec2 = one(
        rec(
            "ec2",
            "CreateSnapshot",
            requestParameters={"volumeId": "vol-1"},
            responseElements={"snapshotId": "snap-1"},
        )
    )
    cache = one(
        rec("elasticache", "CreateSnapshot", requestParameters={"cacheClusterId": "c1", "snapshotName": "s1"})
    )
    sail = one(
        rec(
            "lightsail",
            "CreateInstanceSnapshot",
            requestParameters={"instanceName": "i", "instanceSnapshotName": "s"},
        )
    )
    assert (ec2.operation, cache.operation, sail.operation) == (
        "ec2:CreateSnapshot",
        "elasticache:CreateSnapshot",
        "lightsail:CreateInstanceSnapshot",
    )
    assert {ec2.action, cache.action, sail.action} == {actions.SNAPSHOT_CREATE}
    assert cache.resources_by_role("created")[0].id == "s1"
    assert ec2.resources_by_role("created")[0].id == "snap-1"


def test_every_aws_condition_is_checked_here() -> None:
    conditional = {op.lower() for (cloud, op) in actions.CONDITIONS if cloud == "aws"}
    assert conditional <= aws.CONDITION_CHECKED


def test_modify_snapshot_attribute_forms() -> None:
    add = {
        "snapshotId": "snap-1",
        "createVolumePermission": {"add": {"items": [{"userId": EXT}, {"group": "all"}]}},
    }
    assert one(rec("ec2", "ModifySnapshotAttribute", requestParameters=add)).targets == (EXT, "all")
    remove = {"snapshotId": "snap-1", "createVolumePermission": {"remove": {"items": [{"userId": EXT}]}}}
    ev = one(rec("ec2", "ModifySnapshotAttribute", requestParameters=remove))
    assert ev.action is None and ev.targets == () and ev.resources[0].id == "snap-1"
    flat = {
        "snapshotId": "snap-1",
        "operationType": "add",
        "userIds": [EXT],
        "attribute": "createVolumePermission",
    }
    assert one(rec("ec2", "ModifySnapshotAttribute", requestParameters=flat)).action == actions.SNAPSHOT_SHARE


def test_rds_attribute_condition() -> None:
    base = {"dBSnapshotIdentifier": "s", "attributeName": "restore"}
    assert one(
        rec("rds", "ModifyDBSnapshotAttribute", requestParameters={**base, "valuesToAdd": ["all"]})
    ).targets == ("all",)
    removed = one(
        rec("rds", "ModifyDBSnapshotAttribute", requestParameters={**base, "valuesToRemove": [EXT]})
    )
    assert removed.action is None
    cluster = one(
        rec(
            "rds",
            "ModifyDBClusterSnapshotAttribute",
            requestParameters={
                "dBClusterSnapshotIdentifier": "cs",
                "attributeName": "restore",
                "valuesToAdd": [EXT],
            },
        )
    )
    assert cluster.action == actions.SNAPSHOT_SHARE and cluster.resources[0].type == "db-cluster-snapshot"


def test_rds_arns_in_the_same_account_become_identifiers() -> None:
    own = f"arn:aws:rds:us-east-1:{A}:snapshot:orders-1"
    other = f"arn:aws:rds:us-east-1:{EXT}:snapshot:theirs"
    assert (
        one(rec("rds", "StartExportTask", requestParameters={"sourceArn": own})).resources[0].id == "orders-1"
    )
    copy_ev = one(
        rec(
            "rds",
            "CopyDBSnapshot",
            requestParameters={"sourceDBSnapshotIdentifier": other, "targetDBSnapshotIdentifier": "mine"},
        )
    )
    assert [(r.id, r.role) for r in copy_ev.resources] == [(other, "source"), ("mine", "created")]


def test_redshift_authorize_snapshot_access_targets() -> None:
    ev = one(
        rec(
            "redshift",
            "AuthorizeSnapshotAccess",
            requestParameters={"snapshotIdentifier": "s1", "accountWithRestoreAccess": EXT},
        )
    )
    assert ev.action == actions.SNAPSHOT_SHARE and ev.targets == (EXT,)


def test_create_snapshots_xml_style_response() -> None:
    resp = {
        "CreateSnapshotsResponse": {
            "xmlns": "http://ec2.amazonaws.com/doc/2016-11-15/",
            "snapshotSet": {
                "item": [
                    {"snapshotId": "snap-a", "volumeId": "vol-a"},
                    {"snapshotId": "snap-b", "volumeId": "vol-b"},
                ]
            },
        }
    }
    req = {"CreateSnapshotsRequest": {"InstanceSpecification": {"InstanceId": "i-1"}}}
    ev = one(rec("ec2", "CreateSnapshots", requestParameters=req, responseElements=resp))
    assert [r.id for r in ev.resources_by_role("created")] == ["snap-a", "snap-b"]
    assert ("instance", "i-1") in [(r.type, r.id) for r in ev.resources_by_role("source")]


def test_tags_from_the_request_forms() -> None:
    ec2 = {
        "tagSpecificationSet": {"items": [{"resourceType": "snapshot", "tags": [{"key": "k", "value": "v"}]}]}
    }
    assert one(rec("ec2", "CreateSnapshot", requestParameters=ec2)).tags == (("k", "v"),)
    assert one(rec("lambda", "TagResource", requestParameters={"tags": {"a": "1"}})).tags == (("a", "1"),)
    assert one(
        rec("rds", "CreateDBSnapshot", requestParameters={"tags": [{"Key": "K", "Value": "V"}]})
    ).tags == (("K", "V"),)


def test_missing_event_id_is_a_stable_hash() -> None:
    r = rec()
    del r["eventID"]
    a, b = one(r), one(copy.deepcopy(r))
    assert a.event_id == b.event_id and len(a.event_id) == 24
    assert one({**r, "eventName": "DescribeVolumes"}).event_id != a.event_id


# ------------------------------------------------------------------------------------------
# envelopes
# ------------------------------------------------------------------------------------------


def test_cloudtrail_file_and_list_locations() -> None:
    out = aws.parse({"Records": [rec(eventID="a"), "junk", rec(eventID="c")]}, "s3://b/k")
    assert [type(x).__name__ for x in out] == ["Event", "RecordError", "Event"]
    assert isinstance(out[1], RecordError) and out[1].location == "s3://b/k#Records[1]"
    assert [
        e.event_id for e in aws.parse([rec(eventID="x"), rec(eventID="y")], "f") if isinstance(e, Event)
    ] == ["x", "y"]


def test_s3_notification_is_not_read_as_cloudtrail() -> None:
    note = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {}}]}
    assert "unwrap_s3_notification" in error(note).reason
    assert "unwrap_s3_notification" in error(note["Records"][0]).reason


@pytest.mark.parametrize(
    "detail_type",
    ["AWS API Call via CloudTrail", "AWS Service Event via CloudTrail", "AWS Console Sign In via CloudTrail"],
)
def test_eventbridge_envelope(detail_type: str) -> None:
    detail = rec("ec2", "CreateSnapshot")
    del detail["recipientAccountId"], detail["awsRegion"]
    detail["userIdentity"] = {"type": "AWSService", "invokedBy": "dlm.amazonaws.com"}
    env = {
        "version": "0",
        "id": "x",
        "detail-type": detail_type,
        "source": "aws.ec2",
        "account": A,
        "region": "eu-west-1",
        "detail": detail,
    }
    ev = one(env)
    assert (ev.account, ev.region, ev.action) == (A, "eu-west-1", actions.SNAPSHOT_CREATE)
    assert ev.raw is detail


def test_eventbridge_other_detail_types_are_errors() -> None:
    assert (
        "unsupported EventBridge detail-type"
        in error({"detail-type": "EC2 Instance State-change Notification", "detail": {}}).reason
    )
    assert (
        "unwrap_s3_notification"
        in error({"detail-type": "Object Created", "source": "aws.s3", "detail": {}}).reason
    )
    assert "expected object" in error({"detail-type": "AWS API Call via CloudTrail", "detail": "x"}).reason


def test_cwlogs_cloudtrail_payload() -> None:
    msg = data_message(
        json.dumps(rec(eventID="a")), "not json", json.dumps([1]), json.dumps(rec(eventID="b"))
    )
    out = aws.parse(awslogs(msg), "lambda")
    assert [type(x).__name__ for x in out] == ["Event", "RecordError", "RecordError", "Event"]
    assert isinstance(out[1], RecordError) and out[1].location == "lambda#logEvents[1]"
    assert "not JSON" in out[1].reason
    assert aws.parse(msg, "decoded") != [] and len(aws.parse(msg, "decoded")) == 4


def test_cwlogs_control_message_yields_nothing() -> None:
    control = {
        "messageType": "CONTROL_MESSAGE",
        "owner": "CloudwatchLogs",
        "logGroup": "",
        "logStream": "",
        "logEvents": [
            {"id": "", "timestamp": 0, "message": "CWL CONTROL MESSAGE: Checking health of destination"}
        ],
    }
    assert aws.parse(awslogs(control), "x") == []
    assert aws.parse(control, "x") == []


def test_cwlogs_eks_audit_carries_cluster_and_account() -> None:
    audit = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": "a-1",
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/prod/secrets",
        "verb": "list",
        "user": {"username": "alice", "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.0.1"],
        "objectRef": {"resource": "secrets", "namespace": "prod", "apiVersion": "v1"},
        "responseStatus": {"code": 200},
        "requestReceivedTimestamp": "2024-05-06T10:00:00.000000Z",
        "stageTimestamp": "2024-05-06T10:00:00.010000Z",
    }
    msg = data_message(json.dumps(audit), group="/aws/eks/prod-eks/cluster", owner=A)
    ev = one(awslogs(msg))
    assert ev.cloud == "kubernetes" and ev.source == "eks_audit" and ev.event_id == "a-1"
    assert ev.principal.account == A
    assert "prod-eks" in (ev.account or "")


def test_cwlogs_other_json_goes_to_the_registry() -> None:
    out = aws.parse(data_message(json.dumps({"hello": "world"})), "x")
    assert len(out) == 1 and isinstance(out[0], RecordError) and out[0].family == "input"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"awslogs": {"data": "%%%not base64%%%"}}, "not base64"),
        ({"awslogs": {"data": base64.b64encode(b"plain bytes").decode()}}, "not gzip"),
        (
            {
                "awslogs": {
                    "data": base64.b64encode(gzip.compress(b'{"messageType":"DATA_MESSAGE"')[:-12]).decode()
                }
            },
            "truncated",
        ),
        (
            {"awslogs": {"data": base64.b64encode(gzip.compress(b'{"messageType": "DATA_MESS')).decode()}},
            "not JSON",
        ),
        (
            {"awslogs": {"data": base64.b64encode(gzip.compress(b'{"messageType": "\xff\xfe"}')).decode()}},
            "not JSON",
        ),
        ({"awslogs": {"data": base64.b64encode(gzip.compress(b"[1, 2]")).decode()}}, "expected object"),
        ({"awslogs": {}}, "missing awslogs.data"),
        ({"awslogs": "x"}, "missing awslogs.data"),
        ({"messageType": "SURPRISE"}, "unknown CloudWatch Logs messageType"),
        ({"messageType": "DATA_MESSAGE", "logEvents": {"a": 1}}, "logEvents is dict"),
        ({"messageType": "DATA_MESSAGE", "logEvents": [{"message": 5}]}, "no message string"),
    ],
)
def test_cwlogs_hostile_payloads(payload: dict[str, Any], reason: str) -> None:
    out = aws.parse(payload, "x")
    assert len(out) == 1 and isinstance(out[0], RecordError), out
    assert reason in out[0].reason


def test_cwlogs_decompression_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws, "MAX_CWLOGS_BYTES", 1000)
    bomb = {"awslogs": {"data": base64.b64encode(gzip.compress(b" " * 100_000)).decode()}}
    assert "more than 1000 bytes" in error(bomb).reason
    unwrapped = aws.unwrap_cwlogs(bomb)
    assert isinstance(unwrapped, RecordError)


def test_unwrap_cwlogs_returns_the_message() -> None:
    msg = data_message("{}")
    assert aws.unwrap_cwlogs(awslogs(msg)) == msg
    assert aws.unwrap_cwlogs(msg) is msg


# ------------------------------------------------------------------------------------------
# S3 delivery
# ------------------------------------------------------------------------------------------


def s3_note(key: str, size: int = 1234, event: str = "ObjectCreated:Put") -> dict[str, Any]:
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2024-05-06T10:15:00.000Z",
                "eventName": event,
                "s3": {
                    "bucket": {"name": "trail-bucket", "arn": "arn:aws:s3:::trail-bucket"},
                    "object": {"key": key, "size": size},
                },
            }
        ]
    }


def test_unwrap_s3_notification_decodes_keys() -> None:
    key = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/06/a+b%3Ac.json.gz"
    assert aws.unwrap_s3_notification(s3_note(key)) == [
        ("trail-bucket", "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/06/a b:c.json.gz")
    ]
    assert aws.unwrap_s3_objects(json.dumps(s3_note("k.json.gz", 0))) == [("trail-bucket", "k.json.gz", 0)]
    assert aws.unwrap_s3_notification(s3_note("k", event="ObjectRemoved:Delete")) == []


def test_unwrap_s3_test_event_sns_and_eventbridge() -> None:
    assert aws.unwrap_s3_notification({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"}) == []
    sns = {"Type": "Notification", "MessageId": "m", "Message": json.dumps(s3_note("x%20y.json.gz"))}
    assert aws.unwrap_s3_notification(sns) == [("trail-bucket", "x y.json.gz")]
    eb = {
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {"bucket": {"name": "b"}, "object": {"key": "raw/2023-08-08T14:03:40.json.gz", "size": 10}},
    }
    assert aws.unwrap_s3_objects(eb) == [("b", "raw/2023-08-08T14:03:40.json.gz", 10)]


def test_unwrap_cloudtrail_sns_notification_bare_and_in_its_envelope() -> None:
    # The message a trail publishes to its SNS topic when it delivers log files (keys are not URL-encoded)
    key = "AWSLogs/111122223333/CloudTrail/us-east-2/2013/12/13/111122223333_CloudTrail_us-west-2_20131213T1920Z_x.gz"
    note = {"s3Bucket": "trail-bucket", "s3ObjectKey": [key, "AWSLogs/a+b%20c.json.gz"]}
    expected = [("trail-bucket", key, None), ("trail-bucket", "AWSLogs/a+b%20c.json.gz", None)]
    assert aws.unwrap_s3_objects(note) == expected
    envelope = {"Type": "Notification", "MessageId": "m", "Message": json.dumps(note)}
    assert aws.unwrap_s3_objects(json.dumps(envelope)) == expected
    # a bad key is reported with its position; the good ones are still returned
    mixed = aws.unwrap_s3_objects({"s3Bucket": "b", "s3ObjectKey": ["k.json.gz", 7, ""]}, "sqs[0]")
    assert mixed[0] == ("b", "k.json.gz", None)
    errors = [e.location for e in mixed[1:] if isinstance(e, RecordError)]
    assert errors == ["sqs[0]#s3ObjectKey[1]", "sqs[0]#s3ObjectKey[2]"]
    # the SQS adapter tells such a body from a record to parse with the same rule
    assert aws.is_s3_notification(note) and aws.is_s3_notification(envelope)
    assert aws.is_s3_notification(s3_note("k.json.gz"))
    record = {"eventSource": "ec2.amazonaws.com", "eventName": "CreateSnapshot", "s3Bucket": "x"}
    eventbridge = {"detail-type": "AWS API Call via CloudTrail", "detail": record}
    assert not aws.is_s3_notification(record) and not aws.is_s3_notification(eventbridge)


@pytest.mark.parametrize(
    "body",
    [
        {"s3Bucket": "", "s3ObjectKey": ["k"]},
        {"s3Bucket": "b", "s3ObjectKey": "k"},
        {"s3Bucket": ["b"], "s3ObjectKey": ["k"]},
    ],
)
def test_unwrap_cloudtrail_sns_notification_malformed_is_an_error(body: Any) -> None:
    out = aws.unwrap_s3_objects(body)
    assert len(out) == 1 and isinstance(out[0], RecordError) and "s3Bucket" in out[0].reason


@pytest.mark.parametrize(
    "body", ["not json", [], {"Records": "x"}, {"Records": [{"eventSource": "aws:sqs"}]}, {"what": 1}]
)
def test_unwrap_s3_bad_bodies_are_errors(body: Any) -> None:
    out = aws.unwrap_s3_notification(body)
    assert out and all(isinstance(x, RecordError) for x in out)


@pytest.mark.parametrize(
    ("key", "size", "ok", "reason"),
    [
        (
            "AWSLogs/1/CloudTrail/us-east-1/2024/05/06/1_CloudTrail_us-east-1_20240506T1015Z_abc.json.gz",
            100,
            True,
            "cloudtrail",
        ),
        ("AWSLogs/o-abc/1/CloudTrail/us-east-1/2024/05/06/x.json.gz", None, True, "cloudtrail"),
        (
            "AWSLogs/1/CloudTrail-Digest/us-east-1/2024/05/06/1_CloudTrail-Digest_x.json.gz",
            100,
            False,
            "digest",
        ),
        ("AWSLogs/1/CloudTrail-Insight/us-east-1/2024/05/06/x.json.gz", 100, False, "insight"),
        ("AWSLogs/1/CloudTrail/us-east-1/2024/05/06/x.json.gz", 0, False, "empty"),
        ("AWSLogs/1/CloudTrail/us-east-1/2024/05/06/", 0, False, "empty"),
        ("AWSLogs/1/CloudTrail/us-east-1/2024/05/06/notes.txt", 10, False, "not_json_gz"),
    ],
)
def test_is_cloudtrail_object(key: str, size: int | None, ok: bool, reason: str) -> None:
    assert aws.is_cloudtrail_object(key, size) == (ok, reason)


# ------------------------------------------------------------------------------------------
# streaming a CloudTrail file
# ------------------------------------------------------------------------------------------


def trail_file(records: list[Any], *, gz: bool = True, indent: int | None = None, prefix: str = "") -> bytes:
    text = json.dumps({"Records": records}, indent=indent)
    if prefix:
        text = "{" + prefix + "," + text[1:]
    data = text.encode()
    return gzip.compress(data) if gz else data


def records(n: int) -> list[dict[str, Any]]:
    return [
        rec(eventID=f"e{i}", eventName=f"Describe{i % 7}", requestParameters={"n": i, "s": "é☃" * (i % 5)})
        for i in range(n)
    ]


@pytest.mark.parametrize(
    ("data", "step"),
    [
        (trail_file(records(50)), 1 << 20),
        (trail_file(records(50)), 7),
        (trail_file(records(50)), 1),
        (trail_file(records(50), gz=False, indent=2), 5),
        (trail_file(records(50), prefix='"Other": {"x": [1, 2, {"y": "]}"}]}'), 3),
        (gzip.compress(json.dumps(records(50)).encode()), 11),
    ],
    ids=[
        "gzip",
        "gzip-trickle",
        "gzip-byte-by-byte",
        "plain-pretty-trickle",
        "other-key-first",
        "top-level-array",
    ],
)
def test_iter_cloudtrail_stream_yields_every_record(data: bytes, step: int) -> None:
    got = list(aws.iter_cloudtrail_stream(Trickle(data, step), "f"))
    assert got == records(50)


def test_stream_record_boundaries_cannot_be_faked() -> None:
    # GIVEN compact records whose content holds the record separator, nested and inside strings
    trap = [
        rec(eventID="a", userAgent='x"},{"eventVersion":"1.09"'),
        rec(eventID="b", requestParameters={"items": [{"a": 1}, {"eventVersion": "1.09", "b": [{"c": 2}]}]}),
        {
            "eventVersion": "1.09",
            "eventID": "c",
            "nested": {"deep": [{"eventVersion": "x"}, {"eventVersion": "y"}]},
        },
        rec(eventID="d"),
    ]
    data = gzip.compress(json.dumps({"Records": trap}, separators=(",", ":")).encode())
    # THEN the stream yields exactly the records json.loads sees
    assert list(aws.iter_cloudtrail_stream(Trickle(data, 64))) == trap
    assert list(aws.iter_cloudtrail_stream(io.BytesIO(data))) == trap


def test_stream_reads_concatenated_gzip_members() -> None:
    whole = json.dumps({"Records": records(10)}).encode()
    data = gzip.compress(whole[:100]) + gzip.compress(whole[100:])
    assert list(aws.iter_cloudtrail_stream(io.BytesIO(data))) == records(10)


@pytest.mark.parametrize(
    ("data", "good", "reason"),
    [
        (
            gzip.compress(json.dumps({"Records": records(20)}).encode())[:-40],
            None,
            "unreadable CloudTrail file",
        ),
        (
            gzip.compress(json.dumps({"Records": records(3)}).encode()[:-30] + b"}, {bad json"),
            2,
            "JSONDecodeError",
        ),
        (gzip.compress(b'{"Records": [{"a": "\xff\xfe"}]}'), 0, "UnicodeDecodeError"),
        (gzip.compress(b'{"awsAccountId": "1", "digestStartTime": "x"}'), 0, "no Records array"),
        (gzip.compress(b'{"Records": {"a": 1}}'), 0, "Records is not an array"),
        (b"", 0, "empty file"),
        (b"\x1f\x8b\x08\x00garbage", 0, "gzip"),
    ],
    ids=[
        "truncated-gzip",
        "bad-json-mid-file",
        "non-utf8",
        "digest-file",
        "records-dict",
        "empty",
        "bad-gzip-header",
    ],
)
def test_stream_damage_is_a_final_record_error(data: bytes, good: int | None, reason: str) -> None:
    got = list(aws.iter_cloudtrail_stream(io.BytesIO(data), "s3://b/k"))
    assert isinstance(got[-1], RecordError) and reason in got[-1].reason, got[-1]
    assert all(isinstance(x, dict) for x in got[:-1])
    if good is not None:
        assert len(got) - 1 == good


def test_stream_non_object_element_is_an_error_and_reading_goes_on() -> None:
    got = list(aws.iter_cloudtrail_stream(io.BytesIO(trail_file([rec(), 5, rec()])), "k"))
    assert [type(x).__name__ for x in got] == ["dict", "RecordError", "dict"]
    assert isinstance(got[1], RecordError) and got[1].location == "k#Records[1]"


def test_parse_cloudtrail_stream_normalizes_with_locations() -> None:
    out = list(
        aws.parse_cloudtrail_stream(io.BytesIO(trail_file([rec(eventID="a"), rec(eventTime=5)])), "s3://b/k")
    )
    assert isinstance(out[0], Event) and out[0].event_id == "a"
    assert isinstance(out[1], RecordError) and out[1].location == "s3://b/k#Records[1]"


def test_stream_memory_is_bounded() -> None:
    # GIVEN a 12 MB CloudTrail file (gzipped in memory before measuring)
    one_rec = json.dumps(rec(requestParameters={"pad": "x" * 1000})).encode()
    n = 12 * 1024 * 1024 // len(one_rec)
    blob = gzip.compress(b'{"Records":[' + b",".join([one_rec] * n) + b"]}", compresslevel=1)
    # WHEN it is streamed record by record
    tracemalloc.start()
    try:
        count = sum(1 for _ in aws.iter_cloudtrail_stream(io.BytesIO(blob)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # THEN every record is read and far less than the file is ever held
    assert count == n
    assert peak < 8 * 1024 * 1024, peak


# ------------------------------------------------------------------------------------------
# hostile input: never an exception
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        (rec(userIdentity="arn:aws:iam::1:user/x"), "userIdentity is str"),
        ({"Records": {"a": 1}}, "Records is dict"),
        (rec(eventTime=123), "eventTime"),
        ({k: v for k, v in rec().items() if k != "eventName"}, "eventName"),
        (rec(eventSource=["ec2"]), "eventSource"),
        ({"foo": 1}, "unrecognised AWS record shape"),
        ("a string", "expected object"),
        (None, "expected object"),
    ],
)
def test_wrong_types_are_record_errors(obj: Any, reason: str) -> None:
    assert reason in error(obj).reason


def test_huge_strings_are_capped() -> None:
    ev = one(
        rec(
            userAgent="A" * 10_000_000,
            sourceIPAddress="1" * 5000,
            eventName="Describe" + "x" * 10_000,
            requestID="r" * 9000,
        )
    )
    assert ev.user_agent is not None and len(ev.user_agent) == 1024
    assert ev.source_ip is not None and len(ev.source_ip) == 1024
    assert (
        len(ev.operation) <= 4096 + len("ec2:")
        and ev.correlation_id is not None
        and len(ev.correlation_id) == 4096
    )


def test_principal_ids_built_from_huge_parts_are_capped() -> None:
    ui = {"type": "AWSAccount", "accountId": "9" * 100_000, "principalId": "x"}
    p = one(rec(userIdentity=ui)).principal
    assert len(p.id) == 4096 and len(p.name) <= 4096


def test_deeply_nested_request_parameters() -> None:
    deep: dict[str, Any] = {}
    cur = deep
    for _ in range(100_000):
        cur["a"] = {}
        cur = cur["a"]
    ev = one(rec("ec2", "CreateSnapshot", requestParameters=deep))
    assert ev.action == actions.SNAPSHOT_CREATE and ev.resources == ()
    no_id = rec("ec2", "CreateSnapshot", requestParameters=deep)
    del no_id["eventID"]
    out = aws.parse(no_id, "x")  # hashing the record may fail: an error, never an exception
    assert len(out) == 1


WEIRD: list[Any] = [
    None,
    0,
    -1,
    1.5,
    True,
    "",
    "x" * 5000,
    [],
    [1, "a", None],
    {},
    {"items": "x"},
    {"add": {"items": [1, None, {}]}},
]


@pytest.mark.parametrize("value", WEIRD, ids=[repr(v)[:20] for v in WEIRD])
def test_any_field_of_any_type_never_raises(value: Any) -> None:
    base = rec(
        "ec2",
        "ModifySnapshotAttribute",
        requestParameters={
            "snapshotId": "snap-1",
            "createVolumePermission": {"add": {"items": [{"userId": EXT}]}},
        },
        responseElements={"snapshotId": "snap-2"},
        serviceEventDetails={"snapshotId": "snap-3"},
    )
    for key in [*list(base), "errorCode", "errorMessage"]:
        mutated = {**base, key: value}
        for obj in (
            mutated,
            {"Records": [mutated]},
            {"detail-type": "AWS API Call via CloudTrail", "detail": mutated},
        ):
            out = aws.parse(obj, "x")
            assert out and all(isinstance(x, Event | RecordError) for x in out)
    for sub in ("userIdentity", "requestParameters", "responseElements"):
        inner = base[sub] if isinstance(base[sub], dict) else {}
        for key in [
            *list(inner),
            "type",
            "arn",
            "sessionContext",
            "items",
            "add",
            "tags",
            "tagSpecificationSet",
        ]:
            mutated = {**base, sub: {**inner, key: value}}
            out = aws.parse(mutated, "x")
            assert len(out) == 1 and isinstance(out[0], Event | RecordError)


def test_caches_stay_bounded() -> None:
    for i in range(aws._CACHE_MAX + 50):
        one(
            rec(
                "ec2",
                f"DescribeThing{i}",
                eventSource=f"svc{i}.amazonaws.com",
                userIdentity=role_identity(session=f"s{i}"),
            )
        )
    assert len(aws._OP_CACHE_RO) <= aws._CACHE_MAX
    assert len(aws._SOURCE_CACHE) <= aws._CACHE_MAX
    assert len(aws._PRINCIPAL_CACHE) <= aws._CACHE_MAX


def test_ecr_reads_name_their_repositories() -> None:
    """ECR reads carry the repositories they touch (registry enumeration counts repositories, not calls)."""
    from adscore.sources.aws import parse

    base = {
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/dev", "accountId": "111122223333"},
        "eventTime": "2026-03-16T10:00:00Z",
        "eventSource": "ecr.amazonaws.com",
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "198.51.100.7",
        "readOnly": True,
        "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333",
    }
    one = parse({**base, "eventID": "e1", "eventName": "DescribeImages",
                 "requestParameters": {"repositoryName": "team/api", "registryId": "444455556666"}}, "t:1")
    many = parse({**base, "eventID": "e2", "eventName": "DescribeRepositories",
                  "requestParameters": {"repositoryNames": ["a", "b"]}}, "t:2")
    listing = parse({**base, "eventID": "e3", "eventName": "DescribeRepositories",
                     "requestParameters": {"maxResults": 100}}, "t:3")
    assert [r.id for r in one[0].resources] == ["arn:aws:ecr:eu-west-1:444455556666:repository/team/api"]
    assert [r.id for r in many[0].resources] == [
        "arn:aws:ecr:eu-west-1:111122223333:repository/a",
        "arn:aws:ecr:eu-west-1:111122223333:repository/b",
    ]
    assert listing[0].resources == ()
