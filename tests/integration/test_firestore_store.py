"""FirestoreStateStore beyond the shared contract suite, and the fake's own strictness.

The ``fs`` fixture runs the first group of tests against the strict fake always, and against the
official emulator too when ``FIRESTORE_EMULATOR_HOST`` is set: that is how the fake's rules are
checked against Firestore's. The second group drives the store through the fake's test controls
(concurrent writers between a read and a commit, failing RPCs), which the emulator cannot do.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud.firestore_v1.transforms import ArrayUnion, Maximum

from adscore.errors import ConfigError
from adscore.state.base import (
    CLEANUP_GRACE,
    MAX_SET_MEMBERS,
    BatchedState,
    StateWriteError,
    WriteBatch,
    fit_key,
)
from adscore.state.firestore import (
    CLAIM,
    SET,
    TTL_FIELD,
    VALUE,
    FirestoreStateStore,
    document_id,
    parse_url,
)
from adscore.windows import expiry, window_keys
from tests.integration.firestore_fake import FakeFirestore, emulator_client, unique_collection

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
W = timedelta(minutes=10)
DAY = timedelta(days=1)


def bucket(key: str, at: datetime = T0) -> str:
    return window_keys(fit_key(key), at, W)[0]


# --------------------------------------------------------------------------- the fake keeps Firestore's rules


@pytest.fixture(params=["fake", pytest.param("emulator", marks=pytest.mark.integration)])
def fs(request: pytest.FixtureRequest) -> Any:
    return FakeFirestore() if request.param == "fake" else emulator_client()


def test_preconditions(fs: Any) -> None:
    ref = fs.collection(unique_collection("pre")).document("d1")
    ref.create({"a": 1})
    with pytest.raises(gexc.AlreadyExists):
        ref.create({"a": 2})
    missing = fs.collection(unique_collection("pre")).document("nope")
    with pytest.raises(gexc.NotFound):
        missing.update({"a": 1})
    snap = ref.get()
    ref.update({"a": 2}, option=fs.write_option(last_update_time=snap.update_time))
    with pytest.raises(gexc.FailedPrecondition):  # the version read is stale now
        ref.update({"a": 3}, option=fs.write_option(last_update_time=snap.update_time))
    assert ref.get().to_dict() == {"a": 2}
    missing.delete()  # deleting a missing document succeeds
    ref.delete()
    assert not ref.get().exists


def test_array_union_and_maximum(fs: Any) -> None:
    ref = fs.collection(unique_collection("tx")).document("d")
    ref.set({"m": ArrayUnion(["b", "a"]), "n": Maximum(5)}, merge=True)  # on a missing document
    ref.set({"m": ArrayUnion(["a", "c", "c", "0"]), "n": Maximum(3)}, merge=True)
    ref.set({"n": Maximum(9), "other": "x"}, merge=True)
    assert ref.get().to_dict() == {"m": ["b", "a", "c", "0"], "n": 9, "other": "x"}
    ref.update({"m": ArrayUnion(["z"])})
    assert ref.get().to_dict()["m"] == ["b", "a", "c", "0", "z"]


def test_document_id_rules(fs: Any) -> None:
    coll = fs.collection(unique_collection("ids"))
    for bad in ("__reserved__", "x" * 1501):
        with pytest.raises(gexc.InvalidArgument):
            coll.document(bad).set({"a": 1})
    with pytest.raises(ValueError):
        coll.document("a/b")
    coll.document("é" * 750).set({"a": 1})  # 1,500 bytes: the largest id allowed


def test_commit_is_atomic_and_limited_to_500_writes(fs: Any) -> None:
    coll = fs.collection(unique_collection("batch"))
    coll.document("taken").create({"a": 1})
    batch = fs.batch()
    batch.set(coll.document("new"), {"a": 1})
    batch.create(coll.document("taken"), {"a": 2})
    with pytest.raises(gexc.AlreadyExists):
        batch.commit()
    assert not coll.document("new").get().exists  # nothing of a failed commit lands
    big = fs.batch()
    for i in range(501):
        big.set(coll.document(f"d{i}"), {"i": i})
    with pytest.raises(gexc.InvalidArgument):
        big.commit()
    assert not coll.document("d0").get().exists


def test_document_size_limit(fs: Any) -> None:
    ref = fs.collection(unique_collection("size")).document("d")
    ref.set({"a": "x" * 500_000, "b": "y" * 500_000})  # under 1 MiB
    with pytest.raises(gexc.InvalidArgument):
        ref.update({"c": "z" * 100_000})
    assert set(ref.get().to_dict()) == {"a", "b"}


# --------------------------------------------------------------------------- document layout


def test_document_ids_are_safe_and_kinds_are_separate() -> None:
    assert document_id(SET, "a/b%2Fc") == "s~a%2Fb%252Fc"
    assert document_id(SET, "__x__") == "s~__x__"  # the prefix keeps it off the reserved pattern
    assert document_id(VALUE, "k") != document_id(SET, "k") != document_id(CLAIM, "k")
    assert document_id(SET, "nul\x00") == "s~nul%00"
    hashed = document_id(VALUE, "é" * 800)  # 1,600 bytes
    assert hashed.startswith("v#") and len(hashed) == 66
    assert document_id(VALUE, "\ud800").startswith("v#")  # not UTF-8


def test_layout_and_ttl_field() -> None:
    client = FakeFirestore()
    store = FirestoreStateStore("state", client)
    store.add("burst:alice/x", ["e1"], T0, W)
    store.remember("fact", "v1", T0, DAY)
    assert store.claim("alert:1", T0, DAY) is True
    docs = client.documents("state")
    set_doc = docs[document_id(SET, bucket("burst:alice/x"))]
    assert set_doc["m"] == ["e1"] and set_doc["k"] == bucket("burst:alice/x")
    assert set_doc[TTL_FIELD] == datetime.fromtimestamp(set_doc["expires_at"], UTC) + CLEANUP_GRACE
    value_doc = docs[document_id(VALUE, "fact")]
    assert value_doc["v"] == "v1"
    assert value_doc["expires_at"] == expiry(T0, DAY)
    assert value_doc[TTL_FIELD] == datetime.fromtimestamp(expiry(T0, DAY), UTC) + CLEANUP_GRACE
    claim_doc = docs[document_id(CLAIM, "alert:1")]
    assert claim_doc["expires_at"] == expiry(T0, DAY) and TTL_FIELD in claim_doc
    assert len(docs) == 3


# --------------------------------------------------------------------------- writes per batch


def test_a_batch_is_one_read_and_one_commit_with_one_write_per_key() -> None:
    client = FakeFirestore()
    store = FirestoreStateStore("state", client)
    batch = WriteBatch()
    exp = expiry(T0, DAY)
    for i in range(1200):
        batch.add_union(f"s{i}", ["a", "b"], exp)
    batch.add_put("v", "x", exp)
    batch.add_put_if_absent("p", "w", exp, 0)
    store.write(batch)
    assert [len(c) for c in client.commits] == [500, 500, 202]
    paths = [p for c in client.commits for _, p in c]
    assert len(paths) == len(set(paths)) == 1202
    assert store.writes == 1202
    # writing it again finds nothing to change: reads only, no commit
    before = len(client.commits)
    store.write(batch)
    assert len(client.commits) == before


def test_large_members_split_commits_under_the_request_limit() -> None:
    client = FakeFirestore()
    store = FirestoreStateStore("state", client)
    batch = WriteBatch()
    for i in range(90):  # 90 sets x 512 members x 250 characters: ~11.6 MB, over the 10 MiB request limit
        batch.add_union(f"big{i}", [f"{j:04d}" + "x" * 246 for j in range(MAX_SET_MEMBERS)], expiry(T0, DAY))
    store.write(batch)
    assert client.rejected == []  # split before sending, not after a refusal
    assert len(client.commits) > 1
    assert sum(len(c) for c in client.commits) == 90
    assert all(len(v) == MAX_SET_MEMBERS for v in store.get_sets([f"big{i}" for i in range(90)], T0).values())


def test_engine_batch_costs_one_commit() -> None:
    client = FakeFirestore()
    store = FirestoreStateStore("state", client)
    batched = BatchedState(store)
    for i in range(300):
        batched.add("apis:recon", [f"svc{i % 7}.op{i}"], T0 + timedelta(seconds=i), W)
        batched.remember("last:recon", f"op{i:03d}", T0 + timedelta(seconds=i), DAY)
    written = batched.flush()
    assert len(client.commits) == 1
    assert len(client.commits[0]) == written == len(set(p for _, p in client.commits[0]))


# --------------------------------------------------------------------------- concurrency through preconditions


def test_put_racing_a_newer_put_loses() -> None:
    client = FakeFirestore()
    ours, theirs = FirestoreStateStore("state", client), FirestoreStateStore("state", client)
    ours.remember("fact", "old", T0, DAY)
    batch = WriteBatch()
    batch.add_put("fact", "older-event", expiry(T0 + timedelta(minutes=1), DAY))
    # GIVEN another instance writes a newer fact between our read and our commit
    client.before_next_commit(lambda _: theirs.remember("fact", "newest", T0 + timedelta(minutes=5), DAY))
    ours.write(batch)
    # THEN our commit's precondition failed, we read again, and the newer fact stays
    assert client.rejected == ["FailedPrecondition"]
    assert ours.recall("fact", T0 + timedelta(minutes=6)) == "newest"


def test_union_near_the_cap_never_passes_it() -> None:
    client = FakeFirestore()
    ours, theirs = FirestoreStateStore("state", client), FirestoreStateStore("state", client)
    first = [f"m{i:04d}" for i in range(MAX_SET_MEMBERS - 5)]
    ours.add("cap", first, T0, W)
    client.before_next_commit(lambda _: theirs.add("cap", ["t1", "t2", "t3"], T0, W))
    # GIVEN our union would pass the cap (507 + 6), THEN it is conditional on the set we read
    assert ours.add("cap", ["n1", "n2", "n3", "n4", "n5", "n6"], T0, W) == MAX_SET_MEMBERS
    raw = client.raw("state", document_id(SET, bucket("cap")))
    assert raw is not None and len(raw["m"]) == MAX_SET_MEMBERS
    assert raw["m"][-5:] == ["t1", "t2", "t3", "n1", "n2"]  # theirs first, then what fitted of ours


def test_concurrent_unions_past_the_cap_read_as_stop_adding() -> None:
    client = FakeFirestore()
    ours, theirs = FirestoreStateStore("state", client), FirestoreStateStore("state", client)
    first = [f"m{i:04d}" for i in range(MAX_SET_MEMBERS - 12)]
    ours.add("cap", first, T0, W)
    # GIVEN both instances read 500 members and each adds 10 (each fits alone): 520 land
    ten = [f"o{i}" for i in range(10)]
    client.before_next_commit(lambda _: theirs.add("cap", [f"t{i}" for i in range(10)], T0, W))
    ours.add("cap", ten, T0, W)
    raw = client.raw("state", document_id(SET, bucket("cap")))
    assert raw is not None and len(raw["m"]) == MAX_SET_MEMBERS + 8
    # THEN readers see the first 512 in insertion order: exactly what "stop adding" keeps
    seen = ours.get_sets([bucket("cap")], T0)[bucket("cap")]
    assert seen == frozenset(raw["m"][:MAX_SET_MEMBERS])
    assert ours.add("cap", ["late"], T0, W) == MAX_SET_MEMBERS


def test_an_expired_claim_is_won_by_one_instance_only() -> None:
    client = FakeFirestore()
    a, b = FirestoreStateStore("state", client), FirestoreStateStore("state", client)
    assert a.claim("alert:x", T0, timedelta(hours=1)) is True
    later = T0 + timedelta(hours=2)
    results: list[bool] = []
    client.before_next_commit(lambda _: results.append(b.claim("alert:x", later, timedelta(hours=1))))
    results.append(a.claim("alert:x", later, timedelta(hours=1)))
    assert sorted(results) == [False, True]
    assert a.claim("alert:x", later, timedelta(hours=1)) is False


def test_release_then_claim_again() -> None:
    store = FirestoreStateStore("state", FakeFirestore())
    assert store.claim("k", T0, DAY) is True
    store.release("k")
    store.release("k")
    assert store.claim("k", T0, DAY) is True


# --------------------------------------------------------------------------- failures


def test_transient_errors_are_retried() -> None:
    client = FakeFirestore()
    store = FirestoreStateStore("state", client, sleep=lambda _: None)
    client.fail_next(2, gexc.ServiceUnavailable("try later"))
    store.remember("fact", "v", T0, DAY)
    client.fail_next(1, gexc.DeadlineExceeded("slow"), on="get_all")
    assert store.recall("fact", T0) == "v"
    client.fail_next(1, gexc.ServiceUnavailable("try later"))
    assert store.claim("c", T0, DAY) is True


def test_failures_name_only_the_keys_not_written() -> None:
    client = FakeFirestore()
    store, other = (
        FirestoreStateStore("state", client, sleep=lambda _: None),
        FirestoreStateStore("state", client),
    )
    store.remember("hot", "v0", T0, DAY)

    def keep_changing_hot(c: FakeFirestore) -> None:  # another writer wins "hot" before every commit
        keep_changing_hot.n += 1  # type: ignore[attr-defined]
        other.remember("hot", f"v{keep_changing_hot.n:04d}", T0 + timedelta(seconds=keep_changing_hot.n), DAY)  # type: ignore[attr-defined]
        c.before_next_commit(keep_changing_hot)

    keep_changing_hot.n = 0  # type: ignore[attr-defined]
    batch = WriteBatch()
    batch.add_put("hot", "zzz", expiry(T0 + timedelta(hours=1), DAY))
    batch.add_union("cold", ["a"], expiry(T0, DAY))
    batch.add_put("cold-value", "x", expiry(T0, DAY))
    client.before_next_commit(keep_changing_hot)
    with pytest.raises(StateWriteError) as err:
        store.write(batch)
    assert err.value.failed_keys == ("hot",)
    client._before_commit.clear()
    assert store.get_sets(["cold"], T0) == {"cold": {"a"}}
    assert store.get_values(["cold-value"], T0) == {"cold-value": "x"}


def test_permanent_errors_fail_the_batch() -> None:
    client = FakeFirestore()
    store = FirestoreStateStore("state", client, sleep=lambda _: None)
    client.fail_next(100, gexc.PermissionDenied("no"))
    batch = WriteBatch()
    batch.add_union("a", ["1"], expiry(T0, DAY))
    batch.add_put("b", "2", expiry(T0, DAY))
    with pytest.raises(StateWriteError) as err:
        store.write(batch)
    assert set(err.value.failed_keys) == {"a", "b"}
    assert "PermissionDenied" in str(err.value)


def test_a_set_full_by_bytes_stops_adding(caplog: pytest.LogCaptureFixture) -> None:
    client = FakeFirestore()
    store = FirestoreStateStore("state", client)
    batch = WriteBatch()
    batch.add_union("big", ["a" * 400_000, "b" * 400_000], expiry(T0, DAY))
    store.write(batch)
    more = WriteBatch()
    more.add_union("big", ["c" * 400_000], expiry(T0, DAY))
    with caplog.at_level(logging.WARNING, "adscore.state.firestore"):
        store.write(more)  # would pass 1 MiB: dropped, not an endless failure
    assert "document size limit" in caplog.text
    assert len(store.get_sets(["big"], T0)["big"]) == 2


# --------------------------------------------------------------------------- URLs and lifecycle


def test_parse_url() -> None:
    assert parse_url("firestore://adscore-state") == ("adscore-state", None, None)
    assert parse_url("firestore://c?database=sec-db&project=acme-prod") == ("c", "sec-db", "acme-prod")
    for bad in (
        "firestore://",
        "firestore://a/b",
        "firestore://__x__",
        "firestore://c?db=x",
        "firestore://c?database=Bad_Name",
        "dynamodb://t",
    ):
        with pytest.raises(ConfigError) as err:
            parse_url(bad)
        assert err.value.setting == "state"


def test_open_store_makes_no_request_and_loads_no_sdk() -> None:
    code = (
        "import sys; from adscore.state import open_store; s = open_store('firestore://adscore-state?database=sec-db'); "
        "print(type(s).__name__, s.collection, s.database, 'google.cloud.firestore' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["FirestoreStateStore", "adscore-state", "sec-db", "False"]


def test_init_reads_and_schema_names_the_ttl_policy() -> None:
    client = FakeFirestore()
    store = FirestoreStateStore("adscore-state", client)
    store.init()
    assert client.get_all_calls == 1
    schema = store.schema()
    assert schema["ttl_field"] == TTL_FIELD
    assert "--collection-group=adscore-state" in str(schema["ttl_command"])
    store.close()
    assert client.closed is False  # an injected client belongs to the caller
