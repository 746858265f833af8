"""``adscore forward docker`` against a fake Docker Engine API on a real unix socket, posting to a
real loopback endpoint that verifies the Standard Webhooks signature."""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from adscore.forward.docker import FILTERS, DockerForwarder, ForwardOptions
from adscore.forward.identity import HostIdentity
from adscore.forward.spool import Spool
from tests.integration.docker_engine_fake import FakeDockerEngine, engine_event
from tests.integration.forward_receiver import IngestReceiver

if TYPE_CHECKING:
    from collections.abc import Iterator

SECRET = "whsec_" + base64.b64encode(b"forwarder-test-key-0123456789abc").decode()
T0 = 1_773_656_100_000_000_000
CID = "4f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
IMAGE = "sha256:9b1f3c5e7a9d2b4f6e8a0c2e4a6c8e0a2c4e6a8c0e2a4c6e8a0c2e4a6c8e0a2c"
HOST = HostIdentity("prod-web-01", instance_id="i-0abc1234def567890", cloud="aws")


def commit(cid: str = CID, t: int = T0) -> dict[str, Any]:
    return engine_event("commit", cid, time_nano=t, attrs={
        "comment": "", "image": "postgres:16", "imageID": IMAGE, "imageRef": "snapshot-test:latest", "name": "billing-db",
    })


def save(t: int = T0 + 60_000_000_000) -> dict[str, Any]:
    return engine_event("save", IMAGE, typ="image", time_nano=t, attrs={"name": "snapshot-test:latest"})


def start(cid: str = CID, t: int = T0 - 1) -> dict[str, Any]:
    return engine_event("start", cid, time_nano=t, attrs={"image": "postgres:16", "name": "billing-db"})


CHANGES = [
    {"Path": "/var", "Kind": 0},
    {"Path": "/var/lib", "Kind": 0},
    {"Path": "/var/lib/postgresql/data/base/16384/2619", "Kind": 0},
    {"Path": "/root/.ssh/id_ed25519", "Kind": 1},
    {"Path": "/tmp/dump.sql", "Kind": 1},
    {"Path": "/tmp/x", "Kind": 1},
    {"Path": "/etc/motd", "Kind": 2},
]


@pytest.fixture
def sock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # unix socket paths are limited to 108 bytes: a short directory
    d = Path(f"/tmp/adsfwd-{os.getpid()}-{time.monotonic_ns() % 10**9}")
    d.mkdir()
    yield str(d / "docker.sock")
    for p in d.iterdir():
        p.unlink()
    d.rmdir()


def options(receiver: IngestReceiver, sock: str, spool: Path, **kw: Any) -> ForwardOptions:
    base: dict[str, Any] = {"batch_size": 10, "flush_seconds": 0.2, "backoff_max": 0.4, "reconnect_max": 0.3}
    base.update(kw)
    return ForwardOptions(endpoint=receiver.url, secret=SECRET, spool_dir=spool, socket_path=sock, **base)


class Running:
    """A forwarder following the engine in a thread."""

    def __init__(self, fwd: DockerForwarder) -> None:
        self.fwd = fwd
        self.stats: Any = None
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.stats = self.fwd.run()

    def __enter__(self) -> Running:
        self._t.start()
        assert self.fwd.connected.wait(10), "the forwarder did not connect to the engine"
        return self

    def __exit__(self, *exc: object) -> None:
        self.fwd.stop()
        self._t.join(15)
        assert not self._t.is_alive()
        self.fwd.close()


def _strip(ev: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in ev.items() if k not in ("hostname", "host_id", "changes", "user")}


def test_events_arrive_signed_with_the_host_and_a_commit_carries_its_changes(sock: str, tmp_path: Path) -> None:
    with FakeDockerEngine(sock) as engine, IngestReceiver(SECRET) as rx:
        engine.changes[CID] = CHANGES
        with Running(DockerForwarder(options(rx, sock, tmp_path / "spool"), HOST)):
            # WHEN the ADS emulation runs on the host (lifecycle events around it)
            engine.emit(start())
            engine.emit(commit())
            engine.emit(save())
            got = rx.wait_events(2)
    # THEN only the snapshot events arrive, each signed (the receiver verified every body), with the host
    assert all(status == 200 for _, status in rx.attempts)
    assert [(e["Type"], e["Action"]) for e in got] == [("container", "commit"), ("image", "save")]
    body = rx.accepted[0]
    assert (body["apiVersion"], body["kind"]) == ("adscore.dev/v1", "DockerEventBatch")
    assert body["host"] == {"hostname": "prod-web-01", "instance_id": "i-0abc1234def567890", "cloud": "aws"}
    assert {(e["hostname"], e["host_id"]) for e in got} == {("prod-web-01", "i-0abc1234def567890")}
    assert _strip(got[0]) == commit() and _strip(got[1]) == save()  # the engine's event, unchanged
    # the commit carries the bounded summary of the container's changes against its image
    assert got[0]["changes"] == {
        "added": 3, "changed": 3, "deleted": 1, "total": 7, "sensitive": 3, "truncated": False,
        "sensitive_paths": [
            {"kind": "C", "category": "data", "path": "/var/lib/postgresql/data/base/16384/2619"},
            {"kind": "A", "category": "secret", "path": "/root/.ssh/id_ed25519"},
            {"kind": "A", "category": "data", "path": "/tmp/dump.sql"},
        ],
    }
    assert "changes" not in got[1]
    # the stream asked the engine only for the actions the detections use
    events_req = next(r for r in engine.requests if r.startswith("/events"))
    assert "filters=" in events_req and FILTERS == {"type": ["container", "image"], "event": ["commit", "export", "save"]}


def test_the_socket_going_away_and_coming_back_leaves_no_gap_and_no_duplicate(sock: str, tmp_path: Path) -> None:
    other = "0" * 63 + "7"
    with FakeDockerEngine(sock) as engine, IngestReceiver(SECRET) as rx:
        fwd = DockerForwarder(options(rx, sock, tmp_path / "spool"), HOST)
        with Running(fwd):
            engine.emit(commit(t=T0))
            rx.wait_events(1)
            # WHEN the socket goes away, two commits happen meanwhile (one in the same nanosecond as the
            # one already forwarded: the engine's since= is inclusive and sends that one again)
            engine.go_away()
            engine.emit(commit(cid=other, t=T0))
            engine.emit(commit(t=T0 + 5))
            time.sleep(0.4)  # the forwarder retries a missing socket
            engine.come_back()
            got = rx.wait_events(3)
            time.sleep(0.5)  # anything duplicated would have arrived by now
    # THEN each commit arrived exactly once, in order
    ids = [(e["Actor"]["ID"], e["timeNano"]) for e in rx.events()]
    assert ids == [(CID, T0), (other, T0), (CID, T0 + 5)]
    assert len(got) == 3
    assert fwd.stats.reconnects >= 1 and fwd.stats.duplicates_skipped >= 1
    since = [r for r in engine.requests if r.startswith("/events")][-1]
    assert "since=1773656100.000000000" in since


def test_an_endpoint_outage_loses_nothing_and_a_batch_keeps_its_id_across_retries(sock: str, tmp_path: Path) -> None:
    with FakeDockerEngine(sock) as engine, IngestReceiver(SECRET) as rx:
        engine.changes[CID] = CHANGES
        # GIVEN the endpoint fails (5xx, throttling, timeout status) for a while
        rx.answer_next(503, 503, 429, 500, 408)
        fwd = DockerForwarder(options(rx, sock, tmp_path / "spool", batch_size=1), HOST)
        with Running(fwd):
            for i in range(4):
                engine.emit(commit(t=T0 + i))
            got = rx.wait_events(4)
    # THEN all four arrive, in order, and the retries of a batch carried the same webhook-id
    assert [e["timeNano"] for e in got] == [T0 + i for i in range(4)]
    failed = [mid for mid, status in rx.attempts if status != 200]
    assert len(failed) == 5 and set(failed) <= set(rx.accepted_ids)
    assert len(set(rx.accepted_ids)) == 4
    assert fwd.stats.post_failures == 5 and fwd.spool.pending() == []


def test_the_endpoint_down_entirely_then_back(sock: str, tmp_path: Path) -> None:
    with FakeDockerEngine(sock) as engine:
        rx = IngestReceiver(SECRET).start()
        url = rx.url
        rx.stop()  # connection refused
        spool = tmp_path / "spool"
        fwd = DockerForwarder(ForwardOptions(endpoint=url, secret=SECRET, spool_dir=spool, socket_path=sock,
                                             batch_size=1, flush_seconds=0.1, backoff_max=0.3), HOST)
        with Running(fwd):
            engine.emit(commit(t=T0))
            engine.emit(save())
            deadline = time.monotonic() + 10
            while len(fwd.spool.pending()) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert len(fwd.spool.pending()) == 2  # spooled while the endpoint is away
            rx.start()  # same port
            got = rx.wait_events(2)
            rx.stop()
    assert [e["Action"] for e in got] == ["commit", "save"]


def test_a_restart_posts_the_spool_first_then_resumes_from_the_saved_time(sock: str, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    with FakeDockerEngine(sock) as engine, IngestReceiver(SECRET) as rx:
        engine.emit(start())
        engine.emit(commit(t=T0))
        # GIVEN a first run (one pass) while the endpoint is failing: its batch stays spooled
        rx.answer_next(503)
        first = DockerForwarder(options(rx, sock, spool), HOST)
        stats = first.run(once=True)
        first.close()
        assert stats.pending_batches == 1 and rx.events() == []
        # and, while the forwarder is stopped, the engine logs more (one in the same nanosecond)
        engine.emit(commit(cid="0" * 63 + "9", t=T0))
        engine.emit(save())
        # WHEN it starts again
        second = DockerForwarder(options(rx, sock, spool), HOST)
        stats = second.run(once=True)
        second.close()
    # THEN the spooled batch goes first, then exactly the events after the saved cursor
    assert [(e["Action"], e["Actor"]["ID"][:4]) for e in rx.events()] == [
        ("commit", CID[:4]), ("commit", "0000"), ("save", IMAGE[:4]),
    ]
    assert len(rx.accepted) == 2 and stats.pending_batches == 0
    assert stats.duplicates_skipped == 1  # the boundary event the engine sent again
    assert [r for r in engine.requests if r.startswith("/events")][-1].count("since=1773656100.000000000") == 1


def test_the_spool_cap_drops_the_oldest_batches_loudly(
    sock: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with FakeDockerEngine(sock) as engine, IngestReceiver(SECRET) as rx:
        for i in range(5):
            engine.emit(commit(t=T0 + i))
        rx.answer_next(*[503] * 20)
        fwd = DockerForwarder(options(rx, sock, tmp_path / "spool", batch_size=1, spool_max_batches=2), HOST)
        with caplog.at_level(logging.ERROR, logger="adscore.forward.spool"):
            stats = fwd.run(once=True)
        fwd.close()
        assert (stats.batches_dropped, stats.events_dropped, stats.pending_batches) == (3, 3, 2)
        assert sum("DROPPED the oldest batch" in r.getMessage() for r in caplog.records) == 3
        # WHEN the endpoint is back, the two newest arrive
        rx.clear_plan()
        again = DockerForwarder(options(rx, sock, tmp_path / "spool"), HOST)
        stats = again.run(once=True)
        again.close()
    assert [e["timeNano"] for e in rx.events()] == [T0 + 3, T0 + 4]
    assert stats.pending_batches == 0


def test_a_permanent_refusal_moves_the_batch_aside_and_the_rest_flows(sock: str, tmp_path: Path) -> None:
    with FakeDockerEngine(sock) as engine, IngestReceiver(SECRET) as rx:
        for i in range(3):
            engine.emit(commit(t=T0 + i))
        rx.answer_next(400)
        fwd = DockerForwarder(options(rx, sock, tmp_path / "spool", batch_size=1), HOST)
        stats = fwd.run(once=True)
        fwd.close()
    assert [e["timeNano"] for e in rx.events()] == [T0 + 1, T0 + 2]
    assert stats.batches_rejected == 1 and stats.pending_batches == 0
    rejected = list((tmp_path / "spool" / "rejected").iterdir())
    assert len(rejected) == 1 and orjson.loads(rejected[0].read_bytes())["events"][0]["timeNano"] == T0
    assert len(rx.attempts) == 3  # the refused batch was not retried


def test_an_already_received_batch_counts_as_delivered(sock: str, tmp_path: Path) -> None:
    with FakeDockerEngine(sock) as engine, IngestReceiver(SECRET) as rx:
        engine.emit(commit())
        rx.answer_next(409)
        fwd = DockerForwarder(options(rx, sock, tmp_path / "spool"), HOST)
        stats = fwd.run(once=True)
        fwd.close()
    assert (stats.batches_already_received, stats.pending_batches) == (1, 0)


def test_a_wrong_secret_is_refused_by_the_endpoint_and_kept_aside(sock: str, tmp_path: Path) -> None:
    other = "whsec_" + base64.b64encode(b"some-other-key-0123456789abcdefg").decode()
    with FakeDockerEngine(sock) as engine, IngestReceiver(SECRET) as rx:
        engine.emit(commit())
        fwd = DockerForwarder(ForwardOptions(endpoint=rx.url, secret=other, spool_dir=tmp_path / "s", socket_path=sock), HOST)
        stats = fwd.run(once=True)
        fwd.close()
    assert rx.attempts and rx.attempts[0][1] == 401 and rx.accepted == []
    assert stats.batches_rejected == 1


def test_the_command_line_entry_point(sock: str, tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("adscore")
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    with FakeDockerEngine(sock) as engine, IngestReceiver(SECRET) as rx:
        engine.emit(commit())
        engine.changes[CID] = CHANGES
        env = {k: v for k, v in os.environ.items() if not k.startswith("ADSCORE_")}
        args = [str(exe), "forward", "docker", "--endpoint", rx.url, "--socket", sock, "--spool", str(tmp_path / "sp"),
                "--no-cloud-metadata", "--once"]
        done = subprocess.run([*args, "--secret-file", str(secret_file)], capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 0, done.stderr
        assert orjson.loads(done.stdout)["events_forwarded"] == 1
        assert rx.events()[0]["changes"]["sensitive"] == 3
        assert SECRET not in done.stderr and SECRET not in done.stdout
        # the secret from the environment works too
        engine.emit(save())
        done = subprocess.run(args, capture_output=True, text=True, env={**env, "ADSCORE_FORWARD_SECRET": SECRET}, timeout=60)
        assert done.returncode == 0, done.stderr
        # bad input fails at start, naming what is wrong
        bad = subprocess.run(args, capture_output=True, text=True, env={**env, "ADSCORE_FORWARD_SECRET": "hunter2"}, timeout=60)
        assert bad.returncode == 2 and "ADSCORE_FORWARD_SECRET" in bad.stderr and "hunter2" not in bad.stderr
        plain = [a if a != rx.url else "http://ingest.example.com/x" for a in args]
        bad = subprocess.run([*plain, "--secret-file", str(secret_file)], capture_output=True, text=True, env=env, timeout=60)
        assert bad.returncode == 2 and "--endpoint" in bad.stderr
    assert len(rx.events()) == 2
    # the engine gone: --once says so with exit status 1
    done = subprocess.run([*args, "--secret-file", str(secret_file)], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1 and orjson.loads(done.stdout)["read_error"]


def test_spool_put_and_cap_in_bytes(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_batches=100, max_bytes=300)
    for i in range(4):
        spool.put(b"x" * 100, i + 1)
    kept = spool.pending()
    assert len(kept) == 3 and spool.dropped_batches == 1 and spool.dropped_events == 1
    assert [p.stem.rsplit("-", 1)[1] for p in kept] == ["2", "3", "4"]


def test_the_seed_emulation_through_the_forwarder_raises_container_snapshot_alerts(sock: str, tmp_path: Path) -> None:
    """The ADS emulation (`docker commit <container> snapshot-test`, `docker save snapshot-test | gzip`) as
    engine events on the socket, forwarded with the auditd user and the changes, then run through the engine."""
    from adscore.engine import Engine
    from adscore.settings import load_settings
    from adscore.state.memory import MemoryStateStore
    from tests.integration.test_forward_identity import AUDIT, MY_NAME

    audit = tmp_path / "audit.log"
    audit.write_text(AUDIT)
    hostile = {"Path": "/root/secret-\x1b]0;pwned\x07\n<b>" + "y" * 900, "Kind": 1}
    with FakeDockerEngine(sock) as engine, IngestReceiver(SECRET) as rx:
        engine.changes[CID] = [*CHANGES, hostile]
        engine.emit(start())
        engine.emit(commit())
        engine.emit(save())
        fwd = DockerForwarder(options(rx, sock, tmp_path / "spool", audit_log=audit), HOST)
        fwd.run(once=True)
        fwd.close()
    events = rx.events()
    assert [e.get("user") for e in events] == [MY_NAME, MY_NAME]
    report = Engine(load_settings(None, state="memory://"), MemoryStateStore()).run(
        [(f"docker-forward[{i}]", e) for i, e in enumerate(events)]
    )
    snaps = sorted((a for a in report.alerts if a.detection == "container.snapshot"), key=lambda a: a.title)
    assert [(a.severity, a.principal["id"]) for a in snaps] == [
        ("high", f"docker-user:prod-web-01/{MY_NAME}"),  # commit: sensitive paths changed -> raised
        ("high", f"docker-user:prod-web-01/{MY_NAME}"),  # save
    ]
    commit_alert, save_alert = snaps
    assert commit_alert.title.startswith(f"Container 4f1e2d3c4b5a committed to an image on host prod-web-01 by {MY_NAME}")
    assert "4 sensitive paths changed" in commit_alert.title
    assert "/root/.ssh/id_ed25519 (secret, added)" in commit_alert.summary
    assert commit_alert.context["instance_id"] == "i-0abc1234def567890"
    assert save_alert.title.startswith("Image 9b1f3c5e7a9d saved to a tar on host prod-web-01")
    # the hostile path is capped, and no control character reaches the alert
    paths = [p["path"] for p in commit_alert.context["filesystem_changes"]["sensitive_paths"]]
    assert len(paths[-1]) <= 512
    for text in (commit_alert.summary, commit_alert.title, *paths):
        assert "\x1b" not in text and "\x07" not in text


def test_huge_labels_cannot_hide_a_snapshot_event(sock: str, tmp_path: Path) -> None:
    # GIVEN commits of containers whose labels are inflated: 100 KiB (over the per-event cap) and
    # 2 MiB (over the stream line cap)
    big = commit(t=T0)
    big["Actor"]["Attributes"]["com.example.pad"] = "x" * 100_000
    huge = commit(cid="0" * 63 + "5", t=T0 + 1)
    huge["Actor"]["Attributes"]["com.example.pad"] = "y" * 2_000_000
    with FakeDockerEngine(sock) as engine, IngestReceiver(SECRET) as rx:
        engine.emit(big)
        engine.emit(huge)
        engine.emit(save())
        fwd = DockerForwarder(options(rx, sock, tmp_path / "spool"), HOST)
        stats = fwd.run(once=True)
        fwd.close()
    got = rx.events()
    # THEN all three arrive, the big ones without the padding and marked truncated
    assert [(e["Action"], e["timeNano"], e.get("truncated")) for e in got] == [
        ("commit", T0, True), ("commit", T0 + 1, True), ("save", T0 + 60_000_000_000, None),
    ]
    assert got[0]["Actor"]["Attributes"] == {k: v for k, v in big["Actor"]["Attributes"].items() if k != "com.example.pad"}
    assert got[1]["Actor"] == {"ID": "0" * 63 + "5", "Attributes": {}}
    assert stats.oversized_events == 1 and len(orjson.dumps(rx.accepted[0])) < 100_000
