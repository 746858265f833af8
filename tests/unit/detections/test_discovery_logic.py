"""Logic of the T1526 detections and the discovery -> snapshot chain, on normalized events and raw records.

The case files (tests/cases/discovery_*, chain_*) check the alerts end to end; these tests pin the rules
behind them: both thresholds, distinct counting, redelivery, episodes, learning periods, suppressions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from adscore.actions import DISCOVERY_PERMISSION_PROBE, DISCOVERY_READ, SNAPSHOT_CREATE
from adscore.detection import Context, Detection, Finding
from adscore.detections import (
    chain_discovery_then_snapshot,
    discovery_access_denied_burst,
    discovery_api_burst,
    discovery_enumeration_tool,
    discovery_k8s_namespace_sweep,
    discovery_k8s_permission_probe,
    discovery_registry_enumeration,
    discovery_unusual_services,
)
from adscore.events import Event, Principal, Resource
from adscore.settings import load_settings
from adscore.state.base import BatchedState
from adscore.state.memory import MemoryStateStore
from adscore.testing import load_case, run_records

if TYPE_CHECKING:
    from collections.abc import Iterable

CASES = Path(__file__).resolve().parents[2] / "cases"
T0 = datetime(2026, 3, 14, 2, 0, tzinfo=UTC)
ALICE = Principal(
    id="arn:aws:iam::111122223333:user/alice", type="user", name="alice", account="111122223333"
)
BOB = Principal(id="arn:aws:iam::111122223333:user/bob", type="user", name="bob", account="111122223333")
MODULES = (
    discovery_api_burst,
    discovery_access_denied_burst,
    discovery_enumeration_tool,
    discovery_unusual_services,
    discovery_k8s_namespace_sweep,
    discovery_k8s_permission_probe,
    discovery_registry_enumeration,
    chain_discovery_then_snapshot,
)
SETTINGS = load_settings(None)
_SEQ = iter(range(1_000_000))


def ev(
    operation: str,
    service: str,
    *,
    at: datetime = T0,
    who: Principal = ALICE,
    cloud: str = "aws",
    outcome: str = "success",
    action: str | None = DISCOVERY_READ,
    namespace: str | None = None,
    resources: tuple[Resource, ...] = (),
    user_agent: str | None = "aws-cli/2.15.30",
    event_id: str | None = None,
    error_code: str | None = None,
) -> Event:
    return Event(
        event_id=event_id or f"e{next(_SEQ)}",
        cloud=cloud,
        source="test",
        time=at,
        operation=operation,
        service=service,
        principal=who,
        action=action,
        read_only=True,
        outcome=outcome,
        error_code=error_code,
        user_agent=user_agent,
        account=who.account,
        namespace=namespace,
        resources=resources,
    )


def evaluate(
    det: Detection, events: Iterable[Event], state: BatchedState | None = None, **params: Any
) -> list[Finding]:
    """Run one detection over events in order, as the engine would (one batch state)."""
    state = state if state is not None else BatchedState(MemoryStateStore())
    p = det.params(**params)
    out: list[Finding] = []
    for e in events:
        out.extend(det.evaluate(e, Context(params=p, settings=SETTINGS, state=state, now=e.time)))
    return out


def reads(
    n_ops: int, n_services: int, *, who: Principal = ALICE, start: datetime = T0, gap: float = 5
) -> list[Event]:
    """n_ops distinct operations spread round-robin over n_services services."""
    return [
        ev(
            f"svc{i % n_services}:Describe{i}",
            f"svc{i % n_services}",
            who=who,
            at=start + timedelta(seconds=gap * i),
        )
        for i in range(n_ops)
    ]


# ----------------------------------------------------------------------------- discovery.api_burst
def test_api_burst_needs_both_distinct_operations_and_services() -> None:
    det = discovery_api_burst.DETECTION
    # 30 operations on 4 services: many reads, too few services
    assert evaluate(det, reads(30, 4)) == []
    # 19 operations on 10 services: many services, too few operations
    assert evaluate(det, reads(19, 10)) == []
    found = evaluate(det, reads(20, 5))
    assert len(found) == 1
    f = found[0]
    assert f.entity == ALICE.id
    assert f.count == 20
    assert f.context["distinct_operations"] == 20
    assert f.context["distinct_services"] == 5
    assert f.title == "20 distinct read operations across 5 services in 10 min by alice in 111122223333"


def test_api_burst_recounts_services_as_the_same_batch_brings_new_ones() -> None:
    state = BatchedState(MemoryStateStore())
    det = discovery_api_burst.DETECTION
    assert evaluate(det, reads(22, 2), state) == []  # past 20 operations, but 2 services
    repeat = ev("svc0:Describe0", "svc0", at=T0 + timedelta(seconds=200))
    assert evaluate(det, [repeat], state) == []  # nothing new: still 2 services
    more = [ev(f"new{i}:List", f"new{i}", at=T0 + timedelta(seconds=210 + i)) for i in range(3)]
    found = evaluate(det, more, state)
    assert [f.context["distinct_services"] for f in found] == [5]


def test_api_burst_counts_operations_not_calls_and_ignores_redelivery() -> None:
    det = discovery_api_burst.DETECTION
    state = BatchedState(MemoryStateStore())
    same = [ev("ec2:DescribeInstances", "ec2", at=T0 + timedelta(seconds=i)) for i in range(200)]
    assert evaluate(det, same, state) == []
    burst = reads(20, 5, start=T0 + timedelta(minutes=2))
    first = evaluate(det, burst, state)
    again = evaluate(det, burst, state)  # the same events redelivered
    # 200 DescribeInstances calls were one operation: the 19th new one reaches 20, the last 21
    assert [f.count for f in first] == [20, 21]
    # redelivered: nothing new, every event reports the same count
    assert [f.count for f in again] == [21] * 20
    assert {f.window_start for f in first + again} == {first[0].window_start}


def test_api_burst_thresholds_come_from_params() -> None:
    det = discovery_api_burst.DETECTION
    assert evaluate(det, reads(20, 5), threshold=21) == []
    assert len(evaluate(det, reads(8, 2), threshold=8, min_services=2)) == 1


def test_api_burst_kubernetes_counts_get_and_list_not_watch() -> None:
    det = discovery_api_burst.DETECTION
    user = Principal(id="oidc:eve", type="user", name="oidc:eve")
    types = [f"type{i}" for i in range(25)]
    watches = [ev(f"watch {t}", f"k8s/{t}", who=user, cloud="kubernetes") for t in types]
    assert evaluate(det, watches) == []
    lists = [ev(f"list {t}", f"k8s/{t}", who=user, cloud="kubernetes") for t in types]
    assert [f.count for f in evaluate(det, lists)][-1] == 25


def test_episode_gives_one_alert_id_across_buckets_and_a_new_one_after() -> None:
    # GIVEN a burst that crosses a 5-minute bucket boundary and keeps going for 40 minutes
    det = discovery_api_burst.DETECTION
    state = BatchedState(MemoryStateStore())
    start = datetime(2026, 3, 14, 2, 3, tzinfo=UTC)
    long_burst = reads(120, 12, start=start, gap=20)
    found = evaluate(det, long_burst, state)
    # THEN every finding shares one window start (one alert id), anchored at the first bucket over threshold
    assert found and {f.window_start for f in found} == {found[0].window_start}
    assert found[0].window_start == datetime(2026, 3, 14, 2, 5, tzinfo=UTC)
    # WHEN the principal bursts again two hours later, THEN that is a new episode
    later = reads(25, 6, start=start + timedelta(hours=2))
    again = evaluate(det, [ev(f"x:{e.operation}", e.service, at=e.time) for e in later], state)
    assert again and again[0].window_start > found[0].window_start + timedelta(hours=1)


# ----------------------------------------------------------------------------- discovery.access_denied_burst
def test_access_denied_needs_several_scopes() -> None:
    det = discovery_access_denied_burst.DETECTION
    # one operation refused 15 times at one every 2 s: a misconfigured job, never 15 within 15 s
    one_service = [
        ev(
            "s3:GetBucketPolicy",
            "s3",
            outcome="denied",
            at=T0 + timedelta(seconds=2 * i),
            error_code="AccessDenied",
        )
        for i in range(15)
    ]
    assert evaluate(det, one_service) == []
    # the same 15 within 15 s: a fast stream on one operation alerts on its own (one finding, the 15th)
    stream = [ev("s3:GetBucketPolicy", "s3", outcome="denied", at=T0 + timedelta(seconds=i), error_code="AccessDenied")
              for i in range(15)]  # fmt: skip
    (found_stream,) = evaluate(det, stream)
    assert found_stream.count == 15 and found_stream.entity == f"{ALICE.id}|s3:GetBucketPolicy"
    spread = [
        ev(f"{s}:List{i}", s, outcome="denied", at=T0 + timedelta(seconds=i), error_code="AccessDenied")
        for i, s in enumerate(["iam", "kms", "rds"] * 4)
    ]
    found = evaluate(det, spread)
    assert [f.count for f in found] == [10, 11, 12]
    assert found[-1].context["distinct_scopes"] == 3
    assert found[-1].entity == ALICE.id
    # a successful call is never counted, even when routed here
    assert evaluate(det, [ev("iam:ListUsers", "iam")]) == []


def test_access_denied_kubernetes_namespaces_count_as_scopes() -> None:
    det = discovery_access_denied_burst.DETECTION
    sa = Principal(id="system:serviceaccount:web:frontend", type="service_account", name="frontend")
    events = [
        ev(
            "list secrets",
            "k8s/secrets",
            who=sa,
            cloud="kubernetes",
            outcome="denied",
            namespace=ns,
            error_code="403",
        )
        for ns in ("a", "b", "c", "d", "e")
        for _ in range(2)
    ]
    found = evaluate(det, events)
    assert found[-1].count == 10
    assert found[-1].context["distinct_scopes"] == 6  # k8s/secrets + 5 namespaces


def test_access_denied_a_long_value_never_poisons_the_principal() -> None:
    # GIVEN one forbidden request naming a 300-character namespace (attacker-chosen text)
    det = discovery_access_denied_burst.DETECTION
    sa = Principal(id="system:serviceaccount:web:frontend", type="service_account", name="frontend")
    first = ev("list secrets", "k8s/secrets", who=sa, cloud="kubernetes", outcome="denied", namespace="n" * 300)
    # WHEN 12 ordinary denials across namespaces follow
    then = [
        ev(
            "list secrets",
            "k8s/secrets",
            who=sa,
            cloud="kubernetes",
            outcome="denied",
            namespace=ns,
            at=T0 + timedelta(seconds=i + 1),
        )
        for i, ns in enumerate(("a", "b", "c", "d") * 3)
    ]
    found = evaluate(det, [first, *then])
    # THEN the burst fires, and the long namespace counts as one scope
    assert found and found[-1].count == 13
    assert found[-1].context["distinct_scopes"] == 6  # k8s/secrets, the long one and a-d


def test_api_burst_a_long_operation_keeps_its_service() -> None:
    det = discovery_api_burst.DETECTION
    events = [ev(f"graph:GET /{'x' * 300}/{i}", f"svc{i % 3}", at=T0 + timedelta(seconds=i)) for i in range(30)]
    found = evaluate(det, events, threshold=30, min_services=3)
    assert found and found[-1].context["distinct_services"] == 3


# ----------------------------------------------------------------------------- discovery.enumeration_tool
@pytest.mark.parametrize(
    ("user_agent", "tool"),
    [
        ("Scout Suite/5.14.0 Python/3.11", "ScoutSuite"),
        ("ScoutSuite/5.14.0 google-api-python-client/2.127.0", "ScoutSuite"),
        ("aws-sdk-nodejs/2.1490.0 linux/v18.19.0 callback CLOUDSPLOIT", "CloudSploit"),
        ("Boto3/1.34 enumerate_iam/1.0", "enumerate-iam"),
        ("azurehound/v2.1.7", "AzureHound"),
        ("python-requests/2.31 ROADtools roadrecon/1.3", "ROADtools"),
        ("Pacu/1.5.3 Boto3/1.34", "Pacu"),
        ("kube-hunter/0.6.8", "kube-hunter"),
    ],
)
def test_enumeration_tool_matches_user_agents_ignoring_case_and_separators(
    user_agent: str, tool: str
) -> None:
    found = evaluate(
        discovery_enumeration_tool.DETECTION, [ev("ec2:DescribeInstances", "ec2", user_agent=user_agent)]
    )
    assert len(found) == 1
    assert found[0].context["tool"] == tool
    assert found[0].entity == f"{ALICE.id}|tool:{tool}"
    assert found[0].severity is None  # LOW from the metadata: a hint, never the only evidence


def test_enumeration_tool_is_low_and_says_user_agents_are_attacker_controlled() -> None:
    det = discovery_enumeration_tool.DETECTION
    assert det.meta.severity == "low"
    assert "attacker-controlled" in det.meta.technical_context
    assert "Pacu" in det.meta.blind_spots[0]
    found = evaluate(det, [ev("ec2:DescribeInstances", "ec2", user_agent="prowler/4.2.4")])
    assert "attacker-controlled" in found[0].context["note"]


def test_enumeration_tool_ignores_ordinary_clients_and_takes_extra_tools() -> None:
    det = discovery_enumeration_tool.DETECTION
    plain = [
        ev("ec2:DescribeInstances", "ec2", user_agent=ua)
        for ua in ("aws-cli/2.15.30", "Boto3/1.34", None, "")
    ]
    assert evaluate(det, plain) == []
    custom = [ev("ec2:DescribeInstances", "ec2", user_agent="RedTeamKit/0.9 boto3")]
    assert evaluate(det, custom) == []
    assert evaluate(det, custom, extra_tools=("redteam-kit",))[0].context["tool"] == "redteam-kit"


def test_service_quotas_sweep_counts_distinct_service_codes() -> None:
    det = discovery_enumeration_tool.DETECTION

    def quota(code: str, i: int) -> Event:
        return ev(
            "servicequotas:ListServiceQuotas",
            "servicequotas",
            at=T0 + timedelta(seconds=i),
            resources=(Resource("service-code", code),),
        )

    assert evaluate(det, [quota("ec2", i) for i in range(6)]) == []  # paging through one service
    found = evaluate(det, [quota(c, i) for i, c in enumerate(["ec2", "ebs", "rds"])])
    assert [f.count for f in found] == [3]
    assert found[0].entity == f"{ALICE.id}|service-quotas"
    assert found[0].context["match"] == "quota_sweep"


def test_az_group_list_signature_where_arm_reads_are_visible() -> None:
    # ARM GETs are not in the Activity Log; a feed that does carry them gets the `az group list` hint
    sp = Principal(id="5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e8f", type="service", name="deploy-sp")
    e = ev(
        "Microsoft.Resources/subscriptions/resourceGroups/read",
        "microsoft.resources",
        who=sp,
        cloud="azure",
        user_agent="AZURECLI/2.58.0 (DEB) azsdk-python-core/1.29.5 Python/3.11.8",
    )
    found = evaluate(discovery_enumeration_tool.DETECTION, [e])
    assert [(f.entity, f.context["match"]) for f in found] == [(f"{sp.id}|sig:az group list", "signature")]
    assert found[0].title == "az group list call signature by deploy-sp"


# ----------------------------------------------------------------------------- discovery.unusual_services
def test_unusual_services_learns_then_alerts_on_new_services_only() -> None:
    det = discovery_unusual_services.DETECTION
    state = BatchedState(MemoryStateStore())
    history = [
        ev(f"{s}:Get", s, at=T0 - timedelta(days=10, minutes=-i)) for i, s in enumerate(["s3", "sqs", "kms"])
    ]
    assert evaluate(det, history, state) == []
    # known services again, then four new ones: below the threshold of 5
    today = [
        ev(f"{s}:Get", s, at=T0 + timedelta(minutes=i))
        for i, s in enumerate(["s3", "kms", "iam", "rds", "ec2", "ecs"])
    ]
    assert evaluate(det, today, state) == []
    fifth = ev("lambda:ListFunctions", "lambda", at=T0 + timedelta(minutes=20))
    found = evaluate(det, [fifth], state)
    assert [f.count for f in found] == [5]
    assert found[0].context["latest_new_service"] == "lambda"
    assert found[0].context["history_since"] == history[0].time.isoformat()
    # redelivering the events: each new service is still new to its first event, nothing is counted twice,
    # and every finding belongs to the same alert
    again = evaluate(det, [*today, fifth], state)
    assert [f.count for f in again] == [5] * 5
    assert {f.window_start for f in again} == {found[0].window_start}


def test_unusual_services_is_silent_during_the_learning_period() -> None:
    det = discovery_unusual_services.DETECTION
    first = ev("s3:ListBuckets", "s3", at=T0)
    burst = [ev(f"svc{i}:List", f"svc{i}", at=T0 + timedelta(days=2, minutes=i)) for i in range(10)]
    assert evaluate(det, [first, *burst]) == []
    assert len(evaluate(det, [first, *burst], learning_days=1)) == 6  # new services 5..10 once learned


# ----------------------------------------------------------------------------- discovery.k8s_namespace_sweep
K8S_USER = Principal(id="oidc:trent", type="user", name="oidc:trent")


def k8s_ev(op: str, ns: str | None, *, outcome: str = "success", i: int = 0) -> Event:
    return ev(
        op,
        "k8s/" + op.split(" ")[1],
        who=K8S_USER,
        cloud="kubernetes",
        namespace=ns,
        outcome=outcome,
        at=T0 + timedelta(seconds=10 * i),
    )


def test_namespace_sweep_reads_and_forbidden() -> None:
    det = discovery_k8s_namespace_sweep.DETECTION
    reads_ = [k8s_ev("list pods", f"ns{i}", i=i) for i in range(5)]
    found = evaluate(det, reads_)
    assert [(f.count, f.severity) for f in found] == [(5, None)]
    assert found[0].title.startswith("Reads across 5 namespaces")
    denied = [k8s_ev("get secrets", f"ns{i}", outcome="denied", i=i) for i in range(3)]
    found = evaluate(det, denied)
    assert [(f.context["forbidden_namespaces"], f.severity) for f in found] == [(3, "high")]


def test_namespace_sweep_ignores_cluster_scope_watch_and_other_clouds() -> None:
    det = discovery_k8s_namespace_sweep.DETECTION
    assert evaluate(det, [k8s_ev("list pods", None, i=i) for i in range(10)]) == []
    assert evaluate(det, [k8s_ev("watch pods", f"ns{i}", i=i) for i in range(10)]) == []
    aws_ns = [ev("ec2:Describe", "ec2", namespace=f"ns{i}") for i in range(10)]
    assert evaluate(det, aws_ns) == []


# ----------------------------------------------------------------------------- discovery.k8s_permission_probe
def probe(kind: str, who: Principal, ns: str | None, i: int) -> Event:
    return ev(
        f"create {kind}",
        f"k8s/{kind}",
        who=who,
        cloud="kubernetes",
        namespace=ns,
        action=DISCOVERY_PERMISSION_PROBE,
        at=T0 + timedelta(seconds=i),
    )


def test_permission_probe_burst_or_list_across_namespaces() -> None:
    det = discovery_k8s_permission_probe.DETECTION
    assert evaluate(det, [probe("selfsubjectaccessreviews", K8S_USER, None, i) for i in range(2)]) == []
    assert [
        f.count
        for f in evaluate(det, [probe("selfsubjectaccessreviews", K8S_USER, None, i) for i in range(3)])
    ] == [3]
    two_ns = [probe("selfsubjectrulesreviews", K8S_USER, ns, i) for i, ns in enumerate(["web", "payments"])]
    found = evaluate(det, two_ns)
    assert [f.context["rules_review_namespaces"] for f in found] == [2]
    assert "can-i --list` in 2 namespaces" in found[0].title


def test_permission_probe_ignores_system_users() -> None:
    det = discovery_k8s_permission_probe.DETECTION
    node = Principal(id="system:node:ip-10-0-1-23", type="system", name="system:node:ip-10-0-1-23")
    assert evaluate(det, [probe("selfsubjectaccessreviews", node, None, i) for i in range(10)]) == []


# ----------------------------------------------------------------------------- discovery.registry_enumeration
def test_registry_counts_distinct_repositories_not_layer_pulls() -> None:
    det = discovery_registry_enumeration.DETECTION
    pulls = [
        ev(op, "ecr", at=T0 + timedelta(seconds=i))
        for i, op in enumerate(["ecr:BatchGetImage"] * 3 + ["ecr:GetDownloadUrlForLayer"] * 40)
    ]
    assert evaluate(det, pulls) == []
    repos = [
        ev(
            "ecr:DescribeImages",
            "ecr",
            at=T0 + timedelta(seconds=i),
            resources=(Resource("repository", f"r{i % 10}"),),
        )
        for i in range(30)
    ]
    found = evaluate(det, repos)
    assert found[-1].count == 10
    assert evaluate(det, [ev("ec2:DescribeImages", "ec2") for _ in range(20)]) == []  # not a registry


# ----------------------------------------------------------------------------- chain.discovery_then_snapshot
def ct(
    i: int, name: str, at: datetime, *, source: str = "ec2", user: str = "mallory", **extra: Any
) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": f"AIDA{user.upper()}",
            "arn": f"arn:aws:iam::111122223333:user/{user}",
            "accountId": "111122223333",
            "userName": user,
        },
        "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": f"{source}.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.50",
        "userAgent": "aws-cli/2.15.30",
        "eventID": f"{user}-{i:04d}",
        "readOnly": name.startswith(("Describe", "List", "Get")),
        "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333",
    }
    rec.update(extra)
    return rec


def sweep(user: str = "mallory", start: datetime = T0) -> list[dict[str, Any]]:
    services = ["ec2", "iam", "s3", "rds", "kms", "lambda"]
    return [
        ct(i, f"Describe{i}", start + timedelta(seconds=10 * i), source=services[i % 6], user=user)
        for i in range(24)
    ]


def snapshot(at: datetime, i: int = 900, user: str = "mallory") -> dict[str, Any]:
    return ct(
        i,
        "CreateSnapshot",
        at,
        user=user,
        readOnly=False,
        requestParameters={"volumeId": "vol-0a1b2c3d4e5f60718"},
        responseElements={"snapshotId": f"snap-0{i:016d}", "volumeId": "vol-0a1b2c3d4e5f60718"},
    )


@pytest.mark.parametrize(("minutes", "fires"), [(30, True), (119, True), (125, False)])
def test_chain_window(minutes: int, fires: bool) -> None:
    records = sweep()
    last_read = T0 + timedelta(seconds=230)
    report = run_records([*records, snapshot(last_read + timedelta(minutes=minutes))])
    chains = [a for a in report.alerts if a.detection == "chain.discovery_then_snapshot"]
    assert bool(chains) is fires
    if fires:
        burst = next(a for a in report.alerts if a.detection == "discovery.api_burst")
        (chain,) = chains
        assert chain.severity == "critical"
        assert chain.context["discovery_alert_id"] == burst.id
        assert f"alert:{burst.id}" in chain.evidence.event_ids
        assert "mallory-0900" in chain.evidence.event_ids
        assert chain.context["minutes_after_discovery"] == minutes


def test_chain_is_never_credited_to_another_principal_nor_rearms_itself() -> None:
    records = [*sweep("mallory"), snapshot(T0 + timedelta(minutes=20), 901, user="bob")]
    report = run_records(records)
    assert not [a for a in report.alerts if a.detection == "chain.discovery_then_snapshot"]
    # GIVEN a chain alert at +20 min, WHEN the same principal snapshots again 2.5 h after the sweep
    # (within 2 h of the chain alert, outside 2 h of the discovery), THEN no second chain alert
    records = [
        *sweep("mallory"),
        snapshot(T0 + timedelta(minutes=20), 902),
        snapshot(T0 + timedelta(minutes=150), 903),
    ]
    report = run_records(records)
    chains = [a for a in report.alerts if a.detection == "chain.discovery_then_snapshot"]
    assert len(chains) == 1
    assert "mallory-0903" not in chains[0].evidence.event_ids


def test_chain_subscribes_to_every_snapshot_step() -> None:
    acts = chain_discovery_then_snapshot.DETECTION.actions
    assert SNAPSHOT_CREATE in acts
    assert {"image.create", "snapshot.copy", "snapshot.share", "snapshot.export", "snapshot.restore"} <= acts
    # its own tactic differs from discovery, so the engine never files a chain alert as a discovery alert
    assert chain_discovery_then_snapshot.DETECTION.meta.tactic.lower() != "discovery"


# ----------------------------------------------------------------------------- suppression-based quiet cases
# (case folder, case name, also drop the shipped default suppressions?)
SUPPRESSED_CASES = [
    ("discovery_api_burst", "quiet_scheduled_deployment_pipeline", False),
    ("discovery_api_burst", "quiet_nightly_config_scan", True),
    ("discovery_api_burst", "quiet_test_environments", False),
    ("discovery_api_burst", "quiet_gcp_security_command_center_scan", True),
    ("discovery_enumeration_tool", "quiet_nightly_config_scan", True),
    ("discovery_enumeration_tool", "quiet_test_environments", False),
    ("discovery_access_denied_burst", "quiet_test_environments", False),
    ("discovery_registry_enumeration", "quiet_scheduled_deployment_pipeline", False),
    ("discovery_registry_enumeration", "quiet_test_environments", False),
    ("discovery_unusual_services", "quiet_test_environments", False),
    ("discovery_k8s_namespace_sweep", "quiet_kubernetes_controllers", True),
    ("discovery_k8s_namespace_sweep", "quiet_scheduled_deployment_pipeline", True),
    ("discovery_k8s_namespace_sweep", "quiet_ci_deploy_job_allowlisted", False),
    ("discovery_k8s_namespace_sweep", "quiet_test_environments", False),
    ("discovery_k8s_permission_probe", "quiet_scheduled_deployment_pipeline", False),
    ("chain_discovery_then_snapshot", "quiet_scheduled_deployment_pipeline", False),
]


@pytest.mark.parametrize(("folder", "name", "drop_defaults"), SUPPRESSED_CASES)
def test_quiet_cases_are_quiet_because_of_their_suppression(
    folder: str, name: str, drop_defaults: bool
) -> None:
    # GIVEN a quiet case, WHEN its settings (and, where it relies on them, the shipped suppressions) are removed,
    # THEN the same records alert: the case proves the suppression, not a gap in the data.
    path = CASES / folder / f"{name}.yaml"
    case = load_case(path)
    records = list(case.get("records") or [])
    from adscore.sources.files import read_inputs

    for rel in case.get("files") or []:
        records += [item[1] for item in read_inputs([str(path.parent / rel)]) if isinstance(item, tuple)]
    settings: dict[str, Any] = (
        {"inherit_default_suppressions": False, "suppressions": []} if drop_defaults else {}
    )
    detection = folder.replace("_", ".", 1)
    report = run_records(records, settings)
    assert detection in {a.detection for a in report.alerts}, (
        f"{name} would be quiet even without its suppression"
    )


# ----------------------------------------------------------------------------- metadata
def test_response_steps_carry_the_ads_steps_concretely() -> None:
    for mod in MODULES:
        steps = mod.DETECTION.meta.response
        text = " ".join(steps).lower()
        assert len(steps) >= 5, mod.__name__
        for needle in ("verify the source", "credentials", "configuration", "isolate", "tune"):
            assert needle in text, f"{mod.__name__}: response lacks {needle!r}"


def test_ads_false_positives_are_covered_across_the_detections() -> None:
    fps = " ".join(fp for mod in MODULES for fp in mod.DETECTION.meta.false_positives).lower()
    for ads_fp in (
        "routine updates and patches to container images by trusted developers",
        "scheduled automated deployment processes",
        "legitimate use of test",
    ):
        assert ads_fp in fps


def test_settings_and_environment_tune_the_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADSCORE_DETECTIONS__DISCOVERY_API_BURST__THRESHOLD", "7")
    params = discovery_api_burst.Params.model_validate(load_settings(None).params_for("discovery.api_burst"))
    assert params.threshold == 7
    assert params.min_services == 5


# ----------------------------------------------------------------------------- real samples
SAMPLES = (Path(__file__).resolve().parents[3] / ".." / "shared" / "samples").resolve()


def test_real_samples_never_break_the_discovery_detections() -> None:
    # GIVEN every Panther test log (CloudTrail, GCP, Azure, Kubernetes records nobody here wrote) in one batch,
    # WHEN all detections run, THEN none of ours raises on them.
    path = SAMPLES / "panther" / "all_tests.jsonl"
    if not path.is_file():
        pytest.skip(f"samples not found at {path}")
    import orjson

    records = [
        r["log"] for r in map(orjson.loads, path.read_bytes().splitlines()) if isinstance(r.get("log"), dict)
    ]
    assert len(records) > 100
    report = run_records(
        records, {"detections": {"discovery.api_burst": {"threshold": 3, "min_services": 2}}}
    )
    ours = [
        e for e in report.errors if e.family == "detection" and e.reason.startswith(("discovery.", "chain."))
    ]
    assert ours == []
    assert report.counts["routed"] > 0


@pytest.mark.parametrize("mod", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_a_fire_case_for_every_cloud_a_detection_claims(mod: Any) -> None:
    det: Detection = mod.DETECTION
    names = [p.stem for p in (CASES / det.module_name).glob("fire_*.yaml")]
    for cloud in det.clouds:
        assert any(n.startswith(f"fire_{cloud}_") for n in names), f"{det.id}: no fire_{cloud}_* case"
