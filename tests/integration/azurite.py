"""Azurite (the Azure Storage emulator) on loopback, for tests that talk to Table, Blob and Queue storage.

Azurite comes from the npm registry through the repo's ``package.json`` (an exact version):
run ``npm install`` in the repo root once. Use the fixtures from a ``conftest.py``::

    from tests.integration.azurite import azurite, azurite_table  # noqa: F401 - fixtures

``azurite_table`` (session) starts ``node_modules/.bin/azurite-table`` alone (the state contract
suite needs nothing else); ``azurite`` (session) starts Table, Blob and Queue (the function app's
dead-letter path needs Blob and Queue). Each service listens on 127.0.0.1 on a free port, keeps
its data in memory (``--inMemoryPersistence``; run from a temporary folder, which takes its log), skips API-version
checks (``--skipApiVersionCheck``, the SDK may be newer than the emulator), runs in ``--loose``
mode and sends no telemetry. The processes are stopped at the end of the session. When the
binaries are missing, the tests skip with a message saying how to install them.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / "node_modules" / ".bin"
MISSING = "Azurite not installed: run `npm install` in the repo root"

ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, documented by Microsoft; not a secret).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

SERVICES = ("table", "blob", "queue")
START_TIMEOUT = 60.0


def binary(service: str) -> Path:
    """Path of ``azurite-<service>`` in the repo's ``node_modules``."""
    return BIN / f"azurite-{service}"


def azurite_available(services: tuple[str, ...] = SERVICES) -> bool:
    """Whether the Azurite binaries and ``node`` are installed."""
    return all(binary(s).exists() for s in services) and shutil.which("node") is not None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class AzuriteService:
    """One running ``azurite-<service>`` process."""

    service: str
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    workdir: Path | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>/devstoreaccount1``."""
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    def start(self) -> AzuriteService:
        """Start the process on a free port and wait until it answers (three tries on a port race)."""
        self.workdir = Path(tempfile.mkdtemp(prefix=f"azurite-{self.service}-"))
        last = ""
        for _ in range(3):
            self.port = free_port()
            log = (self.workdir / "azurite.log").open("wb")
            self.process = subprocess.Popen(
                [
                    str(binary(self.service)),
                    f"--{self.service}Host",
                    "127.0.0.1",
                    f"--{self.service}Port",
                    str(self.port),
                    "--inMemoryPersistence",
                    "--skipApiVersionCheck",
                    "--loose",
                    "--silent",
                    "--disableTelemetry",
                ],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline and self.process.poll() is None:
                if _answers(self.port):
                    return self
                time.sleep(0.1)
            last = (self.workdir / "azurite.log").read_text(errors="replace")[-2000:]
            self.stop(keep_workdir=True)
        raise RuntimeError(f"azurite-{self.service} did not start: {last}")

    def stop(self, *, keep_workdir: bool = False) -> None:
        """Stop the process (terminate, then kill) and remove its folder."""
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.process = None
        if self.workdir is not None and not keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None


@dataclass
class Azurite:
    """Running Azurite services and the connection string that reaches them."""

    services: dict[str, AzuriteService] = field(default_factory=dict)

    @property
    def connection_string(self) -> str:
        """A storage connection string with an endpoint for each running service."""
        parts = [
            "DefaultEndpointsProtocol=http",
            f"AccountName={ACCOUNT}",
            f"AccountKey={ACCOUNT_KEY}",
        ]
        parts += [f"{name.capitalize()}Endpoint={svc.endpoint}" for name, svc in self.services.items()]
        return ";".join(parts) + ";"

    def stop(self) -> None:
        for svc in self.services.values():
            svc.stop()

    @staticmethod
    def table_name(prefix: str = "t") -> str:
        """A fresh, valid table name (letters and digits, a letter first)."""
        return f"{prefix}{uuid.uuid4().hex[:24]}"


def start_azurite(services: tuple[str, ...] = SERVICES) -> Azurite:
    """Start the given services; stop every started one if any fails."""
    running = Azurite()
    try:
        for name in services:
            running.services[name] = AzuriteService(name).start()
    except BaseException:
        running.stop()
        raise
    return running


def _session(services: tuple[str, ...]) -> Iterator[Azurite]:
    if not azurite_available(services):
        pytest.skip(MISSING)
    running = start_azurite(services)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def azurite_table() -> Iterator[Azurite]:
    """``azurite-table`` on a free loopback port for the session; skips when Azurite is not installed."""
    yield from _session(("table",))


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """Azurite Table, Blob and Queue on free loopback ports for the session; skips when not installed."""
    yield from _session(SERVICES)
