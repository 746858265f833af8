"""GCP parser: real samples, Pub/Sub envelopes, conditions, principals and hostile input."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adscore import actions
from adscore.events import Event, RecordError
from adscore.sources import gcp

SAMPLES = Path(__file__).resolve().parents[3] / ".." / "shared" / "samples"
GOLDEN = Path(__file__).resolve().parents[2] / "golden"


def events(results: list[Event | RecordError]) -> list[Event]:
    assert all(isinstance(r, Event) for r in results), [r for r in results if isinstance(r, RecordError)]
    return [r for r in results if isinstance(r, Event)]


def golden(family: str, case: str) -> Any:
    return json.loads((GOLDEN / family / f"{case}.input.json").read_text())


def b64(obj: Any) -> str:
    raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return base64.b64encode(raw).decode()


def entry(method: str, resource_name: str = "projects/p/global/snapshots/s", **pp: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "serviceName": "compute.googleapis.com",
        "methodName": method,
        "resourceName": resource_name,
        "authenticationInfo": {"principalEmail": "alice@example.com"},
    }
    payload.update(pp)
    return {
        "protoPayload": payload,
        "insertId": "i1",
        "timestamp": "2024-05-14T10:00:00Z",
        "logName": "projects/p/logs/cloudaudit.googleapis.com%2Factivity",
        "resource": {"type": "gce_snapshot", "labels": {"project_id": "p"}},
    }


# ------------------------------------------------------------------------------------------------
# real samples
# ------------------------------------------------------------------------------------------------
def _panther_gcp_logs() -> list[tuple[str, dict[str, Any]]]:
    if not SAMPLES.is_dir():
        return []
    out: list[tuple[str, dict[str, Any]]] = []
    log_types: dict[tuple[str, str], str] = {}
    with (SAMPLES / "panther" / "all_tests.jsonl").open() as f:
        for i, line in enumerate(f):
            d = json.loads(line)
            log_types[(d["rule_id"], d["test_name"])] = d["log_type"]
            if str(d["log_type"]).startswith("GCP."):
                out.append((f"all_tests.jsonl:{i + 1}:{d['rule_id']}:{d['test_name']}", d["log"]))
    for path in sorted((SAMPLES / "panther").glob("*/*.json")):
        rule = json.loads(path.read_text())
        if not any(str(t).startswith("GCP.") for t in rule.get("LogTypes") or []):
            continue
        for test in rule.get("Tests") or []:
            # a rule for several log types mixes their tests: keep the GCP ones
            if str(log_types.get((rule["RuleID"], test["Name"]), "")).startswith("GCP."):
                out.append((f"{path.name}:{test['Name']}", test["Log"]))
    return out


def _gke_without_time(log: dict[str, Any]) -> bool:
    """Panther's GKE test records have no ``timestamp`` (one rule even puts it inside protoPayload)."""
    pp = log.get("protoPayload") or {}
    is_gke = pp.get("serviceName") == "k8s.io" or str(pp.get("methodName", "")).startswith("io.k8s.")
    return is_gke and "timestamp" not in log and "receiveTimestamp" not in log


PANTHER_GCP = _panther_gcp_logs()


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared samples folder absent")
def test_panther_gcp_samples_are_found() -> None:
    assert len(PANTHER_GCP) >= 50


@pytest.mark.parametrize(("name", "log"), PANTHER_GCP, ids=[n for n, _ in PANTHER_GCP])
def test_panther_gcp_sample_parses(name: str, log: dict[str, Any]) -> None:
    results = gcp.parse(log, name)
    assert results
    if _gke_without_time(log):
        # genuinely incomplete: an audit entry without a timestamp cannot be an Event
        assert all(isinstance(r, RecordError) and "time" in r.reason for r in results), results
        return
    evs = events(results)
    assert all(e.cloud in ("gcp", "kubernetes") for e in evs)


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared samples folder absent")
def test_panther_meaning_is_kept() -> None:
    by_name = {n: gcp.parse(log, n) for n, log in PANTHER_GCP if not n.startswith("all_tests")}

    def one(rule: str, test: str) -> Event:
        (e,) = events(by_name[f"{rule}.json:{test}"])
        return e

    disk = one("GCP.Compute.IAM.Policy.Update", "IAM policy update on a Compute Disk")
    assert disk.action == actions.SNAPSHOT_SHARE
    assert disk.targets == ("user:anonymized@example.com",)
    assert disk.resources[0].type == "disk" and disk.resources[0].role == "target"
    assert disk.operation == "compute.disks.setIamPolicy" and disk.event_id == "1abcd23efg456"
    image = one("GCP.Compute.IAM.Policy.Update", "IAM policy update on a Compute Image")
    assert image.action == actions.SNAPSHOT_SHARE and image.resources[0].type == "image"
    snap = one("GCP.Compute.Snapshot.UnexpectedDomain", "Snapshot creation by user with unexpected domain")
    assert snap.action == actions.SNAPSHOT_CREATE
    assert snap.resources[0].id == "projects/test-project/global/snapshots/snapshot-1"
    assert snap.principal.id == "user@unexpected-domain.com" and snap.account == "test-project"
    vpc = one("GCP.Access.Attempts.Violating.VPC.Service.Controls", "VPC control violation")
    assert (vpc.outcome, vpc.error_code, vpc.read_only) == ("denied", "PERMISSION_DENIED", True)
    assert vpc.event_id == "13ogcded7jh2"
    denied = one("GCP.Service.Account.Access.Denied", "service-account.access-denied-should-alert")
    assert denied.outcome == "denied" and denied.principal.type == "service_account"
    assert denied.principal.account == "test-project-123456"
    assert denied.event_id == "xxxxxxxxxxxx"  # Panther's lowercased insertid
    enum = one("GCP.IAM.Tag.Enumeration", "Tag Keys Enumeration")
    assert enum.action == actions.DISCOVERY_READ and enum.read_only


# ------------------------------------------------------------------------------------------------
# golden-backed behaviour
# ------------------------------------------------------------------------------------------------
def test_long_running_operation_counts_once() -> None:
    first, last = events(gcp.parse(golden("gcp_audit", "snapshots_insert_first_last"), "x"))
    assert first.event_id == last.event_id
    assert first.event_id.startswith("op:operation-") and first.event_id.endswith(":compute.snapshots.insert")
    assert first.correlation_id == last.correlation_id
    assert [(r.type, r.role) for r in first.resources] == [("snapshot", "created"), ("disk", "source")]
    assert first.resources[1].id == "projects/acme-prod/zones/europe-west1-b/disks/web01"  # URL normalized
    assert first.tags == (("team", "web"), ("ticket", "chg-1042"))


def test_set_iam_policy_all_users_and_remove_only() -> None:
    (share,) = events(gcp.parse(golden("gcp_audit", "snapshots_set_iam_policy_all_users"), "x"))
    assert share.action == actions.SNAPSHOT_SHARE and share.targets == ("allUsers",)  # from bindingDeltas ADD
    (removal,) = events(gcp.parse(golden("gcp_audit", "snapshots_set_iam_policy_remove_only"), "x"))
    assert removal.action is None and removal.targets == ()


def test_set_iam_policy_without_delta_uses_request_bindings() -> None:
    e = entry(
        "v1.compute.images.setIamPolicy",
        "projects/p/global/images/i",
        request={
            "policy": {
                "bindings": [
                    {
                        "role": "roles/compute.imageUser",
                        "members": ["allAuthenticatedUsers", "domain:evil.example"],
                    }
                ]
            }
        },
    )
    (ev,) = events(gcp.parse(e, "x"))
    assert ev.targets == ("allAuthenticatedUsers", "domain:evil.example")
    e["protoPayload"]["request"] = {"policy": {"bindings": []}}
    (ev2,) = events(gcp.parse(e, "x"))
    assert ev2.action is None


@pytest.mark.parametrize(
    ("method", "request_", "action", "source"),
    [
        (
            "v1.compute.disks.insert",
            {"sourceSnapshot": "global/snapshots/s1"},
            actions.SNAPSHOT_RESTORE,
            "projects/p/global/snapshots/s1",
        ),
        ("v1.compute.disks.insert", {"sizeGb": "10"}, None, None),
        (
            "v1.compute.disks.insert",
            {"sourceImage": "projects/p/global/images/golden"},
            actions.SNAPSHOT_RESTORE,
            "projects/p/global/images/golden",
        ),
        # a VM build from a public OS image (a family, or a full URL) is not a restore
        (
            "v1.compute.disks.insert",
            {"sourceImage": "projects/debian-cloud/global/images/family/debian-12"},
            None,
            None,
        ),
        (
            "v1.compute.disks.insert",
            {
                "sourceImage": "https://www.googleapis.com/compute/v1/projects/ubuntu-os-cloud/global/images/"
                "ubuntu-2204-jammy-v20240501"
            },
            None,
            None,
        ),
        (
            "v1.compute.disks.insert",
            {"sourceImage": "projects/golden-images-prod/global/images/family/base"},
            actions.SNAPSHOT_RESTORE,
            "projects/golden-images-prod/global/images/family/base",
        ),
        (
            "v1.compute.regionDisks.insert",
            {"sourceSnapshot": "projects/p/global/snapshots/s1"},
            actions.SNAPSHOT_RESTORE,
            "projects/p/global/snapshots/s1",
        ),
        ("v1.compute.regionDisks.insert", {"sourceDisk": "projects/p/zones/z/disks/d"}, None, None),
        (
            "v1.compute.instances.insert",
            {"sourceMachineImage": "projects/p/global/machineImages/mi"},
            actions.SNAPSHOT_RESTORE,
            "projects/p/global/machineImages/mi",
        ),
        (
            "v1.compute.instances.insert",
            {
                "disks": [
                    {
                        "boot": True,
                        "initializeParams": {
                            "sourceSnapshot": "https://www.googleapis.com/compute/v1/projects/p/global/snapshots/s2"
                        },
                    }
                ]
            },
            actions.SNAPSHOT_RESTORE,
            "projects/p/global/snapshots/s2",
        ),
        ("v1.compute.instances.insert", {"disks": [{"initializeParams": {"diskSizeGb": "10"}}]}, None, None),
    ],
)
def test_restore_conditions(
    method: str, request_: dict[str, Any], action: str | None, source: str | None
) -> None:
    (ev,) = events(gcp.parse(entry(method, "projects/p/zones/z/disks/new", request=request_), "x"))
    assert ev.action == action
    sources = [r.id for r in ev.resources_by_role("source")]
    assert sources == ([source] if source else [])


def test_data_access_read_and_denial() -> None:
    (read,) = events(gcp.parse(golden("gcp_audit", "instances_list_data_access"), "x"))
    assert read.read_only and read.action == actions.DISCOVERY_READ
    assert read.principal.type == "service_account" and read.user_agent and "ScoutSuite" in read.user_agent
    # a Data Access entry whose method name says nothing is read-only by its permission type
    e = entry(
        "google.cloud.secretmanager.v1.SecretManagerService.AccessSecretVersion",
        "projects/p/secrets/s/versions/1",
    )
    e["logName"] = "projects/p/logs/cloudaudit.googleapis.com%2Fdata_access"
    e["protoPayload"]["authorizationInfo"] = [
        {"permission": "secretmanager.versions.access", "granted": True, "permissionType": "DATA_READ"}
    ]
    assert events(gcp.parse(e, "x"))[0].read_only
    e["protoPayload"]["authorizationInfo"][0]["permissionType"] = "DATA_WRITE"
    assert not events(gcp.parse(e, "x"))[0].read_only
    (denied,) = events(gcp.parse(golden("gcp_audit", "permission_denied_snapshot"), "x"))
    assert (denied.outcome, denied.error_code, denied.action) == (
        "denied",
        "PERMISSION_DENIED",
        actions.SNAPSHOT_CREATE,
    )


@pytest.mark.parametrize(
    ("status", "outcome", "code"),
    [
        ({}, "success", None),
        ({"code": 0}, "success", None),
        ({"code": 5, "message": "nf"}, "failure", "NOT_FOUND"),
        ({"code": 16}, "denied", "UNAUTHENTICATED"),
        ({"code": "PERMISSION_DENIED"}, "denied", "PERMISSION_DENIED"),
        ({"code": 99}, "failure", "99"),
    ],
)
def test_status_codes(status: dict[str, Any], outcome: str, code: str | None) -> None:
    (ev,) = events(gcp.parse(entry("v1.compute.snapshots.insert", status=status), "x"))
    assert (ev.outcome, ev.error_code) == (outcome, code)


def test_scheduled_snapshot_is_made_by_a_service_agent() -> None:
    (ev,) = events(gcp.parse(golden("gcp_audit", "scheduled_snapshot_service_agent"), "x"))
    assert ev.action == actions.SNAPSHOT_CREATE and ev.principal.type == "service"
    created = ev.resources_by_role("created")
    assert created and created[0].id.startswith("projects/acme-prod/global/snapshots/web01-europe-west1-b-")


@pytest.mark.parametrize(
    ("email", "ptype", "account"),
    [
        ("alice@example.com", "user", None),
        ("ci@acme-prod.iam.gserviceaccount.com", "service_account", "acme-prod"),
        ("acme-prod@appspot.gserviceaccount.com", "service_account", "acme-prod"),
        ("123456789012-compute@developer.gserviceaccount.com", "service_account", None),
        ("service-123456789012@compute-system.iam.gserviceaccount.com", "service", None),
        ("service-123456789012@gcp-sa-backupdr.iam.gserviceaccount.com", "service", None),
        ("123456789012@cloudservices.gserviceaccount.com", "service", None),
        ("service-1@container-engine-robot.iam.gserviceaccount.com", "service", None),
        ("system@google.com", "service", None),
    ],
)
def test_principal_kinds(email: str, ptype: str, account: str | None) -> None:
    e = entry("v1.compute.snapshots.insert", authenticationInfo={"principalEmail": email.upper()})
    (ev,) = events(gcp.parse(e, "x"))
    assert (ev.principal.id, ev.principal.type, ev.principal.account) == (email, ptype, account)
    assert ev.principal.name == email.upper()


def test_principal_without_email() -> None:
    e = entry(
        "v1.compute.snapshots.insert",
        authenticationInfo={"principalSubject": "serviceAccount:x@p.iam.gserviceaccount.com"},
    )
    assert events(gcp.parse(e, "x"))[0].principal.type == "service_account"
    e["protoPayload"]["authenticationInfo"] = {}
    assert events(gcp.parse(e, "x"))[0].principal.id == "unknown"


@pytest.mark.parametrize(
    ("method", "stripped"),
    [
        ("v1.compute.snapshots.insert", "compute.snapshots.insert"),
        ("beta.compute.machineImages.insert", "compute.machineImages.insert"),
        ("alpha.compute.x", "compute.x"),
        ("v2beta1.foo.bar", "foo.bar"),
        ("google.iam.admin.v1.CreateServiceAccount", "google.iam.admin.v1.CreateServiceAccount"),
        ("GetIamPolicy", "GetIamPolicy"),
        ("validate.x", "validate.x"),
    ],
)
def test_strip_version(method: str, stripped: str) -> None:
    assert gcp.strip_version(method) == stripped


# ------------------------------------------------------------------------------------------------
# Pub/Sub envelopes
# ------------------------------------------------------------------------------------------------
def test_pubsub_shapes_give_the_same_event() -> None:
    sip = golden("gcp_audit", "snapshots_set_iam_policy_all_users")
    (direct,) = events(gcp.parse(sip, "x"))
    push = {
        "message": {"data": b64(sip), "messageId": "m1", "publishTime": "2024-05-14T10:00:02Z"},
        "subscription": "projects/p/subscriptions/s",
    }
    cloud_event = {
        "specversion": "1.0",
        "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "source": "//pubsub.googleapis.com/projects/p/topics/t",
        "id": "m1",
        "data": push,
    }
    bare = push["message"]
    audit_event = {"specversion": "1.0", "type": "google.cloud.audit.log.v1.written", "id": "x", "data": sip}
    for shape in (push, cloud_event, bare, audit_event, [push, bare]):
        for ev in events(gcp.parse(shape, "pubsub")):
            assert ev.to_dict() == direct.to_dict()


def test_unwrap_pubsub() -> None:
    assert gcp.unwrap_pubsub({"message": {"data": b64({"a": 1}), "messageId": "7"}}, "loc") == [
        ("loc#message:7", {"a": 1})
    ]
    urlsafe = base64.urlsafe_b64encode(json.dumps({"k": "\u00ff\u00fe>>??"}).encode()).decode()
    assert gcp.unwrap_pubsub({"data": urlsafe, "messageId": "8"}) == [
        ("pubsub#message:8", {"k": "\u00ff\u00fe>>??"})
    ]


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        ({"message": {"data": "%%%not base64%%%", "messageId": "1"}}, "not valid base64"),
        ({"message": {"data": b64(b"\xff\xfe\x00garbage")}}, "not JSON"),
        ({"message": {"data": b64(b'{"protoPayload": {')}}, "not JSON"),
        ({"message": {"data": b64(b"[" * 100_000)}}, "not JSON"),
        ({"message": {"messageId": "1", "attributes": {"a": "b"}}}, "no data"),
        ({"message": {"data": 42}}, "not a base64 string"),
        ({"message": "x"}, "not a JSON object"),
        (
            {"specversion": "1.0", "type": "google.cloud.pubsub.topic.v1.messagePublished", "data": "x"},
            "no data.message",
        ),
        ({"message": {"data": "A" * (15 * 1024 * 1024)}}, "too large"),
        ([], "not a JSON object"),
    ],
)
def test_bad_pubsub(obj: Any, reason: str) -> None:
    err = gcp.unwrap_pubsub(obj, "loc")
    assert isinstance(err, RecordError) and reason in err.reason and err.family == "gcp"
    if isinstance(obj, dict):
        (via_parse,) = gcp.parse(obj, "loc")
        assert isinstance(via_parse, RecordError) and reason in via_parse.reason


def test_pubsub_carrying_another_family_is_handed_to_the_dispatcher() -> None:
    k8s = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "auditID": "a1",
        "stage": "ResponseComplete",
        "verb": "get",
        "user": {"username": "bob"},
        "objectRef": {"resource": "secrets", "namespace": "default", "name": "s"},
        "responseStatus": {"code": 200},
        "stageTimestamp": "2024-05-14T10:00:00Z",
    }
    (ev,) = events(gcp.parse({"message": {"data": b64(k8s), "messageId": "9"}}, "x"))
    assert ev.cloud == "kubernetes" and ev.event_id == "a1"
    (err,) = gcp.parse({"message": {"data": b64([1, 2])}}, "x")
    assert isinstance(err, RecordError) and "not a JSON object" in err.reason


def test_gke_entries_go_to_the_kubernetes_parser() -> None:
    (direct,) = events(gcp.parse(golden("gcp_gke", "pods_exec"), "x"))
    (wrapped,) = events(gcp.parse(golden("gcp_gke", "pods_exec_via_pubsub"), "x"))
    assert direct.source == wrapped.source == "gke_audit"
    assert direct.action == actions.K8S_EXEC and direct.event_id == wrapped.event_id


# ------------------------------------------------------------------------------------------------
# hostile input
# ------------------------------------------------------------------------------------------------
def _deep(n: int) -> Any:
    d: Any = "leaf"
    for _ in range(n):
        d = {"a": d}
    return d


def _mutated(**pp: Any) -> dict[str, Any]:
    e = entry("v1.compute.snapshots.setIamPolicy")
    e["protoPayload"].update(pp)
    return e


@pytest.mark.parametrize(
    "obj",
    [
        None,
        3.5,
        "text",
        [[{}]],
        {},
        {"protoPayload": "x"},
        {"protoPayload": {}},
        {"protoPayload": {"methodName": "v1.compute.snapshots.insert"}},
        {"protoPayload": {"methodName": "x"}, "timestamp": "yesterday"},
        {"protoPayload": {"methodName": "x"}, "timestamp": 1715680000},
        {"entries": [{"protoPayload": []}, 5]},
        {"entries": "x"},
        _deep(5000),
        {"protoPayload": _deep(5000)},
        _mutated(methodName=["list"]),
        _mutated(authorizationInfo="x", request=[1], serviceData={"policyDelta": {"bindingDeltas": "x"}}),
        _mutated(
            serviceData={"policyDelta": {"bindingDeltas": [1, None, {"action": "ADD", "member": {"x": 1}}]}}
        ),
        _mutated(request={"policy": {"bindings": [None, {"members": "allUsers"}, {"members": [None, 5]}]}}),
        _mutated(status="denied", authenticationInfo="x", requestMetadata=[1]),
        _mutated(request={"labels": ["a"], "sourceDisk": {"x": 1}, "disks": "x"}),
        _mutated(resourceName=_deep(100)),
        {"specversion": "1.0", "type": "google.cloud.audit.log.v1.written", "data": [1]},
        {"specversion": "1.0", "type": 5},
    ],
)
def test_hostile_input_never_raises(obj: Any) -> None:
    results = gcp.parse(obj, "hostile")
    assert isinstance(results, list) and results
    for r in results:
        assert isinstance(r, Event | RecordError)
        if isinstance(r, RecordError):
            assert r.family in ("gcp", "kubernetes") and r.reason and len(r.excerpt) <= 200


def test_huge_strings_are_capped() -> None:
    big = "x" * (10 * 1024 * 1024)
    e = entry(
        "v1.compute.snapshots.insert" + big,
        "projects/p/global/snapshots/" + big,
        authenticationInfo={"principalEmail": big},
        requestMetadata={"callerIp": big, "callerSuppliedUserAgent": big},
    )
    (ev,) = events(gcp.parse(e, "x"))
    assert len(ev.operation) <= 4096 and len(ev.principal.id) <= 4096
    assert len(ev.source_ip or "") <= 1024 and len(ev.user_agent or "") <= 1024
    assert all(len(r.id) <= 4096 for r in ev.resources)


def test_one_bad_entry_does_not_spoil_the_batch() -> None:
    good = entry("v1.compute.snapshots.insert")
    results = gcp.parse([good, {"protoPayload": {"methodName": "x"}}, good], "file")
    assert [type(r).__name__ for r in results] == ["Event", "RecordError", "Event"]
    assert results[1].location == "file[1]"  # type: ignore[union-attr]
    assert results[0].raw is good  # type: ignore[union-attr]


def test_non_audit_entries_are_errors_not_events() -> None:
    (err,) = gcp.parse(
        {"insertId": "1", "textPayload": "kernel: eth0 up", "timestamp": "2024-05-14T10:00:00Z"}, "x"
    )
    assert isinstance(err, RecordError) and "not a Cloud Audit LogEntry" in err.reason
    other = copy.deepcopy(entry("x"))
    other["protoPayload"]["@type"] = "type.googleapis.com/google.appengine.logging.v1.RequestLog"
    (err2,) = gcp.parse(other, "x")
    assert isinstance(err2, RecordError) and "not an AuditLog" in err2.reason


@settings(max_examples=150, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda c: (
            st.lists(c, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "protoPayload",
                        "methodName",
                        "serviceName",
                        "timestamp",
                        "request",
                        "status",
                        "code",
                        "authorizationInfo",
                        "message",
                        "data",
                        "specversion",
                        "type",
                        "operation",
                        "id",
                        "resourceName",
                        "serviceData",
                        "policyDelta",
                        "bindingDeltas",
                    ]
                ),
                c,
                max_size=6,
            )
        ),
        max_leaves=30,
    )
)
def test_fuzz_never_raises(obj: Any) -> None:
    results = gcp.parse(obj, "fuzz")
    assert all(isinstance(r, Event | RecordError) for r in results)
