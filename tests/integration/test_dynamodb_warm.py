"""The process-wide read cache (adscore.state.warm) in front of DynamoDB, against moto server.

Two store objects on one table stand for two function instances; the version item tells each one's
cache when the other wrote.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings

from adscore.engine import Engine
from adscore.settings import load_settings
from adscore.state.base import SetUnion, StateWriteError, ValuePut, WriteBatch
from adscore.state.dynamodb import VERSION_PK, DynamoDBStateStore, init_table
from adscore.state.memory import MemoryStateStore
from adscore.state.warm import WarmStore
from adscore.windows import epoch_seconds
from tests.integration import moto_server as _moto
from tests.integration.test_dynamodb_store import count_requests
from tests.unit.test_warm_store import OPS, _records, check_reads

if TYPE_CHECKING:
    from tests.integration.moto_server import MotoServer

moto_server, aws_env = _moto.moto_server, _moto.aws_env  # fixtures

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(second=0, microsecond=0)  # event times near the wall clock: no TTL horizon
OLD = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)  # event times whose items DynamoDB's TTL may have deleted
_tables = itertools.count()


def _table(server: MotoServer) -> str:
    name = f"warm-{next(_tables)}"
    init_table(name, server.client("dynamodb"))
    return name


def _store(server: MotoServer, table: str, **kwargs: Any) -> DynamoDBStateStore:
    return DynamoDBStateStore(table, server.client("dynamodb"), **kwargs)


def _union(key: str, members: set[str], t0: datetime = NOW) -> WriteBatch:
    batch = WriteBatch()
    batch.unions[key] = SetUnion(frozenset(members), epoch_seconds(t0) + 600)
    return batch


@pytest.mark.parametrize("t0", [NOW, OLD], ids=["recent", "past-the-ttl-horizon"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_every_read_equals_a_direct_read_of_the_table(aws_env: MotoServer, t0: datetime, ops: list[tuple]) -> None:  # type: ignore[type-arg]
    """The SQLite property (tests/unit/test_warm_store.py) with three store objects on one table."""
    table = _table(aws_env)
    own, other, judge = (_store(aws_env, table) for _ in range(3))
    try:
        check_reads(WarmStore(own), other, judge, ops, t0)
    finally:
        for store in (own, other, judge):
            store.close()


def test_a_single_writer_reads_each_item_once(aws_env: MotoServer) -> None:
    store = _store(aws_env, _table(aws_env))
    cache = WarmStore(store)
    calls = count_requests(store)
    assert cache.get_sets(["k"], NOW) == {"k": frozenset()}
    for i in range(5):
        cache.begin()
        assert cache.get_sets(["k"], NOW) == {"k": frozenset(f"m{j}" for j in range(i))}
        cache.write(_union("k", {f"m{i}"}))
        assert cache.get_sets(["k"], NOW) == {"k": frozenset(f"m{j}" for j in range(i + 1))}  # the recount
        cache.end()
    assert cache.store_reads == 1
    # per batch: the check at begin() and one increment after the key write; the first read checked too
    assert calls == Counter({"BatchGetItem": 1, "GetItem": 6, "UpdateItem": 10})
    assert store.get_sets(["k"], NOW) == {"k": frozenset(f"m{i}" for i in range(5))}
    store.close()


def test_another_instances_write_is_seen_and_then_cached_again(aws_env: MotoServer) -> None:
    table = _table(aws_env)
    mine, theirs = _store(aws_env, table), _store(aws_env, table)
    cache = WarmStore(mine)
    cache.write(_union("k", {"a"}))
    assert cache.get_sets(["k"], NOW) == {"k": {"a"}}
    theirs.write(_union("k", {"b"}))
    reads = cache.store_reads
    assert cache.get_sets(["k"], NOW) == {"k": {"a", "b"}}
    assert cache.get_sets(["k"], NOW) == {"k": {"a", "b"}}
    assert cache.store_reads == reads + 1
    mine.close()
    theirs.close()


def test_a_partly_failed_write_still_tells_other_instances(aws_env: MotoServer) -> None:
    """Keys of a failed batch that did reach the table change the version: another instance's cache
    does not keep answering without them."""
    table = _table(aws_env)
    mine, theirs = _store(aws_env, table), _store(aws_env, table)
    cache = WarmStore(mine)
    assert cache.get_sets(["k"], NOW) == {"k": frozenset()}
    batch = _union("k", {"b"})
    batch.unions["x" * 3000] = SetUnion(frozenset({"a"}), epoch_seconds(NOW) + 600)  # over the key limit
    with pytest.raises(StateWriteError):
        theirs.write(batch)
    assert cache.get_sets(["k"], NOW) == {"k": {"b"}}
    mine.close()
    theirs.close()


def test_a_union_cut_by_the_item_size_limit_is_read_again(aws_env: MotoServer) -> None:
    """Which members a set full by bytes kept is DynamoDB's to say: the cached copy is dropped."""
    from botocore.awsrequest import AWSResponse

    from tests.integration.test_dynamodb_store import _Body

    store = _store(aws_env, _table(aws_env))
    cache = WarmStore(store)
    cache.write(_union("k", {"a"}))
    assert cache.get_sets(["k"], NOW) == {"k": {"a"}}

    def too_large(request: Any, **_: Any) -> AWSResponse | None:
        if b'"big"' not in (request.body or b""):
            return None
        body = json.dumps(
            {
                "__type": "com.amazon.coral.validate#ValidationException",
                "message": "Item size to update has exceeded the maximum allowed size",
            }
        ).encode()
        return AWSResponse(request.url, 400, {"x-amzn-RequestId": "too-large"}, _Body(body))

    store.client.meta.events.register("before-send.dynamodb.UpdateItem", too_large)
    cache.write(_union("k", {"big"}))  # the store drops the new members (and says so in its log)
    reads = cache.store_reads
    assert cache.get_sets(["k"], NOW) == {"k": {"a"}} == store.get_sets(["k"], NOW)
    assert cache.store_reads == reads + 1
    store.close()


def test_items_the_ttl_may_have_deleted_are_read_through(aws_env: MotoServer) -> None:
    """An item whose purge time has passed may vanish at any moment (DynamoDB's TTL, no version
    change): the cache answers what the table holds, before and after it vanished."""
    table = _table(aws_env)
    store = _store(aws_env, table)
    cache = WarmStore(store)
    cache.write(_union("k", {"a"}, OLD))
    put = WriteBatch()
    put.puts["v"] = ValuePut("x", epoch_seconds(OLD) + 600)
    cache.write(put)
    assert cache.get_sets(["k"], OLD) == {"k": {"a"}}
    assert cache.get_values(["v"], OLD) == {"v": "x"}
    client = aws_env.client("dynamodb")
    for key, kind in (("k", "set"), ("v", "value")):  # what the TTL sweeper does
        client.delete_item(TableName=table, Key={"pk": {"S": key}, "sk": {"S": kind}})
    assert cache.get_sets(["k"], OLD) == {"k": frozenset()}
    assert cache.get_values(["v"], OLD) == {}
    cache.write(_union("k", {"b"}, OLD))
    assert cache.get_sets(["k"], OLD) == {"k": {"b"}} == store.get_sets(["k"], OLD)
    store.close()


def test_the_version_item_is_no_state_item(aws_env: MotoServer) -> None:
    table = _table(aws_env)
    store = _store(aws_env, table)
    store.write(_union("k", {"a"}))
    store.write(_union("k", {"b"}))
    item = aws_env.client("dynamodb").get_item(TableName=table, Key={"pk": {"S": VERSION_PK}, "sk": {"S": "version"}})
    assert item["Item"]["n"] == {"N": "2"}
    assert "purge_at" not in item["Item"]  # never deleted by the TTL
    assert store.version() == (0, 2)
    store.close()


def test_without_consistent_reads_the_cache_reads_through(aws_env: MotoServer) -> None:
    store = _store(aws_env, _table(aws_env), consistent_read=False)
    cache = WarmStore(store)
    cache.write(_union("k", {"a"}))
    for _ in range(3):
        cache.get_sets(["k"], NOW)
    assert cache.store_reads == 3
    store.close()


def _recent(items: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The examples with each file's event times moved by whole weeks to the last two weeks (past
    DynamoDB's TTL horizon the cache keeps nothing)."""
    first: dict[str, datetime] = {}
    for name, record in items:
        at = datetime.fromisoformat(record["eventTime"])
        first[name.split(":")[0]] = min(first.get(name.split(":")[0], at), at)
    moved = []
    for name, record in items:
        shift = timedelta(weeks=(datetime.now(UTC) - first[name.split(":")[0]]).days // 7 - 1)
        at = datetime.fromisoformat(record["eventTime"]) + shift
        moved.append((name, {**record, "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ")}))
    return moved


def test_the_engine_raises_the_same_alerts_with_far_fewer_reads(aws_env: MotoServer) -> None:
    """The examples through DynamoDB behind the cache raise what the uncached memory store raises."""
    items = _recent(_records())
    plain: list[str] = []
    memory = Engine(load_settings(None, state="memory://"), MemoryStateStore())
    for start in range(0, len(items), 7):
        plain.extend(a.id for a in memory.run(items[start : start + 7], send=False).alerts)
    table = _table(aws_env)
    engine = Engine(load_settings(None, state=f"dynamodb://{table}"), _store(aws_env, table))
    assert isinstance(engine.store, WarmStore)
    reads = cached = 0
    ids: list[str] = []
    for start in range(0, len(items), 7):
        report = engine.run(items[start : start + 7], send=False)
        ids.extend(a.id for a in report.alerts)
        reads += report.counts["state_reads"]
        cached += report.counts["state_cached_reads"]
    assert sorted(ids) == sorted(plain) and plain
    assert cached > 2 * reads
    engine.store.close()


def test_a_batch_reads_its_keys_ahead_in_a_few_requests(aws_env: MotoServer) -> None:
    """On a remote store a batch first notes the keys its evaluation asks for and reads them in one
    request per 100 (BatchGetItem), so a cold batch costs a few reads, not one per window; the alerts
    are those of the uncached memory store, batch by batch."""
    items = _recent(_records())
    memory = Engine(load_settings(None, state="memory://"), MemoryStateStore())
    requests: dict[bool, int] = {}
    for ahead in (False, True):
        table = _table(aws_env)
        store = _store(aws_env, table)
        calls = count_requests(store)
        engine = Engine(load_settings(None, state=f"dynamodb://{table}"), store)
        store.remote = ahead  # type: ignore[misc]  # off: read lazily, window by window, as before
        for start in range(0, len(items), 25):
            batch = items[start : start + 25]
            want = sorted(a.id for a in memory.run(batch, send=False).alerts) if ahead else None
            got = sorted(a.id for a in engine.run(batch, send=False).alerts)
            if want is not None:
                assert got == want
        requests[ahead] = calls["BatchGetItem"]
        memory = Engine(load_settings(None, state="memory://"), MemoryStateStore())
        engine.store.close()
    batches = -(-len(items) // 25)
    print(f"BatchGetItem requests over {batches} batches: window by window {requests[False]}, ahead {requests[True]}")
    assert requests[True] * 3 < requests[False] and requests[True] <= 3 * batches
