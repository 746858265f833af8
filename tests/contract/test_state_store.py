"""One contract suite for every StateStore backend (see conftest.BACKENDS).

Times are fixed event times in 2024: every item written here is long expired by
the wall clock, so these tests also prove expiry is judged by event time only.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from adscore.errors import ConfigError
from adscore.state import open_store
from adscore.state.base import (
    LEASE_PENDING,
    LEASE_SENT,
    LEASE_WON,
    MAX_SET_MEMBERS,
    BatchedState,
    StateStore,
    WriteBatch,
    fit_key,
    make_key,
)
from adscore.state.memory import MemoryStateStore
from adscore.state.sqlite import SqliteStateStore
from adscore.windows import epoch_seconds, expiry, window_keys

if TYPE_CHECKING:
    from pathlib import Path

Factory = Callable[..., StateStore]

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)  # the start of a 5-minute bucket
W = timedelta(minutes=10)
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)


def bucket(key: str, at: datetime = T0, window: timedelta = W) -> str:
    return window_keys(fit_key(key), at, window)[0]


# --------------------------------------------------------------------------- add


def test_add_counts_distinct_members_and_ignores_duplicates(store_factory: Factory) -> None:
    store = store_factory()
    assert store.add("burst:alice", ["e1", "e2"], T0, W) == 2
    assert store.add("burst:alice", ["e2", "e3", "e3"], T0 + MINUTE, W) == 3
    assert store.add("burst:alice", ["e1"], T0 + 2 * MINUTE, W) == 3  # redelivery
    assert store.add("burst:bob", ["e1"], T0, W) == 1  # keys are independent
    assert store.get_sets([bucket("burst:alice")], T0)[bucket("burst:alice")] == {"e1", "e2", "e3"}


def test_add_counts_across_the_buckets_of_the_window(store_factory: Factory) -> None:
    store = store_factory()
    store.add("k", ["e1"], T0, W)
    store.add("k", ["e2"], T0 + 6 * MINUTE, W)  # next bucket
    assert store.add("k", ["e3"], T0 + 11 * MINUTE, W) == 3  # three buckets, all in the window


def test_window_expires_by_event_time_not_wall_clock(store_factory: Factory) -> None:
    store = store_factory()
    store.add("k", ["e1", "e2", "e3"], T0, W)
    # GIVEN an add two windows later, THEN it does not see the old members
    assert store.add("k", ["e4"], T0 + 2 * W, W) == 1
    # AND a late event back at T0 still sees them (2024 is long past on the wall clock)
    assert store.add("k", [], T0 + MINUTE, W) == 3


def test_add_without_members_only_reads(store_factory: Factory) -> None:
    store = store_factory()
    store.add("k", ["e1"], T0, W)
    before = store.writes
    assert store.add("k", [], T0, W) == 1
    assert store.writes == before


def test_set_size_is_capped(store_factory: Factory) -> None:
    store = store_factory()
    members = [f"m{i:04d}" for i in range(MAX_SET_MEMBERS + 88)]
    assert store.add("cap", members, T0, W) == MAX_SET_MEMBERS
    assert store.add("cap", ["zzz-late-1", "aaa-late-2"], T0, W) == MAX_SET_MEMBERS
    kept = store.get_sets([bucket("cap")], T0)[bucket("cap")]
    # one union keeps its smallest members; a full set takes no more
    assert kept == frozenset(sorted(members)[:MAX_SET_MEMBERS])


def test_cap_keeps_room_for_members_already_present(store_factory: Factory) -> None:
    store = store_factory()
    first = [f"z{i:04d}" for i in range(MAX_SET_MEMBERS - 2)]
    store.add("cap", first, T0, W)
    # a union that repeats present members (sorting after the new ones) and brings
    # 5 new ones fills the last 2 places, and no more
    assert store.add("cap", [*first[-3:], "n1", "n2", "n3", "n4", "n5"], T0, W) == MAX_SET_MEMBERS
    assert store.get_sets([bucket("cap")], T0)[bucket("cap")] == {*first, "n1", "n2"}


# --------------------------------------------------------------------------- fixed sets


def test_fixed_sets_unite_members_and_read_many_keys_in_one_call(store_factory: Factory) -> None:
    store = store_factory()
    store.add_to("day:alice|1", ["a", "b"], T0, DAY)
    store.add_to("day:alice|1", ["b", "c", "c"], T0 + MINUTE, DAY)
    store.add_to("day:alice|2", ["z"], T0, DAY)
    before = store.writes
    store.add_to("day:alice|1", [], T0, DAY)  # nothing to add: nothing written
    assert store.writes == before
    got = store.members_of(["day:alice|1", "day:alice|2", "day:bob|1"], T0 + MINUTE)
    assert got == {"day:alice|1": {"a", "b", "c"}, "day:alice|2": {"z"}, "day:bob|1": set()}
    # the item is the key itself: no window, no bucket
    assert store.get_sets([fit_key("day:alice|1")], T0)[fit_key("day:alice|1")] == {"a", "b", "c"}


def test_fixed_sets_expire_by_event_time_and_keep_the_largest_expiry(store_factory: Factory) -> None:
    store = store_factory()
    store.add_to("k", ["a"], T0, DAY)
    store.add_to("k", ["b"], T0 - DAY, DAY)  # an older event's shorter expiry does not shorten the item
    assert store.members_of(["k"], T0 + DAY - MINUTE)["k"] == {"a", "b"}
    assert store.members_of(["k"], T0 + DAY)["k"] == set()  # expired at T0 + DAY (2024: long past on the wall clock)


def test_fixed_sets_are_the_same_whatever_the_order_batching_and_redelivery(store_factory: Factory) -> None:
    adds = [(f"d|{i % 3}", [f"m{i}", f"m{i + 1}"]) for i in range(12)]
    results = []
    for order in (adds, adds[::-1], adds[::2] + adds[1::2] + adds[:4]):
        store = store_factory()
        batched = BatchedState(store)
        for n, (key, members) in enumerate(order):
            (batched if n % 2 else store).add_to(key, members, T0, DAY)
        batched.flush()
        results.append(store.members_of(["d|0", "d|1", "d|2"], T0))
    assert results[0] == results[1] == results[2]
    assert results[0]["d|0"] == {f"m{i}" for i in (0, 1, 3, 4, 6, 7, 9, 10)}


def test_fixed_set_size_is_capped_like_every_set(store_factory: Factory) -> None:
    store = store_factory()
    members = [f"m{i:04d}" for i in range(MAX_SET_MEMBERS + 88)]
    store.add_to("cap", members, T0, DAY)
    batched = BatchedState(store)
    batched.add_to("cap", ["zzz-late-1", "aaa-late-2"], T0, DAY)
    assert batched.flush() == 0  # full: nothing to write
    assert store.members_of(["cap"], T0)["cap"] == frozenset(sorted(members)[:MAX_SET_MEMBERS])


def test_batched_fixed_sets_cost_one_key_read_each_and_are_not_recounted(store_factory: Factory) -> None:
    store, other = store_factory(), store_factory()
    other.add_to("day|1", ["x"], T0, DAY)
    batched = BatchedState(store)
    keys = [f"day|{n}" for n in range(14)]
    # GIVEN fourteen items read at once, THEN fourteen key reads, with what others stored
    assert batched.members_of(keys, T0)["day|1"] == {"x"}
    assert batched.reads == 14
    # AND adding to one already read costs no read; members held already cost no write
    batched.add_to("day|1", ["x", "y"], T0, DAY)
    batched.add_to("day|1", ["y"], T0, DAY)
    assert batched.members_of(["day|1"], T0)["day|1"] == {"x", "y"}
    assert batched.reads == 14
    assert batched.flush() == 1
    # AND the recount after the flush reads no fixed item (they are not windows)
    other.add_to("day|2", ["late"], T0, DAY)
    assert batched.recount() == set()
    assert batched.reads == 14
    assert store.members_of(["day|1"], T0)["day|1"] == {"x", "y"}


def test_a_window_bucket_also_used_as_a_fixed_set_stays_recounted(store_factory: Factory) -> None:
    mine, other = BatchedState(store_factory()), BatchedState(store_factory())
    # GIVEN a batch that counts a window, then adds to its bucket's key as a fixed set
    assert mine.add("k", ["e1"], T0, W) == 1
    mine.add_to(bucket("k"), ["e2"], T0, W)
    assert mine.add("k", [], T0, W) == 2  # the window sees the fixed add
    other.add("k", ["e3"], T0, W)
    other.flush()
    mine.flush()
    # THEN the key is still the window's: the recount reads it and sees the other instance's member
    assert bucket("k") in mine.recount()
    assert mine.add("k", [], T0, W) == 3


def test_fixed_sets_take_hostile_keys_and_members(store_factory: Factory) -> None:
    store = store_factory()
    key = "day\x00" + "é" * 5000 + "\ud800"
    members = ["\x00", "a" * 10_000, "\udfff", "😀"]
    store.add_to(key, members, T0, DAY)
    batched = BatchedState(store)
    batched.add_to(key, members, T0, DAY)
    assert batched.flush() == 0  # the same members, fitted the same way
    assert len(store.members_of([key], T0)[key]) == 4


# --------------------------------------------------------------------------- first_seen


def test_first_seen_answers_redeliveries_like_the_first_delivery(store_factory: Factory) -> None:
    store = store_factory()
    assert store.first_seen("new_api:alice", "ec2:CreateSnapshot", "ev1", T0, DAY) is True
    assert store.first_seen("new_api:alice", "ec2:CreateSnapshot", "ev1", T0 + MINUTE, DAY) is True
    assert store.first_seen("new_api:alice", "ec2:CreateSnapshot", "ev2", T0 + MINUTE, DAY) is False
    assert store.first_seen("new_api:alice", "ec2:CopySnapshot", "ev2", T0 + MINUTE, DAY) is True
    assert store.first_seen("new_api:bob", "ec2:CreateSnapshot", "ev3", T0, DAY) is True


def test_first_seen_term_is_new_again_after_its_ttl(store_factory: Factory) -> None:
    store = store_factory()
    assert store.first_seen("k", "term", "ev1", T0, DAY) is True
    assert store.first_seen("k", "term", "ev2", T0 + DAY, DAY) is True  # expired at T0 + DAY
    assert store.first_seen("k", "term", "ev1", T0 + DAY, DAY) is False


# --------------------------------------------------------------------------- remember / recall


def test_earliest_is_the_minimum_whatever_the_order_and_instance(store_factory: Factory) -> None:
    # GIVEN three event times written in reverse order by two instances, one through a batch
    first, second = store_factory(), store_factory()
    assert first.earliest("acct", "e3", T0 + 2 * DAY, 30 * DAY) == (T0 + 2 * DAY, "e3")
    batched = BatchedState(second)
    assert batched.earliest("acct", "e2", T0 + DAY, 30 * DAY) == (T0 + DAY, "e2")
    assert batched.earliest("acct", "e9", T0 + 5 * DAY, 30 * DAY) == (T0 + DAY, "e2")  # later: not written
    batched.flush()
    assert first.earliest("acct", "e1", T0, 30 * DAY) == (T0, "e1")
    # THEN every instance reads the earliest, and redelivering a later time changes nothing
    assert second.earliest("acct", "e3", T0 + 2 * DAY, 30 * DAY) == (T0, "e1")
    assert BatchedState(second).earliest_seen("acct", T0 + 3 * DAY) == (T0, "e1")
    assert first.earliest_seen("other", T0) is None


def test_earliest_from_racing_instances_is_the_minimum(store_factory: Factory) -> None:
    instances = [BatchedState(store_factory()) for _ in range(4)]
    answers = [b.earliest("acct", f"e{i}", T0 + (4 - i) * MINUTE, DAY) for i, b in enumerate(instances)]
    assert [a[1] for a in answers] == ["e0", "e1", "e2", "e3"]  # each saw only its own
    for b in instances:
        b.flush()
    for i, b in enumerate(instances):  # once written, each recounts against the stored union
        assert b.recount()
        assert b.earliest("acct", f"e{i}", T0 + (4 - i) * MINUTE, DAY) == (T0 + MINUTE, "e3")
    assert store_factory().earliest_seen("acct", T0) == (T0 + MINUTE, "e3")


def test_remember_recall_and_expiry(store_factory: Factory) -> None:
    store = store_factory()
    assert store.recall("snap-1:creator", T0) is None
    store.remember("snap-1:creator", "alice", T0, timedelta(hours=1))
    assert store.recall("snap-1:creator", T0 + MINUTE) == "alice"
    assert store.recall("snap-1:creator", T0 + timedelta(hours=1)) is None  # expired by event time


def test_remember_keeps_the_latest_fact_whatever_the_arrival_order(store_factory: Factory) -> None:
    store = store_factory()
    store.remember("fact", "new", T0 + 10 * MINUTE, DAY)
    store.remember("fact", "old", T0, DAY)  # an old event redelivered late
    assert store.recall("fact", T0 + 11 * MINUTE) == "new"
    store.remember("fact", "newer", T0 + 20 * MINUTE, DAY)
    assert store.recall("fact", T0 + 21 * MINUTE) == "newer"


# --------------------------------------------------------------------------- claims


def test_claim_is_won_once_until_released_or_expired(store_factory: Factory) -> None:
    store = store_factory()
    other = store_factory()  # a second function instance on the same data
    assert store.claim("alert:abc", T0, timedelta(hours=1)) is True
    assert store.claim("alert:abc", T0, timedelta(hours=1)) is False
    assert other.claim("alert:abc", T0 + MINUTE, timedelta(hours=1)) is False
    assert other.claim("alert:def", T0, timedelta(hours=1)) is True
    store.release("alert:abc")
    store.release("alert:abc")  # idempotent
    assert other.claim("alert:abc", T0 + MINUTE, timedelta(hours=1)) is True
    # expired at T0 + 1h + 1min: can be won again
    assert store.claim("alert:abc", T0 + timedelta(hours=1, minutes=1), timedelta(hours=1)) is True


# --------------------------------------------------------------------------- send leases

WALL = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)  # the wall clock of a sender, far from the event times
LEASE = timedelta(seconds=30)


def test_lease_is_won_once_and_stays_pending_until_confirmed(store_factory: Factory) -> None:
    store, other = store_factory(), store_factory()
    assert store.lease("alert|a1", T0, DAY, now=WALL, lease=LEASE) == LEASE_WON
    # GIVEN the winner has not confirmed WHEN another sender asks within the lease THEN it must retry later
    assert other.lease("alert|a1", T0, DAY, now=WALL + timedelta(seconds=29), lease=LEASE) == LEASE_PENDING
    assert other.lease("alert|a2", T0, DAY, now=WALL, lease=LEASE) == LEASE_WON
    store.confirm("alert|a1", T0, DAY)
    assert other.lease("alert|a1", T0 + MINUTE, DAY, now=WALL + MINUTE, lease=LEASE) == LEASE_SENT
    assert store.lease("alert|a1", T0, DAY, now=WALL, lease=LEASE) == LEASE_SENT


def test_a_pending_lease_older_than_its_lease_is_taken_again(store_factory: Factory) -> None:
    # GIVEN a sender killed mid-send: its lease is pending, never confirmed
    store, retry = store_factory(), store_factory()
    assert store.lease("alert|k", T0, DAY, now=WALL, lease=LEASE) == LEASE_WON
    # WHEN the retry comes after the lease THEN it sends (never "already sent" for what was not sent)
    assert retry.lease("alert|k", T0, DAY, now=WALL + LEASE, lease=LEASE) == LEASE_WON
    assert store.lease("alert|k", T0, DAY, now=WALL + LEASE, lease=LEASE) == LEASE_PENDING


def test_unlease_lets_a_retry_send_at_once(store_factory: Factory) -> None:
    store, retry = store_factory(), store_factory()
    assert store.lease("alert|u", T0, DAY, now=WALL, lease=LEASE) == LEASE_WON
    store.unlease("alert|u")
    store.unlease("alert|u")  # idempotent
    assert retry.lease("alert|u", T0, DAY, now=WALL, lease=LEASE) == LEASE_WON


def test_a_confirmed_send_deduplicates_by_event_time_only(store_factory: Factory) -> None:
    store = store_factory()
    assert store.lease("alert|t", T0, DAY, now=WALL, lease=LEASE) == LEASE_WON
    store.confirm("alert|t", T0, DAY)
    # the wall clock moving on does not end the dedup window; event time past it does
    assert store.lease("alert|t", T0 + MINUTE, DAY, now=WALL + 10 * DAY, lease=LEASE) == LEASE_SENT
    assert store.lease("alert|t", T0 + DAY + MINUTE, DAY, now=WALL + 10 * DAY, lease=LEASE) == LEASE_WON


def test_concurrent_senders_get_one_lease_and_then_see_the_confirmation(store_factory: Factory) -> None:
    # GIVEN eight function instances racing for the same alert's lease
    import threading

    stores = [store_factory() for _ in range(8)]
    barrier = threading.Barrier(len(stores))
    answers: list[str] = []

    def race(store: StateStore) -> None:
        barrier.wait()
        answers.append(store.lease("alert|race", T0, DAY, now=WALL, lease=LEASE))

    threads = [threading.Thread(target=race, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    # THEN exactly one sends; the others are told to come back later
    assert sorted(answers) == [LEASE_PENDING] * (len(stores) - 1) + [LEASE_WON]
    # AND once it confirms, every other instance deduplicates
    stores[0].confirm("alert|race", T0, DAY)
    assert {s.lease("alert|race", T0, DAY, now=WALL, lease=LEASE) for s in stores} == {LEASE_SENT}


def test_lease_keys_take_hostile_text(store_factory: Factory) -> None:
    store = store_factory()
    key = "alert|" + "\x00/%#?\u2028" * 200
    assert store.lease(key, T0, DAY, now=WALL, lease=LEASE) == LEASE_WON
    store.confirm(key, T0, DAY)
    assert store.lease(key, T0, DAY, now=WALL, lease=LEASE) == LEASE_SENT


# --------------------------------------------------------------------------- primitives


def test_reads_of_missing_keys(store_factory: Factory) -> None:
    store = store_factory()
    assert store.get_sets(["nope", "nope@300:1"], T0) == {"nope": frozenset(), "nope@300:1": frozenset()}
    assert store.get_values(["nope"], T0) == {}
    assert store.get_sets([], T0) == {}


def test_write_costs_one_write_per_distinct_key(store_factory: Factory) -> None:
    store = store_factory()
    batch = WriteBatch()
    exp = expiry(T0, DAY)
    batch.add_union("s1", ["a", "b"], exp)
    batch.add_union("s1", ["c"], exp)  # merged into the same key
    batch.add_union("s2", ["a"], exp)
    batch.add_put("v1", "x", exp)
    batch.add_put("v1", "y", exp + 1)  # merged: the later expiry wins
    batch.add_put_if_absent("v2", "w", exp, epoch_seconds(T0))
    assert len(batch) == 4
    before = store.writes
    store.write(batch)
    assert store.writes - before == 4
    assert store.get_sets(["s1", "s2"], T0) == {"s1": {"a", "b", "c"}, "s2": {"a"}}
    assert store.get_values(["v1", "v2"], T0) == {"v1": "y", "v2": "w"}


def test_writing_a_batch_twice_changes_nothing(store_factory: Factory) -> None:
    store = store_factory()
    batch = WriteBatch()
    batch.add_union("s", ["a", "b"], expiry(T0, DAY))
    batch.add_put("v", "x", expiry(T0, DAY))
    batch.add_put_if_absent("p", "w1", expiry(T0, DAY), epoch_seconds(T0))
    store.write(batch)
    snapshot = (store.get_sets(["s"], T0), store.get_values(["v", "p"], T0))
    store.write(batch)
    assert (store.get_sets(["s"], T0), store.get_values(["v", "p"], T0)) == snapshot


def _batch_a() -> WriteBatch:
    batch = WriteBatch()
    batch.add_union("shared", ["e1", "e2"], expiry(T0, W))
    batch.add_union("only_a", ["x"], expiry(T0, W))
    batch.add_put("fact", "from-a", expiry(T0 + MINUTE, DAY))
    batch.add_put("tie", "aaa", expiry(T0, DAY))
    batch.add_put_if_absent("seen", "ev1", expiry(T0, DAY), epoch_seconds(T0))
    return batch


def _batch_b() -> WriteBatch:
    batch = WriteBatch()
    batch.add_union("shared", ["e2", "e3"], expiry(T0 + MINUTE, W))
    batch.add_put("fact", "from-b", expiry(T0, DAY))
    batch.add_put("tie", "bbb", expiry(T0, DAY))
    # PUT_IF_ABSENT is first-writer-wins by design; the same write (a redelivery) commutes
    batch.add_put_if_absent("seen", "ev1", expiry(T0, DAY), epoch_seconds(T0))
    return batch


def test_batches_commute(store_factory: Factory) -> None:
    ab, ba = store_factory("ab"), store_factory("ba")
    ab.write(_batch_a())
    ab.write(_batch_b())
    ba.write(_batch_b())
    ba.write(_batch_a())
    sets = ["shared", "only_a"]
    values = ["fact", "tie", "seen"]
    assert ab.get_sets(sets, T0) == ba.get_sets(sets, T0) == {"shared": {"e1", "e2", "e3"}, "only_a": {"x"}}
    assert ab.get_values(values, T0) == ba.get_values(values, T0)
    assert ab.get_values(values, T0) == {"fact": "from-a", "tie": "bbb", "seen": "ev1"}


def test_two_instances_see_each_others_writes(store_factory: Factory) -> None:
    first, second = store_factory(), store_factory()
    first.add("k", ["e1"], T0, W)
    assert second.add("k", ["e2"], T0, W) == 2
    assert first.add("k", [], T0, W) == 2


# --------------------------------------------------------------------------- BatchedState over each backend

EVENTS = [  # (record id, principal, api, at)
    ("r1", "alice", "ec2:DescribeInstances", T0),
    ("r2", "alice", "s3:ListBuckets", T0 + MINUTE),
    ("r3", "bob", "ec2:DescribeInstances", T0 + MINUTE),
    ("r4", "alice", "ec2:DescribeInstances", T0 + 2 * MINUTE),
    ("r5", "alice", "iam:ListRoles", T0 + 6 * MINUTE),
]


def _run_batch(store: StateStore) -> tuple[int, list[bool]]:
    batched = BatchedState(store)
    answers = []
    for record, principal, api, at in EVENTS:
        batched.current_record = record
        batched.add(make_key("apis", principal), [api], at, W)
        answers.append(batched.first_seen(make_key("new_api", principal), api, record, at, DAY))
        batched.remember(make_key("last_api", principal), api, at, DAY)
    return batched.flush(), answers


def _state(store: StateStore) -> tuple[object, ...]:
    at = T0 + 6 * MINUTE
    sets = [k for p in ("alice", "bob") for k in window_keys(make_key("apis", p), at, W)]
    values = [make_key("last_api", p) for p in ("alice", "bob")]
    values += [fit_key(f"{make_key('new_api', p)}|{api}") for _, p, api, _ in EVENTS]
    return store.get_sets(sets, at), store.get_values(values, at)


def test_replaying_a_batch_changes_no_count_and_writes_nothing(store_factory: Factory) -> None:
    store = store_factory()
    written, answers = _run_batch(store)
    assert written > 0
    assert answers == [True, True, True, False, True]
    state = _state(store)
    for _ in range(2):
        writes = store.writes
        again, replay_answers = _run_batch(store)
        assert again == 0
        assert store.writes == writes
        assert replay_answers == answers  # same witnesses, same answers
        assert _state(store) == state
    assert store.add(make_key("apis", "alice"), [], T0 + 6 * MINUTE, W) == 3


# --------------------------------------------------------------------------- concurrency

BURST_INSTANCES = 8
BURST_THRESHOLD = 5


def _burst_part(i: int) -> tuple[set[str], datetime]:
    """Instance ``i``'s share of a 16-member burst: 2 members, at its own time in one bucket."""
    return {f"snap-{2 * i}", f"snap-{2 * i + 1}"}, T0 + timedelta(seconds=10 * i)


def _judge(batched: BatchedState, i: int) -> tuple[int, bool]:
    """After the flush: recount against the stored union, and claim the alert when it crosses."""
    members, at = _burst_part(i)
    batched.recount()
    count = batched.add("burst:mallory", members, at, W)
    won = count >= BURST_THRESHOLD and batched.claim("alert|burst:mallory", at, timedelta(hours=1))
    return count, won


def test_instances_holding_parts_of_a_burst_raise_it_exactly_once(store_factory: Factory) -> None:
    # the worst interleaving: every instance counts before any of them writes, so each sees only its own 2
    instances = [BatchedState(store_factory()) for _ in range(BURST_INSTANCES)]
    first = [b.add("burst:mallory", *_burst_part(i), W) for i, b in enumerate(instances)]
    assert first == [2] * BURST_INSTANCES
    for b in instances:
        b.flush()
    judged = [_judge(b, i) for i, b in enumerate(instances)]
    assert judged[-1][0] == 2 * BURST_INSTANCES  # the last to recount sees the whole union
    assert sum(won for _, won in judged) == 1


def test_instances_racing_on_threads_raise_a_burst_exactly_once(store_factory: Factory) -> None:
    stores = [store_factory() for _ in range(BURST_INSTANCES)]
    barrier = threading.Barrier(BURST_INSTANCES)

    def instance(i: int) -> tuple[int, bool]:
        batched = BatchedState(stores[i])
        batched.add("burst:mallory", *_burst_part(i), W)
        barrier.wait()  # all have counted; now all write and recount at once
        batched.flush()
        return _judge(batched, i)

    with ThreadPoolExecutor(BURST_INSTANCES) as pool:
        judged = list(pool.map(instance, range(BURST_INSTANCES)))
    assert max(count for count, _ in judged) == 2 * BURST_INSTANCES
    assert sum(won for _, won in judged) == 1


def test_recount_reports_only_sets_changed_by_others(store_factory: Factory) -> None:
    mine, other = BatchedState(store_factory()), BatchedState(store_factory())
    mine.add("a", ["e1"], T0, W)
    mine.add("b", ["e1"], T0, W)
    other.add("a", ["e2"], T0, W)
    other.flush()
    mine.flush()
    assert mine.recount() == {bucket("a")}
    assert mine.add("a", [], T0, W) == 2
    assert mine.recount() == set()


def test_odd_and_huge_text_is_stored_safely(store_factory: Factory) -> None:
    store = store_factory()
    key = "k\x00" + "é" * 5000 + "\ud800"
    members = ["\x00", "a" * 10_000, "a" * 10_001, "\udfff", "😀"]
    assert store.add(key, members, T0, W) == 5
    assert store.add(key, members, T0, W) == 5
    assert store.first_seen(key, "\ud800" * 3, "ev\x00" * 3000, T0, DAY) is True
    assert store.first_seen(key, "\ud800" * 3, "ev\x00" * 3000, T0, DAY) is True
    store.remember(key, "v" * 100_000, T0, DAY)
    recalled = store.recall(key, T0)
    assert recalled is not None and recalled.startswith("vvv")
    assert store.claim(key, T0, DAY) is True
    assert store.claim(key, T0, DAY) is False


def test_cleanup_deletes_only_long_expired_items(store_factory: Factory) -> None:
    store = store_factory()
    cleanup = getattr(store, "cleanup", None)
    if cleanup is None:
        pytest.skip("this backend expires items itself (TTL)")
    store.add("old", ["e1"], T0, W)
    store.add("mixed", ["e1"], T0, W)
    store.add("mixed", ["e2"], T0 + 4 * MINUTE, W, ttl=2 * DAY)  # same bucket, lives longer
    store.remember("old-fact", "v", T0, DAY)
    store.remember("new-fact", "v", T0, 3 * DAY)
    store.claim("old-claim", T0, DAY)
    assert cleanup(T0 + 2 * DAY) == 3  # the "old" set, "old-fact", "old-claim"
    assert store.get_sets([bucket("old"), bucket("mixed")], T0) == {
        bucket("old"): frozenset(),
        bucket("mixed"): {"e1", "e2"},  # a set lives as long as its latest union
    }
    assert store.get_values(["new-fact", "old-fact"], T0) == {"new-fact": "v"}
    assert store.claim("old-claim", T0, DAY) is True


# --------------------------------------------------------------------------- open_store


def test_open_store_by_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert isinstance(open_store("memory://"), MemoryStateStore)
    for url, path in [
        ("sqlite:///relative.db", "relative.db"),
        (f"sqlite:///{tmp_path}/absolute.db", f"{tmp_path}/absolute.db"),
        ("SQLITE:///:memory:", ":memory:"),
        ("sqlite://:memory:", ":memory:"),
    ]:
        store = open_store(url)
        try:
            assert isinstance(store, SqliteStateStore)
            assert store.path == path
            assert store.add("k", ["e1"], T0, W) == 1
        finally:
            store.close()
    assert (tmp_path / "relative.db").exists() and (tmp_path / "absolute.db").exists()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("adscore.db", "malformed state URL"),
        ("sqlite:/adscore.db", "malformed state URL"),
        ("redis://user:hunter2@cache:6379/0", "unknown state backend 'redis'"),
        ("sqlite://", "needs a path"),
        ("sqlite://relative.db", "needs a path"),
        ("sqlite:///state.db?mode=ro", "no query string"),
    ],
)
def test_open_store_names_the_url_problem(url: str, problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        open_store(url)
    assert error.value.setting == "state"
    assert problem in str(error.value)
    assert "hunter2" not in str(error.value)


def test_opening_the_state_package_loads_no_backend() -> None:
    code = "import sys, adscore.state; print(sorted(m for m in ('sqlite3', 'tenacity', 'boto3') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_sqlite_schema_script_creates_the_tables() -> None:
    conn = sqlite3.connect(":memory:")
    conn.executescript(SqliteStateStore.schema())
    conn.executescript(SqliteStateStore.schema())  # idempotent
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"state_sets", "state_values", "state_claims"}
    conn.close()


# --------------------------------------------------------------------------- SQLite across processes

UNION_KEYS = ("proc:a", "proc:b", "proc:c")


def _members(proc: int, round_: int) -> set[str]:
    return {f"m{(proc * 37 + round_ * 11 + i) % 300:03d}" for i in range(12)}


def _union_worker(path: str, proc: int, rounds: int, barrier: object) -> None:
    store = SqliteStateStore(path)
    barrier.wait()  # type: ignore[attr-defined]
    for round_ in range(rounds):
        batched = BatchedState(store)
        for key in UNION_KEYS:
            batched.add(key, _members(proc, round_), T0 + timedelta(seconds=round_), W)
        batched.flush()
    store.close()


def _claim_worker(path: str, barrier: object, results: object) -> None:
    store = SqliteStateStore(path)
    barrier.wait()  # type: ignore[attr-defined]
    results.put(store.claim("alert:once", T0, timedelta(hours=1)))  # type: ignore[attr-defined]
    store.close()


def test_sqlite_processes_never_lose_a_union(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    SqliteStateStore(path).close()
    procs, rounds = 4, 15
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(procs)
    workers = [ctx.Process(target=_union_worker, args=(path, p, rounds, barrier)) for p in range(procs)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    expected = set().union(*(_members(p, r) for p in range(procs) for r in range(rounds)))
    assert len(expected) < MAX_SET_MEMBERS
    store = SqliteStateStore(path)
    try:
        found = store.get_sets([bucket(k) for k in UNION_KEYS], T0)
        assert found == {bucket(k): expected for k in UNION_KEYS}
    finally:
        store.close()


def _race(path: Path, target: Any, procs: int) -> list[Any]:
    """Start ``procs`` processes on one SQLite file, released together by a barrier; return their results."""
    SqliteStateStore(str(path)).close()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(procs)
    results = ctx.Queue()
    workers = [ctx.Process(target=target, args=(str(path), barrier, results)) for _ in range(procs)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in range(procs)]
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    return outcomes


def test_sqlite_claim_is_won_by_exactly_one_process(tmp_path: Path) -> None:
    outcomes = _race(tmp_path / "state.db", _claim_worker, 5)
    assert sorted(outcomes) == [False] * 4 + [True]


def _lease_worker(path: str, barrier: object, results: object) -> None:
    store = SqliteStateStore(path)
    barrier.wait()  # type: ignore[attr-defined]
    results.put(store.lease("alert|once", T0, DAY, now=WALL, lease=LEASE))  # type: ignore[attr-defined]
    store.close()


def test_sqlite_lease_is_won_by_exactly_one_process(tmp_path: Path) -> None:
    outcomes = _race(tmp_path / "state.db", _lease_worker, 4)
    assert sorted(outcomes) == [LEASE_PENDING] * 3 + [LEASE_WON]
