"""Azurite (the Azure Storage emulator) on loopback: Table, Blob and Queue storage.

Azurite comes from the npm registry through the repo's ``package.json`` (an exact version), so
``npm ci`` in the repo root installs it into ``node_modules/.bin``; a global install on ``PATH``
works too. Used by ``adscore emulate azure`` and by the test fixtures in
``tests/integration/azurite.py``::

    running = start_azurite(("table", "blob"))
    try:
        client = TableClient.from_connection_string(running.connection_string, "adscorestate")
    finally:
        running.stop()

One service runs as ``azurite-<service>``; several run in one ``azurite`` process (one Node.js
start instead of three). Each service listens on 127.0.0.1 on a free port, keeps its data in memory
(``--inMemoryPersistence``; the process runs in a temporary folder, which takes its log), skips
API-version checks (``--skipApiVersionCheck``: the SDK may be newer than the emulator), runs in
``--loose`` mode and sends no telemetry.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from adscore.emulate import EmulatorMissing, free_port, repo_root, wait_for_port

__all__ = [
    "ACCOUNT",
    "ACCOUNT_KEY",
    "INSTALL",
    "SERVICES",
    "Azurite",
    "azurite_available",
    "binary",
    "require_azurite",
    "start_azurite",
]

ACCOUNT = "devstoreaccount1"
#: Azurite's well-known development key (public, documented by Microsoft; not a secret).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

SERVICES = ("table", "blob", "queue")
START_TIMEOUT = 60.0
#: The command that installs Azurite (run in the repo root: it reads package.json).
INSTALL = "npm ci"


def binary(name: str) -> Path | None:
    """Path of an Azurite executable (``azurite``, ``azurite-table``, ...), or None.

    Looks in the source checkout's ``node_modules/.bin`` first, then on ``PATH``.
    """
    root = repo_root()
    if root is not None:
        local = root / "node_modules" / ".bin" / name
        if local.exists():
            return local
    found = shutil.which(name)
    return Path(found) if found else None


def _executable(services: tuple[str, ...]) -> str:
    return f"azurite-{services[0]}" if len(services) == 1 else "azurite"


def azurite_available(services: tuple[str, ...] = SERVICES) -> bool:
    """Whether the Azurite executable for ``services`` and ``node`` are installed."""
    return binary(_executable(services)) is not None and shutil.which("node") is not None


def require_azurite(services: tuple[str, ...] = SERVICES) -> None:
    """Raise :class:`~adscore.emulate.EmulatorMissing` (naming ``npm ci``) when Azurite is not installed."""
    if not azurite_available(services):
        raise EmulatorMissing("Azurite (Node.js 18+ and the repo's package.json)", INSTALL)


@dataclass
class Azurite:
    """One running Azurite process serving ``services``, and the connection string that reaches them.

    Attributes
    ----------
    ports : dict
        ``service -> port`` on 127.0.0.1.
    """

    services: tuple[str, ...] = SERVICES
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    workdir: Path | None = field(default=None, repr=False)

    def endpoint(self, service: str) -> str:
        """``http://127.0.0.1:<port>/devstoreaccount1`` of one service."""
        return f"http://127.0.0.1:{self.ports[service]}/{ACCOUNT}"

    @property
    def endpoints(self) -> dict[str, str]:
        """``service -> endpoint URL`` of every running service."""
        return {s: self.endpoint(s) for s in self.services if s in self.ports}

    @property
    def connection_string(self) -> str:
        """A storage connection string with an endpoint for each running service."""
        parts = ["DefaultEndpointsProtocol=http", f"AccountName={ACCOUNT}", f"AccountKey={ACCOUNT_KEY}"]
        parts += [f"{name.capitalize()}Endpoint={url}" for name, url in self.endpoints.items()]
        return ";".join(parts) + ";"

    @property
    def pid(self) -> int | None:
        """The process id while it runs."""
        return self.process.pid if self.process is not None else None

    def start(self) -> Azurite:
        """Start on free ports and wait until every service answers (three tries on a port race).

        Raises
        ------
        EmulatorMissing
            When the executable is not installed.
        RuntimeError
            When it does not start (the message ends with its log).
        """
        exe = binary(_executable(self.services))
        if exe is None:
            require_azurite(self.services)
        assert exe is not None
        self.workdir = Path(tempfile.mkdtemp(prefix="azurite-"))
        last = ""
        for _ in range(3):
            self.ports = {s: free_port() for s in self.services}
            args = [str(exe)]
            for s, port in self.ports.items():
                args += [f"--{s}Host", "127.0.0.1", f"--{s}Port", str(port)]
            args += [
                "--inMemoryPersistence",
                "--skipApiVersionCheck",
                "--loose",
                "--silent",
                "--disableTelemetry",
            ]
            with (self.workdir / "azurite.log").open("wb") as log:
                self.process = subprocess.Popen(
                    args, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
                )
            deadline = time.monotonic() + START_TIMEOUT
            if all(
                wait_for_port(
                    p, max(0.1, deadline - time.monotonic()), lambda proc=self.process: proc.poll() is None
                )
                for p in self.ports.values()
            ):
                return self
            last = (self.workdir / "azurite.log").read_text(errors="replace")[-2000:]
            self.stop(keep_workdir=True)
        self.stop()
        raise RuntimeError(f"{exe.name} did not start: {last}")

    def stop(self, *, keep_workdir: bool = False) -> None:
        """Stop the process (terminate, then kill) and remove its folder; safe to call twice."""
        if self.process is not None:
            if self.process.poll() is None:
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

    def __enter__(self) -> Azurite:
        return self if self.process is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @staticmethod
    def table_name(prefix: str = "t") -> str:
        """A fresh, valid table name (letters and digits, a letter first)."""
        return f"{prefix}{uuid.uuid4().hex[:24]}"


def start_azurite(services: tuple[str, ...] = SERVICES) -> Azurite:
    """Start Azurite serving ``services`` (one process) and return it running.

    Raises
    ------
    EmulatorMissing
        When Azurite or Node.js is not installed (the message names ``npm ci``).
    RuntimeError
        When it does not start.
    """
    require_azurite(services)
    return Azurite(tuple(services)).start()
