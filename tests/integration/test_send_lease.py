"""A send that hangs loses nothing: the send has a budget and every claim is a lease.

The done-when of the lease: a webhook that hangs, the sender process killed mid-send (as a Lambda
timeout would), and a later retry delivers every alert of the batch once the lease expires; a retry
within the lease neither sends nor says "already sent".
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from adscore.alerts import make_alert
from adscore.engine import BatchReport
from adscore.errors import SinkError
from adscore.send import SendBudget, deliver
from adscore.sinks.base import SendReport
from adscore.state.base import LEASE_PENDING, LEASE_SENT
from adscore.state.memory import MemoryStateStore

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from adscore.alerts import Alert

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = [str(ROOT / "examples" / "aws")]
LEASE_SECONDS = 8.0
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


class HangingWebhook:
    """Loopback webhook that holds every request open until :meth:`answer` is called, then answers 200."""

    def __init__(self) -> None:
        self.hanging = threading.Event()
        self.release = threading.Event()
        self.delivered: list[str] = []
        self._lock = threading.Lock()

    def answer(self) -> None:
        self.release.set()

    def __enter__(self) -> HangingWebhook:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not hook.release.is_set():
                    hook.hanging.set()
                    hook.release.wait(120)
                    return  # the sender is gone by now: no answer
                with hook._lock:
                    hook.delivered.append(str(orjson.loads(body)["id"]))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _replay(state: str, *sinks: str) -> list[str]:
    return [sys.executable, "-m", "adscore.cli", "replay", *EXAMPLES, "--state", state, "--output", "jsonl",
            *(a for s in sinks for a in ("--sink", s)), "--no-progress"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADSCORE_")}
    env["ADSCORE_SEND_TIMEOUT_SECONDS"] = str(LEASE_SECONDS)
    env["ADSCORE_WEBHOOK_SECRET"] = "lease-test"
    return env


def _ids(stdout: str) -> list[str]:
    return [str(orjson.loads(line)["id"]) for line in stdout.splitlines() if line.strip()]


@pytest.fixture
def webhook() -> Iterator[HangingWebhook]:
    with HangingWebhook() as hook:
        yield hook


@pytest.mark.integration
def test_a_killed_send_is_delivered_by_the_retry_once_the_lease_expires(
    tmp_path: Path, webhook: HangingWebhook
) -> None:
    # GIVEN the alerts a replay of the examples produces (fresh state, no sink)
    expected = _ids(
        subprocess.run(
            _replay(f"sqlite:///{tmp_path / 'ref.db'}"),
            env=_env(),
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
    )
    assert len(expected) > 10
    state = f"sqlite:///{tmp_path / 'state.db'}"
    # WHEN the sender hangs on the webhook and is killed mid-send, as a function timeout would
    sender = subprocess.Popen(
        _replay(state, webhook.url), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert webhook.hanging.wait(120), "the sender never reached the webhook"
    finally:
        sender.send_signal(signal.SIGKILL)
        sender.communicate(timeout=30)
    killed_at = time.monotonic()
    webhook.answer()
    # THEN a retry within the lease sends nothing and says nothing was already sent: it must retry later
    early = subprocess.run(
        _replay(state, webhook.url), env=_env(), capture_output=True, text=True, timeout=120
    )
    assert time.monotonic() - killed_at < LEASE_SECONDS, "the machine is too slow for this lease"
    assert early.returncode == 1, early.stderr
    assert "(0 already sent)" in early.stderr
    assert webhook.delivered == []
    # AND a retry after the lease delivers every alert of the batch
    time.sleep(max(0.0, LEASE_SECONDS + 1 - (time.monotonic() - killed_at)))
    retry = subprocess.run(
        _replay(state, webhook.url), env=_env(), capture_output=True, text=True, timeout=120
    )
    assert retry.returncode == 0, retry.stderr
    assert sorted(webhook.delivered) == sorted(expected)
    assert sorted(_ids(retry.stdout)) == sorted(expected)
    # AND a later redelivery is deduplicated against the confirmed sends
    again = subprocess.run(
        _replay(state, webhook.url), env=_env(), capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stderr
    assert f"({len(expected)} already sent)" in again.stderr
    assert len(webhook.delivered) == len(expected)


# --------------------------------------------------------------------------- the budget, in process


def _id(n: int) -> str:
    return f"{n:032x}"


def _alert(n: int) -> Alert:
    return make_alert(
        id=_id(n), detection="snapshot.burst", technique="T1578.001", technique_name="Create Snapshot",
        tactic="Defense Evasion", severity="high", title=f"alert {n}", summary="s", principal={"id": "p"},
        cloud="aws", account="1", region="us-east-1", resources=[], first_seen=T0, last_seen=T0, count=1,
        event_ids=[f"e{n}"], records=[], response=[], context={}, entity="p", window_start=T0,
    )


class _Sink:
    def __init__(self, hang: threading.Event | None = None, fail: Sequence[str] = ()) -> None:
        self.hang, self.fail, self.calls = hang, set(fail), 0

    def send(self, alerts: Sequence[Alert]) -> SendReport:
        self.calls += 1
        if self.hang is not None:
            self.hang.wait(30)
        failed = tuple(a.id for a in alerts if a.id in self.fail)
        if failed:
            raise SinkError("down", unsent=failed)
        return SendReport(sent=tuple(a.id for a in alerts))

    def close(self) -> None:
        pass


def test_a_hanging_send_returns_within_its_budget_and_keeps_its_leases() -> None:
    store, hang = MemoryStateStore(), threading.Event()
    report = BatchReport()
    alerts = [(_alert(n), {f"r{n}"}) for n in range(3)]
    started = time.monotonic()
    try:
        deliver(store, _Sink(hang), alerts, report, DAY, SendBudget(0.3, 30.0))
    finally:
        hang.set()
    assert time.monotonic() - started < 5
    assert report.sent == []
    assert set(report.failed) == {"r0", "r1", "r2"}
    assert report.sink_error is not None and "budget" in str(report.sink_error)
    # the send may still land: the leases stay pending, a retry within them is told to come back later
    wall = datetime.now(UTC)
    assert store.lease(f"alert|{_id(0)}", T0, DAY, now=wall, lease=timedelta(seconds=30)) == LEASE_PENDING


def test_a_failed_send_gives_its_lease_back_and_a_confirmed_one_deduplicates() -> None:
    store = MemoryStateStore()
    report = BatchReport()
    deliver(
        store, _Sink(fail=[_id(1)]), [(_alert(0), {"r0"}), (_alert(1), {"r1"})], report, DAY, SendBudget(5, 5)
    )
    assert [a.id for a in report.sent] == [_id(0)]
    assert set(report.failed) == {"r1"}
    again = BatchReport()
    sink = _Sink()
    deliver(store, sink, [(_alert(0), {"r0"}), (_alert(1), {"r1"})], again, DAY, SendBudget(5, 5))
    assert [a.id for a in again.sent] == [_id(1)]  # sent at once: its lease was given back
    assert again.counts["deduplicated"] == 1 and not again.failed
    wall = datetime.now(UTC)
    assert store.lease(f"alert|{_id(1)}", T0, DAY, now=wall, lease=timedelta(seconds=5)) == LEASE_SENT


def test_a_functions_budget_and_lease_end_with_its_invocation() -> None:
    from adscore.settings import load_settings

    budget = SendBudget.of(load_settings(None), remaining_seconds=30.0)
    assert (budget.seconds, budget.lease) == (28.0, 30.0)
    time.sleep(0.2)  # the invocation goes on: what is left for the send shrinks with it
    later = budget.now()
    assert later.lease < 30.0 and later.seconds < 28.0 and later.lease - later.seconds == pytest.approx(2.0)
    assert SendBudget.of(load_settings(None, send_timeout_seconds=7)).now() == SendBudget(7.0, 7.0)
