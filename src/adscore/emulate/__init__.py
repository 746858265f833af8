"""Run the cloud functions locally against emulators: ``adscore emulate aws|azure|gcp``.

Each cloud has a module (:mod:`adscore.emulate.aws`, ``.azure``, ``.gcp``) with one entry point::

    def run(paths: Sequence[str], *, config: str | None, keep: bool, reporter: Reporter) -> EmulationResult

It starts the emulators that cloud needs on free loopback ports, creates the resources the
Terraform module creates (same names, same schema), sends the log files through the real
delivery path to the real function, and reports what arrives at the far end. This module holds
what the three share: where the bundled examples are, free ports, the error for a missing
emulator (with the one command that installs it), the result, and the :class:`Reporter` that
prints alerts as they arrive, the state items and the summary.

Nothing here imports a cloud SDK; the cloud modules import theirs inside ``run``.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from adscore.errors import AdscoreError
from adscore.render.escape import clean_text

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

__all__ = [
    "CLOUDS",
    "EXAMPLE_DIRS",
    "NAME_PREFIX",
    "WEBHOOK_SECRET",
    "Delivery",
    "EmulationResult",
    "EmulatorMissing",
    "Reporter",
    "StopSignals",
    "default_paths",
    "free_port",
    "function_file",
    "iter_records",
    "repo_root",
    "wait_for_port",
]

CLOUDS = ("aws", "azure", "gcp")

#: The ``examples/`` folders each cloud replays by default: its own logs, Kubernetes audit
#: events delivered the way that cloud's managed Kubernetes ships them (EKS through CloudWatch
#: Logs, AKS through diagnostic settings to Event Hub, GKE audit to the audit webhook / Pub/Sub),
#: a self-managed cluster's audit webhook batch and Docker hosts' events (both through the cloud's
#: HTTPS ingest endpoint, :mod:`adscore.emulate.ingest`).
EXAMPLE_DIRS: dict[str, tuple[str, ...]] = {
    "aws": ("aws", "kubernetes", "kubernetes-webhook", "docker"),
    "azure": ("azure", "kubernetes", "kubernetes-webhook", "docker"),
    "gcp": ("gcp", "kubernetes", "kubernetes-webhook", "docker"),
}

#: The Terraform modules' default ``name_prefix``: emulated resources carry the same names.
NAME_PREFIX = "adscore"

#: The webhook secret the emulated functions sign with and the loopback receiver checks.
#: Local only (the receiver listens on 127.0.0.1): not a credential.
WEBHOOK_SECRET = "adscore-emulate-local-secret"


class EmulatorMissing(AdscoreError):
    """An emulator or extra is not installed; the message names the one command that installs it."""

    def __init__(self, what: str, install: str) -> None:
        super().__init__(f"{what} is not installed: run `{install}`")
        self.what = what
        self.install = install


def repo_root() -> Path | None:
    """The source checkout adscore runs from (holding ``functions/`` and ``examples/``), or None.

    The checkout packaging builds from (:func:`adscore.packaging.project_root`), else the working
    folder when it holds ``functions/`` and ``examples/``.
    """
    from adscore.packaging import PackagingError, project_root

    try:
        return project_root()
    except PackagingError:
        pass
    cwd = Path.cwd()
    if (cwd / "functions").is_dir() and (cwd / "examples").is_dir():
        return cwd
    return None


def function_file(relative: str) -> Path:
    """A cloud function's source file in the checkout (e.g. ``"azure/function_app.py"``).

    Raises
    ------
    AdscoreError
        When adscore does not run from a source checkout holding ``functions/<relative>``.
    """
    root = repo_root()
    path = root / "functions" / relative if root is not None else None
    if path is None or not path.is_file():
        raise AdscoreError(f"functions/{relative} not found: run `adscore emulate` from a source checkout of adscore")
    return path


def default_paths(cloud: str) -> list[str]:
    """The bundled example folders for ``cloud`` (see :data:`EXAMPLE_DIRS`).

    Raises
    ------
    AdscoreError
        When adscore does not run from a source checkout (pass the log files explicitly then).
    """
    root = repo_root()
    if root is None or not (root / "examples").is_dir():
        raise AdscoreError("no examples/ folder found (run from a source checkout, or pass log files)")
    return [str(root / "examples" / d) for d in EXAMPLE_DIRS[cloud] if (root / "examples" / d).is_dir()]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float, alive: Any = None) -> bool:
    """Wait until 127.0.0.1:``port`` accepts connections; False on timeout or when ``alive()`` turns False."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


@dataclass
class Delivery:
    """Totals of one delivery path (e.g. ``s3 -> sqs -> sqs_handler``)."""

    path: str
    invocations: int = 0
    records: int = 0
    failed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "invocations": self.invocations, "records": self.records, "failed": self.failed}


@dataclass
class EmulationResult:
    """What an emulation sent and what arrived at the far end.

    Attributes
    ----------
    alerts : list of dict
        Each alert's JSON as received (from the SQS queue subscribed to the SNS topic, or the
        webhook receiver), in arrival order.
    unverified : int
        Webhook requests whose signature did not verify (0 when all is well).
    state_items : list of dict
        The items in the state store afterwards (key fields only).
    skipped : list of str
        ``"ref: reason"`` of each input record not sent (a shape this cloud does not deliver).
    """

    cloud: str
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    unverified: int = 0
    state_items: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    endpoints: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def delivery(self, path: str) -> Delivery:
        """The :class:`Delivery` for ``path``, created on first use."""
        d = self.deliveries.get(path)
        if d is None:
            d = self.deliveries[path] = Delivery(path)
        return d

    def alerts_by_detection(self) -> dict[str, int]:
        """Alert count per detection id."""
        return dict(sorted(Counter(str(a.get("detection", "?")) for a in self.alerts).items()))

    @property
    def failed(self) -> int:
        """Records the functions reported failed, over every delivery path."""
        return sum(d.failed for d in self.deliveries.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "cloud": self.cloud,
            "deliveries": [d.to_dict() for d in self.deliveries.values()],
            "alerts": len(self.alerts),
            "alerts_by_detection": self.alerts_by_detection(),
            "unverified": self.unverified,
            "state_items": len(self.state_items),
            "skipped": len(self.skipped),
            "failed": self.failed,
            "seconds": round(self.seconds, 2),
        }


def _clip(text: Any, n: int = 160) -> str:
    """One line of at most ``n`` characters, with no control character or escape sequence from a log."""
    return clean_text(text, n)


class Reporter:
    """Prints an emulation as it goes: progress notes and alerts as they arrive, then state and summary.

    Thread-safe (alerts arrive on receiver threads). With ``as_json`` every line on ``out`` is a
    JSON object: ``{"alert": {...}}``, ``{"state_item": {...}}``, ``{"summary": {...}}``,
    ``{"keep": {...}}``; notes go to ``err``. Text from logs is attacker-controlled: rich markup in
    it is escaped and each line is clipped.
    """

    def __init__(self, out: IO[str], err: IO[str], *, as_json: bool = False, color: bool | None = None) -> None:
        from rich.console import Console

        self.as_json = as_json
        self._out = out
        self._console = Console(file=out, soft_wrap=True, no_color=not color if color is not None else None,
                                highlight=False)
        self._err = Console(file=err, soft_wrap=True, highlight=False)
        self._lock = threading.Lock()
        self.alerts: list[dict[str, Any]] = []

    def _json(self, obj: Mapping[str, Any]) -> None:
        with self._lock:
            self._out.write(orjson.dumps(obj, default=str).decode() + "\n")
            self._out.flush()

    def note(self, message: str) -> None:
        """A progress line on stderr (``message`` is ours, not log text)."""
        from rich.markup import escape

        with self._lock:
            self._err.print(f"[dim]adscore emulate:[/dim] {escape(clean_text(message, 2000))}")

    def alert(self, alert: Mapping[str, Any]) -> None:
        """One alert as it arrives at the far end."""
        self.alerts.append(dict(alert))
        if self.as_json:
            self._json({"alert": alert})
            return
        from rich.markup import escape

        sev = _clip(alert.get("severity", "?"), 12)
        color = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}.get(sev, "white")
        principal = alert.get("principal") or {}
        who = principal.get("id") if isinstance(principal, dict) else principal
        with self._lock:
            self._console.print(
                f"[{color}]ALERT {escape(sev):8}[/{color}] [bold]{escape(_clip(alert.get('detection'), 40))}[/bold] "
                f"{escape(_clip(alert.get('title')))}  [dim]{escape(_clip(who, 80))}[/dim]"
            )

    def state_items(self, items: Sequence[Mapping[str, Any]], limit: int = 20) -> None:
        """The items written to the state store (the first ``limit`` in text mode)."""
        if self.as_json:
            for item in items:
                self._json({"state_item": item})
            return
        from rich.markup import escape

        with self._lock:
            self._console.print(f"[bold]state store[/bold]: {len(items)} items")
            for item in items[:limit]:
                self._console.print("  " + escape(_clip(orjson.dumps(item, default=str).decode(), 200)))
            if len(items) > limit:
                self._console.print(f"  … {len(items) - limit} more")

    def summary(self, result: EmulationResult) -> None:
        """The closing summary: deliveries, alerts per detection, failures, time."""
        if self.as_json:
            self._json({"summary": result.to_dict()})
            return
        from rich.markup import escape

        with self._lock:
            c = self._console
            c.print(f"[bold]adscore emulate {result.cloud}[/bold]: {len(result.alerts)} alerts in {result.seconds:.1f} s")
            for d in result.deliveries.values():
                c.print(f"  {escape(_clip(d.path))}: {d.invocations} invocations, {d.records} records, {d.failed} failed")
            for det, n in result.alerts_by_detection().items():
                c.print(f"  {escape(_clip(det, 120))}: {n}")
            if result.unverified:
                c.print(f"  [red]{result.unverified} webhook requests failed signature verification[/red]")
            if result.skipped:
                c.print(f"  {len(result.skipped)} records skipped (no {result.cloud} delivery path for their shape), e.g.:")
                for s in result.skipped[:3]:
                    c.print("    " + escape(_clip(s)))

    def keep(self, endpoints: Mapping[str, str], env: Mapping[str, str]) -> None:
        """Print the endpoints and the environment to reach the emulators (``--keep``)."""
        if self.as_json:
            self._json({"keep": {"endpoints": dict(endpoints), "env": dict(env)}})
            return
        with self._lock:
            c = self._console
            c.print("[bold]emulators are up[/bold] (Ctrl-C stops them):")
            for name, url in endpoints.items():
                c.print(f"  {name}: {url}")
            c.print("environment:")
            for k, v in env.items():
                c.print(f"  export {k}='{v}'", markup=False)


class StopSignals:
    """SIGINT and SIGTERM handlers for ``--keep``, installed *before* the endpoints are announced.

    A signal sent as soon as the endpoints line is read (a test, a supervisor) then always finds
    the handler, never Python's default action, which would kill the process before it stops the
    emulators. Both signals get a handler of their own, so a background job whose shell ignores
    SIGINT (``adscore emulate aws --keep &`` then ``kill -INT``) stops too.
    """

    def __init__(self) -> None:
        self.stopped = threading.Event()
        self._old: tuple[Any, Any] | None = None

    def __enter__(self) -> StopSignals:
        self._old = (signal.signal(signal.SIGTERM, self._stop), signal.signal(signal.SIGINT, self._stop))
        return self

    def _stop(self, *_: object) -> None:
        self.stopped.set()

    def wait(self) -> None:
        """Block until Ctrl-C, SIGINT or SIGTERM."""
        try:
            while not self.stopped.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old[0])
            signal.signal(signal.SIGINT, self._old[1])


def iter_records(paths: Sequence[str], result: EmulationResult) -> Iterator[tuple[str, Any]]:
    """Decoded records of ``paths`` as ``(ref, record)``; unreadable ones go to ``result.skipped`` with their reason."""
    from adscore.events import RecordError
    from adscore.sources.files import read_inputs

    for item in read_inputs(list(paths)):
        if isinstance(item, RecordError):
            result.skipped.append(f"{item.location or item.family}: {item.reason}")
        else:
            yield item
