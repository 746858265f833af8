"""Business hours, maintenance windows and suppressions (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from adscore.calendar import hours_for, is_business_time
from adscore.events import Event, Principal
from adscore.settings import BusinessHours, Calendar, MaintenanceWindow, load_settings
from adscore.suppress import Suppressor


def _event(principal: Principal, **kw: object) -> Event:
    base: dict[str, object] = {
        "event_id": "e1",
        "cloud": "aws",
        "source": "cloudtrail",
        "time": datetime(2026, 3, 10, 12, 0, tzinfo=UTC),
        "operation": "ec2:CreateSnapshot",
        "service": "ec2",
        "principal": principal,
        "action": "snapshot.create",
        "account": "111122223333",
    }
    base.update(kw)
    return Event(**base)  # type: ignore[arg-type]


def test_business_hours_in_local_time_zone_and_holidays() -> None:
    paris = BusinessHours(timezone="Europe/Paris", start="09:00", end="18:00", holidays=[date(2026, 5, 1)])
    # 2026-03-10 is a Tuesday; 07:30 UTC = 08:30 Paris (before opening), 08:30 UTC = 09:30 Paris
    assert not is_business_time(datetime(2026, 3, 10, 7, 30, tzinfo=UTC), paris)
    assert is_business_time(datetime(2026, 3, 10, 8, 30, tzinfo=UTC), paris)
    assert not is_business_time(datetime(2026, 3, 14, 10, 0, tzinfo=UTC), paris)  # Saturday
    assert not is_business_time(datetime(2026, 5, 1, 10, 0, tzinfo=UTC), paris)  # holiday (a Friday)
    night = BusinessHours(start="22:00", end="06:00", days=[1, 2, 3, 4, 5, 6, 7])
    assert is_business_time(datetime(2026, 3, 10, 23, 0, tzinfo=UTC), night)
    assert not is_business_time(datetime(2026, 3, 10, 12, 0, tzinfo=UTC), night)


def test_hours_per_account() -> None:
    cal = Calendar(accounts={"222": BusinessHours(timezone="Asia/Tokyo")})
    assert hours_for(cal, "222").timezone == "Asia/Tokyo"
    assert hours_for(cal, "333").timezone == "UTC"
    assert hours_for(cal, None).timezone == "UTC"


def test_backup_service_and_principal_allowlist() -> None:
    s = load_settings(None, allowlists={"principals": ["arn:aws:iam::*:role/ci-*"], "services": ["backup.amazonaws.com"]})
    sup = Suppressor(s)
    backup = Principal(id="arn:aws:iam::111122223333:role/AWSBackup", type="role", invoked_by="backup.amazonaws.com")
    assert sup.reason(_event(backup), "snapshot.burst") == "allowlist.services"
    ci = Principal(id="arn:aws:iam::111122223333:role/ci-deploy", type="role")
    assert sup.reason(_event(ci), "snapshot.burst") == "allowlist.principals"
    attacker = Principal(id="arn:aws:iam::111122223333:role/web", type="role")
    assert sup.reason(_event(attacker), "snapshot.burst") is None


def test_cidr_tags_and_user_agent_allowlists() -> None:
    s = load_settings(
        None,
        allowlists={"source_cidrs": ["10.20.0.0/16"], "resource_tags": ["backup-policy=nightly"], "user_agents": ["Terraform/*"]},
    )
    sup = Suppressor(s)
    p = Principal(id="arn:aws:iam::1:role/x", type="role")
    assert sup.reason(_event(p, source_ip="10.20.3.4"), "snapshot.burst") == "allowlist.source_cidrs"
    assert sup.reason(_event(p, source_ip="10.21.3.4"), "snapshot.burst") is None
    assert sup.reason(_event(p, source_ip="ec2.amazonaws.com"), "snapshot.burst") is None
    assert sup.reason(_event(p, tags=(("backup-policy", "nightly"),)), "snapshot.burst") == "allowlist.resource_tags"
    assert sup.reason(_event(p, tags=(("backup-policy", "adhoc"),)), "snapshot.burst") is None
    assert sup.reason(_event(p, user_agent="Terraform/1.7 aws-sdk-go"), "x.y") == "allowlist.user_agents"


def test_named_suppression_targets_detections_and_expires() -> None:
    s = load_settings(
        None,
        suppressions=[
            {"name": "test-account", "detections": ["discovery.*"], "accounts": ["444455556666"],
             "until": "2026-06-01T00:00:00Z"},
        ],
    )
    sup = Suppressor(s)
    p = Principal(id="u", type="user")
    e = _event(p, account="444455556666", action="discovery.read")
    assert sup.reason(e, "discovery.api_burst") == "suppression.test-account"
    assert sup.reason(e, "snapshot.burst") is None
    late = _event(p, account="444455556666", time=datetime(2026, 7, 1, tzinfo=UTC))
    assert sup.reason(late, "discovery.api_burst") is None


def test_suppression_by_principal_type_tells_apart_principals_with_the_same_names() -> None:
    s = load_settings(
        None,
        inherit_default_suppressions=False,
        suppressions=[{"name": "robots", "detections": ["discovery.*"], "principal_types": ["service_account"]}],
    )
    sup = Suppressor(s)
    robot = _event(Principal(id="ci", type="service_account"), action="discovery.read")
    person = _event(Principal(id="ci", type="user"), action="discovery.read")  # same id and names, another type
    for _ in range(2):  # the second round is answered from the per-principal cache
        assert sup.reason(robot, "discovery.api_burst") == "suppression.robots"
        assert sup.reason(person, "discovery.api_burst") is None


def test_default_kubernetes_controllers_are_quiet_for_discovery_only() -> None:
    sup = Suppressor(load_settings())
    ctrl = Principal(id="system:serviceaccount:kube-system:replicaset-controller", type="service_account")
    e = _event(ctrl, cloud="kubernetes", action="discovery.read", operation="list pods")
    assert sup.reason(e, "discovery.k8s_namespace_sweep") == "suppression.kubernetes-control-plane"
    assert sup.reason(e, "k8s.exec_copy") is None


def test_maintenance_window_silences_snapshot_detections() -> None:
    w = MaintenanceWindow(name="patch-tuesday", start="2026-03-10T10:00:00Z", end="2026-03-10T14:00:00Z",
                          accounts=["111122223333"])
    s = load_settings(None, calendar={"maintenance": [w.model_dump()]})
    sup = Suppressor(s)
    p = Principal(id="arn:aws:iam::111122223333:role/ops", type="role")
    assert sup.reason(_event(p), "snapshot.off_hours") == "maintenance.patch-tuesday"
    assert sup.reason(_event(p), "discovery.api_burst") is None
    assert sup.reason(_event(p, account="999"), "snapshot.off_hours") is None
    assert sup.reason(_event(p, time=datetime(2026, 3, 10, 15, 0, tzinfo=UTC)), "snapshot.off_hours") is None


def test_a_suppression_limited_to_utc_hours_leaves_the_same_identity_at_another_hour_alerting() -> None:
    import pytest

    from adscore.errors import ConfigError

    rule = {"name": "nightly-backup", "detections": ["snapshot.*"], "principals": ["*:role/ci-backup-ebs"],
            "utc_hours": [1, 1, 2]}
    s = load_settings(None, suppressions=[rule])
    assert next(r for r in s.suppressions if r.name == "nightly-backup").utc_hours == (1, 2)
    sup = Suppressor(s)
    job = Principal(id="arn:aws:iam::111122223333:role/ci-backup-ebs", type="role")
    assert sup.reason(_event(job, time=datetime(2026, 3, 10, 1, 10, tzinfo=UTC)), "snapshot.off_hours") == (
        "suppression.nightly-backup"
    )
    assert sup.reason(_event(job, time=datetime(2026, 3, 10, 21, 30, tzinfo=UTC)), "snapshot.off_hours") is None
    with pytest.raises(ConfigError, match=r"suppressions\.0\.utc_hours"):
        load_settings(None, suppressions=[{**rule, "utc_hours": [24]}])
