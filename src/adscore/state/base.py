"""The state contract: protocols, the write batch, a base class and the per-batch cache.

Semantics every backend honours
-------------------------------
All state is three kinds of items. Every item has ``expires_at`` (integer epoch
seconds). Each kind is its own key space (a set, a value and a claim may share
a key without meeting). Every write is idempotent and commutative: retries,
at-least-once delivery and many function instances at once never double count,
and nothing is ever read, changed and written back.

- **Set items** (key -> set of strings). Write: UNION. The item's expiry is the
  largest expiry of the unions applied to it. A set holds at most
  ``MAX_SET_MEMBERS`` members: a union adds its new members in sorted order
  until the set is full and drops the rest ("stop adding"). The size is then
  ``min(|all members ever added|, MAX_SET_MEMBERS)`` whatever the order; which
  members are kept past the cap may depend on the order.
- **Value items** (key -> string). Writes: PUT and PUT_IF_ABSENT.
  PUT keeps the put with the later ``expires_at`` (equal expiry: the greater
  value), so it is commutative and a redelivered old event cannot overwrite a
  newer fact; with one ttl per key this is "the latest event wins".
  PUT_IF_ABSENT writes only when the key is absent or expired at the write's
  own event time (``at``): the first writer wins.
- **Claims** (key -> exists). ``claim`` inserts when absent or expired and
  says whether this caller won; ``release`` deletes.
- **Send leases** (built on the two kinds above, so every backend has them):
  ``lease`` takes a claim that expires by the *wall clock* after the send
  budget and answers ``won``, ``sent`` (a confirmed send marker exists) or
  ``pending`` (another sender holds a live lease and has not confirmed);
  ``confirm`` writes the send marker (a PUT that lives ``ttl`` in event time);
  ``unlease`` gives the lease back. A sender killed mid-send leaves a pending
  lease that anyone may take again once it expires: at least once, and never
  "already sent" for an alert that was not.

Built on these, without a backend of their own:

- **Fixed sets** (``add_to`` / ``members_of``): set items whose key the caller gives (no window, no
  bucket derived from a time), for what is stored once per period, such as a principal's learned
  day. The same UNION semantics (idempotent, order-independent, capped at ``MAX_SET_MEMBERS``);
  ``members_of`` reads any number of them in one call, one key read each.

- **Earliest** (``earliest`` / ``earliest_seen``): a ``min`` of event times with
  a witness, stored as a set of ``<epoch micros>|<witness>`` members (written only
  when earlier than the stored minimum, so the set stays small). Learning
  periods and "first seen" use it: the earliest event time, not the first
  processed.
- **Windows that look ahead**: a windowed count is the largest union over the
  windows that hold the event's bucket (the one ending at the event and the
  ``SLICES`` ending after it), so an event delivered after later ones completes
  their windows as a time-sorted replay would have.

Concurrency
-----------
A batch counts against the sets it read before writing. :meth:`BatchedState.recount`,
called after a successful flush, reads the sets again: the set as stored is the
union of every write that came before, so of instances that each hold part of a
burst, the one that recounts last sees all of it, and the engine judges those
counts again (claims keep the alert to one). :class:`adscore.state.warm.WarmStore`
answers those reads from memory only while the store shows no other writer, so this
holds unchanged behind it.

Time and expiry
---------------
Items store ``expires_at = event time + ttl``. Readers pass the event time of
the call as ``at``; an item is absent when ``expires_at <= at``. Expiry is
never judged against the wall clock, so replaying last month's logs sees state
exactly as live traffic did. Backends may physically delete items whose
``expires_at`` is older than the wall clock minus ``CLEANUP_GRACE`` (30 days)
when cleaning up; a replay of logs older than that simply starts with less
state (fewer counts, never double counts).

Attacker-controlled text
------------------------
Keys, members and values carry text from logs. The high-level API
(``add``/``first_seen``/``remember``/``recall``/``claim``/``release``) passes
them through :func:`fit_key`, :func:`fit_member` and :func:`fit_value`: long or
unencodable keys and members are replaced by a stable hash, long values are
truncated. The low-level primitives take keys verbatim.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, ClassVar, NamedTuple, Protocol, runtime_checkable

from adscore.errors import StateError
from adscore.windows import (
    bucket_lifetime,
    bucket_width,
    epoch,
    epoch_micros,
    epoch_seconds,
    expiry,
    window_keys,
    window_keys_ahead,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from collections.abc import Set as AbstractSet
    from types import TracebackType
    from typing import Self

__all__ = [
    "CLEANUP_GRACE",
    "LEASE_PENDING",
    "LEASE_SENT",
    "LEASE_WON",
    "MAX_KEY_LEN",
    "MAX_MEMBER_LEN",
    "MAX_PART_LEN",
    "MAX_SET_MEMBERS",
    "MAX_VALUE_LEN",
    "BatchedState",
    "SetUnion",
    "StateStore",
    "StateStoreBase",
    "StateView",
    "StateWriteError",
    "ValuePut",
    "ValuePutIfAbsent",
    "WriteBatch",
    "fit_key",
    "fit_member",
    "fit_part",
    "fit_value",
    "make_key",
    "put_wins",
    "sets_alive",
    "values_alive",
]

MAX_SET_MEMBERS = 512
"""Most members a set item holds; further members are dropped."""
MAX_KEY_LEN = 256
"""Longer keys (characters) are shortened to a prefix plus a hash."""
MAX_MEMBER_LEN = 256
"""Longer members (characters) are replaced by their hash."""
MAX_VALUE_LEN = 8192
"""Longer values (characters) are truncated."""
CLEANUP_GRACE = timedelta(days=30)
"""Items whose expiry is older than the wall clock minus this may be deleted."""

LEASE_WON = "won"
""":meth:`StateStore.lease` answer: this caller holds the lease and must send, then confirm."""
LEASE_SENT = "sent"
""":meth:`StateStore.lease` answer: the send was confirmed earlier (deduplicated)."""
LEASE_PENDING = "pending"
""":meth:`StateStore.lease` answer: another sender holds a live, unconfirmed lease: retry later."""

_HASH_PREFIX = "sha256:"
_MICROSECOND = timedelta(microseconds=1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)


class StateWriteError(StateError):
    """Some keys of a :class:`WriteBatch` were not written (after the backend's retries).

    Other keys of the batch may have been written; every operation is
    idempotent, so retrying the whole batch is safe.

    Attributes
    ----------
    failed_keys : tuple[str, ...]
        The keys that were not written.
    """

    def __init__(self, failed_keys: Iterable[str], message: str = "") -> None:
        self.failed_keys: tuple[str, ...] = tuple(dict.fromkeys(failed_keys))
        super().__init__(message or f"state write failed for {len(self.failed_keys)} key(s)")


# --------------------------------------------------------------------------- text limits


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _encodable(text: str) -> bool:
    if text.isascii():  # the common case, without encoding a copy
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def fit_key(key: str) -> str:
    """Make a key safe for every backend.

    Parameters
    ----------
    key : str
        A key built from log text.

    Returns
    -------
    str
        ``key`` itself when it is at most ``MAX_KEY_LEN`` characters of valid
        UTF-8 text; otherwise a stable prefix followed by ``#`` and a hash.

    Example
    -------
    >>> fit_key("snapshot.burst:alice")
    'snapshot.burst:alice'
    """
    if len(key) <= MAX_KEY_LEN and "\x00" not in key and _encodable(key):
        return key
    prefix = key[: MAX_KEY_LEN - 80].replace("\x00", "")
    prefix = prefix.encode("utf-8", "replace").decode("utf-8")
    return f"{prefix}#{_digest(key)}"


def fit_member(member: str) -> str:
    """Make a set member safe: a long, NUL-bearing or unencodable member becomes ``sha256:<hex>``."""
    if len(member) <= MAX_MEMBER_LEN and "\x00" not in member and _encodable(member):
        return member
    return _HASH_PREFIX + _digest(member)


MAX_PART_LEN = 64
"""Longer parts of a composite member (characters) are replaced by a short hash (see :func:`fit_part`)."""


def fit_part(part: str, limit: int = MAX_PART_LEN) -> str:
    """Canonical form of one part of a composite member (``service<SEP>namespace<SEP>event id``).

    A member longer than ``MAX_MEMBER_LEN`` is stored as its hash, so a detection that joins
    several log fields into one member and splits them again when it reads the set would find a
    hash it cannot split: one long value would poison every later count of that key. Each part is
    therefore made short first, the same way wherever members are built or compared: a part of at
    most ``limit`` printable characters is kept; a longer one, or one with control characters
    (which include the separators), becomes ``sha256:`` and 32 hex digits of its hash.

    Example
    -------
    >>> fit_part("iam")
    'iam'
    >>> fit_part("x" * 300)[:7]
    'sha256:'
    """
    if len(part) <= limit and part.isprintable() and _encodable(part):
        return part
    return _HASH_PREFIX + _digest(part)[:32]


def fit_value(value: str) -> str:
    """Make a value safe: truncate it to ``MAX_VALUE_LEN`` characters; replace NUL and unencodable characters."""
    value = value[:MAX_VALUE_LEN].replace("\x00", "\ufffd")
    if not _encodable(value):
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def make_key(*parts: str) -> str:
    """Join key parts with ``:`` after escaping ``%``, ``:``, ``|`` and ``@`` in each part.

    Escaping keeps keys unambiguous: the parts of two different keys never run
    together, and a part can never fake the ``|term`` or ``@bucket`` suffixes
    this module adds.

    Example
    -------
    >>> make_key("discovery.api_burst", "arn:aws:iam::1:role/x")
    'discovery.api_burst:arn%3Aaws%3Aiam%3A%3A1%3Arole/x'
    """
    return ":".join(
        part.replace("%", "%25").replace(":", "%3A").replace("|", "%7C").replace("@", "%40") for part in parts
    )


# --------------------------------------------------------------------------- write batch


class SetUnion(NamedTuple):
    """UNION ``members`` into a set item that lives until ``expires_at``."""

    members: frozenset[str]
    expires_at: int


class ValuePut(NamedTuple):
    """PUT ``value``; the put with the later ``expires_at`` (then the greater value) wins."""

    value: str
    expires_at: int


class ValuePutIfAbsent(NamedTuple):
    """PUT_IF_ABSENT ``value``: written when the key is absent or expired at ``at`` (epoch seconds)."""

    value: str
    expires_at: int
    at: int


def put_wins(new: ValuePut, old_value: str, old_expires_at: int) -> bool:
    """Whether a PUT of ``new`` replaces a stored value (later expiry, then greater value, wins)."""
    return (new.expires_at, new.value) > (old_expires_at, old_value)


@dataclass
class WriteBatch:
    """Operations to apply at once: at most one operation per key and kind.

    Attributes
    ----------
    unions : dict[str, SetUnion]
        Set key -> members to union and expiry.
    puts : dict[str, ValuePut]
        Value key -> PUT.
    put_if_absent : dict[str, ValuePutIfAbsent]
        Value key -> PUT_IF_ABSENT. A key never sits in both ``puts`` and
        ``put_if_absent`` (a put supersedes a put-if-absent of the same key).
    """

    unions: dict[str, SetUnion] = field(default_factory=dict)
    puts: dict[str, ValuePut] = field(default_factory=dict)
    put_if_absent: dict[str, ValuePutIfAbsent] = field(default_factory=dict)

    def add_union(self, key: str, members: Iterable[str], expires_at: int) -> None:
        """Merge a union into the batch (members are united, the later expiry kept)."""
        new = frozenset(members)
        old = self.unions.get(key)
        if old is not None:
            new = old.members | new
            expires_at = max(expires_at, old.expires_at)
        self.unions[key] = SetUnion(new, expires_at)

    def add_put(self, key: str, value: str, expires_at: int) -> None:
        """Merge a PUT into the batch (same rule as the stores: later expiry, then greater value)."""
        new = ValuePut(value, expires_at)
        old = self.puts.get(key)
        if old is None or put_wins(new, old.value, old.expires_at):
            self.puts[key] = new
        self.put_if_absent.pop(key, None)

    def add_put_if_absent(self, key: str, value: str, expires_at: int, at: int) -> None:
        """Add a PUT_IF_ABSENT unless the batch already writes ``key`` (the first one added stays)."""
        if key not in self.puts and key not in self.put_if_absent:
            self.put_if_absent[key] = ValuePutIfAbsent(value, expires_at, at)

    def merge(self, other: WriteBatch) -> None:
        """Merge every operation of ``other`` into this batch."""
        for key, union in other.unions.items():
            self.add_union(key, union.members, union.expires_at)
        for key, put in other.puts.items():
            self.add_put(key, put.value, put.expires_at)
        for key, new in other.put_if_absent.items():
            self.add_put_if_absent(key, new.value, new.expires_at, new.at)

    def keys(self) -> tuple[str, ...]:
        """Every key the batch writes (set keys first, then value keys)."""
        return (*self.unions, *self.puts, *self.put_if_absent)

    def subset(self, keys: Iterable[str]) -> WriteBatch:
        """The operations of this batch on ``keys`` only (for example the keys of a failed write)."""
        wanted = set(keys)
        return WriteBatch(
            unions={k: v for k, v in self.unions.items() if k in wanted},
            puts={k: v for k, v in self.puts.items() if k in wanted},
            put_if_absent={k: v for k, v in self.put_if_absent.items() if k in wanted},
        )

    def __len__(self) -> int:
        """Number of key-writes: distinct keys per kind."""
        return len(self.unions) + len(self.puts) + len(self.put_if_absent)


# --------------------------------------------------------------------------- protocols


@runtime_checkable
class StateView(Protocol):
    """The narrow state API a detection sees (all times are event times)."""

    def add(
        self,
        key: str,
        members: Iterable[str],
        at: datetime,
        window: timedelta,
        ttl: timedelta | None = None,
    ) -> int:
        """Union ``members`` into the bucket of ``at``; return the distinct members over the window."""
        ...

    def members(self, key: str, at: datetime, window: timedelta) -> AbstractSet[str]:
        """The distinct members :meth:`add` counts over the window ending at ``at`` (read only)."""
        ...

    def add_to(self, key: str, members: Iterable[str], at: datetime, ttl: timedelta) -> None:
        """Union ``members`` into the fixed set item ``key`` (no window), kept until ``at + ttl``."""
        ...

    def members_of(self, keys: Sequence[str], at: datetime) -> dict[str, AbstractSet[str]]:
        """The members of each fixed set item in ``keys`` alive at ``at``, read in one call (missing: empty)."""
        ...

    def first_seen(self, key: str, term: str, witness: str, at: datetime, ttl: timedelta) -> bool:
        """True if ``term`` is new under ``key``, or was first recorded by this same ``witness``."""
        ...

    def earliest(self, key: str, witness: str, at: datetime, ttl: timedelta) -> tuple[datetime, str]:
        """Record ``(at, witness)`` under ``key``; return the earliest ``(time, witness)`` ever recorded there."""
        ...

    def earliest_seen(self, key: str, at: datetime) -> tuple[datetime, str] | None:
        """The earliest ``(time, witness)`` :meth:`earliest` recorded under ``key`` (read only), or None."""
        ...

    def remember(self, key: str, value: str, at: datetime, ttl: timedelta) -> None:
        """Store a fact (PUT)."""
        ...

    def recall(self, key: str, at: datetime) -> str | None:
        """Read a fact, or None when absent or expired at ``at``."""
        ...


@runtime_checkable
class StateStore(StateView, Protocol):
    """A state backend: the high-level API plus batch primitives.

    Attributes
    ----------
    writes : int
        Key-writes performed so far (batch keys, claims, releases).
    """

    writes: int

    def claim(self, key: str, at: datetime, ttl: timedelta) -> bool:
        """Insert-if-absent (or expired at ``at``); True only for the caller that inserted."""
        ...

    def release(self, key: str) -> None:
        """Delete a claim (idempotent)."""
        ...

    def lease(self, key: str, at: datetime, ttl: timedelta, *, now: datetime, lease: timedelta) -> str:
        """Take the send lease of ``key`` until wall-clock ``now + lease``: ``won``, ``sent`` or ``pending``."""
        ...

    def confirm(self, key: str, at: datetime, ttl: timedelta) -> None:
        """Mark the send of ``key`` confirmed until event time ``at + ttl``."""
        ...

    def unlease(self, key: str) -> None:
        """Give the send lease of ``key`` back (the send failed and nothing is in flight)."""
        ...

    def get_sets(self, keys: Sequence[str], at: datetime) -> dict[str, frozenset[str]]:
        """Members of each set key; every requested key is in the result (missing -> empty)."""
        ...

    def get_values(self, keys: Sequence[str], at: datetime) -> dict[str, str]:
        """Value of each present, unexpired key; absent keys are left out."""
        ...

    def write(self, batch: WriteBatch) -> None:
        """Apply a batch: at most one write per key; raises :class:`StateWriteError` naming unwritten keys."""
        ...

    def init(self) -> None:
        """Create tables or containers if missing (idempotent)."""
        ...

    def close(self) -> None:
        """Release connections and clients."""
        ...


# --------------------------------------------------------------------------- base class


def sets_alive(
    items: Mapping[str, tuple[frozenset[str], int] | None], keys: Sequence[str], at: datetime
) -> dict[str, frozenset[str]]:
    """Each key's members as a read at event time ``at`` sees them, from set items as stored (members,
    expiry; a key absent or None: no item): empty when there is no item or it expired."""
    now = epoch(at)
    empty = frozenset[str]()
    return {k: item[0] if (item := items.get(k)) is not None and item[1] > now else empty for k in keys}


def values_alive(items: Mapping[str, tuple[str, int] | None], at: datetime) -> dict[str, str]:
    """The values a read at event time ``at`` sees, from value items as stored (value, expiry): those
    not expired; no item (None) and expired ones left out."""
    now = epoch(at)
    return {k: item[0] for k, item in items.items() if item is not None and item[1] > now}


def _set_ttl(window: timedelta, ttl: timedelta | None) -> timedelta:
    # A bucket is read for up to bucket_lifetime(window) after its start; its items
    # must live at least that long or a count would lose them early.
    floor = bucket_lifetime(window)
    return max(ttl if ttl is not None else window * 2, floor)


def _fit_members(members: Iterable[str]) -> set[str]:
    return {fit_member(m) for m in members}


_EARLIEST_SUFFIX = "|earliest"
_WITNESS_LEN = 160


def _earliest_member(at: datetime, witness: str) -> str:
    """``<epoch micros, zero-padded>|<witness>``: members sort by time, then witness."""
    return f"{epoch_micros(at):020d}|{fit_part(witness, _WITNESS_LEN)}"


def _earliest_of(members: Iterable[str]) -> tuple[datetime, str] | None:
    """The earliest readable member as ``(time, witness)``; None if there is none."""
    for m in sorted(members):
        micros, sep, witness = m.partition("|")
        if sep and micros.isdigit():
            return _EPOCH_UTC + timedelta(microseconds=int(micros)), witness
    return None


class StateStoreBase(ABC):
    """Shared high-level API on top of a backend's primitives.

    Subclasses implement :meth:`get_sets`, :meth:`get_values`, :meth:`write`,
    :meth:`claim_item` and :meth:`release_item` (and :meth:`close` /
    :meth:`init` when they hold resources). Each high-level call costs one
    write and one read; wrap the store in :class:`BatchedState` to coalesce.

    Subclasses must count every key-write in ``self.writes``.
    """

    remote: ClassVar[bool] = False
    """Whether each read is a request over the network (then a batch reads its keys ahead in one)."""

    def __init__(self) -> None:
        self.writes = 0

    # -- primitives -------------------------------------------------------

    @abstractmethod
    def get_sets(self, keys: Sequence[str], at: datetime) -> dict[str, frozenset[str]]:
        """Members of each set key alive at ``at``; every requested key is in the result."""

    @abstractmethod
    def get_values(self, keys: Sequence[str], at: datetime) -> dict[str, str]:
        """Value of each key alive at ``at``; absent or expired keys are left out."""

    @abstractmethod
    def write(self, batch: WriteBatch) -> None:
        """Apply ``batch`` with at most one write per key; add ``len(batch)`` to ``writes``.

        Raises
        ------
        StateWriteError
            Naming the keys that were not written.
        """

    @abstractmethod
    def claim_item(self, key: str, expires_at: int, now: int) -> bool:
        """Insert claim ``key`` if absent or expired at ``now``; True if inserted."""

    @abstractmethod
    def release_item(self, key: str) -> None:
        """Delete claim ``key`` if present."""

    def init(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Create tables or containers if missing (idempotent). Default: nothing."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Release connections and clients. Default: nothing."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- high-level API ---------------------------------------------------

    def add(
        self,
        key: str,
        members: Iterable[str],
        at: datetime,
        window: timedelta,
        ttl: timedelta | None = None,
    ) -> int:
        """Union ``members`` into the bucket of ``at``; return distinct members over the window.

        Parameters
        ----------
        key : str
            Entity key (see :func:`make_key`).
        members : Iterable[str]
            Event ids, API names, namespaces...; duplicates count once.
        at : datetime
            Event time.
        window : timedelta
            Counting window (see :mod:`adscore.windows` for the exact span).
        ttl : timedelta, optional
            Item lifetime; default ``2 * window``, never less than a bucket's
            lifetime in the window.

        Returns
        -------
        int
            Distinct members over the window's buckets.
        """
        keys = window_keys(fit_key(key), at, window)
        new = _fit_members(members)
        if new:
            batch = WriteBatch()
            batch.add_union(keys[0], new, expiry(at, _set_ttl(window, ttl)))
            self.write(batch)
        return len(self.members(key, at, window))

    def members(self, key: str, at: datetime, window: timedelta) -> AbstractSet[str]:
        """The distinct members :meth:`add` counts over the window ending at ``at`` (read only).

        When buckets after ``at`` already hold members (later events arrived first), the largest
        union over the windows that hold ``at`` (see :func:`_widest`).
        """
        fitted = fit_key(key)
        keys = window_keys(fitted, at, window)
        ahead = window_keys_ahead(fitted, at, window)
        sets = self.get_sets((*keys, *ahead), at)
        return _widest([sets[k] for k in keys], [sets[k] for k in ahead])

    def add_to(self, key: str, members: Iterable[str], at: datetime, ttl: timedelta) -> None:
        """Union ``members`` into the set item ``key`` itself: a fixed set, whose key no window derives.

        The same semantics as every set item (UNION: idempotent, order-independent, at most
        ``MAX_SET_MEMBERS`` members, the largest expiry kept). For sets kept one per period (a
        principal's day): reading one costs one key read, and :meth:`members_of` reads many at once.

        Parameters
        ----------
        key : str
            The item's key (through :func:`fit_key`); a fixed set and a windowed key's buckets
            never share a key unless the caller builds it so.
        members : Iterable[str]
            Members to add (through :func:`fit_member`); nothing is written when there are none.
        at : datetime
            Event time the expiry counts from.
        ttl : timedelta
            The item lives until ``at + ttl`` (event time).
        """
        new = _fit_members(members)
        if new:
            batch = WriteBatch()
            batch.add_union(fit_key(key), new, expiry(at, ttl))
            self.write(batch)

    def members_of(self, keys: Sequence[str], at: datetime) -> dict[str, AbstractSet[str]]:
        """The members of each fixed set item (see :meth:`add_to`) alive at ``at``: one read, one key each.

        Returns
        -------
        dict[str, AbstractSet[str]]
            Every key of ``keys`` (as given) -> its members; missing or expired items are empty.
        """
        fitted = {k: fit_key(k) for k in keys}
        sets = self.get_sets(list(dict.fromkeys(fitted.values())), at)
        return {k: sets[f] for k, f in fitted.items()}

    def first_seen(self, key: str, term: str, witness: str, at: datetime, ttl: timedelta) -> bool:
        """New-term check that answers a redelivered event as it answered the first delivery.

        Parameters
        ----------
        key : str
            Scope of the terms (for example a detection and a principal).
        term : str
            The term (an API name, a region...).
        witness : str
            Id of the event asking (its event id).
        at : datetime
            Event time.
        ttl : timedelta
            How long a term stays known.

        Returns
        -------
        bool
            True if ``term`` was never recorded under ``key`` (or has expired),
            or was first recorded by this same ``witness``.
        """
        item = fit_key(f"{key}|{term}")
        witness = fit_value(witness)
        batch = WriteBatch()
        batch.add_put_if_absent(item, witness, expiry(at, ttl), epoch_seconds(at))
        self.write(batch)
        return self.get_values([item], at).get(item) == witness

    def earliest(self, key: str, witness: str, at: datetime, ttl: timedelta) -> tuple[datetime, str]:
        """The earliest event time (and its witness) recorded under ``key``, this one included: a ``min``.

        Built on a set item (UNION is commutative, so the minimum is the same whatever the order of
        delivery and however many instances write at once). A time is written only when it is earlier
        than the earliest already stored, so the set stays small: learning periods and "first seen"
        judged on it use the earliest event time, not the first event processed.

        Parameters
        ----------
        key : str
            What the minimum is of (for example an account's first snapshot).
        witness : str
            Id of the event (its event id); ties in time are broken by it.
        at : datetime
            Event time.
        ttl : timedelta
            How long the minimum is kept after the latest time written to it.

        Returns
        -------
        tuple[datetime, str]
            The earliest ``(time, witness)``; ``(at, witness)`` when this event is the earliest.
        """
        item = fit_key(key + _EARLIEST_SUFFIX)
        member = _earliest_member(at, witness)
        stored = self.get_sets([item], at)[item]
        if not stored or member < min(stored):
            batch = WriteBatch()
            batch.add_union(item, (member,), expiry(at, ttl))
            self.write(batch)
            stored = self.get_sets([item], at)[item]
        return _earliest_of(stored) or (at, fit_part(witness, _WITNESS_LEN))

    def earliest_seen(self, key: str, at: datetime) -> tuple[datetime, str] | None:
        """The earliest ``(time, witness)`` :meth:`earliest` recorded under ``key`` (read only), or None."""
        item = fit_key(key + _EARLIEST_SUFFIX)
        return _earliest_of(self.get_sets([item], at)[item])

    def remember(self, key: str, value: str, at: datetime, ttl: timedelta) -> None:
        """Store a fact (PUT: the fact with the later expiry wins)."""
        item = fit_key(key)
        batch = WriteBatch()
        batch.add_put(item, fit_value(value), expiry(at, ttl))
        self.write(batch)

    def recall(self, key: str, at: datetime) -> str | None:
        """Read a fact stored by :meth:`remember`; None when absent or expired at ``at``."""
        item = fit_key(key)
        return self.get_values([item], at).get(item)

    def claim(self, key: str, at: datetime, ttl: timedelta) -> bool:
        """Claim ``key`` until ``at + ttl``; exactly one concurrent caller gets True.

        A claim expired at ``at`` can be won again.
        """
        return self.claim_item(fit_key(key), expiry(at, ttl), epoch_seconds(at))

    def release(self, key: str) -> None:
        """Give a claim back (for example when the alert it guarded failed to send)."""
        self.release_item(fit_key(key))

    def lease(self, key: str, at: datetime, ttl: timedelta, *, now: datetime, lease: timedelta) -> str:
        """Take the send lease of ``key``: a claim that stays pending until :meth:`confirm`.

        Parameters
        ----------
        key : str
            What is sent (``alert|<id>``).
        at : datetime
            Event time of what is sent (the send marker is read at this time).
        ttl : timedelta
            How long a confirmed send deduplicates, in event time.
        now : datetime
            The wall clock: leases expire by it, whatever the event time.
        lease : timedelta
            The send budget (or the invocation's remaining time): after it, a pending lease
            may be taken again, so a sender killed mid-send strands nothing.

        Returns
        -------
        str
            :data:`LEASE_WON` (send, then :meth:`confirm`), :data:`LEASE_SENT` (confirmed
            earlier) or :data:`LEASE_PENDING` (another sender holds a live lease).

        Example
        -------
        >>> store.lease("alert|a1", t, DAY, now=wall, lease=timedelta(seconds=60))  # doctest: +SKIP
        'won'
        """
        sent = f"{key}|sent"
        if self.recall(sent, at) is not None:  # deduplicated: one read, no write
            return LEASE_SENT
        if self.claim_item(fit_key(f"{key}|lease"), expiry(now, lease), epoch_seconds(now)):
            return LEASE_WON
        # held by another sender: it may have confirmed since the first read
        return LEASE_SENT if self.recall(sent, at) is not None else LEASE_PENDING

    def confirm(self, key: str, at: datetime, ttl: timedelta) -> None:
        """Write the send marker of ``key`` (one PUT); the lease then expires on its own."""
        self.remember(f"{key}|sent", "sent", at, ttl)

    def unlease(self, key: str) -> None:
        """Delete the send lease of ``key`` so a retry may send at once."""
        self.release_item(fit_key(f"{key}|lease"))


# --------------------------------------------------------------------------- per-batch cache


class _Window:
    """The buckets of one (key, window, bucket): members over the window, and in its own bucket, in this batch.

    ``ahead`` are the buckets after its own: windows ending in them cover it too (see :func:`_widest`).
    """

    __slots__ = ("ahead", "current", "keys", "read", "seen")

    def __init__(self, keys: tuple[str, ...], seen: set[str], current: set[str], ahead: tuple[str, ...]) -> None:
        self.keys = keys
        self.seen = seen
        self.current = current
        self.ahead = ahead
        self.read = keys + ahead


def _widest(behind: Sequence[AbstractSet[str]], ahead: Sequence[AbstractSet[str]]) -> AbstractSet[str]:
    """The largest union over the windows that hold the bucket ``behind[0]``.

    ``behind`` is the bucket of the event then the ``SLICES`` before it, ``ahead`` the ``SLICES``
    after it. The window ending at the event is ``behind``; the windows ending later also hold
    the event's bucket. When later buckets already hold members (they arrived first), the event
    completes those windows as it would have in a time-sorted replay.
    """
    buckets = [*reversed(behind), *ahead]  # oldest first; the event's bucket at index SLICES
    best: AbstractSet[str] = frozenset[str]().union(*behind)
    for shift in range(1, len(ahead) + 1):
        union = frozenset[str]().union(*buckets[shift : shift + len(behind)])
        if len(union) > len(best):
            best = union
    return best


class BatchedState:
    """A store seen through one batch of records: cached reads, coalesced writes.

    Reads each key from the store at most once (lazily), answers from the
    remote state united with this batch's local changes, and writes nothing
    until :meth:`flush`, which sends one :class:`WriteBatch` holding only the
    keys that change something. Steady traffic repeats the same operations,
    so this keeps writes to a handful per thousand events.

    The batch is treated as one instant for remote items: a key is read at the
    event time of its first use. Two instances racing on the same new term may
    both answer ``first_seen`` True (the store keeps one witness); alerts are
    deduplicated by claims. ``remember`` of the value already stored does not
    extend its expiry. Use one instance per batch.

    Attributes
    ----------
    store : StateStore
        The wrapped store.
    current_record : str | None
        Id of the record being evaluated; set by the engine before each
        record, used by :meth:`records_for`.
    reads : int
        Keys read from the store.
    writes : int
        Key-writes sent by :meth:`flush` (claims are not counted here).
    """

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.current_record: str | None = None
        self.reads = 0
        self.writes = 0
        self._sets: dict[str, frozenset[str]] = {}
        self._values: dict[str, str | None] = {}
        self._unions: dict[str, SetUnion] = {}
        self._puts: dict[str, ValuePut] = {}
        self._new: dict[str, ValuePutIfAbsent] = {}
        self._owners: dict[str, set[str]] = {}
        self._widths: dict[timedelta, int] = {}
        self._at: datetime | None = None
        self._at_us = 0
        self._windows: dict[tuple[str, int, int], _Window] = {}
        self._by_bucket: dict[str, list[_Window]] = {}
        self._sets_at: datetime | None = None
        self._ahead: set[str] = set()
        self._fixed: dict[str, set[str]] = {}
        """Fixed set items read by :meth:`add_to` / :meth:`members_of` (not windows: never recounted) -> members held."""
        self.uses: list[tuple[str, ...]] = []
        """The bucket keys of every windowed count or read, in call order (see :meth:`recount`)."""

    # -- reads --------------------------------------------------------------

    def _load_sets(self, keys: Sequence[str], at: datetime) -> None:
        have = self._sets
        missing = [k for k in keys if k not in have]
        if len(missing) > 1:
            missing = list(dict.fromkeys(missing))
        if missing:
            found = self.store.get_sets(missing, at)
            self.reads += len(missing)
            for k in missing:
                self._sets[k] = frozenset(found.get(k, ()))
            if self._sets_at is None or at < self._sets_at:
                self._sets_at = at

    def _load_values(self, keys: Sequence[str], at: datetime) -> None:
        have = self._values
        missing = [k for k in keys if k not in have]
        if len(missing) > 1:
            missing = list(dict.fromkeys(missing))
        if missing:
            found = self.store.get_values(missing, at)
            self.reads += len(missing)
            for k in missing:
                self._values[k] = found.get(k)

    def _load_fixed(self, items: Sequence[str], at: datetime) -> None:
        """Read fixed set items not read yet, in one call (they leave the recount's time alone)."""
        unread = [k for k in dict.fromkeys(items) if k not in self._sets]  # a key read otherwise stays recounted
        if unread:
            found = self.store.get_sets(unread, at)
            self.reads += len(unread)
            for k in unread:
                self._sets[k] = frozenset(found.get(k, ()))
                self._fixed[k] = set(self._bucket_members(k))

    def prefetch(self, at: datetime, sets: Iterable[str] = (), values: Iterable[str] = ()) -> None:
        """Read many low-level keys in one call each (optional; reads are lazy otherwise).

        Parameters
        ----------
        at : datetime
            Event time to read at.
        sets, values : Iterable[str]
            Low-level keys as the store sees them (after :func:`fit_key` and
            :func:`~adscore.windows.window_keys`).
        """
        self._load_sets(list(sets), at)
        self._load_values(list(values), at)

    def _own(self, key: str) -> None:
        if self.current_record is not None:
            self._owners.setdefault(key, set()).add(self.current_record)

    # -- high-level API -----------------------------------------------------

    def add(
        self,
        key: str,
        members: Iterable[str],
        at: datetime,
        window: timedelta,
        ttl: timedelta | None = None,
    ) -> int:
        """Same contract as :meth:`StateStoreBase.add`; nothing is written before :meth:`flush`.

        The distinct members of each (key, window, bucket) are kept while the batch lasts, so an
        event repeating a member already counted costs a few dictionary lookups: steady traffic
        repeats the same operations.
        """
        win = self._window(key, at, window)
        seen, current = win.seen, win.current
        if not isinstance(members, (tuple, list, set, frozenset)):
            members = tuple(members)
        for m in members:
            if m not in current:
                break
        else:
            return len(seen) if not self._ahead_held(win) else len(self._widest(win))
        bucket = win.keys[0]
        new = self._pend(bucket, members, expiry(at, _set_ttl(window, ttl)), extend=True)
        if new:
            current.update(new)
            for other in self._by_bucket.get(bucket, ()):
                other.seen.update(new)
        return len(seen) if not self._ahead_held(win) else len(self._widest(win))

    def _pend(self, item: str, members: Iterable[str], expires_at: int, *, extend: bool) -> set[str]:
        """Queue, in ``item``'s pending union, the members the store and the union lack, up to the cap.

        Returns the members newly queued. ``extend``: a union already pending takes ``expires_at`` even
        when no member is new (windows); otherwise nothing changes then.
        """
        remote = self._sets[item]
        wanted = _fit_members(members) - remote
        if not wanted:
            return set()
        pending = self._unions.get(item)
        local = pending.members if pending is not None else frozenset[str]()
        new = wanted - local
        room = MAX_SET_MEMBERS - len(remote) - len(local)
        if len(new) > room:
            new = set(sorted(new)[: max(room, 0)])
        if not new and not (extend and pending is not None):
            return new  # already pending, or the item is full
        if pending is not None:
            expires_at = max(expires_at, pending.expires_at)
        self._unions[item] = SetUnion(local | new, expires_at)
        self._own(item)
        return new

    def members(self, key: str, at: datetime, window: timedelta) -> AbstractSet[str]:
        """The distinct members :meth:`add` counts over the window ending at ``at`` (with this batch's adds).

        A live read-only view (no copy): do not keep it across calls that add.
        """
        win = self._window(key, at, window)
        return win.seen if not self._ahead_held(win) else self._widest(win)

    def add_to(self, key: str, members: Iterable[str], at: datetime, ttl: timedelta) -> None:
        """Same contract as :meth:`StateStoreBase.add_to`; nothing is written before :meth:`flush`.

        The item is read once per batch (one key), so only members it lacks are written, up to the cap.
        """
        item = fit_key(key)
        held = self._fixed.get(item)
        if held is None:
            self._load_fixed((item,), at)
            held = self._fixed.get(item)
        if not isinstance(members, (tuple, list, set, frozenset)):
            members = tuple(members)
        if held is not None:
            for m in members:
                if m not in held:
                    break
            else:
                return  # steady traffic: every member already held
        new = self._pend(item, members, expiry(at, ttl), extend=False)
        if not new:
            return
        if held is not None:
            held.update(new)
        for win in self._by_bucket.get(item, ()):  # a key windows also read (the caller built it so)
            win.seen.update(new)
            if win.keys[0] == item:
                win.current.update(new)

    def members_of(self, keys: Sequence[str], at: datetime) -> dict[str, AbstractSet[str]]:
        """Same contract as :meth:`StateStoreBase.members_of`, with this batch's adds; one store call for the keys not read yet.

        Fixed items are not windows: :meth:`recount` does not read them again.
        """
        fitted = {k: fit_key(k) for k in keys}
        self._load_fixed(list(fitted.values()), at)
        return {k: self._bucket_members(f) for k, f in fitted.items()}

    def _ahead_held(self, win: _Window) -> bool:
        """Whether a bucket after the window's own holds members (later events arrived first)."""
        sets, unions = self._sets, self._unions
        return any(sets.get(k) or k in unions for k in win.ahead)

    def _widest(self, win: _Window) -> AbstractSet[str]:
        members = self._bucket_members
        return _widest([members(k) for k in win.keys], [members(k) for k in win.ahead])

    def _window(self, key: str, at: datetime, window: timedelta) -> _Window:
        width_us = self._widths.get(window)
        if width_us is None:
            width_us = self._widths[window] = bucket_width(window) // _MICROSECOND
        if at is not self._at:  # detections of one event share its time: convert it once
            self._at, self._at_us = at, epoch_micros(at)
        cache_key = (key, width_us, self._at_us // width_us)
        win = self._windows.get(cache_key)
        if win is None:
            fitted = fit_key(key)
            keys = window_keys(fitted, at, window)
            ahead = window_keys_ahead(fitted, at, window)
            self._load_sets(keys, at)  # the buckets ahead are read by recount (live traffic leaves them empty)
            self._ahead.update(ahead)
            current = self._bucket_members(keys[0])
            seen = current.union(*(self._bucket_members(k) for k in keys[1:]))
            win = self._windows[cache_key] = _Window(keys, seen, current, ahead)
            for k in keys:
                self._by_bucket.setdefault(k, []).append(win)
                self._fixed.pop(k, None)
        self.uses.append(win.read)
        return win

    def _bucket_members(self, bucket: str) -> set[str]:
        """A bucket's members: the store's (empty if not read) united with this batch's pending union (a new set)."""
        members = set(self._sets.get(bucket, ()))
        pending = self._unions.get(bucket)
        if pending is not None:
            members |= pending.members
        return members

    def first_seen(self, key: str, term: str, witness: str, at: datetime, ttl: timedelta) -> bool:
        """Same contract as :meth:`StateStoreBase.first_seen`; nothing is written before :meth:`flush`."""
        item = fit_key(f"{key}|{term}")
        witness = fit_value(witness)
        if item not in self._values:
            self._load_values((item,), at)
        remote = self._values[item]
        if remote is not None:
            return remote == witness
        pending = self._new.get(item)
        if pending is not None:
            if pending.value == witness:
                self._own(item)
            return pending.value == witness
        self._new[item] = ValuePutIfAbsent(witness, expiry(at, ttl), epoch_seconds(at))
        self._own(item)
        return True

    def earliest(self, key: str, witness: str, at: datetime, ttl: timedelta) -> tuple[datetime, str]:
        """Same contract as :meth:`StateStoreBase.earliest`; nothing is written before :meth:`flush`.

        The minimum's set is counted like a window (:meth:`recount` reads it again after the flush),
        so an evaluation judged on it runs again when another instance stored an earlier time.
        """
        item = fit_key(key + _EARLIEST_SUFFIX)
        if item not in self._sets:
            self._load_sets((item,), at)
        member = _earliest_member(at, witness)
        pending = self._unions.get(item)
        stored = self._sets[item] | pending.members if pending is not None else self._sets[item]
        if not stored or member < min(stored):
            expires_at = expiry(at, ttl)
            if pending is not None:
                expires_at = max(expires_at, pending.expires_at)
                stored = pending.members | {member}
            else:
                stored = frozenset((member,))
            self._unions[item] = SetUnion(frozenset(stored), expires_at)
            self._own(item)
            stored = self._sets[item] | stored
        self.uses.append((item,))
        return _earliest_of(stored) or (at, fit_part(witness, _WITNESS_LEN))

    def earliest_seen(self, key: str, at: datetime) -> tuple[datetime, str] | None:
        """Same contract as :meth:`StateStoreBase.earliest_seen`, including this batch's unsaved times."""
        item = fit_key(key + _EARLIEST_SUFFIX)
        if item not in self._sets:
            self._load_sets((item,), at)
        self.uses.append((item,))
        return _earliest_of(self._bucket_members(item))

    def remember(self, key: str, value: str, at: datetime, ttl: timedelta) -> None:
        """Same contract as :meth:`StateStoreBase.remember`; nothing is written before :meth:`flush`."""
        item = fit_key(key)
        new = ValuePut(fit_value(value), expiry(at, ttl))
        self._load_values([item], at)
        pending = self._puts.get(item)
        if pending is not None and not put_wins(new, pending.value, pending.expires_at):
            new = pending
        if new.value == self._values[item]:
            self._puts.pop(item, None)
        else:
            self._puts[item] = new
            self._own(item)

    def recall(self, key: str, at: datetime) -> str | None:
        """Same contract as :meth:`StateStoreBase.recall`, including this batch's unsaved puts."""
        item = fit_key(key)
        local: ValuePut | ValuePutIfAbsent | None = self._puts.get(item) or self._new.get(item)
        if local is not None and local.expires_at > epoch(at):
            return local.value
        if item not in self._values:
            self._load_values((item,), at)
        return self._values[item]

    def claim(self, key: str, at: datetime, ttl: timedelta) -> bool:
        """Pass-through to the store (claims are never batched)."""
        return self.store.claim(key, at, ttl)

    def release(self, key: str) -> None:
        """Pass-through to the store (claims are never batched)."""
        self.store.release(key)

    # -- writes -------------------------------------------------------------

    def pending(self) -> WriteBatch:
        """The batch :meth:`flush` would send now."""
        return WriteBatch(unions=dict(self._unions), puts=dict(self._puts), put_if_absent=dict(self._new))

    def _saved(self, keys: Iterable[str], batch: WriteBatch) -> None:
        for key in keys:
            union = batch.unions.get(key)
            if union is not None:
                self._sets[key] = self._sets.get(key, frozenset()) | union.members
                self._unions.pop(key, None)
            put = batch.puts.get(key) or batch.put_if_absent.get(key)
            if put is not None:
                self._values[key] = put.value
                self._puts.pop(key, None)
                self._new.pop(key, None)
            self._owners.pop(key, None)

    def flush(self) -> int:
        """Send one :class:`WriteBatch` with every change not yet saved.

        Returns
        -------
        int
            Key-writes sent (0 when nothing changed).

        Raises
        ------
        StateWriteError
            Naming the keys not saved; they stay pending (a later flush
            retries them) and :meth:`records_for` names their records.
        """
        batch = self.pending()
        if not batch:
            return 0
        keys = batch.keys()
        try:
            self.store.write(batch)
        except StateWriteError as exc:
            failed = set(exc.failed_keys)
            written = [k for k in keys if k not in failed]
            self._saved(written, batch)
            self.writes += len(written)
            raise
        except Exception as exc:  # a backend bug or an unwrapped client error: nothing is known saved
            raise StateWriteError(keys, f"state write failed: {type(exc).__name__}") from exc
        self._saved(keys, batch)
        self.writes += len(batch)
        return len(batch)

    def recount(self) -> set[str]:
        """Read every set this batch counted again, after :meth:`flush`; return the keys others changed.

        A batch counts against the sets as it read them, before its own members were saved. Instances
        that each hold part of a burst may all have counted before any of them wrote, and each stayed
        under the threshold. Once this batch's members are saved, the set as stored is the union of
        every write that came before; the last instance to recount sees all of them. The cache is
        replaced with what the store holds, so counts made after this call answer with the union as
        stored. The buckets after each window's own are first read here: members in them (later
        events delivered before this batch) count as a change, and the window is judged again
        looking ahead. Costs one read per set key the batch touched and per bucket ahead, in one
        call; nothing is written.

        Returns
        -------
        set[str]
            Set keys whose stored members differ from what this batch had counted with.

        Raises
        ------
        StateError
            If the store cannot be read.
        """
        if self._sets_at is None or not self._sets:
            return set()
        if self._unions:
            raise RuntimeError("recount before the batch's unions are saved")
        fixed = self._fixed
        keys = [k for k in self._sets.keys() | self._ahead if k not in fixed]
        if not keys:
            return set()
        found = self.store.get_sets(keys, self._sets_at)
        self.reads += len(keys)
        changed: set[str] = set()
        empty = frozenset[str]()
        for k in keys:
            fresh = frozenset(found.get(k, ()))
            if fresh != self._sets.get(k, empty):  # after a flush, the cache holds what was read plus what was saved
                changed.add(k)
            self._sets[k] = fresh
        if changed:
            self._windows.clear()
            self._by_bucket.clear()
        return changed

    @property
    def ahead(self) -> frozenset[str]:
        """The buckets after the windows' own that :meth:`recount` reads (none read before it)."""
        return frozenset(self._ahead)

    def records_for(self, keys: Iterable[str]) -> set[str]:
        """Records whose changes to ``keys`` are not saved (for example ``StateWriteError.failed_keys``)."""
        owners: set[str] = set()
        for key in keys:
            owners |= self._owners.get(key, set())
        return owners
