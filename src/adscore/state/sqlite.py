"""SQLite state store: the embedded default for the CLI and local runs.

One file, WAL journal, safe for many processes writing at once: every
:meth:`SqliteStateStore.write` is one ``BEGIN IMMEDIATE`` transaction (one
statement per key), and every operation is an idempotent insert or
conditional upsert, so no update is ever lost. A store object holds one
connection, shared by its threads under a lock; open one store per process
(never reuse a store across ``fork``). Do not put the file on a network
filesystem (WAL needs shared memory on one host).

Busy and locked errors are retried with exponential backoff and jitter
(``tenacity``) on top of SQLite's own ``busy_timeout``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import defaultdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar, TypeVar

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from adscore.errors import ConfigError, StateError
from adscore.state.base import CLEANUP_GRACE, MAX_SET_MEMBERS, StateStoreBase, StateWriteError, sets_alive
from adscore.windows import epoch

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from os import PathLike
    from typing import Self

    from adscore.state.base import WriteBatch

__all__ = ["SCHEMA", "SqliteStateStore", "sqlite_path"]

SCHEMA_VERSION = 1

SCHEMA: tuple[str, ...] = (
    # One row per member; a set's expiry is the largest expires_at of its rows.
    """CREATE TABLE IF NOT EXISTS state_sets (
    key TEXT NOT NULL,
    member TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (key, member)
) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS state_sets_expires_at ON state_sets (expires_at)",
    """CREATE TABLE IF NOT EXISTS state_values (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS state_values_expires_at ON state_values (expires_at)",
    """CREATE TABLE IF NOT EXISTS state_claims (
    key TEXT PRIMARY KEY NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID""",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)
"""DDL run by :meth:`SqliteStateStore.init` (idempotent), in order."""

# UNION with the cap in one statement: members already present come first (their
# expiry is raised), then new members in sorted order, limited to the room left by
# the members this union does not mention. The SELECT is computed before inserting.
_UNION = """
INSERT INTO state_sets (key, member, expires_at)
SELECT :key, j.value, :expires_at FROM json_each(:members) AS j
WHERE true
ORDER BY EXISTS (SELECT 1 FROM state_sets AS s WHERE s.key = :key AND s.member = j.value) DESC, j.value
LIMIT max(0, :cap - (
    SELECT count(*) FROM state_sets AS s
    WHERE s.key = :key AND s.member NOT IN (SELECT value FROM json_each(:members))
))
ON CONFLICT (key, member) DO UPDATE SET expires_at = max(state_sets.expires_at, excluded.expires_at)
"""

_PUT = """
INSERT INTO state_values (key, value, expires_at) VALUES (:key, :value, :expires_at)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
WHERE excluded.expires_at > state_values.expires_at
   OR (excluded.expires_at = state_values.expires_at AND excluded.value > state_values.value)
"""

_PUT_IF_ABSENT = """
INSERT INTO state_values (key, value, expires_at) VALUES (:key, :value, :expires_at)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
WHERE state_values.expires_at <= :now
"""

_CLAIM = """
INSERT INTO state_claims (key, expires_at) VALUES (:key, :expires_at)
ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at
WHERE state_claims.expires_at <= :now
"""

_CHUNK = 500  # keys per IN (...) list, well under SQLite's variable limit

_T = TypeVar("_T")


def sqlite_path(url: str) -> str:
    """Database path of a ``sqlite://`` URL.

    Parameters
    ----------
    url : str
        ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or
        ``sqlite:///:memory:`` (also ``sqlite://:memory:``).

    Returns
    -------
    str
        The path to pass to :func:`sqlite3.connect`.

    Raises
    ------
    ConfigError
        If the URL is not of one of those forms.

    Example
    -------
    >>> sqlite_path("sqlite:////var/lib/adscore/state.db")
    '/var/lib/adscore/state.db'
    """
    prefix = "sqlite://"
    if not url.lower().startswith(prefix):
        raise ConfigError("state", "a SQLite state URL starts with sqlite://")
    rest = url[len(prefix) :]
    if rest in (":memory:", "/:memory:"):
        return ":memory:"
    if not rest.startswith("/") or len(rest) < 2:
        raise ConfigError(
            "state",
            "a SQLite state URL needs a path: sqlite:///relative/path.db or sqlite:////absolute/path.db",
        )
    if "?" in rest or "#" in rest:
        raise ConfigError("state", "a SQLite state URL takes no query string or fragment")
    return rest[1:]


def _busy(exc: BaseException) -> bool:
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class SqliteStateStore(StateStoreBase):
    """State in one SQLite file (stdlib ``sqlite3``).

    Parameters
    ----------
    path : str | PathLike[str]
        Database file (created if missing; its folder must exist), or ``":memory:"``.
    timeout : float
        Seconds SQLite waits on a locked database before each retry.
    create : bool
        Run :meth:`init` (create the schema) on open.

    Raises
    ------
    StateError
        If the database cannot be opened or initialised.

    Example
    -------
    >>> store = SqliteStateStore(":memory:")
    """

    SCHEMA: ClassVar[tuple[str, ...]] = SCHEMA

    def __init__(self, path: str | PathLike[str], *, timeout: float = 10.0, create: bool = True) -> None:
        super().__init__()
        self.path = str(path)
        self._item_writes = 0  # set and value item writes through this object (see version())
        self._lock = threading.RLock()
        self._retrying = Retrying(
            retry=retry_if_exception(_busy),
            stop=stop_after_attempt(8),
            wait=wait_random_exponential(multiplier=0.02, max=1.0),
            reraise=True,
        )
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StateError(f"cannot open SQLite state database {self.path!r}: {exc}") from exc
        try:
            self._run(self._configure, timeout)
            if create:
                self.init()
        except BaseException:
            self._conn.close()
            raise

    @classmethod
    def from_url(cls, url: str) -> Self:
        """Open the store named by a ``sqlite://`` URL (see :func:`sqlite_path`)."""
        return cls(sqlite_path(url))

    @classmethod
    def schema(cls) -> str:
        """The DDL :meth:`init` runs, as one SQL script."""
        return ";\n".join(cls.SCHEMA) + ";\n"

    # -- plumbing -------------------------------------------------------------

    def _run(self, fn: Callable[..., _T], *args: object) -> _T:
        """Call ``fn`` under the lock, retrying busy/locked errors; wrap failures as StateError.

        The first attempt runs directly (the retry machinery costs more than a cached read);
        only a busy/locked error goes through the tenacity retry loop.
        """
        try:
            try:
                return self._locked(fn, *args)
            except sqlite3.Error as exc:
                if not _busy(exc):
                    raise
            result: _T = self._retrying.copy()(self._locked, fn, *args)
        except sqlite3.Error as exc:
            raise StateError(f"SQLite state database {self.path!r}: {exc}") from exc
        return result

    def _locked(self, fn: Callable[..., _T], *args: object) -> _T:
        with self._lock:
            return fn(*args)

    def _configure(self, timeout: float) -> None:
        self._conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        if self.path != ":memory:":
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")

    def _transaction(self, statements: Callable[[sqlite3.Cursor], None]) -> None:
        cur = self._conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            statements(cur)
            cur.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        finally:
            cur.close()

    def init(self) -> None:
        """Create the tables and indexes if missing (idempotent, safe from many processes).

        Raises
        ------
        StateError
            If the schema cannot be created or SQLite lacks the JSON functions.
        """

        def create(cur: sqlite3.Cursor) -> None:
            for statement in self.SCHEMA:
                cur.execute(statement)

        self._run(self._transaction, create)
        try:
            self._run(self._conn.execute, "SELECT json_valid('[]')")
        except StateError as exc:
            raise StateError("this SQLite build lacks the JSON1 functions adscore needs") from exc

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._conn.close()

    # -- primitives -----------------------------------------------------------

    def _select(self, sql: str, keys: Sequence[str], *extra: object) -> list[tuple[str, ...]]:
        rows: list[tuple[str, ...]] = []
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows.extend(self._conn.execute(sql.format(marks=marks), (*chunk, *extra)).fetchall())
        return rows

    def read_sets(self, keys: Sequence[str]) -> dict[str, tuple[frozenset[str], int]]:
        """Each set item as stored (every member, the largest expiry), expired or not; absent keys left out."""
        rows = self._run(
            self._select, "SELECT key, member, expires_at FROM state_sets WHERE key IN ({marks})", keys
        )
        members: defaultdict[str, set[str]] = defaultdict(set)
        expires: dict[str, int] = {}
        for key, member, expires_at in rows:
            members[key].add(member)
            expires[key] = max(expires.get(key, 0), int(expires_at))
        return {k: (frozenset(m), expires[k]) for k, m in members.items()}

    def read_values(self, keys: Sequence[str]) -> dict[str, tuple[str, int]]:
        """Each value item as stored, expired or not; absent keys left out."""
        rows = self._run(self._select, "SELECT key, value, expires_at FROM state_values WHERE key IN ({marks})", keys)
        return {str(key): (str(value), int(expires_at)) for key, value, expires_at in rows}

    def version(self) -> tuple[int, int]:
        """``(PRAGMA data_version, item writes through this object)``: the first changes when another
        connection commits, the second counts this object's set and value writes (see
        :class:`adscore.state.warm.Versioned`)."""
        row = self._run(self._data_version)
        return row, self._item_writes

    def _data_version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def get_sets(self, keys: Sequence[str], at: datetime) -> dict[str, frozenset[str]]:
        return sets_alive(self.read_sets(keys), keys, at)

    def get_values(self, keys: Sequence[str], at: datetime) -> dict[str, str]:
        sql = "SELECT key, value FROM state_values WHERE key IN ({marks}) AND expires_at > ?"
        rows = self._run(self._select, sql, keys, epoch(at))
        return {str(key): str(value) for key, value in rows}

    def write(self, batch: WriteBatch) -> None:
        if not batch:
            return

        def apply(cur: sqlite3.Cursor) -> None:
            for key, union in batch.unions.items():
                members = json.dumps(sorted(union.members), ensure_ascii=False)
                cur.execute(
                    _UNION,
                    {"key": key, "members": members, "expires_at": union.expires_at, "cap": MAX_SET_MEMBERS},
                )
            for key, put in batch.puts.items():
                cur.execute(_PUT, {"key": key, "value": put.value, "expires_at": put.expires_at})
            for key, new in batch.put_if_absent.items():
                cur.execute(
                    _PUT_IF_ABSENT,
                    {"key": key, "value": new.value, "expires_at": new.expires_at, "now": new.at},
                )

        try:
            self._run(self._transaction, apply)
        except StateError as exc:
            # One transaction: nothing of the batch was written.
            raise StateWriteError(batch.keys(), str(exc)) from exc
        self.writes += len(batch)
        self._item_writes += len(batch)

    def claim_item(self, key: str, expires_at: int, now: int) -> bool:
        cur = self._run(self._conn.execute, _CLAIM, {"key": key, "expires_at": expires_at, "now": now})
        self.writes += 1
        return cur.rowcount == 1

    def release_item(self, key: str) -> None:
        self._run(self._conn.execute, "DELETE FROM state_claims WHERE key = ?", (key,))
        self.writes += 1

    def cleanup(self, older_than: datetime | None = None) -> int:
        """Delete items that expired before ``older_than``.

        Parameters
        ----------
        older_than : datetime, optional
            Cut-off; default: the wall clock minus ``CLEANUP_GRACE`` (30 days), so
            replays of recent logs never lose state they still need.

        Returns
        -------
        int
            Rows deleted.
        """
        cutoff = epoch(older_than if older_than is not None else datetime.now(UTC) - CLEANUP_GRACE)
        deleted = 0

        def purge(cur: sqlite3.Cursor) -> None:
            nonlocal deleted
            cur.execute(
                "DELETE FROM state_sets WHERE key IN "
                "(SELECT key FROM state_sets GROUP BY key HAVING max(expires_at) < ?)",
                (cutoff,),
            )
            deleted += cur.rowcount
            cur.execute("DELETE FROM state_values WHERE expires_at < ?", (cutoff,))
            deleted += cur.rowcount
            cur.execute("DELETE FROM state_claims WHERE expires_at < ?", (cutoff,))
            deleted += cur.rowcount

        self._run(self._transaction, purge)
        self._item_writes += deleted
        return deleted
