"""Per-identity baselines (discovery bursts) and learned snapshot schedules, through the real engine.

Each test replays raw CloudTrail records day by day into one engine and state store (memory and
SQLite), as ``adscore replay`` over a few days of logs would, and looks at the alerts of the last day:
a CI role's regular sweep with history stays quiet, the same role's credentials used for services it
never used fire, a new principal's sweep fires on the fixed thresholds, a scheduled snapshot is quiet
and a departure (new hour, new volume, many more) fires. Delivery order and redelivery never change
the last day's verdicts once its history is stored.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from adscore.baseline import day_of
from adscore.engine import Engine
from adscore.settings import load_settings
from adscore.state import open_store

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from adscore.alerts import Alert

ACCT = "111122223333"
DAY1 = datetime(2026, 3, 9, tzinfo=UTC)  # a Monday
DAY = timedelta(days=1)
CI_ROLE = f"arn:aws:iam::{ACCT}:role/ci-plan"
BACKUP_ROLE = f"arn:aws:iam::{ACCT}:role/backup-cron"
# what the CI role reads on every run: 30 operations across 6 services
CI_READS = [
    (svc, f"{verb}{thing}{i}")
    for svc, verb, thing in (
        ("ec2", "Describe", "Instances"),
        ("s3", "List", "Buckets"),
        ("ecs", "Describe", "Services"),
        ("lambda", "List", "Functions"),
        ("cloudformation", "Describe", "Stacks"),
        ("elasticloadbalancing", "Describe", "LoadBalancers"),
    )
    for i in range(5)
]
# what it never reads: 24 operations across 6 other services
FOREIGN = [
    (svc, f"{verb}{i}")
    for svc, verb in (
        ("iam", "ListUsers"),
        ("secretsmanager", "ListSecrets"),
        ("organizations", "ListAccounts"),
        ("kms", "ListKeys"),
        ("guardduty", "ListDetectors"),
        ("cloudtrail", "DescribeTrails"),
    )
    for i in range(4)
]
_SEQ = iter(range(10_000_000))


def _identity(role: str, session: str) -> dict[str, Any]:
    name = role.rsplit("/", 1)[-1]
    return {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLE{name.upper()}:{session}",
        "arn": f"arn:aws:sts::{ACCT}:assumed-role/{name}/{session}",
        "accountId": ACCT,
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": role, "accountId": ACCT, "userName": name}},
    }


def _user(name: str) -> dict[str, Any]:
    return {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCT}:user/{name}", "accountId": ACCT, "userName": name}


def read(
    who: dict[str, Any], at: datetime, svc: str, op: str, *, error: str | None = None, request: Any = None
) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": who,
        "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": f"{svc}.amazonaws.com",
        "eventName": op,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "52.1.2.3",
        "userAgent": "aws-sdk-go-v2/1.26.1 os/linux lang/go#1.22.2",
        "requestParameters": request,
        "responseElements": None,
        "eventID": f"evt-{next(_SEQ):08d}",
        "readOnly": True,
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCT,
    }
    if error:
        rec["errorCode"], rec["errorMessage"] = error, "not authorized"
    return rec


def ci_run(at: datetime, reads: Sequence[tuple[str, str]] = CI_READS, session: str = "run") -> list[dict[str, Any]]:
    """One CI run: every read of ``reads``, one every two seconds."""
    who = _identity(CI_ROLE, f"{session}-{at:%d%H%M}")
    return [read(who, at + timedelta(seconds=2 * i), svc, op) for i, (svc, op) in enumerate(reads)]


def ci_day(day: datetime, runs: int = 6) -> list[dict[str, Any]]:
    """The CI role's regular day: a run every ten minutes from 09:00."""
    return [r for k in range(runs) for r in ci_run(day + timedelta(hours=9, minutes=10 * k))]


def snapshot(who: dict[str, Any], at: datetime, vol: str) -> dict[str, Any]:
    n = next(_SEQ)
    return {
        "eventVersion": "1.09",
        "userIdentity": who,
        "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "ec2.amazonaws.com",
        "eventName": "CreateSnapshot",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "52.9.9.9",
        "userAgent": "Boto3/1.34.1",
        "requestParameters": {"volumeId": vol, "description": "nightly"},
        "responseElements": {"snapshotId": f"snap-{n:017x}", "volumeId": vol, "status": "pending"},
        "eventID": f"evt-{n:08d}",
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCT,
    }


VOLUMES = [f"vol-0000000000000000{i}" for i in range(6)]


def backup_night(day: datetime, hour: int = 1, volumes: Sequence[str] = VOLUMES) -> list[dict[str, Any]]:
    """The backup role's scheduled job: a snapshot of each volume, a minute apart, at ``hour``:10 UTC."""
    who = _identity(BACKUP_ROLE, "cron")
    return [snapshot(who, day + timedelta(hours=hour, minutes=10 + i), v) for i, v in enumerate(volumes)]


class Replay:
    """One engine and store that days of records are replayed into, batch by batch."""

    def __init__(self, store_url: str = "memory://", **config: Any) -> None:
        self.settings = load_settings(None, state=store_url, **config)
        self.engine = Engine(self.settings, open_store(self.settings.state))

    def run(self, records: Sequence[dict[str, Any]], batch: int = 500) -> list[Alert]:
        alerts: list[Alert] = []
        for start in range(0, len(records), batch):
            chunk = records[start : start + batch]
            report = self.engine.run([(f"r{start + i}", r) for i, r in enumerate(chunk)])
            assert not report.errors, report.errors
            alerts += report.alerts
        return alerts


def fired(alerts: Sequence[Alert], detection: str, principal: str) -> list[Alert]:
    return [a for a in alerts if a.detection == detection and a.principal.get("id") == principal]


@pytest.fixture(params=["memory", "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'state.db'}"


# --------------------------------------------------------------------------- discovery.api_burst


def test_ci_role_regular_sweep_alerts_on_fixed_thresholds_then_is_learned(store_url: str) -> None:
    # GIVEN a CI role that reads the same 30 operations across 6 services every ten minutes
    replay = Replay(store_url)
    days = [ci_day(DAY1 + timedelta(days=d)) for d in range(3)]
    # WHEN three days are replayed in order
    day1, day2, day3 = (replay.run(d) for d in days)
    # THEN without history (day 1) and with one day of it (day 2) the fixed thresholds apply
    assert fired(day1, "discovery.api_burst", CI_ROLE)
    first = fired(day1, "discovery.api_burst", CI_ROLE)[0]
    assert first.context["baseline_applied"] is False
    assert "No history for this principal yet" in first.summary
    assert fired(day2, "discovery.api_burst", CI_ROLE)
    # AND with two learned days its regular sweep is normal for it: day 3 is quiet
    assert not fired(day3, "discovery.api_burst", CI_ROLE)


def test_ci_role_credentials_used_for_services_it_never_uses_fire(store_url: str) -> None:
    # GIVEN two days of the CI role's regular sweeps as history
    replay = Replay(store_url)
    for d in range(2):
        replay.run(ci_day(DAY1 + timedelta(days=d)))
    # WHEN on day 3, besides its regular runs, its credentials read 24 operations of 6 services it never used
    day3 = DAY1 + timedelta(days=2)
    intruder = ci_run(day3 + timedelta(hours=14, minutes=3), FOREIGN, session="botocore-session")
    alerts = replay.run(sorted(ci_day(day3) + intruder, key=lambda r: r["eventTime"]))
    # THEN api_burst fires on the intruder's window, naming what the role never did
    found = fired(alerts, "discovery.api_burst", CI_ROLE)
    assert len(found) == 1
    ctx = found[0].context
    assert ctx["baseline_applied"] is True
    assert ctx["baseline_new"] >= 20
    assert ctx["baseline_score"] > ctx["baseline_limit"] == 60
    assert any(m.startswith("iam:") for m in ctx["baseline_new_members"])
    assert "never seen for it before" in found[0].summary
    assert found[0].context["last_operation"] in {f"{s}:{op}" for s, op in FOREIGN}


def test_a_few_new_operations_inside_the_usual_sweep_stay_quiet() -> None:
    # GIVEN two learned days; WHEN a day-3 run adds 3 operations the role never used (a new deploy step)
    replay = Replay()
    for d in range(2):
        replay.run(ci_day(DAY1 + timedelta(days=d)))
    day3 = DAY1 + timedelta(days=2)
    alerts = replay.run(ci_run(day3 + timedelta(hours=9), CI_READS + FOREIGN[:3]))
    # THEN 33 + 3 x 3 = 42 <= 2 x 30: more of the same with a little new is still normal for it
    assert not fired(alerts, "discovery.api_burst", CI_ROLE)


def test_a_new_principals_sweep_fires_on_the_fixed_thresholds(store_url: str) -> None:
    # GIVEN two days of history for the CI role (and none for anyone else)
    replay = Replay(store_url)
    for d in range(2):
        replay.run(ci_day(DAY1 + timedelta(days=d)))
    # WHEN a new IAM user reads 24 operations across 6 services on day 3
    day3 = DAY1 + timedelta(days=2, hours=11)
    who = _user("temp-contractor")
    alerts = replay.run([read(who, day3 + timedelta(seconds=3 * i), s, o) for i, (s, o) in enumerate(FOREIGN)])
    # THEN it fires: no history, fixed thresholds
    found = fired(alerts, "discovery.api_burst", f"arn:aws:iam::{ACCT}:user/temp-contractor")
    assert found
    assert found[0].context["baseline_days_learned"] == 0


def test_baseline_off_keeps_the_fixed_thresholds() -> None:
    # GIVEN baseline_days: 0 WHEN the CI role's regular third day is replayed THEN it still fires (before/after)
    replay = Replay(detections={"discovery.api_burst": {"baseline_days": 0}})
    alerts = [replay.run(ci_day(DAY1 + timedelta(days=d))) for d in range(3)]
    assert fired(alerts[2], "discovery.api_burst", CI_ROLE)


def test_the_baseline_is_per_principal() -> None:
    # GIVEN the CI role's history WHEN another role makes the very same sweep on day 3 THEN that role fires
    replay = Replay()
    for d in range(2):
        replay.run(ci_day(DAY1 + timedelta(days=d)))
    other = f"arn:aws:iam::{ACCT}:role/ci-apply"
    who = _identity(other, "run")
    day3 = DAY1 + timedelta(days=2, hours=9)
    alerts = replay.run([read(who, day3 + timedelta(seconds=2 * i), s, o) for i, (s, o) in enumerate(CI_READS)])
    assert fired(alerts, "discovery.api_burst", other)


def test_history_is_only_days_before_the_events_own_day() -> None:
    # GIVEN one engine: a CI sweep early on day 1 WHEN the same sweep runs later the same day THEN still fixed
    replay = Replay(detections={"discovery.api_burst": {"baseline_min_days": 1}})
    first = replay.run(ci_run(DAY1 + timedelta(hours=1)))
    later = replay.run(ci_run(DAY1 + timedelta(hours=5)))
    assert fired(first, "discovery.api_burst", CI_ROLE)
    assert fired(later, "discovery.api_burst", CI_ROLE)  # its own day is never its history
    # AND on day 2 (one learned day, the minimum here) it is learned
    assert not fired(replay.run(ci_run(DAY1 + timedelta(days=1, hours=1))), "discovery.api_burst", CI_ROLE)


def _day3_verdicts(history: Sequence[dict[str, Any]], day3: Sequence[dict[str, Any]], batch: int) -> set[tuple[str, str]]:
    replay = Replay()
    replay.run(history, batch=batch)
    return {(a.detection, str(a.principal.get("id"))) for a in replay.run(day3, batch=batch)}


@pytest.mark.parametrize("seed", range(4))
def test_day3_verdicts_do_not_depend_on_order_batching_or_redelivery_once_history_is_stored(seed: int) -> None:
    # GIVEN two days of CI history and a third day with the intruder's reads
    history = [r for d in range(2) for r in ci_day(DAY1 + timedelta(days=d))]
    day3 = DAY1 + timedelta(days=2)
    third = sorted(
        ci_day(day3) + ci_run(day3 + timedelta(hours=14), FOREIGN, session="x"), key=lambda r: r["eventTime"]
    )
    in_order = _day3_verdicts(history, third, 10_000)
    assert ("discovery.api_burst", CI_ROLE) in in_order
    # WHEN the history days and the third day are each shuffled, cut in random batches and partly redelivered
    rng = random.Random(seed)
    shuffled_history = rng.sample(history, len(history))
    shuffled_third = rng.sample(third, len(third))
    shuffled_third += rng.sample(third, 40)  # redelivered records
    # THEN the third day raises the same alerts
    assert _day3_verdicts(shuffled_history, shuffled_third, rng.randrange(7, 90)) == in_order


def test_a_day_judged_before_its_history_can_only_add_alerts() -> None:
    # GIVEN the third day delivered before the two days it would learn from
    history = [r for d in range(2) for r in ci_day(DAY1 + timedelta(days=d))]
    third = ci_day(DAY1 + timedelta(days=2))
    replay = Replay()
    early = replay.run(third)
    replay.run(history)
    # THEN it was judged on the fixed thresholds (an extra alert, never a missed one) ...
    assert fired(early, "discovery.api_burst", CI_ROLE)
    # ... and a redelivery of it once the history is stored is judged as a sorted run judges it
    again = Replay()
    again.run(history)
    assert not fired(again.run(third), "discovery.api_burst", CI_ROLE)


def test_learned_days_expire_after_baseline_days() -> None:
    # GIVEN two learned days WHEN the next sweep comes baseline_days + 2 days later THEN history is gone: fixed
    replay = Replay(detections={"discovery.api_burst": {"baseline_days": 3}})
    for d in range(2):
        replay.run(ci_day(DAY1 + timedelta(days=d)))
    assert not fired(replay.run(ci_day(DAY1 + timedelta(days=2))), "discovery.api_burst", CI_ROLE)
    assert fired(replay.run(ci_day(DAY1 + timedelta(days=6))), "discovery.api_burst", CI_ROLE)


# --------------------------------------------------------------------------- access_denied_burst, registry


def test_access_denied_burst_learns_a_roles_usual_denials_and_fires_on_new_ones() -> None:
    # GIVEN a scanner role denied the same 12 calls across 3 services on each run, for two days
    scanner = _identity(CI_ROLE, "scan")
    usual = [("ec2", "DescribeInstanceAttribute"), ("s3", "GetBucketPolicy"), ("kms", "GetKeyPolicy")]

    def run(at: datetime, calls: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        return [read(scanner, at + timedelta(seconds=i), s, f"{o}") for i, (s, o) in enumerate(calls)]

    replay = Replay()
    days = []
    for d in range(3):
        day = DAY1 + timedelta(days=d, hours=3)
        recs = [dict(r, errorCode="AccessDenied", errorMessage="no") for r in run(day, usual * 4)]
        days.append(replay.run(recs))
    assert fired(days[0], "discovery.access_denied_burst", CI_ROLE)
    assert not fired(days[2], "discovery.access_denied_burst", CI_ROLE)
    # WHEN its credentials are then refused on 4 services it was never refused on
    probe = [("iam", "ListUsers"), ("organizations", "ListAccounts"), ("secretsmanager", "ListSecrets"), ("guardduty", "ListDetectors")]
    recs = [dict(r, errorCode="AccessDenied", errorMessage="no") for r in run(DAY1 + timedelta(days=2, hours=15), probe * 3)]
    # THEN it fires
    found = fired(replay.run(recs), "discovery.access_denied_burst", CI_ROLE)
    assert found
    assert found[0].context["baseline_new"] == 4
    assert found[0].context["baseline_score"] == 12 + 3 * 12  # each call on a new service counts four times


def test_registry_enumeration_learns_a_pipelines_repositories() -> None:
    # GIVEN a pipeline that describes the images of the same 12 repositories every run
    who = _identity(CI_ROLE, "build")
    repos = [f"team/app-{i}" for i in range(12)]

    def run(at: datetime, names: Sequence[str]) -> list[dict[str, Any]]:
        return [
            read(who, at + timedelta(seconds=i), "ecr", "DescribeImages", request={"repositoryName": n})
            for i, n in enumerate(names)
        ]

    replay = Replay()
    days = [replay.run(run(DAY1 + timedelta(days=d, hours=10), repos)) for d in range(3)]
    assert fired(days[0], "discovery.registry_enumeration", CI_ROLE)
    assert not fired(days[2], "discovery.registry_enumeration", CI_ROLE)
    # WHEN its credentials walk 12 repositories it never read THEN it fires
    others = [f"secret/infra-{i}" for i in range(12)]
    found = fired(replay.run(run(DAY1 + timedelta(days=2, hours=16), others)), "discovery.registry_enumeration", CI_ROLE)
    assert found
    assert found[0].context["baseline_new"] == 12


# --------------------------------------------------------------------------- snapshot schedules


def _snapshot_alerts(alerts: Sequence[Alert]) -> set[str]:
    return {a.detection for a in alerts if a.principal.get("id") == BACKUP_ROLE and a.detection.startswith("snapshot.")}


def _learned_backup(store_url: str = "memory://") -> Replay:
    replay = Replay(store_url)
    first = replay.run(backup_night(DAY1))
    assert {"snapshot.off_hours", "snapshot.burst"} <= _snapshot_alerts(first)  # no schedule yet
    replay.run(backup_night(DAY1 + timedelta(days=1)))
    return replay


def test_a_scheduled_backup_is_learned_and_quiet(store_url: str) -> None:
    # GIVEN a role that snapshots the same six volumes at 01:10 UTC every night, for two nights
    replay = _learned_backup(store_url)
    # WHEN the third night runs the same job THEN neither off_hours nor burst fires
    assert _snapshot_alerts(replay.run(backup_night(DAY1 + timedelta(days=2)))) == set()


def test_a_scheduled_role_snapshotting_at_a_new_hour_fires() -> None:
    replay = _learned_backup()
    alerts = replay.run(backup_night(DAY1 + timedelta(days=2), hour=23))
    assert _snapshot_alerts(alerts) == {"snapshot.off_hours", "snapshot.burst"}
    off = next(a for a in alerts if a.detection == "snapshot.off_hours")
    assert any("a new hour" in d for d in off.context["schedule_departures"])
    assert "departs from the schedule" in off.summary


def test_a_scheduled_role_snapshotting_a_new_volume_at_its_hour_fires() -> None:
    replay = _learned_backup()
    alerts = replay.run(backup_night(DAY1 + timedelta(days=2), volumes=[*VOLUMES[:5], "vol-0feedfacefeedface"]))
    off = [a for a in alerts if a.detection == "snapshot.off_hours"]
    assert off
    assert any("a new source" in d for d in off[0].context["schedule_departures"])


def test_a_scheduled_role_taking_many_more_snapshots_than_usual_fires() -> None:
    replay = _learned_backup()
    volumes = VOLUMES * 1 + [v + "x" for v in VOLUMES]  # twelve: six known and six new
    alerts = replay.run(backup_night(DAY1 + timedelta(days=2), volumes=volumes))
    burst = [a for a in alerts if a.detection == "snapshot.burst"]
    assert burst
    assert any("more than" in d for d in burst[0].context["schedule_departures"])


def test_schedule_learning_off_keeps_the_old_behaviour() -> None:
    replay = Replay(detections={"snapshot.off_hours": {"schedule_days": 0}, "snapshot.burst": {"schedule_days": 0}})
    for d in range(2):
        replay.run(backup_night(DAY1 + timedelta(days=d)))
    assert _snapshot_alerts(replay.run(backup_night(DAY1 + timedelta(days=2)))) == {"snapshot.off_hours", "snapshot.burst"}


def test_day_of_is_the_utc_day() -> None:
    assert day_of(datetime(1970, 1, 2, 23, 59, tzinfo=UTC)) == 1
    assert day_of(DAY1) == day_of(DAY1 + timedelta(hours=23, minutes=59, seconds=59))


def test_a_history_is_one_read_of_one_key_per_day_and_reads_days_learned_before(tmp_path: Path) -> None:
    from adscore.baseline import BaselineParams, history, learn
    from adscore.state.base import BatchedState
    from adscore.state.sqlite import SqliteStateStore

    p = BaselineParams(baseline_days=14)
    base = "discovery.api_burst|" + CI_ROLE
    with SqliteStateStore(str(tmp_path / "state.db")) as store:
        store.init()
        # GIVEN day 1 stored as earlier versions stored it (a one-second bucket of a window at the day's start)
        start = DAY1
        store.add(f"{base}|day|{day_of(start)}", ["ec2\x1fDescribeInstances0", "#000030"], start, timedelta(seconds=2), 15 * DAY)
        # AND day 2 learned through the state API now
        learn(store, base, DAY1 + DAY + timedelta(hours=3), ["s3\x1fListBuckets0"], 12, p, floor=20)
        calls: list[int] = []
        get_sets = store.get_sets

        def counted(keys: Sequence[str], at: datetime) -> dict[str, frozenset[str]]:
            calls.append(len(keys))
            return get_sets(keys, at)

        store.get_sets = counted  # type: ignore[method-assign]  # count the store's calls, the store answers
        batched = BatchedState(store)
        # WHEN day 3 reads its history
        past = history(batched, base, DAY1 + 2 * DAY + timedelta(hours=1), 14)
        # THEN both days are read (the old key name still), the larger peak wins
        assert (past.days, past.peak) == (2, 30)
        assert past.known == {"ec2\x1fDescribeInstances0", "s3\x1fListBuckets0"}
        # AND fourteen days cost one store call of fourteen keys, and a second judge reads nothing
        assert calls == [14]
        assert batched.reads == 14
        history(batched, base, DAY1 + 2 * DAY + timedelta(hours=2), 14)
        assert calls == [14]


# --------------------------------------------------------------------------- k8s_namespace_sweep


def k8s_list(user: str, at: datetime, namespace: str, *, code: int = 200) -> dict[str, Any]:
    n = next(_SEQ)
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": f"00000000-0000-4000-8000-{n:012d}",
        "stage": "ResponseComplete",
        "requestURI": f"/api/v1/namespaces/{namespace}/pods",
        "verb": "list",
        "user": {"username": user, "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.0.7"],
        "userAgent": "argocd-application-controller/v2.10.4",
        "objectRef": {"resource": "pods", "apiVersion": "v1", "namespace": namespace},
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": at.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
        "stageTimestamp": at.strftime("%Y-%m-%dT%H:%M:%S.002000Z"),
        "annotations": {"authorization.k8s.io/decision": "allow" if code == 200 else "forbid"},
    }


def test_k8s_namespace_sweep_learns_a_deployers_namespaces_and_fires_on_new_ones() -> None:
    # GIVEN a deploy identity that lists pods in the same 8 namespaces every run, for two days
    user = "oidc:deployer@example.com"
    usual = [f"team-{i}" for i in range(8)]

    def run(at: datetime, namespaces: Sequence[str], code: int = 200) -> list[dict[str, Any]]:
        return [k8s_list(user, at + timedelta(seconds=i), ns, code=code) for i, ns in enumerate(namespaces)]

    replay = Replay()
    days = [replay.run(run(DAY1 + timedelta(days=d, hours=10), usual)) for d in range(3)]
    assert fired(days[0], "discovery.k8s_namespace_sweep", user)
    assert not fired(days[2], "discovery.k8s_namespace_sweep", user)
    # WHEN it lists pods in 8 namespaces it never read THEN it fires
    strange = [f"kube-{i}" for i in range(8)]
    found = fired(replay.run(run(DAY1 + timedelta(days=2, hours=15), strange)), "discovery.k8s_namespace_sweep", user)
    assert found
    assert found[0].context["baseline_new"] == 8
    # AND forbidden namespaces are never baselined
    denied = replay.run(run(DAY1 + timedelta(days=2, hours=17), usual[:3], code=403))
    assert fired(denied, "discovery.k8s_namespace_sweep", user)


@pytest.mark.parametrize(
    ("detection", "values", "named"),
    [
        ("discovery.api_burst", {"baseline_days": 3, "baseline_min_days": 5}, "baseline_min_days"),
        ("snapshot.burst", {"schedule_days": 1, "schedule_min_days": 2}, "schedule_min_days"),
    ],
)
def test_a_learning_minimum_longer_than_the_history_is_a_setting_error(
    detection: str, values: dict[str, int], named: str
) -> None:
    # building the engine (start-up, and `adscore validate-settings`) fails, naming the setting
    from adscore.errors import ConfigError

    with pytest.raises(ConfigError, match=f"detections.{detection}.*{named}"):
        Replay(detections={detection: values})


def test_log_text_that_looks_like_a_peak_is_vocabulary_not_a_peak() -> None:
    # a member from a log that starts like a stored peak ("#999999") must not raise the principal's peak
    from adscore.baseline import BaselineParams, history, judge, learn
    from adscore.state.memory import MemoryStateStore

    store, p = MemoryStateStore(), BaselineParams()
    for d in range(2):
        learn(store, "b", DAY1 + timedelta(days=d), ("#999999", "ec2:DescribeInstances"), 20, p, 20)
    past = history(store, "b", DAY1 + timedelta(days=2), 14)
    assert (past.days, past.peak) == (2, 20)
    verdict = judge(store, "b", DAY1 + timedelta(days=2), 45, frozenset({"#999999", "iam:ListUsers"}), p)
    assert verdict.new == ("iam:ListUsers",)
    assert verdict.alert  # 45 + 3 > 2 x 20
