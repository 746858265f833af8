"""The ingest endpoint's cost per request: refusals, and full batches through the engine.

Run: ``.venv/bin/python bench/bench_ingest.py [requests]``. Calls :func:`adscore.ingest.handle`
in-process (no HTTP, no cloud) on a SQLite state store, as a warm function instance would, and
prints per-request times (median and p95, milliseconds) for:

- a refused request (wrong bearer token): what an unauthenticated flood costs;
- a replayed signed request (409): signature check plus one state claim;
- an ``EventList`` of 400 audit events (the API server's default batch), bearer token;
- a signed ``DockerEventBatch`` of 500 events (the forwarder's batch).

Every accepted body is new (fresh ids), so each one runs the engine in full.
"""

from __future__ import annotations

import base64
import json
import logging
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from adscore.ingest import handle, sign_headers
from adscore.runtime import build_engine
from adscore.settings import load_settings

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-ingest-bearer-token-0123456789"
SECRET = "whsec_" + base64.b64encode(b"bench-ingest-signing-key-32bytes").decode()


def audit_list(n: int) -> bytes:
    """An EventList of ``n`` reads across namespaces by a few users (the bulk of real audit traffic)."""
    base = json.loads((ROOT / "tests/golden/k8s_audit/exec_cp_backup_command.input.json").read_text())
    items = []
    for i in range(n):
        event = dict(base, auditID=str(uuid.uuid4()), verb="get", stage="ResponseComplete")
        event["requestURI"] = f"/api/v1/namespaces/ns-{i % 40}/configmaps/cm-{i}"
        event["objectRef"] = {"resource": "configmaps", "namespace": f"ns-{i % 40}", "name": f"cm-{i}"}
        event["user"] = {"username": f"svc-{i % 7}@example.com", "groups": ["system:authenticated"]}
        event["responseStatus"] = {"code": 200}
        items.append(event)
    return json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}).encode()


def docker_batch(n: int) -> bytes:
    """A DockerEventBatch of ``n`` container lifecycle events and a few commits."""
    base = json.loads((ROOT / "tests/golden/docker/container_commit.input.json").read_text())
    events = []
    for i in range(n):
        cid = uuid.uuid4().hex * 2
        action = "commit" if i % 100 == 0 else ("start", "die", "create")[i % 3]
        actor = {"ID": cid, "Attributes": {**base["Actor"]["Attributes"], "name": f"c-{i}"}}
        events.append({**base, "id": cid, "status": action, "Action": action, "Actor": actor})
    body = {"apiVersion": "adscore.dev/v1", "kind": "DockerEventBatch", "host": {"hostname": "bench-01"},
            "events": events}  # fmt: skip
    return json.dumps(body).encode()


def timed(label: str, n: int, call: Callable[[], int], expect: int) -> None:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        status = call()
        times.append((time.perf_counter() - started) * 1000)
        assert status == expect, (label, status)
    p95 = statistics.quantiles(times, n=20)[-1] if len(times) >= 20 else max(times)
    print(f"{label:<44} median {statistics.median(times):8.3f} ms   p95 {p95:8.3f} ms   ({n} requests)")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    logging.getLogger("adscore").setLevel(logging.ERROR)  # each refusal logs a WARNING: not timed here
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            None, state=f"sqlite:///{tmp}/state.db", ingest_token=TOKEN, ingest_signing_secret=SECRET,
            ingest_max_bytes=8_388_608,
        )  # fmt: skip
        engine = build_engine(settings, sinks=[])
        small = audit_list(1)
        wrong = {"authorization": "Bearer not-the-token-0000000000"}
        timed("refused (wrong bearer token, 401)", n * 10, lambda: handle(small, wrong, source="bench", engine=engine).status, 401)

        replayed = docker_batch(1)
        headers = sign_headers(SECRET, replayed, "msg_bench_replay")
        handle(replayed, headers, source="bench", engine=engine)
        timed("replayed signed request (409)", n * 10, lambda: handle(replayed, headers, source="bench", engine=engine).status, 409)

        lists = [audit_list(400) for _ in range(n)]
        it = iter(lists)
        bearer = {"authorization": f"Bearer {TOKEN}"}
        print(f"EventList of 400 events: {len(lists[0]):,} bytes")
        timed("EventList, 400 audit events (200)", n, lambda: handle(next(it), bearer, source="bench", engine=engine).status, 200)

        batches = [docker_batch(500) for _ in range(n)]
        jt = iter(batches)

        def signed_batch() -> int:
            body = next(jt)
            return handle(body, sign_headers(SECRET, body, f"msg_{uuid.uuid4().hex}"), source="bench", engine=engine).status

        print(f"DockerEventBatch of 500 events: {len(batches[0]):,} bytes")
        timed("DockerEventBatch, 500 events, signed (200)", n, signed_batch, 200)


if __name__ == "__main__":
    main()
