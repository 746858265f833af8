"""Throughput of ``adscore forward docker``: engine events read, enriched, spooled, signed and posted.

Run: ``.venv/bin/python bench/bench_forward_docker.py [events]`` (default 5000). A fake Docker
Engine API on a unix socket (the tests' one) holds ``events`` container commits (each with a
``/containers/{id}/changes`` answer of 200 paths); one ``--once`` pass forwards them to a loopback
receiver that verifies every Standard Webhooks signature. Printed: events per second end to end, at
batch sizes 1, 10 and 100, with and without the changes lookup, and the spool bytes per event; and the cost per path of\nthe changes summary.
"""

from __future__ import annotations

import base64
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.docker_engine_fake import FakeDockerEngine, engine_event  # noqa: E402
from tests.integration.forward_receiver import IngestReceiver  # noqa: E402

from adscore.forward.docker import DockerForwarder, ForwardOptions  # noqa: E402
from adscore.forward.identity import HostIdentity  # noqa: E402

SECRET = "whsec_" + base64.b64encode(b"bench-key-0123456789abcdefghijkl").decode()
CHANGES = [{"Path": f"/var/lib/app/data/file-{i}", "Kind": i % 3} for i in range(200)]


def run(n: int, batch_size: int, with_changes: bool) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(dir="/tmp") as d:
        sock = os.path.join(d, "docker.sock")
        with FakeDockerEngine(sock) as engine, IngestReceiver(SECRET) as rx:
            for i in range(n):
                cid = f"{i:064x}"
                if with_changes:
                    engine.changes[cid] = CHANGES
                action = "commit" if with_changes else "export"
                engine.emit(engine_event(action, cid, time_nano=1_773_656_100_000_000_000 + i,
                                         attrs={"name": f"c{i}", "image": "postgres:16"}))
            if not with_changes:  # export events also look the changes up: give 404s a miss-free path
                for i in range(n):
                    engine.changes[f"{i:064x}"] = []
            opts = ForwardOptions(endpoint=rx.url, secret=SECRET, spool_dir=Path(d) / "spool", socket_path=sock,
                                  batch_size=batch_size, spool_max_batches=1_000_000, spool_max_bytes=1 << 34)
            fwd = DockerForwarder(opts, HostIdentity("bench-host"))
            t0 = time.perf_counter()
            stats = fwd.run(once=True)
            elapsed = time.perf_counter() - t0
            fwd.close()
            assert stats.events_forwarded == n and len(rx.events()) == n, stats
            body_bytes = sum(len(str(b)) for b in rx.accepted)
    return n / elapsed, body_bytes / n


def summarize_cost() -> None:
    from adscore.forward.docker import summarize_changes

    typical = [{"Path": f"/usr/share/app/{i}/f.txt", "Kind": i % 3} for i in range(10_000)]
    sensitive = [{"Path": f"/var/lib/app/data/{i}", "Kind": 1} for i in range(10_000)]
    for label, changes in (("ordinary paths", typical), ("sensitive paths", sensitive)):
        t0 = time.perf_counter()
        summarize_changes(changes)
        print(f"  summarize_changes, 10,000 {label:16s}: {(time.perf_counter() - t0) * 1e6 / 10_000:6.1f} us/path")


def main() -> None:
    summarize_cost()
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    print(f"adscore forward docker, one --once pass of {n} events (fake engine on a unix socket -> loopback receiver)")
    for with_changes in (False, True):
        for batch_size in (1, 10, 100):
            rate, per_event = run(n, batch_size, with_changes)
            label = "commit + 200 sensitive paths" if with_changes else "export, empty changes"
            print(f"  {label:28s} batch {batch_size:>3}: {rate:8.0f} events/s  ~{per_event:5.0f} body bytes/event")


if __name__ == "__main__":
    main()
