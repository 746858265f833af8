"""The Security Hub sink against moto in server mode, over loopback.

Findings are read back with ``GetFindings`` from the emulator: what is asserted
is what Security Hub holds, not what we meant to send.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner

from adscore.alerts import Alert, make_alert
from adscore.cli import main
from adscore.errors import ConfigError, SinkError
from adscore.events import Principal, Resource
from adscore.sinks import open_sink
from adscore.sinks.base import RetryingSink
from adscore.sinks.securityhub import MAX_BATCH_FINDINGS, SecurityHubSink
from tests.integration import moto_server as _moto
from tests.integration.moto_server import ACCOUNT, REGION, MotoServer

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration
moto_server, aws_env = _moto.moto_server, _moto.aws_env  # fixtures

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
PRODUCT_ARN = f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default"


def alert(n: int = 1, **overrides: Any) -> Alert:
    fields: dict[str, Any] = {
        "detection": "snapshot.shared_external",
        "entity": f"arn:aws:iam::{ACCOUNT}:user/user{n}",
        "window_start": T0,
        "technique": "T1578.001",
        "technique_name": "Create Snapshot",
        "tactic": "Defense Evasion",
        "severity": "high",
        "title": f"Snapshot shared outside the organization by user{n}",
        "summary": f"user{n} shared snap-{n} with 999988887777",
        "principal": Principal(id=f"arn:aws:iam::{ACCOUNT}:user/user{n}", type="user", name=f"user{n}"),
        "cloud": "aws",
        "account": ACCOUNT,
        "region": "eu-west-1",
        "resources": [Resource("snapshot", f"snap-{n}"), Resource("volume", f"vol-{n}", "source")],
        "first_seen": T0,
        "last_seen": T0 + timedelta(minutes=1),
        "count": n,
        "event_ids": [f"e-{n}"],
        "records": [{"eventName": "ModifySnapshotAttribute", "n": n}],
        "response": [
            "Revoke the share on the snapshot.",
            "Ask the principal's owner whether it was planned.",
        ],
        "ads_url": "https://ads.example.com/detections/snapshot.shared_external",
    }
    fields.update(overrides)
    return make_alert(**fields)


@pytest.fixture
def hub(aws_env: MotoServer) -> Any:
    client = aws_env.client("securityhub")
    client.enable_security_hub()
    return client


def findings(hub: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in hub.get_paginator("get_findings").paginate():
        out.extend(page["Findings"])
    return out


def test_an_alert_becomes_a_finding_with_the_asff_fields(hub: Any) -> None:
    a = alert(1)
    report = SecurityHubSink(clock=lambda: T0.timestamp() + 3600).send([a])
    assert report.sent == (a.id,) and report.ok
    (f,) = findings(hub)
    assert f["Id"] == a.id
    assert f["ProductArn"] == PRODUCT_ARN and f["AwsAccountId"] == ACCOUNT
    assert f["SchemaVersion"] == "2018-10-08"
    assert f["GeneratorId"] == "adscore/snapshot.shared_external"
    assert f["Types"] == ["TTPs/Defense Evasion/T1578.001 Create Snapshot"]
    assert f["Severity"] == {"Label": "HIGH", "Original": "high"}
    assert f["FindingProviderFields"] == {
        "Severity": {"Label": "HIGH", "Original": "high"},
        "Types": ["TTPs/Defense Evasion/T1578.001 Create Snapshot"],
    }
    assert f["Title"] == a.title and f["Description"] == a.summary
    assert f["Remediation"]["Recommendation"] == {
        "Text": "1. Revoke the share on the snapshot. 2. Ask the principal's owner whether it was planned.",
        "Url": "https://ads.example.com/detections/snapshot.shared_external",
    }
    assert f["SourceUrl"] == a.ads_url
    assert [(r["Type"], r["Id"], r["Region"], r["Partition"]) for r in f["Resources"]] == [
        ("Other", "snap-1", "eu-west-1", "aws"),
        ("AwsEc2Volume", "vol-1", "eu-west-1", "aws"),
        ("AwsIamUser", f"arn:aws:iam::{ACCOUNT}:user/user1", "eu-west-1", "aws"),
    ]
    assert f["Resources"][1]["Details"]["Other"]["adscore/role"] == "source"
    assert f["CreatedAt"] == "2024-05-01T12:00:00.000Z" == f["FirstObservedAt"]
    assert f["LastObservedAt"] == "2024-05-01T12:01:00.000Z"
    assert f["UpdatedAt"] == "2024-05-01T13:00:00.000Z"
    assert f["ProductFields"]["adscore/detection"] == "snapshot.shared_external"
    assert f["ProductFields"]["adscore/evidence_event_ids"] == "e-1"
    assert f["RecordState"] == "ACTIVE"


def test_discovery_alerts_are_ttps_discovery_and_always_have_a_resource(hub: Any) -> None:
    a = alert(
        2,
        detection="discovery.api_burst",
        technique="T1526",
        technique_name="Cloud Service Discovery",
        tactic="Discovery",
        severity="info",
        resources=[],
        principal=Principal(id=f"arn:aws:iam::{ACCOUNT}:role/scanner", type="role", name="scanner"),
    )
    SecurityHubSink().send([a])
    (f,) = findings(hub)
    assert f["Types"] == ["TTPs/Discovery/T1526 Cloud Service Discovery"]
    assert f["Severity"]["Label"] == "INFORMATIONAL"
    assert [(r["Type"], r["Id"]) for r in f["Resources"]] == [
        ("AwsIamRole", f"arn:aws:iam::{ACCOUNT}:role/scanner")
    ]


def test_a_second_delivery_updates_the_finding_instead_of_adding_one(hub: Any) -> None:
    # GIVEN an alert delivered once, WHEN the same alert (same id) comes again with more events
    first = alert(1)
    SecurityHubSink(clock=lambda: T0.timestamp() + 60).send([first])
    grown = alert(1, count=7, last_seen=T0 + timedelta(minutes=9), severity="critical")
    assert grown.id == first.id
    SecurityHubSink(clock=lambda: T0.timestamp() + 600).send([grown])
    # THEN Security Hub holds one finding, with the later values
    (f,) = findings(hub)
    assert f["Id"] == first.id
    assert f["ProductFields"]["adscore/count"] == "7"
    assert f["FindingProviderFields"]["Severity"]["Label"] == "CRITICAL"
    assert f["LastObservedAt"] == "2024-05-01T12:09:00.000Z"
    assert f["CreatedAt"] == "2024-05-01T12:00:00.000Z"  # unchanged: the same finding


def test_batches_stay_within_100_findings_per_call(hub: Any) -> None:
    # GIVEN 250 alerts, WHEN sent at once, THEN three calls of at most 100 and every finding stored
    calls: list[int] = []
    sink = SecurityHubSink()
    client, _, _ = sink._target()
    client.meta.events.register(
        "provide-client-params.securityhub.BatchImportFindings",
        lambda params, **_: calls.append(len(params["Findings"])),
    )
    alerts = [alert(n) for n in range(250)]
    report = sink.send(alerts + alerts[:5])  # duplicates in one batch are sent once
    assert calls == [MAX_BATCH_FINDINGS, MAX_BATCH_FINDINGS, 50]
    assert len(report.sent) == 250
    assert sorted(f["Id"] for f in findings(hub)) == sorted(a.id for a in alerts)


def test_a_refused_finding_is_reported_as_a_permanent_failure(hub: Any) -> None:
    # GIVEN one good alert and one Security Hub refuses (moto refuses a finding without resources)
    good, bad = alert(1), alert(2)
    sink = SecurityHubSink()
    client, _, _ = sink._target()

    def drop_resources(params: dict[str, Any], **_: Any) -> None:
        for f in params["Findings"]:
            if f["Id"] == bad.id:
                f["Resources"] = []

    client.meta.events.register("provide-client-params.securityhub.BatchImportFindings", drop_resources)
    with pytest.raises(SinkError) as err:
        RetryingSink(sink, sleep=lambda _: None).send([good, bad])
    assert err.value.unsent == (bad.id,)
    assert [f["Id"] for f in findings(hub)] == [good.id]


def test_alerts_from_other_clouds_belong_to_the_calling_account(hub: Any) -> None:
    a = alert(
        3,
        cloud="gcp",
        account="my-project",
        region="europe-west1",
        principal=Principal(id="mallory@example.com", type="user", name="mallory"),
        resources=[Resource("snapshot", "projects/my-project/global/snapshots/s1")],
    )
    SecurityHubSink().send([a])
    (f,) = findings(hub)
    assert f["AwsAccountId"] == ACCOUNT
    assert {r["Type"] for r in f["Resources"]} == {"Other"}
    assert {r["Region"] for r in f["Resources"]} == {REGION}
    assert f["ProductFields"]["adscore/account"] == "my-project"


def test_attacker_text_is_capped_to_asff_limits(hub: Any) -> None:
    a = alert(4, title="T" * 300, summary="S" * 1000 + " <script>", response=["R" * 900])
    SecurityHubSink().send([a])
    (f,) = findings(hub)
    assert len(f["Title"]) == 256 and f["Title"].endswith("…")
    assert len(f["Description"]) <= 1024
    assert len(f["Remediation"]["Recommendation"]["Text"]) == 512


@pytest.mark.parametrize(
    ("url", "region", "account"),
    [
        ("securityhub://", None, None),
        ("securityhub://eu-west-1", "eu-west-1", None),
        ("securityhub://eu-west-1/111122223333", "eu-west-1", "111122223333"),
    ],
)
def test_urls(url: str, region: str | None, account: str | None) -> None:
    sink = open_sink(url)
    assert isinstance(sink, RetryingSink) and isinstance(sink.inner, SecurityHubSink)
    assert (sink.inner.region, sink.inner.account) == (region, account)


@pytest.mark.parametrize("url", ["securityhub://nowhere", "securityhub://eu-west-1/12", "securityhub://?x=1"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(ConfigError) as err:
        open_sink(url)
    assert err.value.setting == "sinks"


def test_replay_with_the_securityhub_sink_creates_then_updates_the_finding(hub: Any, tmp_path: Path) -> None:
    # GIVEN a CloudTrail record that shares a snapshot with another account
    share = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser",
            "arn": f"arn:aws:iam::{ACCOUNT}:user/alice",
            "accountId": ACCOUNT,
            "userName": "alice",
        },
        "eventTime": "2026-03-14T02:05:00Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": "ModifySnapshotAttribute",
        "awsRegion": REGION,
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": {
            "snapshotId": "snap-5",
            "attributeType": "CREATE_VOLUME_PERMISSION",
            "createVolumePermission": {"add": {"items": [{"userId": "999988887777"}]}},
        },
        "responseElements": {"_return": True},
        "eventID": "evt-5",
        "readOnly": False,
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCOUNT,
    }
    trail = tmp_path / "trail.jsonl"
    trail.write_text(json.dumps(share) + "\n")
    runner = CliRunner()
    # WHEN it is replayed twice (each run has a fresh state, so the alert is sent twice)
    runs = []
    for _ in range(2):
        res = runner.invoke(main, ["replay", str(trail), "--output", "jsonl", "--sink", "securityhub://"])
        assert res.exit_code == 0, res.output
        runs.append([json.loads(line) for line in res.stdout.splitlines()])
    # THEN each alert is one finding, holding its fields
    alerts = {a["id"]: a for a in runs[0]}
    assert {a["id"] for a in runs[1]} == set(alerts)
    stored = findings(hub)
    assert sorted(f["Id"] for f in stored) == sorted(alerts)
    shared = next(f for f in stored if alerts[f["Id"]]["detection"] == "snapshot.shared_external")
    assert shared["Types"] == ["TTPs/Defense Evasion/T1578.001 Create Snapshot"]
    assert shared["Severity"]["Label"] == alerts[shared["Id"]]["severity"].upper()
    assert "snap-5" in [r["Id"] for r in shared["Resources"]]
    assert shared["Remediation"]["Recommendation"]["Text"]
    assert shared["FindingProviderFields"]["Types"] == shared["Types"]
    assert shared["ProductFields"]["adscore/settings_version"] == alerts[shared["Id"]]["settings_version"]
