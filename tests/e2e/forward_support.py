"""``adscore forward docker`` into each cloud's real ingest endpoint: what the three clouds' tests share.

The chain under test, with nothing mocked::

    FakeDockerEngine (real unix socket, the Engine API's /events and /containers/{id}/changes)
      -> `adscore forward docker --once` (the command's own code path, in process: click's runner)
      -> HTTP POST, Standard Webhooks signed, over loopback
      -> the cloud's endpoint code (adscore.ingest via the function's own adapter)
      -> the engine -> the cloud's alert sink

GCP serves ``on_k8s_audit`` with functions-framework's real HTTP server. Lambda Function URLs and
Azure HTTP triggers have no local server in this repository's tests, so :class:`EndpointBridge`
is one: a loopback HTTP server that hands each request to a function which builds the platform's
request object (the Function URL payload 2.0 event; ``azure.functions.HttpRequest``) and calls the
real handler (``handler.ingest_handler``; ``function_app.on_ingest``), then writes its answer back.
It records every request it answered, so a test can see what the forwarder sent.

The Docker side is the snapshot ADS's emulation (:func:`seed_emulation`): ``docker commit`` of a
container whose filesystem changes include a secret and database files, ``docker commit`` of a
container with nothing sensitive changed (the control: its alert keeps the base severity), and
``docker save`` of the committed image. Ids are fresh per call, so a state store shared by two
tests dedups nothing.
"""

from __future__ import annotations

import json
import shutil
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from click.testing import CliRunner

from adscore.cli import main
from tests.e2e.ingest_support import SIGNING_SECRET
from tests.integration.docker_engine_fake import (
    CHANGES,
    T0,
    FakeDockerEngine,
    commit,
    save,
    short_socket_path,
    start,
)

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Callable

Answer = tuple[int, dict[str, str], bytes]
"""A handler's answer: status, headers, body."""


# ------------------------------------------------------------------------------------------- the Docker host


@dataclass(frozen=True)
class Seed:
    """The ids of one run of the seed's emulation steps on the fake engine."""

    secret_cid: str  # committed; its changes hold /root/.ssh/id_ed25519, /tmp/dump.sql, database files
    plain_cid: str  # committed; only /tmp and /etc/motd changed
    image: str  # the committed image, then saved

    @property
    def short(self) -> dict[str, str]:
        """The 12-character ids alert titles use."""
        return {"secret": self.secret_cid[:12], "plain": self.plain_cid[:12], "image": self.image[7:19]}

    def mine(self, alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The alerts whose title names one of this run's containers or image."""
        return [a for a in alerts if any(v in a["title"] for v in self.short.values())]


def seed_emulation(engine: FakeDockerEngine) -> Seed:
    """Emit the ADS's ``docker commit <container>`` and ``docker save <image>`` (with lifecycle noise).

    The first run is at :data:`~tests.integration.docker_engine_fake.T0` (a Monday, 10:15 UTC: no
    off-hours alert whatever the clock says), each later one a minute after the engine's last event.
    """
    seed = Seed(uuid.uuid4().hex * 2, uuid.uuid4().hex * 2, "sha256:" + uuid.uuid4().hex * 2)
    engine.changes[seed.secret_cid] = CHANGES
    engine.changes[seed.plain_cid] = [{"Path": "/tmp/build.log", "Kind": 1}, {"Path": "/etc/motd", "Kind": 0}]
    t = max((e["timeNano"] for e in engine.buffer), default=T0 - 60_000_000_000) + 60_000_000_000
    engine.emit(start(seed.secret_cid, t))
    engine.emit(commit(seed.secret_cid, t + 1_000, image=seed.image))
    engine.emit(commit(seed.plain_cid, t + 2_000, image=seed.image, name="web-cache"))
    engine.emit(save(t + 3_000, image=seed.image))
    return seed


# ------------------------------------------------------------------------------------------- the forwarder


@dataclass
class Pass:
    """One ``adscore forward docker --once`` run: its exit status and the counts it printed."""

    exit_code: int
    stats: dict[str, Any]
    output: str


def forward_once(endpoint: str, sock: str, spool: Path, *, secret: str = SIGNING_SECRET) -> Pass:
    """Run ``adscore forward docker --once`` (click's runner, in process) against ``sock`` and ``endpoint``."""
    args = ["forward", "docker", "--endpoint", endpoint, "--socket", sock, "--spool", str(spool),
            "--no-cloud-metadata", "--once"]  # fmt: skip
    result = CliRunner().invoke(main, args, env={"ADSCORE_FORWARD_SECRET": secret}, catch_exceptions=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no counts printed (exit {result.exit_code}): {result.output[-2000:]}"
    return Pass(result.exit_code, orjson.loads(lines[-1]), result.output)


def pending(spool: Path) -> list[Path]:
    return sorted((spool / "pending").glob("*.json"))


def keep_copies(spool: Path, into: Path) -> list[Path]:
    """Copy the spool's pending batches aside (what a crash between POST and delete would leave)."""
    into.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy2(p, into / p.name)) for p in pending(spool)]


# ------------------------------------------------------------------------------------------- the endpoint


@dataclass
class Request:
    webhook_id: str
    body: bytes
    status: int


@dataclass
class EndpointBridge:
    """A loopback HTTP server handing each POST to ``call(body, headers)`` (see the module text).

    ``port`` may be chosen before the bridge listens: the forwarder is then pointed at a closed port.
    """

    call: Callable[[bytes, dict[str, str]], Answer]
    port: int = 0
    requests: list[Request] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/ingest"

    def __enter__(self) -> EndpointBridge:
        bridge = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items()}
                status, out_headers, out = bridge.call(body, headers)
                bridge.requests.append(Request(headers.get("webhook-id", ""), body, status))
                self.send_response(status)
                for name, value in out_headers.items():
                    if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


# ------------------------------------------------------------------------------------------- the checks


def check_seed_alerts(alerts: list[dict[str, Any]], seed: Seed) -> None:
    """The three ``container.snapshot`` alerts of :func:`seed_emulation`, the sensitive commit raised."""
    titles = [a.get("title") for a in alerts]
    assert [a["detection"] for a in alerts] == ["container.snapshot"] * 3, titles
    short = seed.short
    by_subject = {next(k for k, v in short.items() if v in a["title"]): a for a in alerts}
    assert set(by_subject) == {"secret", "plain", "image"}, [a["title"] for a in alerts]
    secret, plain, saved = by_subject["secret"], by_subject["plain"], by_subject["image"]
    # the commit that captured a secret and database files is raised above the plain commit's base severity
    assert (secret["severity"], plain["severity"]) == ("high", "medium")
    assert "3 sensitive paths changed" in secret["title"] and "sensitive" not in plain["title"]
    assert "/root/.ssh/id_ed25519 (secret, added)" in secret["summary"]
    assert "1 added, 1 changed and 0 deleted paths" in plain["summary"]
    assert saved["title"].startswith(f"Image {short['image']} saved to a tar on host") and saved["severity"] == "high"
    # the forwarder's host is the principal (no cloud metadata in tests: the hostname alone)
    import socket

    assert all(socket.gethostname()[:253] in json.dumps(a["principal"]) for a in alerts)


def forward_and_resume(endpoint: str, alerts: Callable[[], list[dict[str, Any]]], tmp: Path) -> None:
    """The seed's emulation forwarded once raises its alerts; a second ``--once`` sends nothing new."""
    with short_socket_path() as sock, FakeDockerEngine(sock) as engine:
        seed = seed_emulation(engine)
        first = forward_once(endpoint, sock, tmp / "spool")
        assert first.exit_code == 0, first.output[-2000:]
        assert (first.stats["events_forwarded"], first.stats["batches_delivered"], first.stats["pending_batches"]) == (
            3, 1, 0,
        ), first.stats  # fmt: skip
        check_seed_alerts(alerts(), seed)
        # WHEN the forwarder runs again (a restart): the cursor says everything was read
        second = forward_once(endpoint, sock, tmp / "spool")
    assert second.exit_code == 0, second.output[-2000:]
    assert (second.stats["batches_spooled"], second.stats["events_forwarded"]) == (0, 0), second.stats
    assert second.stats["duplicates_skipped"] >= 1  # since= is inclusive: the boundary event came back, skipped
    assert len(alerts()) == 3


def outage_then_back(
    closed_url: str, up: Callable[[], contextlib.AbstractContextManager[Any]],
    alerts: Callable[[], list[dict[str, Any]]], tmp: Path,
) -> None:
    """The endpoint's port is closed for the first pass and open for the second: every event arrives
    once; the batch posted again after it was accepted (a crash before the spool forgot it) is
    answered 409 and counted as delivered."""
    spool = tmp / "spool"
    with short_socket_path() as sock, FakeDockerEngine(sock) as engine:
        before = seed_emulation(engine)
        down = forward_once(closed_url, sock, spool)
        # THEN nothing is lost: the batch waits in the spool, and --once says so (exit 1)
        assert down.exit_code == 1 and down.stats["pending_batches"] == 1 and down.stats["events_forwarded"] == 0
        assert down.stats["post_failures"] >= 1
        [copy] = keep_copies(spool, tmp / "copy")
        # AND the host keeps snapshotting during the outage
        during = seed_emulation(engine)
        with up():
            back = forward_once(closed_url, sock, spool)
            assert back.exit_code == 0, back.output[-2000:]
            assert (back.stats["events_forwarded"], back.stats["pending_batches"]) == (6, 0), back.stats
            received = alerts()
            assert len(received) == 6
            check_seed_alerts(before.mine(received), before)
            check_seed_alerts(during.mine(received), during)
            # WHEN the first batch is posted again under its webhook-id (restored to the spool)
            copy.replace(spool / "pending" / copy.name)
            again = forward_once(closed_url, sock, spool)
            assert again.exit_code == 0, again.output[-2000:]
            assert (again.stats["batches_already_received"], again.stats["batches_delivered"]) == (1, 0), again.stats
            assert again.stats["pending_batches"] == 0 and not list((spool / "rejected").glob("*.json"))
            assert len(alerts()) == 6  # the 409 reached no engine
