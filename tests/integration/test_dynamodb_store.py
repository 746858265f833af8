"""What the DynamoDB state store adds to the shared contract (tests/contract), against moto server.

Request counts are observed with botocore's own event hooks on a real client
talking to moto; throttling, which moto cannot produce, is injected the same
way (a ``before-send`` handler answering 400 ProvisionedThroughputExceeded),
so botocore's retry logic and the store's own retries run for real.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from adscore.errors import ConfigError, StateError
from adscore.state import open_store
from adscore.state.base import MAX_SET_MEMBERS, StateWriteError, WriteBatch
from adscore.state.dynamodb import TABLE_SCHEMA, DynamoDBStateStore, init_table, table_name
from adscore.windows import epoch_seconds, expiry

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.integration.moto_server import MotoServer

from tests.integration import moto_server as _moto

moto_server, aws_env = _moto.moto_server, _moto.aws_env  # fixtures

pytestmark = pytest.mark.integration

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
EXP = expiry(T0, DAY)


@pytest.fixture
def table(aws_env: MotoServer) -> str:
    init_table("state", aws_env.client("dynamodb"))
    return "state"


def store_for(
    server: MotoServer, table: str, botocore_attempts: int = 2, **kwargs: Any
) -> DynamoDBStateStore:
    from botocore.config import Config

    # standard mode: adaptive mode's client-side rate limiting would only slow the throttling tests down
    config = Config(retries={"total_max_attempts": botocore_attempts, "mode": "standard"})
    client = server.client("dynamodb", config=config)
    return DynamoDBStateStore(table, client, **kwargs)


def count_requests(store: DynamoDBStateStore) -> Counter[str]:
    calls: Counter[str] = Counter()

    def seen(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    store.client.meta.events.register("before-call.dynamodb", seen)
    return calls


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Any:
        yield self.data


def throttle(store: DynamoDBStateStore, when: Callable[[bytes], bool]) -> Counter[str]:
    """Answer matching requests with 400 ProvisionedThroughputExceededException before they leave."""
    from botocore.awsrequest import AWSResponse

    throttled: Counter[str] = Counter()

    def handler(request: Any, **_: Any) -> AWSResponse | None:
        if not when(request.body or b""):
            return None
        throttled["n"] += 1
        body = (
            b'{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",'
            b'"message":"The level of configured provisioned throughput for the table was exceeded."}'
        )
        return AWSResponse(request.url, 400, {"x-amzn-RequestId": "throttled"}, _Body(body))

    store.client.meta.events.register("before-send.dynamodb", handler)
    return throttled


# --------------------------------------------------------------------------- table


def test_init_table_is_idempotent_and_enables_ttl_on_the_purge_attribute(aws_env: MotoServer) -> None:
    client = aws_env.client("dynamodb")
    first = init_table("adscore-state", client)
    again = init_table("adscore-state", client)
    assert first["created"] is True and again["created"] is False
    assert first["KeySchema"] == TABLE_SCHEMA["KeySchema"]
    ttl = client.describe_time_to_live(TableName="adscore-state")["TimeToLiveDescription"]
    assert ttl["AttributeName"] == TABLE_SCHEMA["TimeToLiveAttribute"] == "purge_at"
    assert ttl["TimeToLiveStatus"] in ("ENABLED", "ENABLING")


def test_init_table_refuses_a_table_with_another_key_schema(aws_env: MotoServer) -> None:
    client = aws_env.client("dynamodb")
    client.create_table(
        TableName="other",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(StateError, match="another key schema"):
        init_table("other", client)


def test_urls(aws_env: MotoServer) -> None:
    assert table_name("dynamodb://adscore-state") == "adscore-state"
    for bad in ("dynamodb://", "dynamodb://ab", "dynamodb://has space", "sqlite:///x.db"):
        with pytest.raises(ConfigError):
            table_name(bad)
    store = open_store("dynamodb://adscore-state")
    assert isinstance(store, DynamoDBStateStore) and store.table == "adscore-state"


# --------------------------------------------------------------------------- layout and cost


def test_items_carry_event_time_expiry_and_a_later_purge_time(aws_env: MotoServer, table: str) -> None:
    store = store_for(aws_env, table)
    batch = WriteBatch()
    batch.add_union("s", ["a", ""], EXP)
    batch.add_put("", "value-of-the-empty-key", EXP)
    store.write(batch)
    item = aws_env.client("dynamodb").get_item(TableName=table, Key={"pk": {"S": "s"}, "sk": {"S": "set"}})[
        "Item"
    ]
    assert int(item["expires_at"]["N"]) == EXP
    assert int(item["purge_at"]["N"]) == EXP + 30 * 86400
    # the empty member and the empty key (DynamoDB rejects both as such) round-trip
    assert store.get_sets(["s"], T0) == {"s": frozenset({"a", ""})}
    assert store.get_values([""], T0) == {"": "value-of-the-empty-key"}
    assert store.get_sets(["s"], datetime.fromtimestamp(EXP, UTC)) == {"s": frozenset()}


def test_a_batch_costs_one_request_per_distinct_key_and_reads_go_100_at_a_time(
    aws_env: MotoServer, table: str
) -> None:
    store = store_for(aws_env, table)
    calls = count_requests(store)
    batch = WriteBatch()
    for i in range(5):
        batch.add_union(f"set-{i}", [f"e{i}", "shared"], EXP)
        batch.add_union(f"set-{i}", ["more"], EXP)  # coalesced into the same key
    batch.add_put("fact", "x", EXP)
    batch.add_put_if_absent("seen", "ev1", EXP, epoch_seconds(T0))
    store.write(batch)
    assert calls == Counter({"UpdateItem": 5 + 1, "PutItem": 2})  # and the version item's increment
    assert store.writes == 7
    calls.clear()
    found = store.get_sets([f"set-{i}" for i in range(250)], T0)
    assert calls == Counter({"BatchGetItem": 3})
    assert found["set-3"] == {"e3", "shared", "more"} and found["set-200"] == frozenset()


def test_losing_puts_are_not_errors_and_cost_one_request_and_the_increment(aws_env: MotoServer, table: str) -> None:
    store = store_for(aws_env, table)
    newer = WriteBatch()
    newer.add_put("fact", "new", EXP + 60)
    store.write(newer)
    calls = count_requests(store)
    older = WriteBatch()
    older.add_put("fact", "old", EXP)  # a late redelivery: the condition keeps it out
    store.write(older)
    assert calls == Counter({"PutItem": 1, "UpdateItem": 1})
    assert store.get_values(["fact"], T0) == {"fact": "new"}


# --------------------------------------------------------------------------- failures


def test_only_the_keys_that_fail_are_reported(aws_env: MotoServer, table: str) -> None:
    store = store_for(aws_env, table)
    too_long = "k" * 3000  # over DynamoDB's 2048-byte partition key limit: rejected, never retried
    batch = WriteBatch()
    batch.add_union("fine-set", ["a"], EXP)
    batch.add_union(too_long, ["a"], EXP)
    batch.add_put("fine-value", "v", EXP)
    with pytest.raises(StateWriteError) as caught:
        store.write(batch)
    assert caught.value.failed_keys == (too_long,)
    assert store.writes == 2
    assert store.get_sets(["fine-set"], T0) == {"fine-set": {"a"}}
    assert store.get_values(["fine-value"], T0) == {"fine-value": "v"}


def test_throttling_is_retried_until_it_passes(aws_env: MotoServer, table: str) -> None:
    # (botocore's own retries are off here, to keep its backoff out of the test's time)
    store = store_for(aws_env, table, botocore_attempts=1, attempts=4)
    throttled = throttle(store, lambda body: throttled["n"] < 3)
    # the first three requests are throttled; the store's own retries get the write through
    batch = WriteBatch()
    batch.add_put("fact", "x", EXP)
    store.write(batch)
    assert throttled["n"] == 3
    assert store.get_values(["fact"], T0) == {"fact": "x"}


def test_throttling_that_never_ends_fails_only_the_throttled_key(aws_env: MotoServer, table: str) -> None:
    store = store_for(aws_env, table, botocore_attempts=1, attempts=3)
    throttled = throttle(store, lambda body: b'"hot"' in body)
    batch = WriteBatch()
    batch.add_union("hot", ["a"], EXP)
    batch.add_union("cold", ["b"], EXP)
    with pytest.raises(StateWriteError) as caught:
        store.write(batch)
    assert caught.value.failed_keys == ("hot",)
    assert "ProvisionedThroughputExceededException" in str(caught.value)
    assert throttled["n"] == 3  # tried as often as configured, then reported
    assert store.get_sets(["cold"], T0) == {"cold": {"b"}}


def test_a_batch_whose_increment_fails_is_reported_whole(aws_env: MotoServer, table: str) -> None:
    """Keys written but not announced (the version item never incremented): other instances' caches
    would not know, so every key is reported and the records are delivered again."""
    store = store_for(aws_env, table, botocore_attempts=1, attempts=2)
    throttled = throttle(store, lambda body: b"ADD #n :one" in body)
    batch = WriteBatch()
    batch.add_union("a", ["x"], EXP)
    batch.add_put("b", "y", EXP)
    with pytest.raises(StateWriteError) as caught:
        store.write(batch)
    assert sorted(caught.value.failed_keys) == ["a", "b"]
    assert "version item not incremented" in str(caught.value)
    assert throttled["n"] == 2
    assert store.get_sets(["a"], T0) == {"a": {"x"}}  # written all the same


def test_unreachable_endpoint_raises_state_errors(aws_env: MotoServer, table: str) -> None:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "dynamodb",
        endpoint_url="http://127.0.0.1:9",  # discard port: nothing listens
        region_name="us-east-1",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=1),
    )
    store = DynamoDBStateStore(table, client, attempts=1)
    batch = WriteBatch()
    batch.add_union("a", ["x"], EXP)
    batch.add_put("b", "y", EXP)
    with pytest.raises(StateWriteError) as caught:
        store.write(batch)
    assert set(caught.value.failed_keys) == {"a", "b"}
    with pytest.raises(StateError):
        store.get_sets(["a"], T0)
    with pytest.raises(StateError):
        store.claim("alert|x", T0, DAY)


# --------------------------------------------------------------------------- concurrency


def test_the_set_cap_holds_under_concurrent_writers(aws_env: MotoServer, table: str) -> None:
    writers, per_writer = 8, 100
    stores = [store_for(aws_env, table) for _ in range(writers)]
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        batch = WriteBatch()
        batch.add_union("capped", [f"w{n}-{i:03d}" for i in range(per_writer)], EXP)
        start.wait()
        try:
            stores[n].write(batch)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    members = stores[0].get_sets(["capped"], T0)["capped"]
    assert len(members) == MAX_SET_MEMBERS  # 800 offered: the set filled up exactly, never beyond
    # each writer's members went in as a sorted prefix ("stop adding")
    for n in range(writers):
        mine = sorted(m for m in members if m.startswith(f"w{n}-"))
        assert mine == [f"w{n}-{i:03d}" for i in range(len(mine))]


def test_claims_race_has_one_winner(aws_env: MotoServer, table: str) -> None:
    contenders = 8
    stores = [store_for(aws_env, table) for _ in range(contenders)]
    start = threading.Barrier(contenders)
    wins: list[bool] = []
    lock = threading.Lock()

    def claim(n: int) -> None:
        start.wait()
        won = stores[n].claim("alert|once", T0, DAY)
        with lock:
            wins.append(won)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(contenders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(wins) == [False] * (contenders - 1) + [True]
