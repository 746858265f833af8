"""What the three clouds' ingest endpoint tests share: credentials, real-format bodies, the refusal cases.

Bodies are built from the recorded golden inputs: the Kubernetes audit event of
``kubectl exec db-0 -- cp -R /data /backup`` (``tests/golden/k8s_audit/exec_cp_backup_command``) in
an ``audit.k8s.io/v1`` ``EventList`` as the API server's webhook backend posts it, and the Docker
Engine ``commit`` event (``tests/golden/docker/container_commit``) in a ``DockerEventBatch`` as
``adscore forward docker`` posts it, signed with Standard Webhooks.

Each refusal case carries a body that would raise a *new* alert (its own user, pod or container) if
it reached the engine: a test that sees no alert after all of them knows none did.
"""

from __future__ import annotations

import base64
import copy
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from adscore.ingest import sign_headers

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
TOKEN = "e2e-ingest-bearer-token-4f9c2a7d"
SIGNING_SECRET = "whsec_" + base64.b64encode(b"adscore-e2e-ingest-signing-key-32").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"not-the-endpoint-signing-key-0032").decode()
MAX_BYTES = 65_536
"""``ADSCORE_INGEST_MAX_BYTES`` of the endpoints under test: the oversized case is just above it."""
INGEST_ENV = {
    "ADSCORE_INGEST_TOKEN": TOKEN,
    "ADSCORE_INGEST_SIGNING_SECRET": SIGNING_SECRET,
    "ADSCORE_INGEST_MAX_BYTES": str(MAX_BYTES),
}


def _golden(path: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((GOLDEN / path).read_text(encoding="utf-8"))
    return value


def exec_copy_event(user: str = "alice@example.com", pod: str = "db-0") -> dict[str, Any]:
    """The audit event of ``kubectl exec <pod> -- cp -R /data /backup`` by ``user``, with a fresh auditID."""
    event = copy.deepcopy(_golden("k8s_audit/exec_cp_backup_command.input.json"))
    event["auditID"] = str(uuid.uuid4())
    event["user"]["username"] = user
    event["objectRef"]["name"] = pod
    event["requestURI"] = event["requestURI"].replace("/pods/db-0/", f"/pods/{pod}/")
    return event


def event_list(*events: dict[str, Any], pad: int = 0) -> bytes:
    """An ``audit.k8s.io/v1`` EventList as the webhook backend posts it (``pad`` bytes of metadata added)."""
    body: dict[str, Any] = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": list(events)}
    if pad:
        body["metadata"] = {"resourceVersion": "x" * pad}
    return json.dumps(body).encode()


def docker_event(action: str = "commit", name: str = "billing-db") -> dict[str, Any]:
    """A Docker Engine ``/events`` object for ``action`` on a container of its own (fresh id)."""
    event = copy.deepcopy(_golden("docker/container_commit.input.json"))
    event.pop("host", None)  # the forwarder's batch names the host
    cid = uuid.uuid4().hex * 2
    event.update(id=cid, status=action, Action=action)
    event["Actor"]["ID"] = cid
    event["Actor"]["Attributes"]["name"] = name
    return event


def docker_batch(*events: dict[str, Any], hostname: str = "build-07") -> bytes:
    """A ``DockerEventBatch`` as ``adscore forward docker`` posts it."""
    body = {
        "apiVersion": "adscore.dev/v1",
        "kind": "DockerEventBatch",
        "host": {"hostname": hostname, "instance_id": "i-0123456789abcdef0", "cloud": "aws"},
        "events": list(events),
    }
    return json.dumps(body).encode()


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}


def signed(
    body: bytes, msg_id: str | None = None, *, at: datetime | None = None, secret: str = SIGNING_SECRET
) -> dict[str, str]:
    return sign_headers(secret, body, msg_id or f"msg_{uuid.uuid4().hex}", at)


@dataclass(frozen=True)
class Refusal:
    """A request the endpoint must refuse with ``status``, counted as ``reason``."""

    name: str
    body: bytes
    headers: dict[str, str]
    status: int
    reason: str


def refusals() -> list[Refusal]:
    """Unauthenticated, wrong token, wrong signature, stale timestamp, unsigned Docker batch, oversized."""
    ok_list = event_list(exec_copy_event("mallory-1@example.com", "pay-1"))
    wrong_sig = docker_batch(docker_event(name="wrong-signature"))
    stale = docker_batch(docker_event(name="stale"))
    unsigned = docker_batch(docker_event(name="unsigned"))
    big = event_list(exec_copy_event("mallory-2@example.com", "pay-2"), pad=MAX_BYTES)
    old = datetime.now(UTC) - timedelta(minutes=10)
    return [
        Refusal("unauthenticated", ok_list, {"Content-Type": "application/json"}, 401, "unauthenticated"),
        Refusal("wrong token", ok_list, bearer("e2e-not-the-ingest-token-0000"), 401, "bad_token"),
        Refusal("wrong signature", wrong_sig, signed(wrong_sig, secret=OTHER_SECRET), 401, "bad_signature"),
        Refusal("stale timestamp", stale, signed(stale, at=old), 401, "stale"),
        Refusal("unsigned docker batch", unsigned, bearer(), 401, "signature_required"),
        Refusal("oversized", big, bearer(), 413, "too_large"),
    ]
