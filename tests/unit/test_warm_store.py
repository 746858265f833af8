"""WarmStore: the process-wide read cache answers exactly what the store would, and reads it far less."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adscore.engine import Engine
from adscore.settings import load_settings
from adscore.state.base import MAX_SET_MEMBERS, SetUnion, ValuePut, ValuePutIfAbsent, WriteBatch
from adscore.state.memory import MemoryStateStore
from adscore.state.sqlite import SqliteStateStore
from adscore.state.warm import WarmStore, warm
from adscore.windows import epoch_seconds

if TYPE_CHECKING:
    from adscore.alerts import Alert
    from adscore.state.base import StateStore

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
E0 = epoch_seconds(T0)
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

KEYS = ("s1", "s2", "s3")
MEMBERS = st.frozensets(st.sampled_from(["a", "b", "c", "d", "e", "f"]), min_size=1, max_size=4)
OFFSET = st.integers(min_value=-120, max_value=120)

# One operation: (who, kind, key, payload, offset seconds). who 0 writes through the cache, who 1 is
# another connection to the same file (another process or instance).
OPS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from([0, 1]), st.just("union"), st.sampled_from(KEYS), MEMBERS, OFFSET),
        st.tuples(st.sampled_from([0, 1]), st.just("put"), st.sampled_from(KEYS), st.sampled_from("xyz"), OFFSET),
        st.tuples(st.sampled_from([0, 1]), st.just("new"), st.sampled_from(KEYS), st.sampled_from("xyz"), OFFSET),
        st.tuples(st.just(0), st.just("read"), st.sampled_from(KEYS), st.just(""), OFFSET),
        st.tuples(st.just(0), st.sampled_from(["begin", "end"]), st.just(""), st.just(""), st.just(0)),
    ),
    max_size=40,
)


def _batch(kind: str, key: str, payload: object, offset: int, t0: datetime = T0) -> WriteBatch:
    batch = WriteBatch()
    e0 = epoch_seconds(t0)
    expires = e0 + 60 + offset
    if kind == "union":
        assert isinstance(payload, frozenset)
        batch.unions[key] = SetUnion(payload, expires)
    elif kind == "put":
        batch.puts[key] = ValuePut(str(payload), expires)
    else:
        batch.put_if_absent[key] = ValuePutIfAbsent(str(payload), expires, e0 + offset)
    return batch


def check_reads(cache: WarmStore, other: StateStore, judge: StateStore, ops: list[tuple], t0: datetime = T0) -> None:  # type: ignore[type-arg]
    """Play ``ops`` (see OPS): ``cache`` in front of one store object, ``other`` and ``judge`` two more
    objects on the same data (other instances); every read through the cache must equal the judge's,
    but inside a batch after another writer wrote (the batch reads the store as at its begin())."""
    in_batch = False
    others_in_batch = False
    for who, kind, key, payload, offset in ops:
        if kind == "begin":
            cache.begin()
            in_batch, others_in_batch = True, False
        elif kind == "end":
            cache.end()
            in_batch = False
        elif kind == "read":
            at = t0 + timedelta(seconds=offset)
            got = (cache.get_sets([key], at), cache.get_values([key], at))
            want = (judge.get_sets([key], at), judge.get_values([key], at))
            if not (in_batch and others_in_batch):
                assert got == want
        elif who == 0:
            cache.write(_batch(kind, key, payload, offset, t0))
            others_in_batch = False  # the write saw the other writers: the cache was dropped
        else:
            other.write(_batch(kind, key, payload, offset, t0))
            others_in_batch = others_in_batch or in_batch


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_every_read_equals_a_direct_read_of_the_store(tmp_path_factory: object, ops: list[tuple]) -> None:  # type: ignore[type-arg]
    """Whatever mix of own writes, other writers' writes and reads: a read through the cache, outside
    a batch, answers what a fresh connection reads; inside a batch, what the store held at its begin()
    plus the batch's own writes, and after a write that followed another writer's, the store itself."""
    folder = tmp_path_factory.mktemp("warm")  # type: ignore[attr-defined]
    path = str(folder / "state.db")
    own, other, judge = SqliteStateStore(path), SqliteStateStore(path), SqliteStateStore(path)
    try:
        check_reads(WarmStore(own), other, judge, ops)
    finally:
        for store in (own, other, judge):
            store.close()


def test_a_single_writer_reads_each_item_once(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    cache = WarmStore(store)
    batch = WriteBatch()
    batch.unions["k"] = SetUnion(frozenset({"a"}), E0 + 600)
    assert cache.get_sets(["k"], T0) == {"k": frozenset()}
    cache.write(batch)
    for i in range(5):
        batch = WriteBatch()
        batch.unions["k"] = SetUnion(frozenset({f"m{i}"}), E0 + 600)
        cache.write(batch)
        assert cache.get_sets(["k"], T0) == {"k": frozenset({"a", *(f"m{j}" for j in range(i + 1))})}
    assert cache.store_reads == 1
    assert cache.get_sets(["k"], T0 + timedelta(seconds=600)) == {"k": frozenset()}  # expired, by event time
    store.close()


def test_a_union_reaching_the_cap_is_read_again(tmp_path: Path) -> None:
    """Which members the cap keeps is the store's rule: the cached copy is dropped, never guessed."""
    store = SqliteStateStore(tmp_path / "state.db")
    cache = WarmStore(store)
    full = WriteBatch()
    full.unions["k"] = SetUnion(frozenset(f"m{i:04d}" for i in range(MAX_SET_MEMBERS)), E0 + 600)
    cache.write(full)
    cache.get_sets(["k"], T0)
    more = WriteBatch()
    more.unions["k"] = SetUnion(frozenset({"a0", "zz"}), E0 + 600)
    cache.write(more)
    reads = cache.store_reads
    assert cache.get_sets(["k"], T0) == store.get_sets(["k"], T0)
    assert cache.store_reads == reads + 1
    store.close()


def test_memory_stays_bounded(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    cache = WarmStore(store, max_items=50)
    for i in range(400):
        batch = WriteBatch()
        batch.unions[f"k{i}"] = SetUnion(frozenset({str(i)}), E0 + 600)
        batch.puts[f"v{i}"] = ValuePut(str(i), E0 + 600)
        cache.write(batch)
        got = cache.get_sets([f"k{i}", f"k{i // 2}"], T0)
        assert got[f"k{i}"] == {str(i)} and got[f"k{i // 2}"] == {str(i // 2)}
        assert cache.get_values([f"v{i}"], T0) == {f"v{i}": str(i)}
        assert len(cache._sets) + len(cache._values) <= 51
    store.close()


def test_only_versioned_stores_are_wrapped(tmp_path: Path) -> None:
    memory = MemoryStateStore()
    assert warm(memory) is memory
    sqlite = SqliteStateStore(tmp_path / "state.db")
    wrapped = warm(sqlite)
    assert isinstance(wrapped, WarmStore) and wrapped.store is sqlite
    assert warm(wrapped) is wrapped
    sqlite.close()


def _records() -> list[tuple[str, object]]:
    items: list[tuple[str, object]] = []
    for path in sorted((EXAMPLES / "aws").glob("*.jsonl")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                items.append((f"{path.name}:{n}", json.loads(line)))
    return items


def _alerts(engine: Engine, items: list[tuple[str, object]], size: int) -> list[Alert]:
    alerts: list[Alert] = []
    for start in range(0, len(items), size):
        alerts.extend(engine.run(items[start : start + size], send=False).alerts)
    return alerts


def test_the_engine_raises_the_same_alerts_with_far_fewer_reads(tmp_path: Path) -> None:
    """The examples through SQLite behind the cache raise what the uncached memory store raises, and
    the store is read less than the batches ask for."""
    items = _records()
    cfg = load_settings(None, state="memory://")
    plain = _alerts(Engine(cfg, MemoryStateStore()), items, 7)
    store = SqliteStateStore(tmp_path / "state.db")
    engine = Engine(load_settings(None, state=f"sqlite:///{tmp_path}/state.db"), store)
    assert isinstance(engine.store, WarmStore)
    reads = cached = 0
    cached_alerts: list[Alert] = []
    for start in range(0, len(items), 7):
        report = engine.run(items[start : start + 7], send=False)
        cached_alerts.extend(report.alerts)
        reads += report.counts["state_reads"]
        cached += report.counts["state_cached_reads"]
    assert sorted(a.id for a in cached_alerts) == sorted(a.id for a in plain)
    assert plain and cached > 2 * reads
    engine.store.close()


def test_two_instances_on_one_file_each_holding_half_a_burst_alert_once(tmp_path: Path) -> None:
    """Two engines (two connections, as two processes) alternate batches of the example burst: each
    one's cache is dropped when the other wrote, so the recount after the last flush sees all of it."""
    path = tmp_path / "state.db"
    cfg = load_settings(None, state=f"sqlite:///{path}")
    a, b = Engine(cfg, SqliteStateStore(path)), Engine(cfg, SqliteStateStore(path))
    lines = (EXAMPLES / "aws" / "discovery_api_burst.jsonl").read_text().splitlines()
    burst = [(f"r{n}", json.loads(line)) for n, line in enumerate(lines) if line.strip()]
    alone = Engine(load_settings(None, state="memory://"), MemoryStateStore())
    want = {x.id for x in _alerts(alone, burst, 4) if x.detection == "discovery.api_burst"}
    alerts: list[Alert] = []
    for n, start in enumerate(range(0, len(burst), 4)):
        alerts.extend((a if n % 2 == 0 else b).run(burst[start : start + 4]).alerts)
    assert want and {x.id for x in alerts if x.detection == "discovery.api_burst"} == want
    a.store.close()
    b.store.close()


def test_when_full_items_expired_at_the_newest_event_time_go_first(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    cache = WarmStore(store, max_items=20)
    for i in range(15):  # short-lived: expired once events an hour later are read
        batch = WriteBatch()
        batch.unions[f"old{i}"] = SetUnion(frozenset({"x"}), E0 + 60)
        cache.write(batch)
    cache.get_sets([f"old{i}" for i in range(15)], T0)
    later = T0 + timedelta(hours=1)
    live = WriteBatch()
    for i in range(10):
        live.unions[f"new{i}"] = SetUnion(frozenset({"y"}), E0 + 7200)
    cache.write(live)
    assert cache.get_sets([f"new{i}" for i in range(10)], later) == {f"new{i}": frozenset({"y"}) for i in range(10)}
    assert set(cache._sets) == {f"new{i}" for i in range(10)}  # the expired went, every live one stayed
    reads = cache.store_reads
    assert cache.get_sets(["old3"], T0) == {"old3": frozenset({"x"})}  # a late event reads it again
    assert cache.store_reads == reads + 1
    store.close()


def test_threads_sharing_one_cache_leave_it_equal_to_the_store(tmp_path: Path) -> None:
    """Threads of one function instance share the engine, so its cache: reads and writes interleave, and
    every item it then holds is what the store holds."""
    import threading

    path = tmp_path / "state.db"
    store, judge = SqliteStateStore(path), SqliteStateStore(path)
    cache = WarmStore(store)
    keys = [f"k{i}" for i in range(8)]

    def work(n: int) -> None:
        for i in range(150):
            batch = WriteBatch()
            batch.unions[keys[(n + i) % 8]] = SetUnion(frozenset({f"t{n}-{i}"}), E0 + 600 + i)
            batch.puts[f"v{i % 5}"] = ValuePut(f"{n}-{i}", E0 + 600 + n * 1000 + i)
            if n % 2:
                cache.begin()
            cache.get_sets(keys[:4], T0)
            cache.write(batch)
            cache.get_values([f"v{i % 5}"], T0)
            if n % 2:
                cache.end()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    values = [f"v{i}" for i in range(5)]
    assert cache.get_sets(keys, T0) == judge.get_sets(keys, T0)
    assert cache.get_values(values, T0) == judge.get_values(values, T0)
    assert sum(len(m) for m in judge.get_sets(keys, T0).values()) == 600
    store.close()
    judge.close()
