"""BatchedState: one read per key, writes only what changes, and failure bookkeeping."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adscore.state.base import (
    MAX_SET_MEMBERS,
    BatchedState,
    SetUnion,
    StateView,
    StateWriteError,
    ValuePut,
    WriteBatch,
    fit_key,
)
from adscore.state.memory import MemoryStateStore
from adscore.windows import window_keys, window_keys_ahead

if TYPE_CHECKING:
    from collections.abc import Sequence

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
W = timedelta(minutes=10)
DAY = timedelta(days=1)


class RecordingStore(MemoryStateStore):
    """A real memory store that counts reads per key and can fail chosen keys (a failure double)."""

    def __init__(self, fail: Sequence[str] = (), crash: bool = False) -> None:
        super().__init__()
        self.fail = set(fail)
        self.crash = crash
        self.set_reads: Counter[str] = Counter()
        self.value_reads: Counter[str] = Counter()
        self.batches: list[WriteBatch] = []

    def get_sets(self, keys: Sequence[str], at: datetime) -> dict[str, frozenset[str]]:
        self.set_reads.update(keys)
        return super().get_sets(keys, at)

    def get_values(self, keys: Sequence[str], at: datetime) -> dict[str, str]:
        self.value_reads.update(keys)
        return super().get_values(keys, at)

    def write(self, batch: WriteBatch) -> None:
        if self.crash:
            raise ConnectionError("network down")
        self.batches.append(batch)
        keys = batch.keys()
        super().write(batch.subset(k for k in keys if k not in self.fail))
        failed = [k for k in keys if k in self.fail]
        if failed:
            raise StateWriteError(failed)


def bucket(key: str, at: datetime = T0) -> str:
    return window_keys(fit_key(key), at, W)[0]


def test_each_key_is_read_once_per_batch() -> None:
    store = RecordingStore()
    batched = BatchedState(store)
    for i in range(50):
        at = T0 + timedelta(seconds=i)
        batched.add("burst:alice", [f"e{i}"], at, W)
        batched.first_seen("new:alice", "ec2:CreateSnapshot", f"e{i}", at, DAY)
        batched.recall("fact", at)
    assert max(store.set_reads.values()) == 1
    assert set(store.set_reads) == set(window_keys("burst:alice", T0, W))
    assert max(store.value_reads.values()) == 1
    assert batched.reads == len(store.set_reads) + len(store.value_reads) == 5
    assert store.batches == []  # nothing written before flush
    assert batched.flush() == 2  # one union, one first-seen
    assert store.add("burst:alice", [], T0, W) == 50


def test_answers_unite_remote_and_local_state() -> None:
    store = RecordingStore()
    store.add("burst:alice", ["e1", "e2"], T0, W)
    store.remember("fact", "remote", T0, DAY)
    batched = BatchedState(store)
    assert batched.add("burst:alice", ["e2", "e3"], T0, W) == 3
    assert batched.recall("fact", T0) == "remote"
    batched.remember("fact", "local", T0 + timedelta(minutes=1), DAY)
    assert batched.recall("fact", T0 + timedelta(minutes=1)) == "local"
    assert store.recall("fact", T0) == "remote"  # not yet written
    batched.flush()
    assert store.recall("fact", T0 + timedelta(minutes=1)) == "local"


def test_flush_writes_only_keys_that_change_something() -> None:
    store = RecordingStore()
    store.add("burst:alice", ["e1", "e2"], T0, W)
    store.first_seen("new:alice", "ec2:CreateSnapshot", "e1", T0, DAY)
    store.remember("fact", "same", T0, DAY)
    batched = BatchedState(store)
    # GIVEN a batch that repeats what the store already holds, plus one new member elsewhere
    batched.add("burst:alice", ["e1", "e2"], T0, W)
    assert batched.first_seen("new:alice", "ec2:CreateSnapshot", "e9", T0, DAY) is False
    batched.remember("fact", "same", T0 + timedelta(minutes=1), DAY)
    batched.add("burst:bob", ["e3"], T0, W)
    # THEN only the new member is written
    pending = batched.pending()
    assert pending.keys() == (bucket("burst:bob"),)
    assert batched.flush() == 1
    assert store.batches[-1].keys() == (bucket("burst:bob"),)
    assert batched.writes == 1
    assert batched.flush() == 0  # nothing left


def test_a_put_that_changes_the_value_is_written() -> None:
    store = RecordingStore()
    store.remember("fact", "old", T0, DAY)
    batched = BatchedState(store)
    batched.remember("fact", "new", T0 + timedelta(minutes=1), DAY)
    assert batched.pending().puts[fit_key("fact")].value == "new"
    assert batched.flush() == 1


def test_first_seen_within_one_batch() -> None:
    batched = BatchedState(RecordingStore())
    assert batched.first_seen("k", "term", "e1", T0, DAY) is True
    assert batched.first_seen("k", "term", "e2", T0, DAY) is False
    assert batched.first_seen("k", "term", "e1", T0, DAY) is True
    assert len(batched.pending().put_if_absent) == 1


def test_local_unions_honour_the_set_cap() -> None:
    store = RecordingStore()
    store.add("cap", [f"m{i:04d}" for i in range(MAX_SET_MEMBERS - 2)], T0, W)
    batched = BatchedState(store)
    assert batched.add("cap", ["n1", "n2", "n3", "n4"], T0, W) == MAX_SET_MEMBERS
    assert batched.add("cap", ["n5"], T0, W) == MAX_SET_MEMBERS
    assert batched.pending().unions[bucket("cap")].members == {"n1", "n2"}
    batched.flush()
    assert store.add("cap", [], T0, W) == MAX_SET_MEMBERS


def test_failed_flush_names_the_records_whose_state_was_not_saved() -> None:
    store = RecordingStore(fail=[bucket("burst:bob")])
    store.first_seen("new:alice", "term", "r0", T0, DAY)
    batched = BatchedState(store)
    for record, key in [
        ("r1", "burst:alice"),
        ("r2", "burst:bob"),
        ("r3", "burst:bob"),
        ("r4", "burst:alice"),
    ]:
        batched.current_record = record
        batched.add(key, [f"member-of-{record}"], T0, W)
    batched.current_record = "r5"
    batched.first_seen("new:alice", "term", "r5", T0, DAY)  # already known: changes nothing
    with pytest.raises(StateWriteError) as failure:
        batched.flush()
    assert failure.value.failed_keys == (bucket("burst:bob"),)
    assert batched.records_for(failure.value.failed_keys) == {"r2", "r3"}
    # the keys that were written are saved and forgotten; the failed ones stay pending
    assert store.add("burst:alice", [], T0, W) == 2
    assert batched.pending().keys() == (bucket("burst:bob"),)
    assert batched.records_for([bucket("burst:alice")]) == set()
    # WHEN the failure clears, a second flush sends only the failed key
    store.fail.clear()
    assert batched.flush() == 1
    assert store.add("burst:bob", [], T0, W) == 2
    assert batched.records_for(failure.value.failed_keys) == set()


def test_an_unexpected_store_error_fails_every_key() -> None:
    batched = BatchedState(RecordingStore(crash=True))
    batched.current_record = "r1"
    batched.add("k", ["e1"], T0, W)
    batched.first_seen("k", "t", "r1", T0, DAY)
    with pytest.raises(StateWriteError) as failure:
        batched.flush()
    assert set(failure.value.failed_keys) == {bucket("k"), fit_key("k|t")}
    assert isinstance(failure.value.__cause__, ConnectionError)
    assert batched.records_for(failure.value.failed_keys) == {"r1"}


def test_claims_are_not_batched() -> None:
    store = RecordingStore()
    batched = BatchedState(store)
    assert batched.claim("alert:1", T0, DAY) is True
    assert store.claim("alert:1", T0, DAY) is False  # visible at once
    batched.release("alert:1")
    assert store.claim("alert:1", T0, DAY) is True
    assert batched.pending().keys() == ()


def test_prefetch_reads_in_one_call_and_later_uses_hit_the_cache() -> None:
    store = RecordingStore()
    batched = BatchedState(store)
    batched.prefetch(T0, sets=window_keys("burst:alice", T0, W), values=[fit_key("fact")])
    batched.add("burst:alice", ["e1"], T0, W)
    batched.recall("fact", T0)
    assert max(store.set_reads.values()) == 1
    assert store.value_reads == Counter({fit_key("fact"): 1})


def test_batched_state_is_a_state_view() -> None:
    assert isinstance(BatchedState(MemoryStateStore()), StateView)


def test_write_batch_merges_per_key() -> None:
    batch = WriteBatch()
    batch.add_union("s", ["a"], 10)
    batch.add_union("s", ["b"], 5)
    batch.add_put_if_absent("v", "first", 10, 1)
    batch.add_put_if_absent("v", "second", 10, 1)
    other = WriteBatch()
    other.add_put("v", "put", 20)  # a put supersedes a put-if-absent of the same key
    other.add_put("w", "x", 5)
    batch.merge(other)
    assert batch.unions["s"] == SetUnion(frozenset({"a", "b"}), 10)
    assert batch.puts == {"v": ValuePut("put", 20), "w": ValuePut("x", 5)}
    assert batch.put_if_absent == {}
    assert len(batch) == 3
    assert batch.subset(["w"]).keys() == ("w",)


# ----------------------------------------------------------------------------- the cached-window fast path

_steps = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),  # key
        st.integers(min_value=0, max_value=40),  # minutes after T0 (within a batch: time never goes back)
        st.lists(st.sampled_from(["x", "y", "z", "w", "v" * 300]), min_size=1, max_size=3),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(_steps, st.integers(min_value=1, max_value=4))
def test_batched_adds_count_what_the_store_counts(steps: list[tuple[str, int, list[str]]], batches: int) -> None:
    """Over any time-ordered sequence cut into batches, add() and members() answer as the plain store does."""
    steps = sorted(steps, key=lambda s: s[1])
    plain = MemoryStateStore()
    backing = MemoryStateStore()
    size = max(1, len(steps) // batches)
    for start in range(0, len(steps), size):
        state = BatchedState(backing)
        for key, minute, members in steps[start : start + size]:
            at = T0 + timedelta(minutes=minute)
            expected = plain.add(key, members, at, W)
            assert state.add(key, members, at, W) == expected
            assert set(state.members(key, at, W)) == set(plain.members(key, at, W))
        state.flush()


def test_recount_reads_the_buckets_ahead_once_and_counts_later_members() -> None:
    # GIVEN later events already stored (they were delivered first)
    store = RecordingStore()
    store.add("k", ["late-1", "late-2"], T0 + W, W)
    # WHEN an earlier batch counts, saves and recounts
    batched = BatchedState(store)
    assert batched.add("k", ["early"], T0 + W / 4, W) == 1  # its own window only, before the flush
    batched.flush()
    assert batched.recount() == {window_keys("k", T0 + W, W)[0]}
    # THEN the window ending later, which holds the early event too, counts all three
    assert batched.add("k", ["early"], T0 + W / 4, W) == 3
    assert set(window_keys_ahead("k", T0 + W / 4, W)) <= set(store.set_reads)
    assert batched.recount() == set()


def test_repeated_members_are_answered_from_the_batch_and_written_once() -> None:
    store = RecordingStore()
    state = BatchedState(store)
    for i in range(200):
        assert state.add("k", ("op-a", "op-b"), T0 + timedelta(seconds=i), W) == 2
    assert sum(store.set_reads.values()) == len(window_keys("k", T0, W))
    assert state.flush() == 1
    again = BatchedState(store)
    assert again.add("k", ("op-a",), T0 + timedelta(seconds=250), W) == 2
    assert again.flush() == 0  # nothing new in this bucket (12:00-12:05): no write
