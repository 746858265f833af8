"""Kubernetes audit and GKE audit parsing: fields, outcomes, principals, commands, errors."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from adscore.events import Event, RecordError
from adscore.sources import kubernetes
from adscore.sources.kubernetes import parse, parse_audit_event, parse_gke_entry

BASE: dict[str, Any] = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "Metadata",
    "auditID": "aid-1",
    "stage": "ResponseComplete",
    "requestURI": "/api/v1/namespaces/ns1/pods/p1",
    "verb": "get",
    "user": {"username": "alice"},
    "sourceIPs": ["192.0.2.1", "10.0.0.1"],
    "userAgent": "kubectl/v1.29.0",
    "objectRef": {"resource": "pods", "namespace": "ns1", "name": "p1", "apiVersion": "v1"},
    "responseStatus": {"metadata": {}, "code": 200},
    "requestReceivedTimestamp": "2024-01-01T00:00:00.000001Z",
    "stageTimestamp": "2024-01-01T00:00:01.123456789Z",
}


def rec(**changes: Any) -> dict[str, Any]:
    r = copy.deepcopy(BASE)
    for k, v in changes.items():
        if v is None:
            r.pop(k, None)
        else:
            r[k] = v
    return r


def one(obj: Any, **kw: Any) -> Event:
    out = parse_audit_event(obj, "t", **kw)
    assert len(out) == 1
    assert isinstance(out[0], Event), out[0]
    return out[0]


def error(obj: Any) -> RecordError:
    out = parse(obj, "t")
    assert len(out) == 1
    assert isinstance(out[0], RecordError), out[0]
    return out[0]


def test_basic_fields() -> None:
    ev = one(rec())
    assert ev.cloud == "kubernetes" and ev.source == "k8s_audit"
    assert ev.event_id == "aid-1"
    assert ev.time == datetime(2024, 1, 1, 0, 0, 1, 123456, tzinfo=UTC)
    assert ev.operation == "get pods" and ev.service == "k8s/pods"
    assert ev.read_only is True and ev.action == "discovery.read"
    assert ev.outcome == "success" and ev.error_code is None
    assert ev.source_ip == "192.0.2.1" and ev.user_agent == "kubectl/v1.29.0"
    assert ev.namespace == "ns1"
    assert [r.to_dict() for r in ev.resources] == [{"type": "pod", "id": "ns1/p1", "role": "target"}]
    assert ev.raw is not None and ev.raw["auditID"] == "aid-1"


def test_time_falls_back_to_request_received_then_v1beta1_timestamp() -> None:
    assert one(rec(stageTimestamp=None)).time == datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
    r = rec(stageTimestamp=None, requestReceivedTimestamp=None, timestamp="2018-10-26T13:38:34Z")
    assert one(r).time == datetime(2018, 10, 26, 13, 38, 34, tzinfo=UTC)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"stageTimestamp": None, "requestReceivedTimestamp": None}, "no time"),
        ({"stageTimestamp": "yesterday", "requestReceivedTimestamp": None}, "invalid time"),
        ({"verb": None}, "no verb"),
        ({"verb": 7}, "no verb"),
        ({"objectRef": None, "requestURI": None}, "neither objectRef"),
        ({"kind": "Pod"}, "not an audit Event"),
    ],
)
def test_unreadable_events_give_errors(changes: dict[str, Any], reason: str) -> None:
    err = error(rec(**changes))
    assert reason in err.reason
    assert err.family == "k8s_audit" and err.location == "t" and err.excerpt


@pytest.mark.parametrize(
    ("status", "annotations", "stage", "outcome", "code"),
    [
        ({"code": 200}, None, "ResponseComplete", "success", None),
        ({"code": 101}, None, "ResponseStarted", "success", None),
        ({"code": 403, "reason": "Forbidden"}, None, "ResponseComplete", "denied", "403"),
        ({"code": 401}, None, "ResponseComplete", "denied", "401"),
        ({"code": 200}, {"authorization.k8s.io/decision": "forbid"}, "ResponseComplete", "denied", "200"),
        ({"code": 404}, None, "ResponseComplete", "failure", "404"),
        ({"code": 500}, None, "ResponseComplete", "failure", "500"),
        ({"code": "409"}, None, "ResponseComplete", "failure", "409"),
        (None, None, "RequestReceived", "pending", None),
        (None, None, "ResponseStarted", "pending", None),
        (None, {"authorization.k8s.io/decision": "forbid"}, "ResponseComplete", "denied", "forbid"),
        (None, None, "Panic", "failure", "Panic"),
    ],
)
def test_outcome(
    status: dict[str, Any] | None,
    annotations: dict[str, str] | None,
    stage: str,
    outcome: str,
    code: str | None,
) -> None:
    r = rec(stage=stage, responseStatus=status)
    if annotations:
        r["annotations"] = annotations
    ev = one(r)
    assert (ev.outcome, ev.error_code) == (outcome, code)


@pytest.mark.parametrize(
    ("username", "pid", "ptype"),
    [
        ("alice@example.com", "alice@example.com", "user"),
        ("system:serviceaccount:kube-system:replicaset-controller", None, "service_account"),
        ("system:anonymous", None, "anonymous"),
        ("system:node:ip-10-0-0-1", None, "system"),
        ("system:kube-controller-manager", None, "system"),
        ("eks:certificate-controller", None, "system"),
        (
            "arn:aws:sts::111122223333:assumed-role/Admin/sess-1",
            "arn:aws:iam::111122223333:role/Admin",
            "role",
        ),
    ],
)
def test_principal_types(username: str, pid: str | None, ptype: str) -> None:
    ev = one(rec(user={"username": username, "groups": ["system:authenticated"]}))
    assert ev.principal.id == (pid or username)
    assert ev.principal.type == ptype
    assert ev.principal.name == username


def test_assumed_role_session_kept_apart() -> None:
    a = one(rec(user={"username": "arn:aws:sts::111122223333:assumed-role/Admin/sess-1"}))
    b = one(rec(user={"username": "arn:aws:sts::111122223333:assumed-role/Admin/sess-2"}))
    assert a.principal.id == b.principal.id
    assert (a.principal.session, b.principal.session) == ("sess-1", "sess-2")
    assert a.principal.account == "111122223333"


def test_impersonated_user_wins_and_impersonator_is_noted() -> None:
    ev = one(rec(impersonatedUser={"username": "system:serviceaccount:ns1:app"}))
    assert ev.principal.id == "system:serviceaccount:ns1:app"
    assert ev.principal.type == "service_account"
    assert ev.principal.invoked_by == "alice"


def test_missing_user_is_unknown_principal() -> None:
    ev = one(rec(user=None))
    assert (ev.principal.id, ev.principal.type) == ("unknown", "unknown")


def test_exec_command_from_request_uri_keeps_order_and_decodes() -> None:
    uri = (
        "/api/v1/namespaces/ns1/pods/p1/exec?command=sh&container=c&command=-c"
        "&command=echo%20a%26b%3Dc%20%2Fetc%2Fpasswd&stdout=true&command="
    )
    ev = one(rec(verb="create", requestURI=uri, objectRef={**BASE["objectRef"], "subresource": "exec"}))
    assert ev.command == ("sh", "-c", "echo a&b=c /etc/passwd", "")
    assert ev.action == "k8s.exec" and ev.operation == "create pods/exec"
    assert ev.resources[0].role == "target"


def test_exec_command_from_request_object() -> None:
    r = rec(
        verb="create",
        requestURI="/api/v1/namespaces/ns1/pods/p1/exec",
        objectRef={**BASE["objectRef"], "subresource": "exec"},
        requestObject={"kind": "PodExecOptions", "command": ["tar", "cf", "-", "/data", 5]},
    )
    assert one(r).command == ("tar", "cf", "-", "/data", "5")


def test_websocket_exec_is_get_but_not_a_read() -> None:
    r = rec(
        verb="get",
        requestURI="/api/v1/namespaces/ns1/pods/p1/exec?command=id",
        objectRef={**BASE["objectRef"], "subresource": "exec"},
    )
    ev = one(r)
    assert ev.action == "k8s.exec" and ev.read_only is False and ev.command == ("id",)


def test_command_only_for_exec_and_attach() -> None:
    r = rec(requestURI="/api/v1/namespaces/ns1/pods/p1?command=evil")
    assert one(r).command == ()


def test_create_takes_name_from_response_object_and_marks_created() -> None:
    r = rec(
        verb="create",
        objectRef={"resource": "configmaps", "namespace": "ns1", "apiVersion": "v1"},
        responseObject={"kind": "ConfigMap", "metadata": {"name": "cm1", "namespace": "ns1"}},
    )
    ev = one(r)
    assert [x.to_dict() for x in ev.resources] == [{"type": "configmap", "id": "ns1/cm1", "role": "created"}]
    assert ev.action is None and ev.read_only is False


def test_volumesnapshotcontent_create_sources() -> None:
    r = rec(
        verb="create",
        objectRef={"resource": "volumesnapshotcontents", "name": "c1", "apiGroup": "snapshot.storage.k8s.io"},
        requestObject={"spec": {"source": {"volumeHandle": "vol-0abc"}}},
    )
    ev = one(r)
    assert ev.action == "k8s.volume_snapshot"
    assert [x.to_dict() for x in ev.resources] == [
        {"type": "volumesnapshotcontent", "id": "c1", "role": "created"},
        {"type": "volume", "id": "vol-0abc", "role": "source"},
    ]


def test_namespace_object_sets_namespace_field() -> None:
    r = rec(verb="delete", objectRef={"resource": "namespaces", "name": "foo", "apiVersion": "v1"})
    ev = one(r)
    assert ev.namespace == "foo"
    assert ev.resources[0].to_dict() == {"type": "namespace", "id": "foo", "role": "target"}


def test_non_resource_request() -> None:
    ev = one(rec(objectRef=None, requestURI="/healthz?verbose=1"))
    assert ev.operation == "get /healthz" and ev.service == "k8s/nonresource"
    assert ev.action == "discovery.read" and ev.resources == ()


def test_cluster_and_account_parameters() -> None:
    ev = one(rec(), cluster="prod-eks", account="111122223333", source="eks_audit")
    assert ev.account == "prod-eks" and ev.source == "eks_audit"
    assert ev.principal.account == "111122223333"
    assert one(rec(), account="sub-1").account == "sub-1"


def test_missing_audit_id_hashes_the_record_stably() -> None:
    a = one(rec(auditID=None))
    b = one(rec(auditID=None))
    c = one(rec(auditID=None, verb="list"))
    assert a.event_id == b.event_id != c.event_id
    assert len(a.event_id) == 24


def test_long_strings_are_capped() -> None:
    huge = "x" * 100_000
    r = rec(userAgent=huge, sourceIPs=[huge], user={"username": huge})
    r["objectRef"] = {**BASE["objectRef"], "name": huge}
    ev = one(r)
    assert ev.user_agent is not None and len(ev.user_agent) == 1024
    assert ev.source_ip is not None and len(ev.source_ip) == 1024
    assert len(ev.principal.id) <= 4096
    assert all(len(x.id) <= 4096 for x in ev.resources)


def test_eventlist_items_and_locations() -> None:
    lst = {
        "kind": "EventList",
        "apiVersion": "audit.k8s.io/v1",
        "items": [rec(), "junk", rec(auditID="aid-2")],
    }
    out = parse(lst, "f:1")
    assert isinstance(out[0], Event) and isinstance(out[2], Event)
    assert isinstance(out[1], RecordError) and out[1].location == "f:1#items[1]"
    assert out[2].event_id == "aid-2"
    assert parse({"kind": "EventList", "items": None}, "x") == []
    assert "not a list" in error({"kind": "EventList", "items": {"a": 1}}).reason


def test_singular() -> None:
    s = kubernetes._singular
    assert [
        s(x) for x in ("pods", "networkpolicies", "ingresses", "storageclasses", "endpoints", "status")
    ] == [
        "pod",
        "networkpolicy",
        "ingress",
        "storageclass",
        "endpoint",
        "status",
    ]


# --------------------------------------------------------------------------------------------
# GKE (Cloud Audit LogEntry with serviceName k8s.io)
# --------------------------------------------------------------------------------------------
GKE: dict[str, Any] = {
    "insertId": "ins-1",
    "logName": "projects/proj-1/logs/cloudaudit.googleapis.com%2Factivity",
    "timestamp": "2024-02-01T12:00:00.123456Z",
    "receiveTimestamp": "2024-02-01T12:00:01Z",
    "resource": {
        "type": "k8s_cluster",
        "labels": {"project_id": "proj-1", "location": "europe-west1", "cluster_name": "prod"},
    },
    "protoPayload": {
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "serviceName": "k8s.io",
        "methodName": "io.k8s.core.v1.pods.exec.create",
        "resourceName": "core/v1/namespaces/production/pods/database/exec",
        "authenticationInfo": {"principalEmail": "User@Example.com"},
        "authorizationInfo": [{"granted": True, "permission": "io.k8s.core.v1.pods.exec.create"}],
        "requestMetadata": {"callerIp": "203.0.113.5", "callerSuppliedUserAgent": "kubectl/v1.28.0"},
        "request": {"command": ["tar", "cf", "-", "/var/lib/postgresql"], "container": "pg"},
        "status": {},
    },
}


def gke(method: str | None = None, resource_name: str | None = None, **pp: Any) -> Event | RecordError:
    e = copy.deepcopy(GKE)
    if method is not None:
        e["protoPayload"]["methodName"] = method
    if resource_name is not None:
        e["protoPayload"]["resourceName"] = resource_name
    e["protoPayload"].update(pp)
    out = parse_gke_entry(e, "g")
    assert len(out) == 1
    return out[0]


def test_gke_exec() -> None:
    ev = gke()
    assert isinstance(ev, Event)
    assert ev.source == "gke_audit" and ev.cloud == "kubernetes"
    assert ev.operation == "create pods/exec" and ev.action == "k8s.exec"
    assert ev.command == ("tar", "cf", "-", "/var/lib/postgresql")
    assert ev.namespace == "production"
    assert ev.resources[0].to_dict() == {"type": "pod", "id": "production/database", "role": "target"}
    assert ev.principal.id == "user@example.com" and ev.principal.type == "user"
    assert ev.account == "proj-1" and ev.region == "europe-west1"
    assert ev.source_ip == "203.0.113.5" and ev.user_agent == "kubectl/v1.28.0"
    assert ev.event_id == "ins-1" and ev.time == datetime(2024, 2, 1, 12, 0, 0, 123456, tzinfo=UTC)


def test_gke_cluster_wide_secret_list() -> None:
    ev = gke("io.k8s.core.v1.secrets.list", "core/v1/secrets", request={})
    assert isinstance(ev, Event)
    assert ev.operation == "list secrets" and ev.read_only and ev.action == "discovery.read"
    assert ev.namespace is None and ev.resources == () and ev.command == ()


def test_gke_permission_probe_and_denied() -> None:
    ev = gke(
        "io.k8s.authorization.v1.selfsubjectrulesreviews.create",
        "authorization.k8s.io/v1/selfsubjectrulesreviews",
        status={"code": 7, "message": "PERMISSION_DENIED"},
    )
    assert isinstance(ev, Event)
    assert ev.action == "discovery.permission_probe"
    assert (ev.outcome, ev.error_code) == ("denied", "PERMISSION_DENIED")


def test_gke_volumesnapshot_create() -> None:
    ev = gke(
        "io.k8s.storage.snapshot.v1.volumesnapshots.create",
        "snapshot.storage.k8s.io/v1/namespaces/db/volumesnapshots/snap-1",
        request={"spec": {"source": {"persistentVolumeClaimName": "data-0"}}},
    )
    assert isinstance(ev, Event)
    assert ev.action == "k8s.volume_snapshot"
    assert [r.to_dict() for r in ev.resources] == [
        {"type": "volumesnapshot", "id": "db/snap-1", "role": "created"},
        {"type": "persistentvolumeclaim", "id": "db/data-0", "role": "source"},
    ]


def test_gke_rbac_group_and_failure() -> None:
    ev = gke(
        "io.k8s.authorization.rbac.v1.clusterroles.create",
        "rbac.authorization.k8s.io/v1/clusterroles/r1",
        status={"code": 6},
    )
    assert isinstance(ev, Event)
    assert ev.operation == "create clusterroles"
    assert (ev.outcome, ev.error_code) == ("failure", "ALREADY_EXISTS")
    assert ev.resources[0].to_dict() == {"type": "clusterrole", "id": "r1", "role": "created"}


def test_gke_non_resource_and_k8s_style_principal() -> None:
    ev = gke("io.k8s.readyz", "/readyz", authenticationInfo={"principalEmail": "system:anonymous"})
    assert isinstance(ev, Event)
    assert ev.operation == "get /readyz" and ev.service == "k8s/nonresource"
    assert ev.principal.type == "anonymous"


@pytest.mark.parametrize(
    ("email", "ptype", "account"),
    [
        ("deployer@proj-1.iam.gserviceaccount.com", "service_account", "proj-1"),
        ("service-123@container-engine-robot.iam.gserviceaccount.com", "service", None),
        ("123@cloudservices.gserviceaccount.com", "service", None),
    ],
)
def test_gke_service_accounts(email: str, ptype: str, account: str | None) -> None:
    ev = gke(authenticationInfo={"principalEmail": email})
    assert isinstance(ev, Event)
    assert (ev.principal.type, ev.principal.account) == (ptype, account)


def test_gke_authorization_not_granted_is_denied() -> None:
    ev = gke(authorizationInfo=[{"granted": False, "permission": "io.k8s.core.v1.pods.exec.create"}])
    assert isinstance(ev, Event) and ev.outcome == "denied"


def test_gke_operation_id_wins_over_insert_id() -> None:
    e = copy.deepcopy(GKE)
    e["operation"] = {"id": "op-9", "first": True}
    ev = parse_gke_entry(e, "g")[0]
    assert isinstance(ev, Event) and ev.event_id == "op:op-9:io.k8s.core.v1.pods.exec.create"


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"protoPayload": "x"}, "no protoPayload"),
        ({"protoPayload": {"serviceName": "k8s.io"}, "timestamp": "2024-01-01T00:00:00Z"}, "no methodName"),
        ({"protoPayload": {"methodName": "io.k8s.core.v1.pods.get"}}, "no time"),
        ([1, 2], "not an object"),
    ],
)
def test_gke_errors(entry: Any, reason: str) -> None:
    out = parse_gke_entry(entry, "g")
    assert len(out) == 1 and isinstance(out[0], RecordError)
    assert reason in out[0].reason and out[0].family == "gke_audit"
