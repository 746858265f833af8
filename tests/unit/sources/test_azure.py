"""Azure parser: real samples, ARM event ids, principals, Graph paths and hostile input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adscore import actions
from adscore.events import Event, RecordError
from adscore.sources import azure

SAMPLES = Path(__file__).resolve().parents[3] / ".." / "shared" / "samples"
GOLDEN = Path(__file__).resolve().parents[2] / "golden"
SUB = "7d4a9c2e-1f3b-4c5d-8e6f-0a1b2c3d4e5f"
SNAP = f"/subscriptions/{SUB}/resourceGroups/prod-rg/providers/Microsoft.Compute/snapshots/s1"
DISK = f"/subscriptions/{SUB}/resourceGroups/prod-rg/providers/Microsoft.Compute/disks/d1"
OID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"
UPN_CLAIM = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"


def events(results: list[Event | RecordError]) -> list[Event]:
    assert all(isinstance(r, Event) for r in results), [r for r in results if isinstance(r, RecordError)]
    return [r for r in results if isinstance(r, Event)]


def errors(results: list[Event | RecordError]) -> list[RecordError]:
    return [r for r in results if isinstance(r, RecordError)]


def golden(family: str, case: str) -> Any:
    return json.loads((GOLDEN / family / f"{case}.input.json").read_text())


def record(**over: Any) -> dict[str, Any]:
    """A minimal diagnostic-settings Activity Log record."""
    rec: dict[str, Any] = {
        "time": "2024-05-14T09:12:44.9000000Z",
        "resourceId": SNAP,
        "operationName": "Microsoft.Compute/snapshots/write",
        "category": "Administrative",
        "resultType": "Success",
        "resultSignature": "Succeeded.Created",
        "callerIpAddress": "203.0.113.24",
        "correlationId": "c1",
        "identity": {"claims": {OID_CLAIM: "AAAA-1", UPN_CLAIM: "alice@contoso.com"}},
        "properties": {"statusCode": "Created"},
    }
    rec.update(over)
    return rec


# ------------------------------------------------------------------------------------------------
# real samples
# ------------------------------------------------------------------------------------------------
def _panther_azure_logs() -> list[tuple[str, dict[str, Any]]]:
    if not SAMPLES.is_dir():
        return []
    out: list[tuple[str, dict[str, Any]]] = []
    log_types: dict[tuple[str, str], str] = {}
    with (SAMPLES / "panther" / "all_tests.jsonl").open() as f:
        for i, line in enumerate(f):
            d = json.loads(line)
            log_types[(d["rule_id"], d["test_name"])] = d["log_type"]
            if str(d["log_type"]).startswith("Azure."):
                out.append((f"all_tests.jsonl:{i + 1}:{d['rule_id']}:{d['test_name']}", d["log"]))
    for path in sorted((SAMPLES / "panther").glob("*/*.json")):
        rule = json.loads(path.read_text())
        if not any(str(t).startswith("Azure.") for t in rule.get("LogTypes") or []):
            continue
        for test in rule.get("Tests") or []:
            # a rule for several log types mixes their tests: keep the Azure ones
            if str(log_types.get((rule["RuleID"], test["Name"]), "")).startswith("Azure."):
                out.append((f"{path.name}:{test['Name']}", test["Log"]))
    return out


def _aks_without_time(log: dict[str, Any]) -> bool:
    """Panther's AKS test records carry neither the record's ``time`` nor any audit timestamp."""
    if log.get("category") not in ("kube-audit", "kube-audit-admin") or "time" in log:
        return False
    inner = json.loads(log["properties"]["log"])
    return not any(k in inner for k in ("stageTimestamp", "requestReceivedTimestamp", "timestamp"))


PANTHER_AZURE = _panther_azure_logs()


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared samples folder absent")
def test_panther_azure_samples_are_found() -> None:
    assert len(PANTHER_AZURE) >= 70


@pytest.mark.parametrize(("name", "log"), PANTHER_AZURE, ids=[n for n, _ in PANTHER_AZURE])
def test_panther_azure_sample_parses(name: str, log: dict[str, Any]) -> None:
    # GIVEN a real Azure test record (Panther adds p_* fields; they are ignored)
    results = azure.parse(log, name)
    assert results
    if _aks_without_time(log):
        # genuinely incomplete: no time anywhere in the record, so it cannot be an Event
        assert all(isinstance(r, RecordError) and "time" in r.reason for r in results), results
        return
    evs = events(results)
    assert all(e.cloud in ("azure", "kubernetes") for e in evs)


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared samples folder absent")
def test_panther_meaning_is_kept() -> None:
    by_name: dict[str, list[Event]] = {}
    for name, log in PANTHER_AZURE:
        if name.startswith("all_tests"):
            continue  # the same tests again
        by_name[name] = [r for r in azure.parse(log, name) if isinstance(r, Event)]
    sas = [e for n, evs in by_name.items() if "DiskSASURIGenerated" in n for e in evs]
    exports = [e for e in sas if e.operation.lower() == "microsoft.compute/disks/begingetaccess/action"]
    assert len(exports) == 4
    for e in exports:
        assert e.action == actions.SNAPSHOT_EXPORT
        assert e.targets == ("sas",)
        assert e.resources[0].type == "disk" and e.resources[0].role == "target"
    (read,) = [e for e in sas if e.operation == "Microsoft.Compute/disks/read"]
    assert read.action == actions.DISCOVERY_READ and read.read_only
    deleted = [e for n, evs in by_name.items() if "SnapshotDeleted" in n for e in evs]
    assert [e.action for e in deleted] == [
        actions.SNAPSHOT_DELETE,
        actions.SNAPSHOT_DELETE,
        actions.SNAPSHOT_CREATE,
    ]
    keys = {n.split(":", 1)[1]: evs[0] for n, evs in by_name.items() if "KeysListed" in n}
    assert keys["Failed Key Listing"].outcome == "denied"
    assert keys["Failed Key Listing"].error_code == "403"
    assert keys["Storage Account Keys Listed"].principal.name == "denethor@lotr.com"
    assert keys["Storage Account Keys Listed"].account == "12345678-1234-1234-1234-123456789abc"


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared samples folder absent")
def test_microsoft_docs_event_grid_examples() -> None:
    docs = json.loads(
        (SAMPLES / "microsoft-azure-docs" / "event-grid-resource-group-examples.json").read_text()
    )
    write, delete, list_keys = events(azure.parse(docs, "docs"))
    assert write.source == "azure_eventgrid" and write.outcome == "success"
    assert write.principal.type == "user" and write.principal.name == "{user-name}"
    assert write.account == "{subscription-id}"
    assert delete.operation == "Microsoft.Storage/storageAccounts/delete"
    assert list_keys.action == actions.DISCOVERY_READ and list_keys.read_only
    assert list_keys.principal.type == "service"  # appid and no upn
    assert write.event_id != delete.event_id


# ------------------------------------------------------------------------------------------------
# "count operations, not records"
# ------------------------------------------------------------------------------------------------
def test_started_succeeded_activity_and_event_grid_copies_share_one_id() -> None:
    started, succeeded = events(
        azure.parse(golden("azure_activity", "snapshot_write_started_succeeded"), "a")
    )
    (grid,) = events(azure.parse(golden("azure_eventgrid", "snapshot_write"), "g"))
    (cloud_event,) = events(azure.parse(golden("azure_cloudevents", "snapshot_write"), "c"))
    (rest,) = events(azure.parse(golden("azure_activity", "rest_shape_snapshot_write"), "r"))
    assert (started.outcome, succeeded.outcome) == ("pending", "success")
    assert started.operation == "MICROSOFT.COMPUTE/SNAPSHOTS/WRITE"  # as logged
    assert {started.event_id, succeeded.event_id, grid.event_id, cloud_event.event_id, rest.event_id} == {
        grid.event_id
    }
    assert started.action == grid.action == actions.SNAPSHOT_CREATE


def test_other_operation_on_same_correlation_gets_another_id() -> None:
    (a,) = events(azure.parse(record(), "x"))
    (b,) = events(azure.parse(record(operationName="Microsoft.Compute/snapshots/delete"), "x"))
    (c,) = events(azure.parse(record(correlationId="c2"), "x"))
    assert len({a.event_id, b.event_id, c.event_id}) == 3


# ------------------------------------------------------------------------------------------------
# outcomes, actions, conditions
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("result_type", "signature", "props", "outcome", "code"),
    [
        ("Start", "Started.", {}, "pending", None),
        ("Started", None, {}, "pending", None),
        ("Accepted", "Accepted.Accepted", {}, "success", None),
        ("Succeeded", None, {}, "success", None),
        ("Failure", "Failed.Conflict", {"statusCode": "Conflict"}, "failure", "Conflict"),
        ("Failed", "Failed.Forbidden", {"statusCode": "Forbidden"}, "denied", "Forbidden"),
        ("Failed", "403", {}, "denied", "403"),
        (
            "Failure",
            "Failed.Forbidden",
            {
                "statusCode": "Forbidden",
                "statusMessage": '{"error":{"code":"AuthorizationFailed","message":"no"}}',
            },
            "denied",
            "AuthorizationFailed",
        ),
        (
            "Failed",
            None,
            {"statusMessage": "LinkedAuthorizationFailed: {not json"},
            "denied",
            "AuthorizationFailed",
        ),
        ("Canceled", None, {}, "failure", "Canceled"),
    ],
)
def test_activity_outcomes(
    result_type: str, signature: str | None, props: dict[str, str], outcome: str, code: str | None
) -> None:
    (e,) = events(
        azure.parse(record(resultType=result_type, resultSignature=signature, properties=props), "x")
    )
    assert (e.outcome, e.error_code) == (outcome, code)


def test_authorization_failed_golden_is_denied() -> None:
    (e,) = events(azure.parse(golden("azure_activity", "authorization_failed"), "x"))
    assert e.outcome == "denied" and e.error_code == "AuthorizationFailed"
    assert e.action == actions.SNAPSHOT_EXPORT and e.targets == ("sas",)


@pytest.mark.parametrize(
    ("body", "action"),
    [
        (None, None),
        ({"properties": {"creationData": {"createOption": "Empty"}}}, None),
        ({"properties": {"creationData": {"createOption": "Copy", "sourceResourceId": DISK}}}, None),
        (
            {"properties": {"creationData": {"createOption": "Copy", "sourceResourceId": SNAP}}},
            actions.SNAPSHOT_RESTORE,
        ),
        (
            {
                "properties": {
                    "creationData": {
                        "createOption": "Restore",
                        "sourceResourceId": SNAP.replace(
                            "snapshots/s1", "restorePointCollections/c/restorePoints/r/diskRestorePoints/d"
                        ),
                    }
                }
            },
            actions.SNAPSHOT_RESTORE,
        ),
        (
            {
                "properties": {
                    "creationData": {
                        "createOption": "FromImage",
                        "imageReference": {
                            "id": "/Subscriptions/x/Providers/Microsoft.Compute/Locations/westeurope/Publishers/Canonical/ArtifactTypes/VMImage/Offers/ubuntu/Skus/22_04-lts/Versions/latest"
                        },
                    }
                }
            },
            None,
        ),
        (
            {
                "properties": {
                    "creationData": {
                        "createOption": "FromImage",
                        "galleryImageReference": {
                            "id": f"/subscriptions/{SUB}/resourceGroups/g/providers/Microsoft.Compute/galleries/gal/images/i/versions/1.0.0"
                        },
                    }
                }
            },
            actions.SNAPSHOT_RESTORE,
        ),
    ],
)
def test_disk_write_is_a_restore_only_from_a_copy(body: dict[str, Any] | None, action: str | None) -> None:
    props: dict[str, Any] = {"statusCode": "Created"}
    if body is not None:
        props["requestbody"] = json.dumps(body)
    rec = record(operationName="Microsoft.Compute/disks/write", resourceId=DISK, properties=props)
    (e,) = events(azure.parse(rec, "x"))
    assert e.action == action
    if action:
        assert [r.role for r in e.resources] == ["created", "source"]


def test_gallery_share_targets() -> None:
    gallery = f"/subscriptions/{SUB}/resourceGroups/g/providers/Microsoft.Compute/galleries/gal"
    body = {
        "operationType": "Add",
        "groups": [
            {"type": "Subscriptions", "ids": ["sub-a", "sub-b"]},
            {"type": "AADTenants", "ids": ["tenant-x"]},
        ],
    }
    rec = record(
        operationName="Microsoft.Compute/galleries/share/action",
        resourceId=gallery,
        properties={"requestbody": json.dumps(body)},
    )
    (e,) = events(azure.parse(rec, "x"))
    assert e.action == actions.SNAPSHOT_SHARE and e.targets == ("sub-a", "sub-b", "tenant-x")
    community = record(
        operationName="Microsoft.Compute/galleries/share/action",
        resourceId=gallery,
        properties={"requestbody": '{"operationType":"EnableCommunity"}'},
    )
    assert events(azure.parse(community, "x"))[0].targets == ("community",)


def test_backup_vault_identity_is_a_service() -> None:
    (e,) = events(azure.parse(golden("azure_activity", "azure_backup_snapshot_write"), "x"))
    assert e.action == actions.SNAPSHOT_CREATE
    assert e.principal.type == "service"
    assert "Microsoft.DataProtection/backupVaults/prod-vault" in e.principal.name
    assert e.tags == (("CreatedBy", "AzureBackup"),)
    assert [(r.type, r.role) for r in e.resources] == [("snapshot", "created"), ("disk", "source")]


@pytest.mark.parametrize(
    ("claims", "caller", "pid", "ptype", "name"),
    [
        (
            {OID_CLAIM: "ABC-1", UPN_CLAIM: "Bob@Contoso.com", "appid": "cli"},
            None,
            "abc-1",
            "user",
            "Bob@Contoso.com",
        ),
        ({"oid": "o2", "appid": "app-2", "idtyp": "app"}, None, "o2", "service", "app-2"),
        ({OID_CLAIM: "o3", "appid": "app-3"}, None, "o3", "service", "app-3"),
        (
            {"name": "Carol Guest", "unique_name": "live.com#carol@x.com", "appid": "a"},
            None,
            "live.com#carol@x.com",
            "user",
            "live.com#carol@x.com",
        ),
        ({}, "dave@contoso.com", "dave@contoso.com", "user", "dave@contoso.com"),
        (
            {},
            "6d5c4b3a-2918-4a7b-8c6d-5e4f3a2b1c0d",
            "6d5c4b3a-2918-4a7b-8c6d-5e4f3a2b1c0d",
            "service",
            "6d5c4b3a-2918-4a7b-8c6d-5e4f3a2b1c0d",
        ),
        ({"ipaddr": "1.2.3.4"}, None, "unknown", "unknown", "unknown"),
        ('{"oid": "from-json-string", "upn": "e@x.com"}', None, "from-json-string", "user", "e@x.com"),
    ],
)
def test_principal_from_claims(claims: Any, caller: str | None, pid: str, ptype: str, name: str) -> None:
    # REST shape: claims and caller at the top
    rec = {
        "operationName": {"value": "Microsoft.Compute/snapshots/write"},
        "category": {"value": "Administrative"},
        "status": {"value": "Succeeded"},
        "eventTimestamp": "2024-05-14T09:00:00Z",
        "resourceId": SNAP,
        "correlationId": "c",
        "claims": claims,
        "tenantId": "t1",
    }
    if caller:
        rec["caller"] = caller
    (e,) = events(azure.parse(rec, "x"))
    assert (e.principal.id, e.principal.type, e.principal.name) == (pid, ptype, name)
    assert e.principal.account == "t1"


# ------------------------------------------------------------------------------------------------
# Graph, sign-in, AKS
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("uri", "path", "collection"),
    [
        ("https://graph.microsoft.com/v1.0/users?$top=999", "/users", "users"),
        ("https://graph.microsoft.com/v1.0/users/bob@contoso.com/memberOf", "/users/{id}/memberOf", "users"),
        (
            "https://graph.microsoft.com/v1.0/users/bob%40contoso.com/memberOf",
            "/users/{id}/memberOf",
            "users",
        ),
        (
            "https://graph.microsoft.com/beta/groups/0f9e8d7c-6b5a-4938-2716-a5b4c3d2e1f0/members/$ref",
            "/groups/{id}/members/$ref",
            "groups",
        ),
        (
            "https://graph.microsoft.com/v1.0/servicePrincipals(appId='00000003-0000-0000-c000-000000000000')",
            "/servicePrincipals({id})",
            "serviceprincipals",
        ),
        (
            "https://graph.microsoft.com/v1.0/me/chats/19:abc_def@thread.v2/messages/1715677800123",
            "/me/chats/{id}/messages/{id}",
            "me",
        ),
        (
            "https://graph.microsoft.com/v1.0/directoryRoles/roleTemplateId=62e90394-69f5-4237-9190-012177145e10",
            "/directoryRoles/{id}",
            "directoryroles",
        ),
        ("/v1.0/applications/delta()", "/applications/delta()", "applications"),
        ("https://graph.microsoft.com/", "/", ""),
    ],
)
def test_graph_path(uri: str, path: str, collection: str) -> None:
    assert azure.graph_path(uri) == (path, collection)


def test_graph_enumeration_records() -> None:
    evs = events(azure.parse(golden("azure_graph", "get_users"), "x"))
    assert [e.operation for e in evs] == [
        "GET /users",
        "GET /users/{id}/memberOf",
        "GET /groups/{id}/members",
    ]
    assert [e.service for e in evs] == ["graph/users", "graph/users", "graph/groups"]
    assert all(e.action == actions.DISCOVERY_READ and e.read_only and e.source == "azure_graph" for e in evs)
    assert len({e.event_id for e in evs}) == 3
    sp = events(azure.parse(golden("azure_graph", "get_service_principals_by_app"), "x"))
    assert {e.principal.type for e in sp} == {"service"} and {e.service for e in sp} == {
        "graph/serviceprincipals"
    }
    (forbidden,) = events(azure.parse(golden("azure_graph", "forbidden_role_assignments"), "x"))
    assert (forbidden.outcome, forbidden.error_code) == ("denied", "403")


def test_graph_write_is_not_a_read() -> None:
    rec = golden("azure_graph", "get_users")["records"][0]
    rec["properties"]["requestMethod"] = "PATCH"
    rec["properties"]["responseStatusCode"] = 500
    (e,) = events(azure.parse(rec, "x"))
    assert e.operation == "PATCH /users" and not e.read_only and e.action is None
    assert (e.outcome, e.error_code) == ("failure", "500")


def test_signin_failure() -> None:
    (e,) = events(azure.parse(golden("azure_graph", "entra_signin_failure"), "x"))
    assert (e.source, e.operation, e.action, e.outcome, e.error_code) == (
        "azure_signin",
        "Sign-in activity",
        "identity.signin",
        "failure",
        "50126",
    )
    assert e.principal.name == "bob@contoso.com"


def test_aks_kube_audit_goes_to_the_kubernetes_parser() -> None:
    (e,) = events(azure.parse(golden("azure_kube_audit", "pod_exec"), "x"))
    assert e.source == "aks_audit" and e.action == actions.K8S_EXEC
    assert e.account == "aks-prod"  # the cluster, taken from the resourceId
    assert e.principal.account == SUB


@pytest.mark.parametrize(
    ("log", "reason"),
    [
        ('{"kind":"Event","apiVersion":"audit.k8s.io/v1","verb":"get","user":{"userna', "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        (17, "no properties.log"),
        ("{" * 100_000 + "}" * 100_000, "not valid JSON"),
        ("x" * (11 * 1024 * 1024), "too large"),
    ],
)
def test_bad_kube_audit_log(log: Any, reason: str) -> None:
    rec = {
        "category": "kube-audit",
        "resourceId": "/x",
        "time": "2024-05-14T00:00:00Z",
        "properties": {"log": log},
    }
    (err,) = azure.parse({"records": [rec]}, "eh:1")
    assert isinstance(err, RecordError) and reason in err.reason
    assert err.location == "eh:1#records[0]" and len(err.excerpt) <= 200


# ------------------------------------------------------------------------------------------------
# unsupported and hostile input
# ------------------------------------------------------------------------------------------------
def test_unsupported_category_and_event_types() -> None:
    (e1,) = errors(azure.parse({"records": [{"category": "guard", "properties": {}}]}, "x"))
    assert "guard" in e1.reason
    validation = {
        "id": "1",
        "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "eventTime": "2024-05-14T00:00:00Z",
        "data": {"validationCode": "512d38b6"},
    }
    (e2,) = errors(azure.parse(validation, "x"))
    assert "validation" in e2.reason
    (e3,) = errors(
        azure.parse(
            {"specversion": "1.0", "type": "google.cloud.pubsub.topic.v1.messagePublished", "data": {}}, "x"
        )
    )
    assert "not an Azure event" in e3.reason


def _deep(n: int) -> Any:
    d: Any = "leaf"
    for _ in range(n):
        d = {"a": d}
    return d


@pytest.mark.parametrize(
    "obj",
    [
        None,
        5,
        "text",
        [[1]],
        {"records": "x"},
        {"records": [1, None, "s", []]},
        {"records": [{}]},
        record(time=5),
        record(time="not a time"),
        record(time=None),
        record(operationName=123),
        record(operationName=None),
        record(identity=["x"], properties="str", resourceId=["a"]),
        record(identity={"claims": [1], "authorization": "x"}),
        record(identity={"claims": _deep(5000)}),
        _deep(5000),
        {"records": [_deep(5000)]},
        record(properties={"requestbody": "{" * 50_000}),
        record(properties={"statusMessage": "[" * 50_000}, resultType="Failed"),
        {
            "eventType": "Microsoft.Resources.ResourceWriteSuccess",
            "data": "x",
            "eventTime": "2024-05-14T00:00:00Z",
        },
        {
            "eventType": "Microsoft.Resources.ResourceWriteSuccess",
            "data": {},
            "eventTime": "2024-05-14T00:00:00Z",
        },
        {"eventType": 7, "data": {"operationName": "x"}},
        {"specversion": "1.0", "type": None, "data": None},
        {
            "category": "MicrosoftGraphActivityLogs",
            "time": "2024-05-14T00:00:00Z",
            "properties": {"requestMethod": 1, "requestUri": {}},
        },
        {"category": "MicrosoftGraphActivityLogs", "properties": "x"},
        {"category": "SignInLogs", "time": [], "properties": []},
        {
            "category": "AuditLogs",
            "time": "2024-05-14T00:00:00Z",
            "properties": {"initiatedBy": {"user": "x", "app": 3}},
        },
    ],
)
def test_hostile_input_never_raises(obj: Any) -> None:
    results = azure.parse(obj, "hostile")
    assert isinstance(results, list)
    assert all(isinstance(r, Event | RecordError) for r in results)
    for r in results:
        if isinstance(r, RecordError):
            assert r.family == "azure" and r.reason and len(r.excerpt) <= 200


def test_huge_strings_are_capped() -> None:
    big = "M" * (10 * 1024 * 1024)
    rec = record(
        operationName="Microsoft.Compute/snapshots/write" + big,
        callerIpAddress=big,
        correlationId=big,
        identity={"claims": {OID_CLAIM: big, UPN_CLAIM: big}},
    )
    (e,) = events(azure.parse(rec, "x"))
    assert len(e.operation) <= 4096 and len(e.source_ip or "") <= 1024
    assert len(e.principal.id) <= 4096 and len(e.principal.name) <= 4096
    assert e.action is None  # the padded operation is not the real one


def test_records_are_parsed_one_by_one() -> None:
    # GIVEN one bad record between two good ones WHEN parsed THEN only that one fails
    good = record()
    results = azure.parse(
        {"records": [good, {"category": "Administrative", "operationName": "x"}, good]}, "eh"
    )
    assert [type(r).__name__ for r in results] == ["Event", "RecordError", "Event"]
    assert results[1].location == "eh#records[1]"  # type: ignore[union-attr]
    assert results[0].raw is good  # type: ignore[union-attr]


@settings(max_examples=150, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda c: (
            st.lists(c, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "records",
                        "category",
                        "operationName",
                        "time",
                        "properties",
                        "log",
                        "identity",
                        "claims",
                        "data",
                        "eventType",
                        "resourceId",
                        "resultType",
                        "specversion",
                        "type",
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
    results = azure.parse(obj, "fuzz")
    assert all(isinstance(r, Event | RecordError) for r in results)


# ------------------------------------------------------------------------------------------------
# Log Analytics rows (a workspace query's output: `az monitor log-analytics query`, Sentinel exports)
# ------------------------------------------------------------------------------------------------
def _la_activity(**over: Any) -> dict[str, Any]:
    claims = {OID_CLAIM: "5e7f9a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b", UPN_CLAIM: "mallory@contoso.example",
              "appid": "04b07795-8ddb-461a-bbee-02f9e1bf7b46", "ipaddr": "203.0.113.50"}
    row: dict[str, Any] = {
        "TenantId": "72f988bf-0000-4000-8000-2d7cd011db47",
        "SourceSystem": "Azure",
        "TimeGenerated": "2026-03-16T10:05:00.123Z",
        "CallerIpAddress": "203.0.113.50",
        "CategoryValue": "Administrative",
        "CorrelationId": "c0ffee00-0000-4000-8000-000000000505",
        # `az monitor log-analytics query` prints dynamic columns as JSON text
        "Authorization": json.dumps({"action": "Microsoft.Compute/snapshots/write", "scope": SNAP}),
        "Claims": json.dumps(claims),
        "Level": "Informational",
        "OperationNameValue": "MICROSOFT.COMPUTE/SNAPSHOTS/WRITE",
        "Properties": json.dumps({"statusCode": "Created", "entity": SNAP,
                                  "requestbody": json.dumps({"properties": {"creationData": {
                                      "createOption": "Copy", "sourceResourceId": DISK}}})}),
        "Caller": "mallory@contoso.example",
        "EventDataId": "e1",
        "ResourceGroup": "PROD-RG",
        "ResourceProviderValue": "MICROSOFT.COMPUTE",
        "ActivityStatusValue": "Success",
        "ActivitySubstatusValue": "Created",
        "SubscriptionId": SUB,
        "_ResourceId": SNAP.lower(),
        "Type": "AzureActivity",
    }
    row.update(over)
    return row


def test_log_analytics_azure_activity_row_reads_like_its_diagnostic_record() -> None:
    from adscore.sources import sniff

    row = _la_activity()
    assert sniff(row) == "azure"
    (e,) = events(azure.parse(row, "la:1"))
    assert (e.source, e.action, e.outcome, e.account) == ("azure_activity", actions.SNAPSHOT_CREATE, "success", SUB)
    assert e.principal.id == "5e7f9a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b" and e.principal.name == "mallory@contoso.example"
    assert [(r.role, r.id) for r in e.resources] == [("created", SNAP.lower()), ("source", DISK.lower())]
    # the same row with its dynamic columns as objects (the Log Analytics API, a Sentinel export)
    as_objects = _la_activity(
        Claims=None, Claims_d=json.loads(row["Claims"]), Properties_d=json.loads(row["Properties"]), Properties=None
    )
    (same,) = events(azure.parse(as_objects, "la:2"))
    assert (same.event_id, same.action, same.principal.id, same.resources) == (
        e.event_id, e.action, e.principal.id, e.resources
    )
    # a denied write keeps its reason
    denied = _la_activity(ActivityStatusValue="Failure", ActivitySubstatusValue="Forbidden",
                          Properties=json.dumps({"statusCode": "Forbidden"}))
    (d,) = events(azure.parse(denied, "la:3"))
    assert (d.outcome, d.error_code) == ("denied", "Forbidden")


def test_log_analytics_graph_and_signin_rows() -> None:
    graph = {
        "TenantId": "72f988bf-0000-4000-8000-2d7cd011db47", "TimeGenerated": "2026-03-16T10:21:07.123Z",
        "Location": "West Europe", "RequestId": "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeee1", "ApiVersion": "v1.0",
        "RequestMethod": "GET", "ResponseStatusCode": 200, "IPAddress": "203.0.113.50",
        "UserAgent": "python-requests/2.31.0 AzureHound/2.1.0",
        "RequestUri": "https://graph.microsoft.com/v1.0/groups/6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f/members?$top=999",
        "AppId": "04b07795-8ddb-461a-bbee-02f9e1bf7b46", "UserId": "5e7f9a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b",
        "ServicePrincipalId": "", "Type": "MicrosoftGraphActivityLogs",
    }
    (g,) = events(azure.parse(graph, "la:g"))
    assert (g.source, g.action, g.operation, g.service) == (
        "azure_graph", actions.DISCOVERY_READ, "GET /groups/{id}/members", "graph/groups"
    )
    assert (g.principal.id, g.user_agent, g.outcome) == (
        "5e7f9a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b", graph["UserAgent"], "success"
    )
    signin = {
        "TenantId": "72f988bf-0000-4000-8000-2d7cd011db47", "TimeGenerated": "2026-03-16T09:58:12Z",
        "OperationName": "Sign-in activity", "ResultType": "50126", "CorrelationId": "5a1c0d2e-7b3f-4e8a-9c6d-000000000001",
        "Id": "8f2b6c1a-4d3e-4f5a-b6c7-d8e9f0a1b2c3", "UserPrincipalName": "Mallory@Contoso.example",
        "UserId": "5e7f9a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b", "AppId": "1b730954-1685-4b74-9bfd-dac224a7b894",
        "AppDisplayName": "Azure Active Directory PowerShell", "IPAddress": "203.0.113.50",
        "UserAgent": "python-requests/2.31.0 roadtools", "Status": json.dumps({"errorCode": 50126}),
        "Type": "SigninLogs",
    }
    (s,) = events(azure.parse(signin, "la:s"))
    assert (s.source, s.action, s.outcome, s.error_code) == ("azure_signin", actions.IDENTITY_SIGNIN, "failure", "50126")
    assert (s.principal.id, s.principal.name, s.source_ip) == (
        "5e7f9a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b", "Mallory@Contoso.example", "203.0.113.50"
    )


def test_log_analytics_rows_of_other_tables_are_not_taken() -> None:
    from adscore.sources import sniff

    assert sniff({"TimeGenerated": "2026-03-16T10:00:00Z", "Type": "Heartbeat", "Computer": "vm1"}) is None
    (err,) = errors(azure.parse({"TimeGenerated": "2026-03-16T10:00:00Z", "Type": "AzureActivity"}, "la:x"))
    assert "operationName" in err.reason
