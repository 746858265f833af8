"""What the three emulations share for the HTTPS ingest endpoint (:mod:`adscore.ingest`).

Each cloud's emulation sends, through its real endpoint code (AWS ``ingest_handler`` behind a
Function URL event, Azure ``on_ingest``, GCP ``on_k8s_audit`` on functions-framework):

- Kubernetes audit ``EventList`` records (what a self-managed API server's webhook backend posts,
  as in ``examples/kubernetes-webhook``) with ``Authorization: Bearer``, in batches of at most
  :data:`K8S_BATCH` events;
- Docker Engine events (``examples/docker``) as ``adscore forward docker`` posts them: signed
  ``DockerEventBatch`` bodies (Standard Webhooks) of at most :data:`DOCKER_BATCH` events, one batch
  never spanning two input files, the batch's host taken from its first event.

A 5xx answer (or no answer) is retried as the senders retry (the same delivery id, a fresh
signature), at most :data:`ATTEMPTS` times; what is still refused counts as failed records.
"""

from __future__ import annotations

import base64
import uuid
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from collections.abc import Callable

    from adscore.emulate import EmulationResult, Reporter

__all__ = [
    "ATTEMPTS",
    "DOCKER_BATCH",
    "INGEST_SIGNING_SECRET",
    "INGEST_TOKEN",
    "K8S_BATCH",
    "IngestSender",
    "ingest_kind",
    "ingest_settings",
]

#: The credentials the emulated endpoint takes. Local only (loopback, in-process): not credentials.
INGEST_TOKEN = "adscore-emulate-local-ingest-token"
INGEST_SIGNING_SECRET = "whsec_" + base64.b64encode(b"adscore-emulate-local-signing-key").decode()
K8S_BATCH = 400
"""kube-apiserver ``--audit-webhook-batch-max-size`` default."""
DOCKER_BATCH = 500
ATTEMPTS = 3
DEFAULT_HOST = "emulated-docker-host"


def ingest_settings() -> dict[str, str]:
    """The endpoint's settings as the Terraform modules set them (the secrets' values, resolved)."""
    return {"ADSCORE_INGEST_TOKEN": INGEST_TOKEN, "ADSCORE_INGEST_SIGNING_SECRET": INGEST_SIGNING_SECRET}


def ingest_kind(record: Any) -> str | None:
    """``"docker"`` for a Docker Engine event, ``"eventlist"`` for an audit ``EventList``, else None."""
    from adscore.sources import sniff

    family = sniff(record)
    if family == "docker":
        return "docker"
    if family == "kubernetes" and isinstance(record, dict) and record.get("kind") == "EventList":
        return "eventlist"
    return None


class IngestSender:
    """Posts EventLists and Docker batches to one endpoint through ``post(body, headers) -> status``."""

    def __init__(
        self,
        post: Callable[[bytes, dict[str, str]], int],
        result: EmulationResult,
        reporter: Reporter,
        *,
        k8s_path: str,
        docker_path: str,
    ) -> None:
        self._post = post
        self.result = result
        self.reporter = reporter
        self.k8s_path = k8s_path
        self.docker_path = docker_path
        self._docker: list[Any] = []
        self._docker_key: str | None = None

    def _send(self, path: str, body: bytes, records: int, headers: Callable[[], dict[str, str]]) -> None:
        delivery = self.result.delivery(path)
        delivery.records += records
        status = 0
        for _ in range(ATTEMPTS):
            delivery.invocations += 1
            status = self._post(body, headers())
            if status < 500 and status != 0:
                break
        if not 200 <= status < 300:
            delivery.failed += records
            self.reporter.note(f"{path}: a batch of {records} events was answered HTTP {status}")

    def event_list(self, record: dict[str, Any]) -> None:
        """Post an ``EventList`` record as the webhook backend does (bearer token), split in batches."""
        self.flush()
        items = record.get("items")
        items = items if isinstance(items, list) else []
        bearer = {"content-type": "application/json", "authorization": f"Bearer {INGEST_TOKEN}"}
        for start in range(0, max(len(items), 1), K8S_BATCH):
            chunk = items[start : start + K8S_BATCH]
            body = orjson.dumps({**record, "items": chunk}, default=str)
            self._send(self.k8s_path, body, len(chunk), lambda: dict(bearer))

    def docker(self, key: str, event: Any) -> None:
        """Queue a Docker event of input ``key`` (a file); a batch is posted per file or when full."""
        if key != self._docker_key or len(self._docker) >= DOCKER_BATCH:
            self.flush()
            self._docker_key = key
        self._docker.append(event)

    def flush(self) -> None:
        """Post the queued Docker events as one signed ``DockerEventBatch``."""
        from adscore.ingest import sign_headers

        events, self._docker = self._docker, []
        if not events:
            return
        first = events[0] if isinstance(events[0], dict) else {}
        host = first.get("host") or first.get("hostname") or DEFAULT_HOST
        batch = {
            "apiVersion": "adscore.dev/v1",
            "kind": "DockerEventBatch",
            "host": {"hostname": str(host)[:256], "instance_id": None, "cloud": None},
            "events": events,
        }
        body = orjson.dumps(batch, default=str)
        msg_id = f"msg_{uuid.uuid4().hex}"  # one delivery id, kept across retries
        self._send(self.docker_path, body, len(events), lambda: sign_headers(INGEST_SIGNING_SECRET, body, msg_id))
