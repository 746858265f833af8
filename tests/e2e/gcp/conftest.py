"""The GCP function served for real: ``functions-framework`` subprocesses on loopback ports.

Each server is the real framework (gunicorn) loading ``functions/gcp/main.py``, started by
:class:`adscore.emulate.gcp.FunctionServer` (the code ``adscore emulate gcp`` runs with) and
configured only through its environment, as Cloud Functions would: state in a SQLite file,
alerts to the loopback webhook receiver (HMAC checked) and to a loopback Pub/Sub publisher service, dead
letters to the same Pub/Sub service. Log entries are built in the shapes Cloud Logging sinks
publish (Cloud Audit ``LogEntry``, GKE audit ``LogEntry``) and wrapped as Eventarc CloudEvents
(binary and structured content modes) or Pub/Sub push bodies.

``PubSubReceiver`` is a real gRPC server implementing ``google.pubsub.v1.Publisher/Publish``
with the library's own message types: the real ``PublisherClient`` talks to it through
``PUBSUB_EMULATOR_HOST``, the way it talks to the Pub/Sub emulator (which needs gcloud).
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import httpx
import pytest
from google.pubsub_v1.types import PublishRequest, PublishResponse

from adscore.emulate import free_port
from adscore.emulate.gcp import FunctionServer, missing, serve
from tests.e2e.ingest_support import INGEST_ENV
from tests.integration.webhook_receiver import WebhookReceiver

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parents[3]
SOURCE = REPO / "functions" / "gcp" / "main.py"
PROJECT = "acme-prod"
SECRET = "s3cret-signing-key"
ALERT_TOPIC = f"projects/{PROJECT}/topics/adscore-alerts"
DEADLETTER_TOPIC = f"projects/{PROJECT}/topics/adscore-deadletter"
SOURCE_TOPIC = f"projects/{PROJECT}/topics/adscore-audit"
SUBSCRIPTION = f"projects/{PROJECT}/subscriptions/eventarc-europe-west1-adscore-sub-123"
PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"


# --------------------------------------------------------------------------- loopback Pub/Sub


@dataclass
class Published:
    topic: str
    data: bytes
    attributes: dict[str, str]
    ordering_key: str


class PubSubReceiver:
    """A loopback gRPC ``Publisher`` service: records what is published, to known topics only."""

    def __init__(self, topics: set[str]) -> None:
        self.topics = topics
        self.messages: list[Published] = []
        self._lock = threading.Lock()
        self._count = 0
        self._server: grpc.Server | None = None
        self.port = 0

    def _publish(self, request: PublishRequest, context: grpc.ServicerContext) -> PublishResponse:
        if request.topic not in self.topics:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Topic not found: {request.topic}")
        ids = []
        with self._lock:
            for m in request.messages:
                self._count += 1
                ids.append(str(self._count))
                self.messages.append(
                    Published(request.topic, bytes(m.data), dict(m.attributes), m.ordering_key)
                )
        return PublishResponse(message_ids=ids)

    def on(self, topic: str) -> list[Published]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def __enter__(self) -> PubSubReceiver:
        handler = grpc.method_handlers_generic_handler(
            "google.pubsub.v1.Publisher",
            {
                "Publish": grpc.unary_unary_rpc_method_handler(
                    self._publish,
                    request_deserializer=PublishRequest.deserialize,
                    response_serializer=PublishResponse.serialize,
                )
            },
        )
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self._server.add_generic_rpc_handlers((handler,))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait(5)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


# --------------------------------------------------------------------------- the function server


@dataclass
class Stack:
    """A server with its receivers."""

    server: FunctionServer
    webhook: WebhookReceiver | None
    pubsub: PubSubReceiver


def _env(tmp: Path, name: str, webhook_url: str, pubsub: PubSubReceiver, **extra: str) -> dict[str, str]:
    secret_file = tmp / f"{name}-webhook-secret"
    secret_file.write_text(SECRET + "\n", encoding="utf-8")  # a Secret Manager secret mounted as a file
    env = {
        "ADSCORE_STATE": f"sqlite:///{tmp / f'{name}-state.db'}",
        "ADSCORE_SINKS": f"{webhook_url},pubsub://{ALERT_TOPIC}",
        "ADSCORE_WEBHOOK_SECRET": f"file://{secret_file}",
        "ADSCORE_DEADLETTER": f"pubsub://{DEADLETTER_TOPIC}",
        "PUBSUB_EMULATOR_HOST": pubsub.host,
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "WORKERS": "1",
        "THREADS": "4",
    }
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def pubsub() -> Iterator[PubSubReceiver]:
    with PubSubReceiver({ALERT_TOPIC, DEADLETTER_TOPIC}) as rx:
        yield rx


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory, pubsub: PubSubReceiver) -> Iterator[dict[str, Stack]]:
    """Five servers started together (startup dominates): cloudevent in GCP logging mode, push and
    the ingest endpoint (K8s webhook) in local logging mode, and a cloudevent and an ingest server
    whose webhook is a closed port."""
    if missing() is not None:
        pytest.skip("functions-framework is not installed in this environment")
    tmp = tmp_path_factory.mktemp("gcp-function")
    with (
        WebhookReceiver(secret=SECRET) as hook,
        WebhookReceiver(secret=SECRET) as push_hook,
        WebhookReceiver(secret=SECRET) as k8s_hook,
    ):
        closed = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
        servers = {
            # GCP mode: K_SERVICE set and no ADSCORE_LOCAL -> google.cloud.logging's StructuredLogHandler
            "event": Stack(
                FunctionServer(
                    "on_pubsub",
                    "cloudevent",
                    _env(tmp, "event", hook.url, pubsub, K_SERVICE="adscore"),
                    tmp / "event.log",
                    source=SOURCE,
                ),
                hook,
                pubsub,
            ),
            "push": Stack(
                FunctionServer(
                    "on_pubsub_push",
                    "http",
                    _env(tmp, "push", push_hook.url, pubsub, ADSCORE_LOCAL="1"),
                    tmp / "push.log",
                    source=SOURCE,
                ),
                push_hook,
                pubsub,
            ),
            "k8s": Stack(
                FunctionServer(
                    "on_k8s_audit",
                    "http",
                    _env(tmp, "k8s", k8s_hook.url, pubsub, ADSCORE_LOCAL="1", **INGEST_ENV),
                    tmp / "k8s.log",
                    source=SOURCE,
                ),
                k8s_hook,
                pubsub,
            ),
            "k8s_down": Stack(  # the ingest endpoint whose alert webhook is a closed port
                FunctionServer(
                    "on_k8s_audit",
                    "http",
                    _env(tmp, "k8s_down", closed, pubsub, ADSCORE_LOCAL="1", **INGEST_ENV),
                    tmp / "k8s_down.log",
                    source=SOURCE,
                ),
                None,
                pubsub,
            ),
            "down": Stack(
                FunctionServer(
                    "on_pubsub",
                    "cloudevent",
                    _env(tmp, "down", closed, pubsub, ADSCORE_LOCAL="1"),
                    tmp / "down.log",
                    source=SOURCE,
                ),
                None,
                pubsub,
            ),
        }
        serve([s.server for s in servers.values()])
        try:
            yield servers
        finally:
            for s in servers.values():
                s.server.stop()
            for s in servers.values():
                assert s.server.proc is not None and s.server.proc.poll() is not None, "server still running"


# --------------------------------------------------------------------------- log entries as sinks write them


def audit_entry(
    method: str,
    principal: str,
    timestamp: str,
    *,
    service: str = "compute.googleapis.com",
    resource_name: str = "",
    log: str = "activity",
    permission_type: str = "ADMIN_WRITE",
    request: dict[str, Any] | None = None,
    service_data: dict[str, Any] | None = None,
    resource_type: str = "gce_snapshot",
    operation: dict[str, Any] | None = None,
    insert_id: str | None = None,
) -> dict[str, Any]:
    """A Cloud Audit LogEntry (``protoPayload`` AuditLog), Admin Activity or Data Access."""
    verb = method.split(".", 1)[1] if method.startswith("v1.") else method
    proto: dict[str, Any] = {
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "status": {},
        "authenticationInfo": {"principalEmail": principal},
        "requestMetadata": {
            "callerIp": "203.0.113.24",
            "callerSuppliedUserAgent": "google-cloud-sdk gcloud/471.0.0 command/gcloud",
            "requestAttributes": {"time": timestamp, "auth": {}},
            "destinationAttributes": {},
        },
        "serviceName": service,
        "methodName": method,
        "authorizationInfo": [
            {"permission": verb, "granted": True, "resourceAttributes": {}, "permissionType": permission_type}
        ],
        "resourceName": resource_name,
    }
    if request is not None:
        proto["request"] = request
    if service_data is not None:
        proto["serviceData"] = service_data
    entry: dict[str, Any] = {
        "protoPayload": proto,
        "insertId": insert_id or f"-{uuid.uuid4().hex[:12]}",
        "resource": {"type": resource_type, "labels": {"project_id": PROJECT}},
        "timestamp": timestamp,
        "severity": "NOTICE" if log == "activity" else "INFO",
        "logName": f"projects/{PROJECT}/logs/cloudaudit.googleapis.com%2F{log}",
        "receiveTimestamp": timestamp,
    }
    if operation is not None:
        entry["operation"] = operation
    return entry


def gke_entry(
    method: str, principal: str, timestamp: str, resource_name: str, *, request: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A GKE Kubernetes audit LogEntry (``serviceName`` ``k8s.io``)."""
    proto: dict[str, Any] = {
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "authenticationInfo": {"principalEmail": principal},
        "authorizationInfo": [{"granted": True, "permission": method, "resource": resource_name}],
        "methodName": method,
        "requestMetadata": {
            "callerIp": "203.0.113.50",
            "callerSuppliedUserAgent": "kubectl/v1.29.2 (linux/amd64) kubernetes/4b8e819",
        },
        "resourceName": resource_name,
        "serviceName": "k8s.io",
        "status": {},
    }
    if request is not None:
        proto["request"] = request
    return {
        "protoPayload": proto,
        "insertId": str(uuid.uuid4()),
        "resource": {
            "type": "k8s_cluster",
            "labels": {"cluster_name": "prod-gke", "location": "europe-west1", "project_id": PROJECT},
        },
        "timestamp": timestamp,
        "labels": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": "access granted"},
        "logName": f"projects/{PROJECT}/logs/cloudaudit.googleapis.com%2Factivity",
        "receiveTimestamp": timestamp,
    }


def pubsub_message(
    entry: Any, message_id: str | None = None, *, raw_data: str | None = None
) -> dict[str, Any]:
    """The Pub/Sub message a log sink publishes: ``data`` is the base64 LogEntry JSON."""
    mid = message_id or str(uuid.uuid4().int)[:17]
    data = raw_data if raw_data is not None else base64.b64encode(json.dumps(entry).encode()).decode()
    message: dict[str, Any] = {
        "data": data,
        "messageId": mid,
        "message_id": mid,
        "publishTime": "2024-05-14T10:00:02.5Z",
        "publish_time": "2024-05-14T10:00:02.5Z",
    }
    if isinstance(entry, dict) and "timestamp" in entry:
        message["attributes"] = {"logging.googleapis.com/timestamp": entry["timestamp"]}
    return message


def post_cloudevent(
    url: str, message: dict[str, Any], *, mode: str = "binary", traceparent: str | None = None
) -> httpx.Response:
    """POST an Eventarc ``messagePublished`` CloudEvent in binary or structured content mode."""
    attributes = {
        "specversion": "1.0",
        "id": message["messageId"],
        "source": f"//pubsub.googleapis.com/{SOURCE_TOPIC}",
        "type": PUBSUB_PUBLISHED,
        "time": "2024-05-14T10:00:02.5Z",
    }
    data = {"message": message, "subscription": SUBSCRIPTION}
    headers = {"traceparent": traceparent} if traceparent else {}
    if mode == "binary":
        headers.update({f"ce-{k}": v for k, v in attributes.items()})
        headers["content-type"] = "application/json"
        return httpx.post(url, headers=headers, content=json.dumps(data), timeout=60)
    headers["content-type"] = "application/cloudevents+json"
    body = {**attributes, "datacontenttype": "application/json", "data": data}
    return httpx.post(url, headers=headers, content=json.dumps(body), timeout=60)


def post_push(url: str, message: dict[str, Any]) -> httpx.Response:
    """POST a Pub/Sub push subscription body."""
    return httpx.post(url, json={"message": message, "subscription": SUBSCRIPTION}, timeout=60)


def alerts_of(webhook: WebhookReceiver) -> list[dict[str, Any]]:
    """Alerts the receiver accepted (2xx); every one must carry a valid signature."""
    out = []
    for received in webhook.delivered:
        assert received.verified, "alert arrived without a valid X-Adscore-Signature"
        out.append(json.loads(received.body))
    return out
