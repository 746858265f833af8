"""What the Azure Table backend adds to the shared contract (tests/contract), against Azurite.

The contract suite already runs against this backend; these tests cover the Table-specific
parts: URLs and connections, key encoding, member chunking, one write request per key,
concurrent writers (threads and eight processes), cleanup, and failures.
"""

from __future__ import annotations

import multiprocessing
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from adscore.errors import ConfigError, StateError
from adscore.state import init_store, open_store
from adscore.state.azure_table import (
    MAX_ENCODED_KEY,
    TABLE_SCHEMA,
    AzureTableStateStore,
    encode_key,
    storage_target,
)
from adscore.state.base import MAX_SET_MEMBERS, BatchedState, StateWriteError, WriteBatch, fit_key
from adscore.windows import epoch_seconds, expiry, window_keys
from tests.integration import azurite as _azurite
from tests.integration.azurite import ACCOUNT_KEY, Azurite

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration
azurite_table = _azurite.azurite_table  # the session fixture

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
W = timedelta(minutes=10)
DAY = timedelta(days=1)
FORBIDDEN = ("/", "\\", "#", "?", "\t", "\n", "\x7f", "\x85")


def bucket(key: str, at: datetime = T0) -> str:
    return window_keys(fit_key(key), at, W)[0]


class Requests:
    """Counts the HTTP requests a TableClient sends, by method (a raw_response_hook)."""

    def __init__(self) -> None:
        self.methods: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, response: Any) -> None:
        with self._lock:
            self.methods.append(response.http_request.method)

    def writes(self) -> int:
        return sum(1 for m in self.methods if m in ("POST", "PUT", "MERGE", "PATCH", "DELETE"))


@pytest.fixture
def table(azurite_table: Azurite) -> str:
    name = azurite_table.table_name()
    store = AzureTableStateStore.from_connection_string(azurite_table.connection_string, name)
    store.init()
    store.close()
    return name


@pytest.fixture
def store(azurite_table: Azurite, table: str) -> Iterator[AzureTableStateStore]:
    s = AzureTableStateStore.from_connection_string(azurite_table.connection_string, table)
    yield s
    s.close()


def counted_store(azurite: Azurite, table: str, requests: Requests) -> AzureTableStateStore:
    from azure.data.tables import TableClient

    client = TableClient.from_connection_string(azurite.connection_string, table, raw_response_hook=requests)
    return AzureTableStateStore(client)


# --------------------------------------------------------------------------- URLs and connections


def test_url_uses_the_functions_storage_setting_by_default(
    azurite_table: Azurite, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AzureWebJobsStorage", azurite_table.connection_string)
    first = open_store(f"azuretable://{table}")
    first.remember("fact", "v1", T0, DAY)
    first.close()
    # a second app setting naming the same account reaches the same data
    monkeypatch.delenv("AzureWebJobsStorage")
    monkeypatch.setenv("STATE_STORAGE", azurite_table.connection_string)
    second = open_store(f"azuretable://{table}?connection=STATE_STORAGE")
    try:
        assert second.recall("fact", T0) == "v1"
    finally:
        second.close()


def test_init_store_creates_the_table_and_describes_it(
    azurite_table: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AzureWebJobsStorage", azurite_table.connection_string)
    name = azurite_table.table_name("init")
    first = init_store(f"azuretable://{name}")
    again = init_store(f"azuretable://{name}")
    assert first["backend"] == "azuretable" and first["table"] == name
    assert (first["created"], again["created"]) == (True, False)
    assert first["ExpiryProperty"] == "expires_at" == TABLE_SCHEMA["ExpiryProperty"]
    assert ACCOUNT_KEY not in repr(first)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("azuretable://", "expected azuretable://NAME"),
        ("azuretable://ab", "not an Azure table name"),
        ("azuretable://1state", "not an Azure table name"),
        ("azuretable://state-table", "not an Azure table name"),
        ("azuretable://tables", "reserved"),
        ("azuretable://state/sub", "bare name"),
        ("azuretable://state?conection=X", "unknown parameter(s) conection"),
        ("azuretable://state?connection=A&endpoint=https://a.table.core.windows.net", "not both"),
        ("azuretable://state?endpoint=ftp://x", "http(s) URL"),
        ("azuretable://state?connection=NOPE_NOT_SET", "app setting NOPE_NOT_SET is not set"),
    ],
)
def test_bad_urls_name_the_problem(url: str, problem: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AzureWebJobsStorage", f"DefaultEndpointsProtocol=http;AccountName=a;AccountKey={ACCOUNT_KEY}"
    )
    with pytest.raises(ConfigError) as error:
        open_store(url)
    assert error.value.setting == "state"
    assert problem in str(error.value)
    assert ACCOUNT_KEY not in str(error.value)


def test_missing_default_setting_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AzureWebJobsStorage",
        "AzureWebJobsStorage__tableServiceUri",
        "AzureWebJobsStorage__accountName",
    ):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="app setting AzureWebJobsStorage is not set"):
        open_store("azuretable://state")


def test_identity_based_settings_give_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    monkeypatch.setenv("AzureWebJobsStorage__accountName", "acct")
    assert (
        storage_target("azuretable://s", "azuretable", "table").endpoint
        == "https://acct.table.core.windows.net"
    )
    monkeypatch.setenv("DLQ__blobServiceUri", "https://dlq.blob.core.windows.net/")
    target = storage_target("azureblob://dead?connection=DLQ", "azureblob", "blob", setting="deadletter")
    assert (target.name, target.endpoint, target.connection_string) == (
        "dead",
        "https://dlq.blob.core.windows.net",
        None,
    )
    explicit = storage_target(
        "azuretable://s?endpoint=https://x.table.core.windows.net/", "azuretable", "table"
    )
    assert explicit.endpoint == "https://x.table.core.windows.net"
    monkeypatch.setenv("CONN", f"AccountName=a;AccountKey={ACCOUNT_KEY}")
    with_key = storage_target("azuretable://s?connection=CONN", "azuretable", "table")
    assert with_key.connection_string and ACCOUNT_KEY not in repr(with_key)


def test_a_managed_identity_endpoint_needs_azure_identity() -> None:
    import importlib.util

    url = "azuretable://state?endpoint=https://acct.table.core.windows.net"
    if importlib.util.find_spec("azure.identity") is not None:
        store = open_store(url)  # builds a DefaultAzureCredential; no request is made
        try:
            assert store.client.url.startswith("https://acct.table.core.windows.net")  # type: ignore[attr-defined]
        finally:
            store.close()
        return
    with pytest.raises(ConfigError, match="needs the azure-identity package"):
        open_store(url)


# --------------------------------------------------------------------------- keys and members


@pytest.mark.parametrize(
    "key",
    [
        "a/b\\c#d?e",
        "tab\tnewline\ncontrol\x01\x7f\x85",
        "quote'and''quotes",
        "é" * 300,  # valid, but its encoding passes the limit: hashed
        "",
        "\ud800lone surrogate",
    ],
)
def test_any_key_is_stored_under_a_valid_table_key(store: AzureTableStateStore, key: str) -> None:
    encoded = encode_key(key)
    assert not any(c in encoded for c in FORBIDDEN) and len(encoded) <= MAX_ENCODED_KEY + 1
    assert encoded.startswith(("k", "h"))
    batch = WriteBatch()
    batch.add_union(key, ["m1", "m2"], expiry(T0, DAY))
    batch.add_put(key, "value", expiry(T0, DAY))
    store.write(batch)
    assert store.get_sets([key], T0) == {key: {"m1", "m2"}}
    assert store.get_values([key], T0) == {key: "value"}
    assert store.claim_item(key, expiry(T0, DAY), epoch_seconds(T0)) is True
    assert store.claim_item(key, expiry(T0, DAY), epoch_seconds(T0)) is False


def test_distinct_keys_never_share_an_entity() -> None:
    keys = ["a", "b", "a" * 400, "a" * 401, "é" * 300, "é" * 301, ""]
    assert len({encode_key(k) for k in keys}) == len(keys)


def test_big_sets_are_split_over_several_properties(store: AzureTableStateStore) -> None:
    members = [f"{i:04d}-" + "x" * 250 for i in range(MAX_SET_MEMBERS)]  # ~130,000 characters
    batch = WriteBatch()
    batch.add_union("big", members, expiry(T0, DAY))
    store.write(batch)
    entity = store.client.get_entity(encode_key("big"), "set")
    assert {name for name in entity if name.startswith("m")} >= {"m0", "m1", "m2", "m3", "m4"}
    assert entity["n"] == MAX_SET_MEMBERS
    assert store.get_sets(["big"], T0) == {"big": frozenset(members)}
    # full: a later union adds nothing, and the set keeps working
    batch = WriteBatch()
    batch.add_union("big", ["0000-late"], expiry(T0, DAY))
    store.write(batch)
    assert store.get_sets(["big"], T0)["big"] == frozenset(members)


def test_non_ascii_and_odd_members_round_trip(store: AzureTableStateStore) -> None:
    members = ["😀" * 100, "中文", 'quote"and\\slash', "\x01control", ""]
    batch = WriteBatch()
    batch.add_union("odd", members, expiry(T0, DAY))
    store.write(batch)
    assert store.get_sets(["odd"], T0) == {"odd": frozenset(members)}


# --------------------------------------------------------------------------- requests per batch


def test_a_batch_costs_one_write_request_per_key(azurite_table: Azurite, table: str) -> None:
    requests = Requests()
    store = counted_store(azurite_table, table, requests)
    try:
        batched = BatchedState(store)
        for i in range(200):  # 200 events of 4 principals hitting the same few keys
            at = T0 + timedelta(seconds=i)
            principal = f"p{i % 4}"
            batched.add(f"apis:{principal}", [f"api{i % 7}"], at, W)
            batched.first_seen(f"new_api:{principal}", f"api{i % 7}", f"ev{i}", at, DAY)
            batched.remember(f"last:{principal}", f"api{i % 7}", at, DAY)
        pending = len(batched.pending())
        requests.methods.clear()
        assert batched.flush() == pending
        # 4 sets + 28 first-seen terms + 4 facts, each written by one request
        assert pending == 4 + 28 + 4
        assert requests.writes() == pending
        assert store.writes == pending
        # replaying the same batch writes nothing
        requests.methods.clear()
        replay = BatchedState(store)
        for i in range(200):
            at = T0 + timedelta(seconds=i)
            replay.add(f"apis:p{i % 4}", [f"api{i % 7}"], at, W)
        assert replay.flush() == 0 and requests.writes() == 0
    finally:
        store.close()


def test_a_set_written_meanwhile_is_merged_not_overwritten(azurite_table: Azurite, table: str) -> None:
    # GIVEN a store that read a set, and another instance that changes it before the first writes
    first = AzureTableStateStore.from_connection_string(azurite_table.connection_string, table)
    second = AzureTableStateStore.from_connection_string(azurite_table.connection_string, table)
    try:
        first.add("k", ["a"], T0, W)
        original_get = first._get
        interfered: list[bool] = []

        def get_then_interfere(key: str, kind: str) -> Any:
            entity = original_get(key, kind)
            if not interfered:  # the first read only: a concurrent writer lands in between
                interfered.append(True)
                second.add("k", ["from-second"], T0, W)
            return entity

        first._get = get_then_interfere  # type: ignore[method-assign]
        # WHEN the first store writes based on its stale read, THEN the ETag check makes it merge again
        assert first.add("k", ["from-first"], T0, W) == 3
        assert second.get_sets([bucket("k")], T0)[bucket("k")] == {"a", "from-first", "from-second"}
    finally:
        first.close()
        second.close()


def test_threads_racing_on_one_key_lose_no_member(azurite_table: Azurite, table: str) -> None:
    stores = [
        AzureTableStateStore.from_connection_string(azurite_table.connection_string, table) for _ in range(8)
    ]
    barrier = threading.Barrier(len(stores))

    def work(i: int) -> None:
        barrier.wait()
        for j in range(5):
            stores[i].add("race", [f"t{i}-{j}"], T0, W)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    try:
        assert stores[0].get_sets([bucket("race")], T0)[bucket("race")] == {
            f"t{i}-{j}" for i in range(8) for j in range(5)
        }
    finally:
        for s in stores:
            s.close()


# --------------------------------------------------------------------------- eight processes


KEYS = ("proc:a", "proc:b", "proc:c")


def _members(proc: int, round_: int) -> set[str]:
    return {f"m{(proc * 37 + round_ * 11 + i) % 300:03d}" for i in range(12)}


def _worker(connection: str, table: str, proc: int, rounds: int, barrier: Any, results: Any) -> None:
    store = AzureTableStateStore.from_connection_string(connection, table)
    barrier.wait()
    for round_ in range(rounds):
        batched = BatchedState(store)
        at = T0 + timedelta(seconds=round_)
        for key in KEYS:
            batched.add(key, _members(proc, round_), at, W)
        batched.remember("latest", f"p{proc}-r{round_}", T0 + timedelta(seconds=proc * 100 + round_), DAY)
        batched.flush()
    results.put(store.claim("alert:once", T0, timedelta(hours=1)))
    store.close()


def test_eight_processes_lose_no_update(azurite_table: Azurite, table: str) -> None:
    procs, rounds = 8, 6
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(procs)
    results = ctx.Queue()
    workers = [
        ctx.Process(
            target=_worker, args=(azurite_table.connection_string, table, p, rounds, barrier, results)
        )
        for p in range(procs)
    ]
    for worker in workers:
        worker.start()
    claims = [results.get(timeout=300) for _ in range(procs)]
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    expected = set().union(*(_members(p, r) for p in range(procs) for r in range(rounds)))
    assert len(expected) < MAX_SET_MEMBERS
    store = AzureTableStateStore.from_connection_string(azurite_table.connection_string, table)
    try:
        assert store.get_sets([bucket(k) for k in KEYS], T0) == {bucket(k): expected for k in KEYS}
        # the put with the latest expiry wins whatever the order, and exactly one claim won
        assert store.recall("latest", T0) == f"p{procs - 1}-r{rounds - 1}"
        assert sorted(claims) == [False] * (procs - 1) + [True]
    finally:
        store.close()


# --------------------------------------------------------------------------- cleanup and failures


def test_cleanup_deletes_what_expired_before_the_cutoff(store: AzureTableStateStore) -> None:
    store.add("old", ["e1"], T0, W)
    store.add("kept", ["e1"], T0, W, ttl=3 * DAY)
    assert store.cleanup(T0 + 2 * DAY) == 1
    assert store.get_sets([bucket("old"), bucket("kept")], T0) == {
        bucket("old"): frozenset(),
        bucket("kept"): {"e1"},
    }
    # the default cut-off is the wall clock minus 30 days: 2024 items are long gone
    assert store.cleanup() == 1


def test_a_missing_table_says_how_to_create_it(azurite_table: Azurite) -> None:
    store = AzureTableStateStore.from_connection_string(
        azurite_table.connection_string, azurite_table.table_name()
    )
    try:
        with pytest.raises(StateWriteError) as error:
            store.add("k", ["e1"], T0, W)
        assert error.value.failed_keys == (bucket("k"),)
        assert "adscore state init azuretable://" in str(error.value)
        with pytest.raises(StateError, match="does not exist"):
            store.get_values(["k"], T0)
    finally:
        store.close()


def test_an_unreachable_service_raises_with_the_unwritten_keys() -> None:
    from azure.data.tables import TableClient

    from tests.integration.azurite import free_port

    connection = (
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={ACCOUNT_KEY};"
        f"TableEndpoint=http://127.0.0.1:{free_port()}/devstoreaccount1;"
    )
    client = TableClient.from_connection_string(connection, "state", retry_total=0)
    store = AzureTableStateStore(client, attempts=1)
    try:
        batch = WriteBatch()
        batch.add_union("s", ["a"], expiry(T0, DAY))
        batch.add_put("v", "x", expiry(T0, DAY))
        with pytest.raises(StateWriteError) as error:
            store.write(batch)
        assert set(error.value.failed_keys) == {"s", "v"}
        assert ACCOUNT_KEY not in str(error.value)
        with pytest.raises(StateError):
            store.claim("alert:x", T0, DAY)
        assert store.writes == 0
    finally:
        store.close()
