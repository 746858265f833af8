"""A process-wide read cache in front of a store that can tell when anyone else wrote to it.

The engine reads a window's buckets, a principal's learned days and its first-seen values again
in every batch, and reads them once more after its flush to judge what other instances added
(:meth:`~adscore.state.base.BatchedState.recount`). In a warm function or a replay the same
process wrote most of those items itself a batch earlier. :class:`WarmStore` keeps the items it
read or wrote, as the store holds them (members or value, with the item's expiry, or "no item"),
and answers reads from memory for as long as the store says nothing changed it but this process.

Exactness, not approximation
----------------------------
A store opts in by being :class:`Versioned`: :meth:`Versioned.version` returns ``(theirs, ours)``,
where ``theirs`` changes whenever any other writer (another connection or process) committed,
and ``ours`` counts the item writes made through this store object. Before every read (in a batch:
once, at :meth:`WarmStore.begin`) the cache compares the version with the one it last saw; any
difference drops the whole cache, so a read answers exactly what the store would answer at that
moment (in a batch: at its start, as the batch's own reads would). Other writers make it a pass-through
(each read goes to the store, as without the cache); a single writer, such as ``adscore replay``
or one function instance on SQLite, reads each item once.

A write through the cache is applied to the cached items only when the version the cache last saw
(in a batch: at :meth:`WarmStore.begin`) and the version after the write show that it was the only
change (``ours`` grew by the batch's size, ``theirs`` stayed): then
UNION (when the item stays under :data:`~adscore.state.base.MAX_SET_MEMBERS`), PUT and
PUT_IF_ABSENT are replayed on the cached copy with the store's own rules; an item where that is not
certain (a union that reaches the cap) is dropped and read again when next needed. Claims are never
cached. A failed write drops the cache.

A store whose own rules can change an item in a way no version shows is :class:`Forgetful` as well
(DynamoDB: a union its item-size limit cut short, an item its TTL deleted): after each write it names
the keys whose cached copy must be dropped, and it gives a horizon below which an item's expiry makes
it one the store may remove at any moment; such items are read through, never kept. It may also give
the version right after its write (saving a :meth:`Versioned.version` call). A store that is not
Forgetful (SQLite) changes items only by writes its version shows.

The race-free rule of concurrent instances is kept as it is: the engine still recounts after each
flush; with a single writer the recount is answered from memory and finds nothing changed, with
other writers it reads the store.

Memory follows the live items: every :data:`SWEEP_EVERY` items read, those expired at the newest
event time are dropped (closed windows, past days), and at most :data:`MAX_CACHED_ITEMS` are kept
(past that the oldest are dropped). A late event that needs a dropped item reads it again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

from adscore.state.base import MAX_SET_MEMBERS, StateStoreBase, put_wins, sets_alive, values_alive
from adscore.windows import epoch

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from datetime import datetime

    from adscore.state.base import StateStore, WriteBatch

__all__ = ["MAX_CACHED_ITEMS", "Forgetful", "Versioned", "WarmStore", "Written", "warm"]

#: Items (set and value items together) kept in memory; past it the oldest quarter is dropped.
MAX_CACHED_ITEMS = 200_000
#: Items read between two sweeps of the expired ones.
SWEEP_EVERY = 20_000

SetItem = tuple[frozenset[str], int]
"""A set item as stored: every member, and the item's expiry (epoch seconds)."""
ValueItem = tuple[str, int]
"""A value item as stored: the value and its expiry (epoch seconds)."""
_I = TypeVar("_I", SetItem, ValueItem)


@runtime_checkable
class Versioned(Protocol):
    """A store that can say whether anything but this object wrote to it since it last asked."""

    def version(self) -> tuple[int, int]:
        """``(theirs, ours)``: ``theirs`` changes when any other writer commits; ``ours`` counts item writes
        made through this object (the ``len(batch)`` of each successful :meth:`write`, cleanups included)."""
        ...

    def read_sets(self, keys: Sequence[str]) -> dict[str, SetItem]:
        """Each set item as stored, whatever its expiry; keys with no item are left out."""
        ...

    def read_values(self, keys: Sequence[str]) -> dict[str, ValueItem]:
        """Each value item as stored, whatever its expiry; keys with no item are left out."""
        ...


@dataclass(frozen=True, slots=True)
class Written:
    """What a :class:`Forgetful` store tells of its last successful write that a version cannot.

    Attributes
    ----------
    version : tuple[int, int] | None
        :meth:`Versioned.version` as it stood right after the write, when the write learnt it on the way
        (None: ask).
    unsure : frozenset[str]
        Set keys whose union the store may have applied only in part (its own limits): the cached copy
        is dropped and the item read again when next needed.
    """

    version: tuple[int, int] | None = None
    unsure: frozenset[str] = frozenset()


@runtime_checkable
class Forgetful(Protocol):
    """Optional, beside :class:`Versioned`: a store whose own rules can change items unseen by its version."""

    def last_write(self) -> Written:
        """About this thread's last successful :meth:`~adscore.state.base.StateStore.write` (asked once,
        right after it)."""
        ...

    def purge_horizon(self) -> int:
        """Epoch seconds (wall clock): an item whose expiry is at or before it the store may remove on its
        own at any moment; the cache does not keep such items."""
        ...


class WarmStore(StateStoreBase):
    """A :class:`Versioned` store with a read cache kept across batches (see the module's text).

    Parameters
    ----------
    store : the store it reads and writes through (also :class:`Versioned`)
    max_items : how many items it keeps at most

    Attributes
    ----------
    store_reads : int
        Keys read from the store (the cache's misses), for the engine's ``state_reads`` count.
    """

    def __init__(self, store: StateStoreBase, max_items: int = MAX_CACHED_ITEMS) -> None:
        super().__init__()
        if not isinstance(store, Versioned):
            raise TypeError("WarmStore needs a store with version(), read_sets() and read_values()")
        self.store = store
        self._versioned: Versioned = store
        self._forgetful: Forgetful | None = store if isinstance(store, Forgetful) else None
        self.max_items = max_items
        self.store_reads = 0
        self._sets: dict[str, SetItem | None] = {}
        self._values: dict[str, ValueItem | None] = {}
        self._version: tuple[int, int] | None = None
        self._lock = threading.RLock()  # instances of a function may share one engine across threads
        self._batch = threading.local()  # whether this thread is inside begin() .. end()
        self._newest = 0.0
        self._added = 0
        """The latest event time read at (epoch seconds): items expired by then go first when full."""

    # -- one batch ---------------------------------------------------------

    def begin(self) -> None:
        """Check the store once for a batch's reads (:meth:`end` ends it).

        A batch treats the store as one instant (see :class:`~adscore.state.base.BatchedState`): between
        :meth:`begin` and :meth:`end` reads trust the cache as checked here, and only writes check the
        version again (after, against the one last seen), so the recount after a flush still sees every
        other writer that committed before it. Outside a batch every read checks first. Sending (leases and send
        markers) runs outside, where a stale answer could send an alert twice.
        """
        with self._lock:
            self._check()
        self._batch.trusted = True

    def end(self) -> None:
        """End the batch :meth:`begin` started: every read checks the store's version again."""
        self._batch.trusted = False

    # -- the cache ---------------------------------------------------------

    def _check(self) -> None:
        """Drop everything when the store changed since the cache last looked."""
        now = self._versioned.version()
        if now != self._version:
            self._drop(now)

    def _check_outside_batch(self) -> None:
        """:meth:`_check`, unless this thread is in a batch (its reads trust the check of :meth:`begin`)."""
        if not getattr(self._batch, "trusted", False):
            self._check()

    def _drop(self, version: tuple[int, int] | None) -> None:
        """Forget every item: they stand for nothing the store is known to hold at ``version``."""
        self._sets.clear()
        self._values.clear()
        self._version = version

    def _horizon(self) -> int | None:
        """The store's purge horizon (:class:`Forgetful`), or None when it removes nothing on its own."""
        return self._forgetful.purge_horizon() if self._forgetful is not None else None

    def _bound(self, added: int) -> None:
        """Drop the items expired at the newest event time read (a late event that still needs one reads
        it again) every :data:`SWEEP_EVERY` items read, so memory follows the live items, not the input;
        past ``max_items``, also the oldest quarter."""
        self._added += added
        if self._added < SWEEP_EVERY and len(self._sets) + len(self._values) <= self.max_items:
            return
        self._added = 0
        newest = self._newest
        for cache in (self._sets, self._values):
            dead = [k for k, item in cache.items() if item is not None and item[1] <= newest]
            for k in dead:
                del cache[k]
        if len(self._sets) + len(self._values) <= self.max_items:
            return
        for cache in (self._sets, self._values):
            for key in list(cache)[: len(cache) // 4 + 1]:
                del cache[key]

    def _items(
        self,
        cache: dict[str, _I | None],
        read: Callable[[Sequence[str]], Mapping[str, _I]],
        keys: Sequence[str],
        at: datetime,
    ) -> dict[str, _I | None]:
        """The item of each key as stored (None: no item), the missing ones read in one call.

        Under the lock: a read and its caching are one step, no write of another thread comes between.
        """
        now = epoch(at)
        with self._lock:
            self._check_outside_batch()
            if now > self._newest:
                self._newest = now
            fresh = self._fill(cache, read, keys)
            items = {k: fresh[k] if k in fresh else cache[k] for k in keys}
            self._keep(cache, fresh)
        return items

    @property
    def remote(self) -> bool:  # type: ignore[override]
        """The store's: whether its reads are requests over the network (see :meth:`prefetch`)."""
        return self.store.remote

    def keeps(self, at: datetime) -> bool:
        """Whether items written at event time ``at`` can be kept: not when a store that removes items on
        its own (TTL) may already have removed them (replays of old logs read through; reading their
        keys ahead would only add reads)."""
        horizon = self._horizon()
        return horizon is None or epoch(at) > horizon

    def prefetch(self, sets: Sequence[str], values: Sequence[str]) -> None:
        """Read the items of ``sets`` and ``values`` not cached yet, one call per kind, and keep them."""
        with self._lock:
            self._check_outside_batch()
            self._keep(self._sets, self._fill(self._sets, self._versioned.read_sets, sets))
            self._keep(self._values, self._fill(self._values, self._versioned.read_values, values))

    def _fill(
        self, cache: dict[str, _I | None], read: Callable[[Sequence[str]], Mapping[str, _I]], keys: Sequence[str]
    ) -> dict[str, _I | None]:
        """The items of the keys not cached (or that the store may have removed), read in one call."""
        horizon = self._horizon()
        missing = [k for k in keys if not _cached(cache, k, horizon)[0]]
        if not missing:
            return {}
        unique = list(dict.fromkeys(missing))
        found = read(unique)
        self.store_reads += len(unique)
        return {k: found.get(k) for k in unique}

    def _keep(self, cache: dict[str, _I | None], fresh: dict[str, _I | None]) -> None:
        if fresh:
            cache.update(fresh)
            self._bound(len(fresh))

    def get_sets(self, keys: Sequence[str], at: datetime) -> dict[str, frozenset[str]]:
        return sets_alive(self._items(self._sets, self._versioned.read_sets, keys, at), keys, at)

    def get_values(self, keys: Sequence[str], at: datetime) -> dict[str, str]:
        return values_alive(self._items(self._values, self._versioned.read_values, keys, at), at)

    def write(self, batch: WriteBatch) -> None:
        if not batch:
            return
        with self._lock:
            self._write_locked(batch)

    def _write_locked(self, batch: WriteBatch) -> None:
        # The version the cached items stand for (None: nothing is): anything but this write between
        # it and the version after shows as a difference, and the cache starts over.
        before = self._version
        try:
            self.store.write(batch)
        except BaseException:
            self._drop(None)
            raise
        self.writes += len(batch)
        written = self._forgetful.last_write() if self._forgetful is not None else Written()
        after = written.version if written.version is not None else self._versioned.version()
        if before is None or after != (before[0], before[1] + len(batch)):
            self._drop(after)  # someone else wrote meanwhile: nothing cached is known any more
            return
        self._version = after
        self._replay(batch)
        for key in written.unsure:
            self._sets.pop(key, None)

    def _replay(self, batch: WriteBatch) -> None:
        """Apply a write the store has just made to the cached copies, by the store's rules.

        An item a :class:`Forgetful` store may have removed before the write (its expiry at or before
        the horizon) is dropped instead: whether the write met it is the store's to say.
        """
        sets, values = self._sets, self._values
        horizon = self._horizon()
        for key, union in batch.unions.items():
            kept, old = _cached(sets, key, horizon)
            if not kept:
                continue
            members, expires_at = old if old is not None else (frozenset[str](), 0)
            merged = members | union.members
            if len(merged) > MAX_SET_MEMBERS:  # which members the cap kept is the store's to say
                del sets[key]
                continue
            sets[key] = (merged, max(expires_at, union.expires_at))
        for key, put in batch.puts.items():
            kept, held = _cached(values, key, horizon)
            if kept and (held is None or put_wins(put, *held)):
                values[key] = (put.value, put.expires_at)
        for key, new in batch.put_if_absent.items():
            kept, held = _cached(values, key, horizon)
            if kept and (held is None or held[1] <= new.at):
                values[key] = (new.value, new.expires_at)

    # -- claims and lifecycle pass through -----------------------------------

    def claim_item(self, key: str, expires_at: int, now: int) -> bool:
        return self.store.claim_item(key, expires_at, now)

    def release_item(self, key: str) -> None:
        self.store.release_item(key)

    def init(self) -> None:
        self.store.init()

    def close(self) -> None:
        with self._lock:
            self._drop(None)
        self.store.close()


def _cached(cache: dict[str, _I | None], key: str, horizon: int | None) -> tuple[bool, _I | None]:
    """Whether ``key`` is cached, and its item (None: no item); an item the store may have removed on its
    own (expiry at or before ``horizon``) is dropped and counts as not cached."""
    if key not in cache:
        return False, None
    item = cache[key]
    if horizon is not None and item is not None and item[1] <= horizon:
        del cache[key]
        return False, None
    return True, item


def warm(store: StateStore) -> StateStore:
    """``store`` behind a :class:`WarmStore` when it is :class:`Versioned`, else ``store`` itself."""
    if isinstance(store, WarmStore) or not isinstance(store, StateStoreBase) or not isinstance(store, Versioned):
        return store
    return WarmStore(store)
