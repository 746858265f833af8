"""``adscore emulate gcp``: the real GCP function on functions-framework, fed as the deployed push subscription feeds it.

What runs where
---------------
- Two ``functions-framework`` processes (the real HTTP server, gunicorn, loading
  ``functions/gcp/main.py``) on free loopback ports: ``on_pubsub_push`` (HTTP signature, the entry
  point ``infra/gcp`` deploys behind its push subscription) and ``on_k8s_audit`` (HTTP signature).
  Each is configured only through its environment, the way ``infra/gcp/main.tf`` configures the
  Cloud Function (``ADSCORE_STATE``, ``ADSCORE_SINKS``, ``ADSCORE_WEBHOOK_SECRET``,
  ``ADSCORE_DEADLETTER``, ``ADSCORE_CONFIG``, ``GOOGLE_CLOUD_PROJECT``, ``K_SERVICE``...).
- Dead letters: the dead-letter topic in the Pub/Sub emulator when ``PUBSUB_EMULATOR_HOST`` is
  set (``ADSCORE_DEADLETTER=pubsub://...``, as the module sets it), otherwise a JSON-lines file
  next to the function logs (``file://``); every letter counts as a failed record.
- State: the Firestore emulator when ``FIRESTORE_EMULATOR_HOST`` is set (collection
  ``adscore-state`` in database ``adscore``, as the Terraform module names them), otherwise a
  SQLite file in a temporary folder (there is no Firestore emulator without gcloud).
- Alerts: the signed webhook sink, to a :class:`~adscore.emulate.receiver.WebhookReceiver` on
  loopback that checks each signature. With ``PUBSUB_EMULATOR_HOST`` set, the alerts topic and the
  dead-letter topic are created there and used too.

Delivery
--------
Every Cloud Audit ``LogEntry`` (bare, or unwrapped from a Pub/Sub push body, a Pub/Sub message or
a CloudEvent) is POSTed to ``on_pubsub_push`` as the module's push subscription delivers it: one
push body (``{"message": ..., "subscription": ...}``) per request, in input order; a 2xx answer
acknowledges it. Kubernetes ``audit.k8s.io`` events are
POSTed to ``on_k8s_audit`` (the ingest endpoint) as an API server's audit webhook backend posts
them: ``EventList`` batches of up to 400 events (``--audit-webhook-batch-max-size``) with
``Authorization: Bearer``. Docker Engine events are POSTed there too, as ``adscore forward docker``
posts them: signed ``DockerEventBatch`` bodies, one per run of consecutive events of one input file
(:mod:`adscore.emulate.ingest`). Other shapes (AWS, Azure) are skipped with the reason.

:class:`FunctionServer` and :func:`serve` are also what ``tests/e2e/gcp`` starts its servers with.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import itertools
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from adscore.emulate import (
    NAME_PREFIX,
    WEBHOOK_SECRET,
    EmulationResult,
    EmulatorMissing,
    StopSignals,
    free_port,
    function_file,
    iter_records,
)
from adscore.emulate.ingest import IngestSender, ingest_settings
from adscore.errors import AdscoreError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import httpx

    from adscore.emulate import Reporter
    from adscore.emulate.receiver import Received

__all__ = [
    "ALERTS_TOPIC",
    "DEADLETTER_TOPIC",
    "DOCKER_PATH",
    "FIRESTORE_COLLECTION",
    "FIRESTORE_DATABASE",
    "K8S_BATCH",
    "LOGS_TOPIC",
    "PROJECT",
    "PUSH_SUBSCRIPTION",
    "FunctionServer",
    "cloudevent_request",
    "function_source",
    "missing",
    "push_request",
    "run",
    "serve",
]

#: Project the emulated resources live in (``GOOGLE_CLOUD_PROJECT`` overrides it).
PROJECT = "adscore-local"
REGION = "us-central1"
#: Names as ``infra/gcp`` creates them with the default ``name_prefix``.
LOGS_TOPIC = f"{NAME_PREFIX}-audit-logs"
ALERTS_TOPIC = f"{NAME_PREFIX}-alerts"
DEADLETTER_TOPIC = f"{NAME_PREFIX}-dead-letter"
DEADLETTER_HOLD = f"{NAME_PREFIX}-dead-letter-hold"
FIRESTORE_COLLECTION = "adscore-state"
FIRESTORE_DATABASE = "adscore"
PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"
AUDIT_WRITTEN = "google.cloud.audit.log.v1.written"
#: kube-apiserver ``--audit-webhook-batch-max-size`` default.
K8S_BATCH = 400

PUBSUB_PATH = "pubsub -> push subscription -> on_pubsub_push"
#: The push subscription ``infra/gcp`` creates with the default ``name_prefix``.
PUSH_SUBSCRIPTION = f"{NAME_PREFIX}-audit-logs-push"
K8S_PATH = "k8s audit webhook -> on_k8s_audit"
DOCKER_PATH = "adscore forward docker -> on_k8s_audit"

_INSTALL = "pip install 'adscore[gcp]'"
_REQUEST_TIMEOUT = 300.0  # the module's function_timeout_seconds default
_STRIPPED_ENV = ("ADSCORE_", "K_", "FUNCTION_", "GOOGLE_")


# ------------------------------------------------------------------------------------------------
# the function server
# ------------------------------------------------------------------------------------------------


def missing() -> tuple[str, str] | None:
    """``(what, install command)`` when something the GCP function needs is not installed, else None."""
    for module, what in (
        ("functions_framework", "functions-framework"),
        ("google.cloud.logging", "google-cloud-logging"),
    ):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return what, _INSTALL
    return None


def function_source() -> Path:
    """``functions/gcp/main.py`` of the source checkout.

    Raises
    ------
    AdscoreError
        When adscore does not run from a source checkout.
    """
    return function_file("gcp/main.py")


@dataclass
class FunctionServer:
    """One ``functions-framework`` process serving one target of ``functions/gcp/main.py`` on loopback.

    Parameters
    ----------
    target : str
        The function (``on_pubsub``, ``on_pubsub_push``, ``on_k8s_audit``).
    signature : str
        ``cloudevent`` or ``http``.
    env : dict[str, str]
        The function's configuration; the parent's ``ADSCORE_*``, ``K_*``, ``FUNCTION_*``,
        ``GOOGLE_*`` and emulator variables are not inherited.
    log_path : Path
        Where the server's stdout and stderr go.
    port : int
        Default: a free port.
    source : Path, optional
        Default :func:`function_source`.
    """

    target: str
    signature: str
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    source: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start the process (returns at once; see :meth:`wait_ready`)."""
        source = self.source or function_source()
        env = {k: v for k, v in os.environ.items() if not k.startswith(_STRIPPED_ENV)}
        env.pop("PUBSUB_EMULATOR_HOST", None)
        env.pop("FIRESTORE_EMULATOR_HOST", None)
        env.update(self.env)
        cmd = [
            sys.executable, "-m", "functions_framework",
            "--target", self.target,
            "--signature-type", self.signature,
            "--source", str(source),
            "--host", "127.0.0.1",
            "--port", str(self.port),
        ]  # fmt: skip
        with self.log_path.open("wb") as out:
            # its own session: Ctrl-C reaches only us, and we stop it (and its workers) in order
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                cwd=source.parent, start_new_session=True,
            )  # fmt: skip

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the server listens.

        Raises
        ------
        RuntimeError
            The process exited or did not listen in time (with the tail of its log).
        """
        if self.proc is None:
            raise RuntimeError(f"{self.target} was not started")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.target} exited with {self.proc.returncode}:\n{self.logs()[-3000:]}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.target} did not listen on {self.port}:\n{self.logs()[-3000:]}")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (gunicorn stops its workers, then itself); SIGKILL to the process group if it hangs."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(
                    proc.pid, signal.SIGKILL
                )  # its own session: the group is the server and its workers
            proc.wait(timeout=10)

    def logs(self) -> str:
        """The server's output so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON lines the function wrote (other output, such as gunicorn's, is skipped)."""
        out = []
        for line in self.logs().splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(record, dict):
                    out.append(record)
        return out


def serve(servers: Sequence[FunctionServer], timeout: float = 60.0) -> None:
    """Start every server, then wait for each; one that lost its port to another process gets a new one.

    Raises
    ------
    RuntimeError
        A server did not come up (all are stopped then).
    """
    for s in servers:
        s.start()
    try:
        for s in servers:
            for attempt in range(3):
                try:
                    s.wait_ready(timeout)
                    break
                except RuntimeError:
                    if attempt == 2 or s.proc is None or s.proc.poll() is None:
                        raise
                    s.port = free_port()
                    s.start()
    except BaseException:
        for s in servers:
            s.stop()
        raise


# ------------------------------------------------------------------------------------------------
# deliveries
# ------------------------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def cloudevent_request(
    entry: Any, message_id: str, *, project: str = PROJECT, topic: str = LOGS_TOPIC
) -> tuple[dict[str, str], bytes]:
    """Headers and body of the Eventarc ``messagePublished`` request carrying one LogEntry (binary mode).

    Example
    -------
    >>> headers, body = cloudevent_request({"insertId": "1"}, "42")
    >>> headers["ce-type"], headers["ce-source"]
    ('google.cloud.pubsub.topic.v1.messagePublished', '//pubsub.googleapis.com/projects/adscore-local/topics/adscore-audit-logs')
    """
    published = _now()
    message: dict[str, Any] = {
        "data": base64.b64encode(orjson.dumps(entry)).decode("ascii"),
        "messageId": message_id,
        "message_id": message_id,
        "publishTime": published,
        "publish_time": published,
    }
    timestamp = entry.get("timestamp") if isinstance(entry, dict) else None
    if isinstance(timestamp, str):
        message["attributes"] = {"logging.googleapis.com/timestamp": timestamp[:64]}
    body = {
        "message": message,
        "subscription": f"projects/{project}/subscriptions/eventarc-{REGION}-{NAME_PREFIX}-sub-000",
    }
    headers = {
        "ce-id": message_id,
        "ce-source": f"//pubsub.googleapis.com/projects/{project}/topics/{topic}",
        "ce-type": PUBSUB_PUBLISHED,
        "ce-specversion": "1.0",
        "ce-time": published,
        "content-type": "application/json",
    }
    return headers, orjson.dumps(body)


def push_request(entry: Any, message_id: str, *, project: str = PROJECT) -> tuple[dict[str, str], bytes]:
    """Headers and body of the push subscription's request carrying one LogEntry (what ``infra/gcp`` deploys).

    Example
    -------
    >>> headers, body = push_request({"insertId": "1"}, "42")
    >>> orjson.loads(body)["subscription"]
    'projects/adscore-local/subscriptions/adscore-audit-logs-push'
    """
    _, event_body = cloudevent_request(entry, message_id, project=project)
    body = orjson.loads(event_body)
    body["subscription"] = f"projects/{project}/subscriptions/{PUSH_SUBSCRIPTION}"
    return {"content-type": "application/json"}, orjson.dumps(body)


def _log_entries(obj: dict[str, Any]) -> list[Any] | str:
    """The LogEntries a GCP-shaped record carries (unwrapping Pub/Sub and CloudEvent envelopes), or why not."""
    from adscore.events import RecordError
    from adscore.sources.gcp import unwrap_pubsub

    if "protoPayload" in obj:
        return [obj]
    if "specversion" in obj and obj.get("type") == AUDIT_WRITTEN:
        data = obj.get("data")
        return [data] if isinstance(data, dict) else "audit-log CloudEvent without a LogEntry in data"
    entries = obj.get("entries")
    if isinstance(entries, list) and "message" not in obj:
        return entries
    unwrapped = unwrap_pubsub(obj, "record")
    if isinstance(unwrapped, RecordError):
        return unwrapped.reason
    return [payload for _, payload in unwrapped]


_ENTRY_TIMES = ("timestamp", "receiveTimestamp")
_K8S_TIMES = ("requestReceivedTimestamp", "stageTimestamp")


def _docker_time(event: Any) -> datetime | None:
    """A Docker event's time (``timeNano``, else ``time``), or None."""
    from adscore.sources.common import parse_epoch

    if not isinstance(event, dict):
        return None
    for key, unit in (("timeNano", "ns"), ("time", "s")):
        try:
            return parse_epoch(event[key], unit)
        except (KeyError, ValueError, TypeError):
            continue
    return None


def _file_of(ref: str) -> str:
    """The input file of a record ref (``path:line``)."""
    head, sep, tail = ref.rpartition(":")
    return head if sep and tail.isdigit() else ref


def _time_of(item: Any, names: tuple[str, ...]) -> datetime | None:
    from adscore.sources.common import parse_time

    if isinstance(item, dict):
        for name in names:
            try:
                return parse_time(item.get(name))
            except (ValueError, TypeError, OverflowError):
                continue
    return None


@dataclass
class _Unit:
    """One log entry (Pub/Sub path) or audit event (webhook path) and its event time."""

    path: str
    item: Any
    time: datetime | None
    origin: str = ""


@dataclass
class _Run:
    """One emulation's moving parts (so ``run`` can stop them in ``finally``)."""

    result: EmulationResult
    reporter: Reporter
    project: str
    pubsub: FunctionServer | None = None
    k8s: FunctionServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(10**15 + secrets.randbelow(10**15)))

    def on_webhook(self, received: Received) -> None:
        """Receiver thread: report each verified alert as it arrives."""
        if not received.verified:
            with self.lock:
                self.result.unverified += 1
            return
        try:
            body = orjson.loads(received.body)
        except orjson.JSONDecodeError:
            self.reporter.note("a signed webhook request whose body is not JSON")
            return
        for alert in body if isinstance(body, list) else [body]:
            if isinstance(alert, dict):
                self.reporter.alert(alert)

    def _post(
        self, server: FunctionServer, client: httpx.Client, headers: dict[str, str], body: bytes
    ) -> int:
        import httpx

        try:
            return client.post(server.url, headers=headers, content=body).status_code
        except httpx.TransportError as exc:
            if not server.alive():
                raise AdscoreError(f"the {server.target} server stopped:\n{server.logs()[-2000:]}") from exc
            return 0

    def send_entry(self, client: httpx.Client, entry: Any) -> None:
        assert self.pubsub is not None
        headers, body = push_request(entry, str(next(self.ids)), project=self.project)
        status = self._post(self.pubsub, client, headers, body)
        d = self.result.delivery(PUBSUB_PATH)
        d.invocations += 1
        d.records += 1
        if not 200 <= status < 300:
            d.failed += 1  # Pub/Sub would redeliver it

    def ingest(self, client: httpx.Client) -> IngestSender:
        """The sender of audit EventLists (bearer token) and Docker batches (signed) to ``on_k8s_audit``."""
        assert self.k8s is not None
        server = self.k8s

        def post(body: bytes, headers: dict[str, str]) -> int:
            return self._post(server, client, headers, body)

        return IngestSender(post, self.result, self.reporter, k8s_path=K8S_PATH, docker_path=DOCKER_PATH)

    def send_k8s(self, sender: IngestSender, events: list[Any]) -> None:
        sender.event_list({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": events})

    def collect(self, paths: Sequence[str]) -> list[_Unit]:
        """Every deliverable item of ``paths`` in event-time order; other records go to ``result.skipped``."""
        from adscore.sources import sniff

        units: list[_Unit] = []
        for ref, obj in iter_records(paths, self.result):
            family = sniff(obj)
            if family == "kubernetes":
                events = obj.get("items") if obj.get("kind") == "EventList" else [obj]
                if not isinstance(events, list):
                    self.result.skipped.append(f"{ref}: EventList items is not a list")
                    continue
                units.extend(_Unit(K8S_PATH, e, _time_of(e, _K8S_TIMES)) for e in events)
            elif family == "docker":
                units.append(_Unit(DOCKER_PATH, obj, _docker_time(obj), _file_of(ref)))
            elif family == "gcp" or (isinstance(obj, dict) and obj.get("type") == AUDIT_WRITTEN):
                entries = _log_entries(obj)
                if isinstance(entries, str):
                    self.result.skipped.append(f"{ref}: {entries[:300]}")
                    continue
                units.extend(_Unit(PUBSUB_PATH, e, _time_of(e, _ENTRY_TIMES)) for e in entries)
            elif family is not None:
                self.result.skipped.append(f"{ref}: {family} record: no gcp delivery path")
            else:
                self.result.skipped.append(f"{ref}: unrecognised record shape: no gcp delivery path")
        # A record without a readable time stays after its predecessor; the sort is stable, so
        # each (time-ordered) file keeps its order and files interleave as their events happened.
        last = datetime.min.replace(tzinfo=UTC)
        for u in units:
            last = u.time = u.time or last
        units.sort(key=lambda u: u.time or last)
        return units

    def deliver(self, units: Sequence[_Unit]) -> None:
        """Send ``units`` in order: one push body per log entry, consecutive audit events as EventLists,
        consecutive Docker events of one file as a signed batch."""
        import httpx

        pending: list[Any] = []
        with httpx.Client(timeout=_REQUEST_TIMEOUT, trust_env=False) as client:
            sender = self.ingest(client)
            for u in units:
                if u.path != K8S_PATH and pending:
                    self.send_k8s(sender, pending)
                    pending = []
                if u.path != DOCKER_PATH:
                    sender.flush()
                if u.path == K8S_PATH:
                    pending.append(u.item)
                    if len(pending) >= K8S_BATCH:
                        self.send_k8s(sender, pending)
                        pending = []
                elif u.path == DOCKER_PATH:
                    sender.docker(u.origin, u.item)
                else:
                    self.send_entry(client, u.item)
            if pending:
                self.send_k8s(sender, pending)
            sender.flush()

    def count_rejected(self) -> None:
        """Add what the functions acknowledged but dead-lettered (one ``rejected`` log entry each) to ``failed``."""
        for server, path in ((self.pubsub, PUBSUB_PATH), (self.k8s, K8S_PATH)):
            if server is None:
                continue
            for r in server.log_records():
                if r.get("event") != "rejected":
                    continue
                at = DOCKER_PATH if r.get("kind") == "DockerEventBatch" else path
                if at in self.result.deliveries:
                    self.result.delivery(at).failed += 1


# ------------------------------------------------------------------------------------------------
# state and emulators
# ------------------------------------------------------------------------------------------------


def _iso(epoch_seconds: Any) -> str | None:
    try:
        return datetime.fromtimestamp(int(epoch_seconds), UTC).isoformat().replace("+00:00", "Z")
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _item_order(item: dict[str, Any]) -> tuple[bool, str, str]:
    # detection state first, the insertId "done" markers (one per log entry) last
    key = str(item.get("key", ""))
    return key.startswith("gcp.insert_id"), key, str(item.get("kind", ""))


def sqlite_items(path: Path) -> list[dict[str, Any]]:
    """The items of a SQLite state file: key, kind, set size or value (clipped), expiry."""
    items: list[dict[str, Any]] = []
    con = sqlite3.connect(str(path), timeout=10)
    try:
        for key, n, exp in con.execute(
            "SELECT key, count(*), max(expires_at) FROM state_sets GROUP BY key ORDER BY key"
        ):
            items.append({"key": key[:300], "kind": "set", "members": n, "expires_at": _iso(exp)})
        for key, value, exp in con.execute("SELECT key, value, expires_at FROM state_values ORDER BY key"):
            items.append(
                {"key": key[:300], "kind": "value", "value": str(value)[:120], "expires_at": _iso(exp)}
            )
        for key, exp in con.execute("SELECT key, expires_at FROM state_claims ORDER BY key"):
            items.append({"key": key[:300], "kind": "claim", "expires_at": _iso(exp)})
    finally:
        con.close()
    return sorted(items, key=_item_order)


def firestore_items(host: str, project: str, database: str, collection: str) -> list[dict[str, Any]]:
    """The documents of the state collection in the Firestore emulator (its REST API), as state items."""
    import httpx

    kinds = {"s": "set", "v": "value", "c": "claim"}
    url = f"http://{host}/v1/projects/{project}/databases/{database}/documents/{collection}"
    items: list[dict[str, Any]] = []
    token = ""
    with httpx.Client(timeout=30, trust_env=False, headers={"Authorization": "Bearer owner"}) as client:
        while True:
            params = {"pageSize": "300", **({"pageToken": token} if token else {})}
            response = client.get(url, params=params)
            response.raise_for_status()
            page = response.json()
            for doc in page.get("documents", []):
                doc_id = str(doc.get("name", "")).rsplit("/", 1)[-1]
                fields = doc.get("fields", {})
                item: dict[str, Any] = {
                    "key": str(fields.get("k", {}).get("stringValue", doc_id))[:300],
                    "kind": kinds.get(doc_id[:1], doc_id[:1]),
                    "id": doc_id[:300],
                }
                if "m" in fields:
                    item["members"] = len(fields["m"].get("arrayValue", {}).get("values", []))
                if "v" in fields:
                    item["value"] = str(fields["v"].get("stringValue", ""))[:120]
                item["expires_at"] = _iso(fields.get("expires_at", {}).get("integerValue"))
                items.append(item)
            token = page.get("nextPageToken") or ""
            if not token:
                break
    return sorted(items, key=_item_order)


def _emulator_host(var: str) -> str | None:
    """``host:port`` of an emulator named by ``var``, checked to answer; None when unset.

    Raises
    ------
    AdscoreError
        The value is not ``host:port`` or nothing accepts connections there.
    """
    value = (os.environ.get(var) or "").strip()
    if not value:
        return None
    host, _, port = value.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise AdscoreError(f"{var}={value[:100]}: expected host:port of a running emulator")
    deadline = time.monotonic() + 3.0
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=1.0):
                return value
        except OSError:
            if time.monotonic() >= deadline:
                raise AdscoreError(
                    f"{var}={value[:100]}: nothing answers there (start the emulator or unset {var})"
                ) from None
            time.sleep(0.1)


def _create_topics(host: str, project: str) -> None:
    """Create the alerts and dead-letter topics (and the dead-letter hold subscription) in the Pub/Sub emulator."""
    import httpx

    base = f"http://{host}/v1/projects/{project}"
    with httpx.Client(timeout=30, trust_env=False) as client:
        for topic in (LOGS_TOPIC, ALERTS_TOPIC, DEADLETTER_TOPIC):
            response = client.put(f"{base}/topics/{topic}", json={})
            if response.status_code not in (200, 409):
                raise AdscoreError(
                    f"Pub/Sub emulator: creating topic {topic} answered HTTP {response.status_code}"
                )
        response = client.put(
            f"{base}/subscriptions/{DEADLETTER_HOLD}",
            json={"topic": f"projects/{project}/topics/{DEADLETTER_TOPIC}", "ackDeadlineSeconds": 60},
        )
        if response.status_code not in (200, 409):
            raise AdscoreError(
                f"Pub/Sub emulator: creating subscription {DEADLETTER_HOLD} answered "
                f"HTTP {response.status_code}"
            )


# ------------------------------------------------------------------------------------------------
# the command
# ------------------------------------------------------------------------------------------------


def run(paths: Sequence[str], *, config: str | None, keep: bool, reporter: Reporter) -> EmulationResult:
    """Serve the GCP function on functions-framework and send ``paths`` through the push subscription's and the audit webhook's path.

    Parameters
    ----------
    paths : Sequence[str]
        Log files or folders (``adscore.emulate.default_paths("gcp")`` for the bundled examples).
    config : str, optional
        Settings YAML the function loads (``ADSCORE_CONFIG``).
    keep : bool
        After the summary, print the endpoints and wait for Ctrl-C/SIGTERM before stopping.
    reporter : Reporter
        Prints progress, alerts as they arrive, the state items and the summary.

    Returns
    -------
    EmulationResult
        Deliveries, alerts (as received by the webhook), state items, skipped records.

    Raises
    ------
    EmulatorMissing
        functions-framework (the ``gcp`` extra) is not installed; nothing was started.
    AdscoreError
        No source checkout, a bad config file, an emulator variable pointing nowhere, or a
        server that would not start.
    """
    started = time.monotonic()
    gap = missing()
    if gap is not None:
        raise EmulatorMissing(*gap)
    function_source()
    if config is not None:
        from adscore.settings import load_settings

        config = str(Path(config).resolve())
        load_settings(config)  # a bad file fails here, naming the setting, not in every request
    firestore_host = _emulator_host("FIRESTORE_EMULATOR_HOST")
    pubsub_host = _emulator_host("PUBSUB_EMULATOR_HOST")

    from adscore.emulate.receiver import WebhookReceiver

    project = os.environ.get("GOOGLE_CLOUD_PROJECT") or PROJECT
    result = EmulationResult("gcp")
    state = _Run(result, reporter, project)
    tmp = Path(tempfile.mkdtemp(prefix="adscore-emulate-gcp-"))
    ok = False
    try:
        with WebhookReceiver(secret=WEBHOOK_SECRET, on_receive=state.on_webhook) as receiver:
            reporter.note(f"webhook receiver (checks X-Adscore-Signature) on {receiver.url}")
            env, state_url, sqlite_path = _configure(
                tmp, project, receiver.url, config, firestore_host, pubsub_host, reporter
            )
            state.pubsub = _server("on_pubsub_push", "http", env, tmp)
            state.k8s = _server("on_k8s_audit", "http", env, tmp)
            servers = [state.pubsub, state.k8s]
            reporter.note(
                "starting functions-framework (functions/gcp/main.py): on_pubsub_push, on_k8s_audit"
            )
            try:
                serve(servers)
            except RuntimeError as exc:
                raise AdscoreError(f"functions-framework did not start: {exc}") from exc
            reporter.note(
                f"on_pubsub_push (http) on {state.pubsub.url}, on_k8s_audit (http) on {state.k8s.url}, "
                f"logs in {tmp}"
            )
            try:
                reporter.note("sending log entries as the push subscription does, audit events as EventLists")
                state.deliver(state.collect(paths))
                state.count_rejected()
                if sqlite_path is not None:
                    result.state_items = sqlite_items(sqlite_path)
                elif firestore_host is not None:
                    result.state_items = firestore_items(
                        firestore_host, project, FIRESTORE_DATABASE, FIRESTORE_COLLECTION
                    )
                reporter.state_items(result.state_items)
                result.endpoints = {
                    "function on_pubsub_push (POST push subscription bodies)": state.pubsub.url,
                    "function on_k8s_audit (POST audit EventLists, signed Docker batches)": state.k8s.url,
                    "webhook receiver": receiver.url,
                    "state": state_url,
                    "dead letters": env["ADSCORE_DEADLETTER"],
                    "function logs": str(tmp),
                }
                result.env = {
                    "ADSCORE_STATE": state_url,
                    "ADSCORE_GCP_FUNCTION_URL": state.pubsub.url,
                    "ADSCORE_K8S_AUDIT_URL": state.k8s.url,
                    "ADSCORE_WEBHOOK_URL": receiver.url,
                    "ADSCORE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                    "GOOGLE_CLOUD_PROJECT": project,
                    **ingest_settings(),  # to post to ADSCORE_K8S_AUDIT_URL yourself (local values)
                }
                if firestore_host is not None:
                    result.env["FIRESTORE_EMULATOR_HOST"] = firestore_host
                if pubsub_host is not None:
                    result.env["PUBSUB_EMULATOR_HOST"] = pubsub_host
                result.alerts = reporter.alerts
                result.seconds = time.monotonic() - started
                reporter.summary(result)
                if keep:
                    with StopSignals() as signals:  # armed before the endpoints are announced
                        reporter.keep(result.endpoints, result.env)
                        signals.wait()
                    result.alerts = reporter.alerts
            finally:
                for s in servers:
                    s.stop()
        ok = result.failed == 0
    finally:
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            reporter.note(f"function logs and state kept in {tmp}")
    return result


def _server(target: str, signature: str, env: dict[str, str], tmp: Path) -> FunctionServer:
    """A server for ``target`` with the variables Cloud Run sets for a function besides the module's."""
    env = {**env, "FUNCTION_TARGET": target, "FUNCTION_SIGNATURE_TYPE": signature}
    return FunctionServer(target, signature, env, tmp / f"{target}.log")


def _configure(
    tmp: Path,
    project: str,
    webhook_url: str,
    config: str | None,
    firestore_host: str | None,
    pubsub_host: str | None,
    reporter: Reporter,
) -> tuple[dict[str, str], str, Path | None]:
    """The functions' environment as ``infra/gcp/main.tf`` sets it; creates the state collection/file and topics."""
    from adscore.state import init_store

    sqlite_path: Path | None = None
    if firestore_host is not None:
        state_url = f"firestore://{FIRESTORE_COLLECTION}?database={FIRESTORE_DATABASE}&project={project}"
        reporter.note(f"state in the Firestore emulator at {firestore_host}: {state_url}")
    else:
        sqlite_path = tmp / "state.db"
        state_url = f"sqlite:///{sqlite_path}"
        reporter.note(
            f"Firestore emulator not running (FIRESTORE_EMULATOR_HOST unset): state on SQLite at {sqlite_path}"
        )
    init_store(state_url)  # what `adscore state init` does

    sinks = [webhook_url]
    env: dict[str, str] = {
        "ADSCORE_STATE": state_url,
        "ADSCORE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "GOOGLE_CLOUD_PROJECT": project,
        "K_SERVICE": NAME_PREFIX,  # Cloud Run's variables: the function logs as it does on GCP
        "K_REVISION": f"{NAME_PREFIX}-00001-emu",
        "K_CONFIGURATION": NAME_PREFIX,
        "WORKERS": "1",
        "THREADS": "4",
        **ingest_settings(),  # infra/gcp: secret environment variables from Secret Manager
    }
    if pubsub_host is not None:
        _create_topics(pubsub_host, project)
        sinks.insert(0, f"pubsub://projects/{project}/topics/{ALERTS_TOPIC}")
        env["ADSCORE_DEADLETTER"] = f"pubsub://projects/{project}/topics/{DEADLETTER_TOPIC}"
        env["PUBSUB_EMULATOR_HOST"] = pubsub_host
        reporter.note(
            f"Pub/Sub emulator at {pubsub_host}: topics {ALERTS_TOPIC} and {DEADLETTER_TOPIC} created"
        )
    else:
        env["ADSCORE_DEADLETTER"] = f"file://{tmp / 'dead-letters.jsonl'}"
        reporter.note(
            "Pub/Sub emulator not running (PUBSUB_EMULATOR_HOST unset): alerts go to the signed "
            f"webhook only, dead letters to {tmp / 'dead-letters.jsonl'}"
        )
    if firestore_host is not None:
        env["FIRESTORE_EMULATOR_HOST"] = firestore_host
    env["ADSCORE_SINKS"] = ",".join(sinks)
    if config is not None:
        env["ADSCORE_CONFIG"] = config
    return env, state_url, sqlite_path
