"""Sigma rules on the stream (examples/sigma): single-event rules on the four log sources, a value_count
correlation on the state store, and `adscore sigma check` naming what is unsupported and why."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

pytest.importorskip("sigma")

from adscore.cli import main
from adscore.engine import Engine
from adscore.settings import load_settings
from adscore.state import open_store
from adscore.testing import run_records

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "examples" / "sigma"
GOLDEN = REPO / "tests" / "golden"

PUBLIC = "sigma.7e3c0d1a5b2f4c8e9a612f4b8d9c0e11"
SAS = "sigma.1c8f2a7b9d3e4f608b216a5c4e3d2f10"
GCLOUD_SNAPSHOT = "sigma.4b7e9c210d3f4a5eb6c89e1f2a3b4c5d"
EXEC = "sigma.9a1b2c3d4e5f46078899aabbccddeeff"
REGIONS = "sigma.5a6b7c8d9e0f4a1b8c2d3e4f5a6b7c8d"


def _golden(path: str) -> Any:
    return json.loads((GOLDEN / path).read_text())


def _fired(records: list[Any]) -> set[str]:
    report = run_records(records, sigma_paths=[str(RULES)])
    assert not report.errors, report.errors
    return {a.detection for a in report.alerts}


def _azure(operation: str) -> dict[str, Any]:
    rec = copy.deepcopy(_golden("azure_activity/disk_write_from_snapshot_and_empty.input.json")["records"][0])
    rec["operationName"] = operation
    rec["resourceId"] = rec["resourceId"].replace("/disks/", "/snapshots/")
    return rec


def _k8s(namespace: str) -> Any:
    event = copy.deepcopy(_golden("k8s_audit/exec_cp_backup_command.input.json"))
    event["objectRef"]["namespace"] = namespace
    return event


@pytest.mark.parametrize(
    ("rule", "fires", "quiet"),
    [
        (PUBLIC, lambda: _golden("aws_cloudtrail/modify_snapshot_attribute_share.input.json"),
         lambda: _golden("aws_cloudtrail/modify_snapshot_attribute_remove.input.json")),
        (SAS, lambda: _azure("Microsoft.Compute/snapshots/beginGetAccess/action"),
         lambda: _azure("Microsoft.Compute/snapshots/write")),
        (GCLOUD_SNAPSHOT, lambda: _golden("gcp_audit/disks_create_snapshot.input.json"),
         lambda: _golden("gcp_audit/snapshots_insert_first_last.input.json")),
        (EXEC, lambda: _k8s("payments"), lambda: _k8s("kube-system")),
    ],
    ids=["aws cloudtrail", "azure activitylogs", "gcp gcp.audit", "kubernetes audit"],
)  # fmt: skip
def test_a_single_event_rule_fires_on_its_log_source_and_stays_quiet_on_others(rule: str, fires: Any, quiet: Any) -> None:
    assert rule in _fired([fires()])
    assert rule not in _fired([quiet()])


def test_a_rule_sees_only_its_own_log_source() -> None:
    # a GCP entry that would match the AWS rule's field names is not a CloudTrail record
    fake = {"protoPayload": {"methodName": "ModifySnapshotAttribute", "serviceName": "compute.googleapis.com",
                             "authenticationInfo": {"principalEmail": "a@b.c"}},
            "eventSource": "ec2.amazonaws.com", "insertId": "x", "timestamp": "2026-03-14T01:00:00Z",
            "logName": "projects/p/logs/cloudaudit.googleapis.com%2Factivity"}  # fmt: skip
    assert PUBLIC not in _fired([fake])


def _describe(i: int, region: str, arn: str = "arn:aws:iam::111122223333:user/mallory") -> dict[str, Any]:
    return {"eventVersion": "1.09", "userIdentity": {"type": "IAMUser", "arn": arn, "accountId": "111122223333",
                                                     "userName": arn.rsplit("/", 1)[1]},
            "eventTime": f"2026-03-14T10:{i:02d}:00Z", "eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances",
            "awsRegion": region, "sourceIPAddress": "198.51.100.7", "userAgent": "aws-cli/2", "requestParameters": {},
            "responseElements": None, "eventID": f"d-{arn[-3:]}-{i}", "readOnly": True, "eventType": "AwsApiCall",
            "recipientAccountId": "111122223333"}  # fmt: skip


REGION_NAMES = ["us-east-1", "us-west-2", "eu-west-1", "ap-south-1", "sa-east-1", "ca-central-1"]


def test_a_value_count_correlation_fires_at_its_threshold_per_group() -> None:
    five = [_describe(i, r) for i, r in enumerate(REGION_NAMES[:5])]
    four = [_describe(i, r, "arn:aws:iam::111122223333:user/bob") for i, r in enumerate(REGION_NAMES[:4] * 3)]
    fired = run_records(five + four, sigma_paths=[str(RULES)])
    alerts = [a for a in fired.alerts if a.detection == REGIONS]
    assert len(alerts) == 1 and alerts[0].context["group"] == "arn:aws:iam::111122223333:user/mallory"
    assert alerts[0].context["sigma_rule_id"] == "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
    assert alerts[0].severity == "high" and alerts[0].technique == "T1526"
    # the base rule (level informational) is used by the correlation only: no alert per call
    assert not [a for a in fired.alerts if a.detection == "sigma.2f0e1d2c3b4a45968877665544332211"]


def test_the_correlation_survives_threefold_redelivery_with_one_alert(tmp_path: Path) -> None:
    settings = load_settings(None, sigma_paths=(str(RULES),), state=f"sqlite:///{tmp_path / 's.db'}")
    records = [_describe(i, r) for i, r in enumerate(REGION_NAMES)] * 3  # every record delivered three times
    random.Random(7).shuffle(records)
    sent: list[str] = []
    for start in range(0, len(records), 4):  # in small batches, as a queue hands them over
        engine = Engine(settings, open_store(settings.state))
        report = engine.run([(f"r{start + i}", r) for i, r in enumerate(records[start : start + 4])])
        sent += [a.id for a in report.sent if a.detection == REGIONS]
        engine.store.close()
    assert len(sent) == 1


def test_sigma_check_reports_every_rule_and_says_why_one_is_unsupported(tmp_path: Path) -> None:
    shutil_copy = (RULES / "gcp_snapshot_created.yml").read_text()
    (tmp_path / "good.yml").write_text(shutil_copy)
    (tmp_path / "windows.yml").write_text(shutil_copy.replace("product: gcp", "product: windows")
                                          .replace("4b7e9c21", "0b7e9c21"))  # fmt: skip
    (tmp_path / "placeholder.yml").write_text(shutil_copy.replace("|contains: 'gcloud'", "|expand: '%tools%'")
                                              .replace("4b7e9c21", "1b7e9c21"))  # fmt: skip
    (tmp_path / "ordered.yml").write_text(
        "title: ordered\nid: 3b7e9c21-0d3f-4a5e-b6c8-9e1f2a3b4c5d\ncorrelation:\n  type: temporal_ordered\n"
        "  rules: [4b7e9c21-0d3f-4a5e-b6c8-9e1f2a3b4c5d]\n  group-by: [protoPayload.authenticationInfo.principalEmail]\n"
        "  timespan: 10m\nlevel: high\n"
    )
    (tmp_path / "broken.yml").write_text("title: [unclosed\n")
    result = CliRunner().invoke(main, ["sigma", "check", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(line.startswith("loaded") and "GCP disk snapshot" in line and "good.yml" in line for line in lines)
    reasons = {p: next(line for line in lines if p in line) for p in ("windows.yml", "placeholder.yml", "ordered.yml", "broken.yml")}
    assert reasons["windows.yml"].startswith("unsupported") and "product=windows" in reasons["windows.yml"]
    assert reasons["placeholder.yml"].startswith("unsupported") and "placeholder" in reasons["placeholder.yml"]
    assert reasons["ordered.yml"].startswith("unsupported") and "temporal_ordered" in reasons["ordered.yml"].lower()
    assert reasons["broken.yml"].startswith("unsupported")
    assert lines[-1].startswith("1 loaded") or lines[-1].startswith("2 loaded")


def test_replay_with_sigma_rules_prints_the_rules_identity_in_the_alert(tmp_path: Path) -> None:
    log = tmp_path / "share.json"
    log.write_text(json.dumps(_golden("aws_cloudtrail/modify_snapshot_attribute_share.input.json")))
    result = CliRunner().invoke(main, ["replay", str(log), "--output", "jsonl", "--sigma", str(RULES)])
    assert result.exit_code == 0, result.stderr
    alerts = [json.loads(line) for line in result.stdout.splitlines()]
    (sigma,) = [a for a in alerts if a["detection"] == PUBLIC]
    assert sigma["title"] == "AWS EBS snapshot shared publicly" and sigma["severity"] == "high"
    assert sigma["context"]["sigma_tags"] == ["attack.defense-evasion", "attack.t1578.001"]
    assert sigma["context"]["sigma_falsepositives"] == ["Public AMI publishing pipelines"]


def test_hostile_text_in_a_matched_field_is_read_not_raised() -> None:
    # a lone surrogate in a field a wildcard (RE2) matcher reads: the rule still runs, the record is not failed
    record = _golden("aws_cloudtrail/modify_snapshot_attribute_share.input.json")
    record["userIdentity"]["invokedBy"] = "evil\ud800.example"
    report = run_records([record], sigma_paths=[str(RULES)])
    assert not report.failed and not report.errors
    assert PUBLIC in {a.detection for a in report.alerts}


def test_a_broad_rule_raises_one_alert_per_principal_and_hour(tmp_path: Path) -> None:
    (tmp_path / "broad.yml").write_text(
        "title: Any DescribeInstances\nid: 0c0c0c0c-1d1d-4e2e-8f3f-404040404040\nlevel: low\n"
        "logsource: {product: aws, service: cloudtrail}\n"
        "detection: {selection: {eventName: DescribeInstances}, condition: selection}\n"
    )
    mallory = [_describe(i, "eu-west-1") for i in range(10)]  # ten calls in one hour
    bob = [_describe(i, "eu-west-1", "arn:aws:iam::111122223333:user/bob") for i in range(3)]
    report = run_records(mallory + bob, sigma_paths=[str(tmp_path)])
    alerts = [a for a in report.alerts if a.detection == "sigma.0c0c0c0c1d1d4e2e8f3f404040404040"]
    assert sorted(a.principal["id"] for a in alerts) == ["arn:aws:iam::111122223333:user/bob",
                                                         "arn:aws:iam::111122223333:user/mallory"]  # fmt: skip
