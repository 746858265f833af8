"""State cost of steady traffic: key-writes and key-reads per 1,000 events, and time.

Run: ``.venv/bin/python bench/bench_state.py [events]``. Prints one line per
backend, with and without ``BatchedState``. Steady traffic (the same principals
calling the same APIs) should cost a handful of writes per 1,000 events when
batched, against two per event unbatched.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from adscore.state.base import BatchedState, StateStore, StateView, make_key
from adscore.state.memory import MemoryStateStore
from adscore.state.sqlite import SqliteStateStore

if TYPE_CHECKING:
    from collections.abc import Callable

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=10)
BATCH = 1000


def events(count: int) -> list[tuple[str, str, str, datetime]]:
    """(event id, principal, api, time): 20 principals x 30 APIs, 10 events per second."""
    rng = random.Random(7)
    principals = [f"arn:aws:iam::123456789012:role/app-{i}" for i in range(20)]
    apis = [f"ec2:Describe{i}" for i in range(30)]
    return [
        (f"ev-{n}", rng.choice(principals), rng.choice(apis), T0 + timedelta(milliseconds=100 * n))
        for n in range(count)
    ]


def evaluate(state: StateView, event: tuple[str, str, str, datetime]) -> None:
    event_id, principal, api, at = event
    state.add(make_key("discovery.api_burst", principal), [api], at, WINDOW)
    state.first_seen(make_key("discovery.new_api", principal), api, event_id, at, timedelta(days=30))


def run(name: str, store: StateStore, stream: list[tuple[str, str, str, datetime]], batched: bool) -> None:
    started = time.perf_counter()
    reads = 0
    for start in range(0, len(stream), BATCH):
        chunk = stream[start : start + BATCH]
        if batched:
            state = BatchedState(store)
            for event in chunk:
                state.current_record = event[0]
                evaluate(state, event)
            state.flush()
            reads += state.reads
        else:
            for event in chunk:
                evaluate(store, event)
    elapsed = time.perf_counter() - started
    per_k = 1000 / len(stream)
    mode = "batched" if batched else "direct "
    print(
        f"{name:7} {mode} writes/1k={store.writes * per_k:8.1f} "
        f"reads/1k={reads * per_k:7.1f} us/event={elapsed / len(stream) * 1e6:8.1f}"
    )


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    stream = events(count)
    with tempfile.TemporaryDirectory() as tmp:
        makers: list[tuple[str, Callable[[str], StateStore]]] = [
            ("memory", lambda _: MemoryStateStore()),
            ("sqlite", lambda tag: SqliteStateStore(Path(tmp) / f"{tag}.db")),
        ]
        for name, make in makers:
            for batched in (False, True):
                store = make(f"{name}-{batched}")
                run(name, store, stream, batched)
                store.close()


if __name__ == "__main__":
    main()
