"""functions/gcp/main.py end to end: real functions-framework servers, real HTTP, real sinks on loopback.

Every test uses its own principals and insertIds, so tests sharing a server do not see each
other's alerts.
"""

from __future__ import annotations

import base64
import json
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from threading import Thread
from typing import TYPE_CHECKING, Any

import pytest

from adscore.errors import ConfigError
from tests.e2e.gcp.conftest import (
    ALERT_TOPIC,
    DEADLETTER_TOPIC,
    PROJECT,
    REPO,
    PubSubReceiver,
    Stack,
    alerts_of,
    audit_entry,
    gke_entry,
    post_cloudevent,
    post_push,
    pubsub_message,
)
from tests.e2e.ingest_support import bearer

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def _for(stack: Stack, principal: str) -> list[dict[str, Any]]:
    assert stack.webhook is not None
    return [a for a in alerts_of(stack.webhook) if a["principal"]["id"] == principal.lower()]


def _share_all_users(principal: str, snapshot: str, timestamp: str) -> dict[str, Any]:
    return audit_entry(
        "v1.compute.snapshots.setIamPolicy",
        principal,
        timestamp,
        resource_name=f"projects/{PROJECT}/global/snapshots/{snapshot}",
        request={"policy": {"bindings": [{"role": "roles/compute.imageUser", "members": ["allUsers"]}]}},
        service_data={
            "@type": "type.googleapis.com/google.iam.v1.logging.AuditData",
            "policyDelta": {
                "bindingDeltas": [{"action": "ADD", "role": "roles/compute.imageUser", "member": "allUsers"}]
            },
        },
    )


# --------------------------------------------------------------------------- detections through the function


def test_snapshot_creation_in_binary_mode(stacks: dict[str, Stack]) -> None:
    event = stacks["event"]
    # GIVEN a snapshot made on a Saturday night (Admin Activity: compute.snapshots.insert)
    entry = audit_entry(
        "v1.compute.snapshots.insert",
        "carol@example.com",
        "2024-05-18T02:30:00.123456Z",
        resource_name=f"projects/{PROJECT}/global/snapshots/db-snap-night",
        request={
            "name": "db-snap-night",
            "sourceDisk": f"projects/{PROJECT}/zones/europe-west1-b/disks/db01",
        },
        operation={"id": "operation-1716000000-abc", "producer": "compute.googleapis.com", "first": True},
    )
    response = post_cloudevent(event.server.url, pubsub_message(entry), mode="binary")
    assert response.status_code == 200, event.server.logs()[-2000:]
    [alert] = _for(event, "carol@example.com")
    assert alert["detection"] == "snapshot.off_hours"
    assert alert["technique"] == "T1578.001"
    assert alert["cloud"] == "gcp" and alert["account"] == PROJECT
    assert {
        "type": "snapshot",
        "id": f"projects/{PROJECT}/global/snapshots/db-snap-night",
        "role": "created",
    } in alert["resources"]
    assert "Sat 2024-05-18 02:30 UTC" in alert["title"]


def test_snapshot_made_public_in_structured_mode(stacks: dict[str, Stack]) -> None:
    event = stacks["event"]
    entry = _share_all_users("mallory@example.com", "web01-snap", "2024-05-14T10:00:00Z")
    response = post_cloudevent(event.server.url, pubsub_message(entry), mode="structured")
    assert response.status_code == 200, event.server.logs()[-2000:]
    [alert] = _for(event, "mallory@example.com")
    assert alert["detection"] == "snapshot.shared_external"
    assert alert["severity"] == "critical"
    assert alert["title"] == f"web01-snap made public by mallory@example.com in {PROJECT}"
    assert entry["insertId"] in alert["evidence"]["event_ids"]
    # the Pub/Sub fan-out carries the same alert, with filterable attributes
    [published] = [
        m for m in stacks["event"].pubsub.on(ALERT_TOPIC) if m.attributes["alert_id"] == alert["id"]
    ]
    assert published.attributes["severity"] == "critical"
    assert published.attributes["technique"] == "T1578.001"
    assert published.attributes["detection"] == "snapshot.shared_external"
    assert json.loads(published.data)["title"] == alert["title"]


def test_discovery_sweep_with_admin_read_entries(stacks: dict[str, Stack]) -> None:
    event = stacks["event"]
    principal = "recon-sa@acme-prod.iam.gserviceaccount.com"
    sweep = {
        "compute": [
            "v1.compute.instances.list",
            "v1.compute.disks.list",
            "v1.compute.snapshots.list",
            "v1.compute.images.list",
            "v1.compute.networks.list",
            "v1.compute.firewalls.list",
        ],
        "storage": [
            "storage.buckets.list",
            "storage.buckets.get",
            "storage.objects.list",
            "storage.buckets.getIamPolicy",
        ],
        "iam": [
            "google.iam.admin.v1.ListServiceAccounts",
            "google.iam.admin.v1.ListRoles",
            "google.iam.admin.v1.ListServiceAccountKeys",
            "google.iam.admin.v1.GetServiceAccount",
        ],
        "cloudresourcemanager": ["GetIamPolicy", "ListProjects", "GetOrganization"],
        "container": [
            "google.container.v1.ClusterManager.ListClusters",
            "google.container.v1.ClusterManager.GetCluster",
        ],
        "cloudsql": ["cloudsql.instances.list", "cloudsql.backupRuns.list", "cloudsql.databases.list"],
    }
    entries = []
    second = 0
    for service, methods in sweep.items():
        for method in methods:
            second += 1
            entries.append(
                audit_entry(
                    method,
                    principal,
                    f"2024-05-14T10:20:{second:02d}Z",
                    service=f"{service}.googleapis.com",
                    resource_name=f"projects/{PROJECT}",
                    log="data_access",
                    permission_type="ADMIN_READ",
                    resource_type="audited_resource",
                )
            )
    assert len(entries) >= 20
    for i, entry in enumerate(entries):  # one entry per message, as a log sink publishes them
        response = post_cloudevent(
            event.server.url, pubsub_message(entry), mode="binary" if i % 2 else "structured"
        )
        assert response.status_code == 200, event.server.logs()[-2000:]
    [alert] = _for(event, principal)
    assert alert["detection"] == "discovery.api_burst"
    assert alert["technique"] == "T1526"
    assert alert["count"] >= 20
    assert "across 6 services" in alert["title"]


def test_gke_audit_entries(stacks: dict[str, Stack]) -> None:
    event = stacks["event"]
    entries = [
        gke_entry(
            "io.k8s.storage.snapshot.v1.volumesnapshots.create",
            "dev@example.com",
            "2024-05-14T12:00:00Z",
            "snapshot.storage.k8s.io/v1/namespaces/payments/volumesnapshots/db-data-snap",
            request={
                "apiVersion": "snapshot.storage.k8s.io/v1",
                "kind": "VolumeSnapshot",
                "metadata": {"name": "db-data-snap", "namespace": "payments"},
                "spec": {"source": {"persistentVolumeClaimName": "data-db-0"}},
            },
        ),
        gke_entry(
            "io.k8s.core.v1.pods.exec.create",
            "dev@example.com",
            "2024-05-14T12:20:00Z",
            "core/v1/namespaces/payments/pods/db-0/exec",
            request={"command": ["tar", "cf", "-", "/var/lib/postgresql/data"]},
        ),
    ]
    for j, namespace in enumerate(["default", "payments", "billing", "auth", "monitoring", "ci"]):
        entries.append(
            gke_entry(
                "io.k8s.core.v1.secrets.list",
                "intruder@example.com",
                f"2024-05-14T12:10:{j:02d}Z",
                f"core/v1/namespaces/{namespace}/secrets",
            )
        )
    for i, entry in enumerate(entries):
        response = post_cloudevent(
            event.server.url, pubsub_message(entry), mode="structured" if i % 2 else "binary"
        )
        assert response.status_code == 200, event.server.logs()[-2000:]
    dev = {a["detection"]: a for a in _for(event, "dev@example.com")}
    assert set(dev) == {"k8s.volume_snapshot", "k8s.exec_copy"}
    assert dev["k8s.volume_snapshot"]["title"].startswith(
        "VolumeSnapshot payments/db-data-snap created by dev@example.com"
    )
    assert "tar cf - /var/lib/postgresql/data" in dev["k8s.exec_copy"]["title"]
    [sweep] = _for(event, "intruder@example.com")
    assert sweep["detection"] == "discovery.k8s_namespace_sweep"
    # one entry per message: the alert goes out when the fifth namespace (the default threshold) is read
    assert sweep["title"].startswith("Reads across 5 namespaces in 10 min by intruder@example.com")


# --------------------------------------------------------------------------- delivery semantics


def test_three_deliveries_of_the_same_messages_yield_one_alert(stacks: dict[str, Stack]) -> None:
    event = stacks["event"]
    entry = _share_all_users("eve@example.com", "eve-snap", "2024-05-14T11:00:00Z")
    message = pubsub_message(entry)
    for mode in ("binary", "structured", "binary"):
        assert post_cloudevent(event.server.url, message, mode=mode).status_code == 200
    assert [a["detection"] for a in _for(event, "eve@example.com")] == ["snapshot.shared_external"]
    records = event.server.log_records()
    duplicates = [
        r for r in records if r.get("event") == "duplicate" and r.get("insert_id") == entry["insertId"]
    ]
    assert len(duplicates) == 2


def test_malformed_messages_are_acknowledged_reported_and_dead_lettered(stacks: dict[str, Stack]) -> None:
    event, pubsub = stacks["event"], stacks["event"].pubsub
    cases = {
        "bad-base64": pubsub_message(None, "bad-base64", raw_data="%%% not base64 %%%"),
        "not-json": pubsub_message(
            None, "not-json", raw_data=base64.b64encode(b"\xff\xfe not json").decode()
        ),
        "not-a-log-entry": pubsub_message({"hello": "world"}, "not-a-log-entry"),
    }
    for message in cases.values():
        response = post_cloudevent(event.server.url, message, mode="binary")
        assert response.status_code == 200  # acknowledged: no redelivery loop
    rejected = {
        r["location"].rsplit(":", 1)[-1]: r
        for r in event.server.log_records()
        if r.get("event") == "rejected"
    }
    assert set(cases) <= set(rejected)
    assert "not valid base64" in rejected["bad-base64"]["reason"]
    assert "not JSON" in rejected["not-json"]["reason"]
    assert "unrecognised record shape" in rejected["not-a-log-entry"]["reason"]
    assert all(rejected[m]["severity"] == "WARNING" for m in cases)
    letters = {m.attributes.get("adscore_message_id"): m for m in pubsub.on(DEADLETTER_TOPIC)}
    assert set(cases) <= set(letters)
    assert (
        letters["not-a-log-entry"].data == json.dumps({"hello": "world"}).encode()
    )  # the original data, decoded
    assert "not valid base64" in letters["bad-base64"].attributes["adscore_reason"]


def test_an_unreachable_webhook_fails_the_request(stacks: dict[str, Stack]) -> None:
    down = stacks["down"]
    message = pubsub_message(_share_all_users("trent@example.com", "trent-snap", "2024-05-14T11:30:00Z"))
    first = post_cloudevent(down.server.url, message)
    assert first.status_code >= 500  # Pub/Sub redelivers
    # THEN nothing marked the entry done: the redelivery runs again (and fails again, the port is still closed)
    assert post_cloudevent(down.server.url, message).status_code >= 500
    assert not [r for r in down.server.log_records() if r.get("event") == "duplicate"]
    failures = [r for r in down.server.log_records() if r.get("event") == "batch" and r.get("sink_error")]
    assert len(failures) == 2 and failures[0]["severity"] == "ERROR"


def test_a_redelivery_after_a_webhook_outage_delivers_the_alert_once(stacks: dict[str, Stack]) -> None:
    event = stacks["event"]
    assert event.webhook is not None
    message = pubsub_message(_share_all_users("oscar@example.com", "oscar-snap", "2024-05-14T11:40:00Z"))
    event.webhook.fail_next(4, 503)  # every attempt of the sink's retries fails
    assert post_cloudevent(event.server.url, message).status_code >= 500
    assert _for(event, "oscar@example.com") == []
    assert post_cloudevent(event.server.url, message).status_code == 200  # Pub/Sub's redelivery
    assert post_cloudevent(event.server.url, message).status_code == 200  # and a late duplicate
    assert [a["detection"] for a in _for(event, "oscar@example.com")] == ["snapshot.shared_external"]


def test_push_subscription_body(stacks: dict[str, Stack]) -> None:
    push = stacks["push"]
    entry = _share_all_users("peggy@example.com", "peggy-snap", "2024-05-14T11:50:00Z")
    response = post_push(push.server.url, pubsub_message(entry))
    assert response.status_code == 204
    [alert] = _for(push, "peggy@example.com")
    assert alert["detection"] == "snapshot.shared_external"
    assert post_push(push.server.url, pubsub_message(entry)).status_code == 204  # a redelivery: acknowledged
    assert len(_for(push, "peggy@example.com")) == 1
    garbage = post_push(push.server.url, {"data": "@@@", "messageId": "push-garbage"})
    assert garbage.status_code == 204  # acknowledged, reported, dead-lettered
    assert "push-garbage" in {
        m.attributes.get("adscore_message_id") for m in push.pubsub.on(DEADLETTER_TOPIC)
    }


def test_kubernetes_audit_webhook(stacks: dict[str, Stack]) -> None:
    k8s = stacks["k8s"]
    import httpx

    event = json.loads((REPO / "tests/golden/k8s_audit/kubectl_cp_tar.input.json").read_text())
    body = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [event]}
    response = httpx.post(k8s.server.url, json=body, headers=bearer(), timeout=60)
    assert response.status_code == 200, k8s.server.logs()[-2000:]
    [alert] = alerts_of(k8s.webhook) if k8s.webhook else []
    assert alert["detection"] == "k8s.exec_copy"
    assert response.json() == {"alerts": [alert["id"]]}
    assert httpx.post(k8s.server.url, content=b"[1, 2", headers=bearer(), timeout=60).status_code == 400
    # the unreadable body is in the dead-letter topic, as it came, with the reason
    [letter] = [
        m for m in k8s.pubsub.on(DEADLETTER_TOPIC) if m.attributes.get("adscore_source") == "gcp.on_k8s_audit"
    ]
    assert letter.data == b"[1, 2" and "not JSON" in letter.attributes["adscore_reason"]


def test_kubernetes_audit_webhook_dead_letters_an_unreadable_list_and_reads_the_next(
    stacks: dict[str, Stack],
) -> None:
    k8s = stacks["k8s"]
    import httpx

    event = json.loads((REPO / "tests/golden/k8s_audit/kubectl_cp_tar.input.json").read_text())
    broken = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": "not a list"}
    before = len(k8s.pubsub.on(DEADLETTER_TOPIC))
    assert httpx.post(k8s.server.url, json=broken, headers=bearer(), timeout=60).status_code in (200, 400)
    letters = k8s.pubsub.on(DEADLETTER_TOPIC)[before:]
    assert [json.loads(m.data) for m in letters] == [broken]
    assert letters[0].attributes["adscore_source"] == "gcp.on_k8s_audit"
    body = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [{**event, "auditID": "other-id"}]}
    assert httpx.post(k8s.server.url, json=body, headers=bearer(), timeout=60).status_code == 200


# --------------------------------------------------------------------------- logs


def test_logs_are_structured_for_cloud_logging_with_the_trace(stacks: dict[str, Stack]) -> None:
    event = stacks["event"]
    entry = _share_all_users("trudy@example.com", "trudy-snap", "2024-05-14T12:30:00Z")
    assert (
        post_cloudevent(event.server.url, pubsub_message(entry), traceparent=TRACEPARENT).status_code == 200
    )
    [alert] = _for(event, "trudy@example.com")
    [line] = [
        r
        for r in event.server.log_records()
        if r.get("event") == "alert" and r.get("alert_id") == alert["id"]
    ]
    # google.cloud.logging's StructuredLogHandler wrote it (on GCP: K_SERVICE set)
    assert line["severity"] == "ERROR"  # a critical alert
    assert line["logging.googleapis.com/trace"] == f"projects/{PROJECT}/traces/{TRACE_ID}"
    assert line["logging.googleapis.com/spanId"] == "00f067aa0ba902b7"
    assert "logging.googleapis.com/sourceLocation" in line
    assert line["detection"] == "snapshot.shared_external" and line["insert_id"] == entry["insertId"]
    # elsewhere (ADSCORE_LOCAL) the standard library writes the same fields as JSON lines
    local = [r for r in stacks["push"].server.log_records() if r.get("event") == "batch"]
    assert (
        local
        and local[0]["logger"] == "adscore.functions.gcp"
        and "logging.googleapis.com/sourceLocation" not in local[0]
    )


# --------------------------------------------------------------------------- secrets and packaging


class _SecretManager(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/v1/projects/p1/secrets/hook/versions/latest:access":
            body = {
                "name": "projects/1/secrets/hook/versions/3",
                "payload": {"data": base64.b64encode(b"top-secret\n").decode()},
            }
            status = 200
        else:
            body = {"error": {"code": 404, "status": "NOT_FOUND", "message": "Secret not found"}}
            status = 404
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_fetch_secret_from_secret_manager() -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.auth.transport.requests import AuthorizedSession

    from adscore.cloud.gcp import fetch_secret

    server = ThreadingHTTPServer(("127.0.0.1", 0), _SecretManager)
    Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        session = AuthorizedSession(AnonymousCredentials())
        assert fetch_secret("projects/p1/secrets/hook", session=session, endpoint=endpoint) == "top-secret"
        with pytest.raises(ConfigError) as err:
            fetch_secret("projects/p1/secrets/other/versions/2", session=session, endpoint=endpoint)
        assert err.value.setting == "webhook_secret" and "HTTP 404 NOT_FOUND" in str(err.value)
        with pytest.raises(ConfigError):
            fetch_secret("projects/p1/topics/hook", session=session, endpoint=endpoint)
    finally:
        server.shutdown()
        server.server_close()


def test_source_zip_for_cloud_functions(tmp_path: Path) -> None:
    import subprocess
    import sys

    from adscore.packaging.gcp import build

    path = build(tmp_path)
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        requirements = zf.read("requirements.txt").decode()
        assert zf.read("main.py") == (REPO / "functions/gcp/main.py").read_bytes()
        zf.extractall(tmp_path / "src")
    assert {
        "adscore/__init__.py",
        "adscore/cloud/gcp.py",
        "adscore/state/firestore.py",
        "adscore/data/defaults.yaml",
    } <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    # the command line's modules are not vendored
    assert not [n for n in names if n.startswith(("adscore/emulate/", "adscore/forward/", "adscore/packaging/"))]
    assert "adscore/cli.py" not in names
    # the requirements are the ones generated from the lock, i.e. the versions the tests run against
    assert requirements == (REPO / "functions/gcp/requirements.txt").read_text(encoding="utf-8")
    pins = {}
    for line in requirements.splitlines():
        if line and not line.startswith("#"):
            name, _, rest = line.partition("==")
            pins[name] = rest.split(";")[0].strip()
    for dist in (
        "functions-framework",
        "google-cloud-firestore",
        "google-cloud-pubsub",
        "google-cloud-logging",
        "pydantic",
    ):
        assert pins[dist] == metadata.version(dist)
    assert "adscore" not in pins  # vendored, not installed from an index
    # the extracted source imports its own copy of adscore
    code = "import adscore, main; print(adscore.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path / "src", capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == str(tmp_path / "src" / "adscore" / "__init__.py")
    assert build(tmp_path / "again").read_bytes() == path.read_bytes()  # reproducible


def test_pubsub_sink_orders_by_detection_and_reports_a_missing_topic(
    pubsub: PubSubReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from adscore.alerts import make_alert
    from adscore.errors import SinkError
    from adscore.events import Principal
    from adscore.sinks import open_sink

    def alert(n: int) -> Any:
        at = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
        return make_alert(
            detection="snapshot.shared_external",
            entity=f"user{n}",
            window_start=at,
            technique="T1578.001",
            technique_name="Create Snapshot",
            tactic="Defense Evasion",
            severity="high",
            title=f"shared by user{n}",
            summary=f"user{n} shared snap-{n} with 999988887777",
            principal=Principal(id=f"user{n}", type="user"),
            cloud="gcp",
            account=PROJECT,
            region=None,
            resources=[],
            first_seen=at,
            last_seen=at,
            count=1,
            event_ids=[f"e-{n}"],
            records=[],
            response=[],
        )

    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub.host)
    sink = open_sink(f"pubsub://{ALERT_TOPIC}?ordering_key=detection", attempts=2, base_delay=0.01)
    try:
        sink.send([alert(101), alert(102)])
    finally:
        sink.close()
    mine = {m.attributes["alert_id"]: m for m in pubsub.on(ALERT_TOPIC)}
    sent = [mine[a.id] for a in (alert(101), alert(102))]
    assert [m.ordering_key for m in sent] == ["snapshot.shared_external"] * 2
    assert [json.loads(m.data)["summary"] for m in sent] == [
        "user101 shared snap-101 with 999988887777",
        "user102 shared snap-102 with 999988887777",
    ]
    missing = open_sink("pubsub://projects/acme-prod/topics/no-such-topic", attempts=3, base_delay=0.01)
    try:
        with pytest.raises(SinkError) as err:
            missing.send([alert(103)])
    finally:
        missing.close()
    assert err.value.unsent == (alert(103).id,)
    assert "NotFound" in str(err.value)
