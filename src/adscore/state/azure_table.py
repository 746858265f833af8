"""Azure Table storage state store: one table, ETag-guarded merges, event-time expiry.

Table layout (:data:`TABLE_SCHEMA`; the Terraform module creates the same table):

================  =================================================================
property          meaning
================  =================================================================
``PartitionKey``  the state key, encoded (:func:`encode_key`): ``k`` + base64url of its
                  UTF-8 bytes, or ``h`` + its SHA-256 when that would pass 512
                  characters. Table keys forbid ``/ \\ # ?`` and control characters
                  and stop at 1 KiB; the encoding never meets either limit.
``RowKey``        the kind: ``set``, ``value`` or ``claim`` (three separate key spaces)
``expires_at``    (Int64) event-time expiry, epoch seconds: readers treat an entity with
                  ``expires_at <= at`` as absent (:mod:`adscore.state.base`)
``k``             (String) the state key in clear, for people reading the table (capped)
``n``, ``m0``..   (Int32, String) a set's member count and its members, as JSON arrays
                  of at most 30,000 characters each (a String property holds 64 KiB)
``v``             (String) a value
================  =================================================================

Writes: every key of a :class:`~adscore.state.base.WriteBatch` costs one conditional
request (plus the read it is based on), sent in parallel:

- set UNION: read the entity and its ETag, unite, ``update_entity`` (REPLACE) under
  ``If-Match: <etag>``; a 412 (someone wrote in between) re-reads and merges again; an
  absent set is made with ``create_entity``, where a 409 re-reads and merges. The cap
  (``MAX_SET_MEMBERS``, and the 1 MiB entity size) stops adding, as the contract says.
- value PUT: the same loop, writing only when the put wins (later expiry, then greater value).
- PUT_IF_ABSENT and ``claim``: ``create_entity`` (insert-if-absent); on 409 the entity is
  replaced only if it has expired at the write's event time, under its ETag.
- ``release``: ``delete_entity``.

Throttling (429/503), server errors and timeouts are retried by the SDK's retry policy and
then per key with jittered backoff; keys that still fail raise
:class:`~adscore.state.base.StateWriteError`. :meth:`AzureTableStateStore.cleanup` deletes
entities whose expiry is older than the wall clock minus ``CLEANUP_GRACE``.

Connections (:func:`storage_target`): ``azuretable://TABLE`` uses the ``AzureWebJobsStorage``
app setting; ``?connection=NAME`` names another app setting; either may be a connection
string or an identity-based setting (``NAME__tableServiceUri`` or ``NAME__accountName``);
``?endpoint=https://ACCOUNT.table.core.windows.net`` uses a managed identity
(``DefaultAzureCredential``, from the optional ``azure-identity`` package).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import parse_qs, urlsplit

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from adscore.errors import ConfigError, StateError
from adscore.render.escape import clean_text
from adscore.state.base import (
    CLEANUP_GRACE,
    MAX_SET_MEMBERS,
    StateStoreBase,
    StateWriteError,
    fit_member,
    put_wins,
)
from adscore.windows import epoch

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import Self

    from azure.data.tables import TableClient

    from adscore.state.base import SetUnion, ValuePut, ValuePutIfAbsent, WriteBatch

__all__ = [
    "TABLE_SCHEMA",
    "AzureTableStateStore",
    "StorageTarget",
    "encode_key",
    "init_table",
    "storage_target",
]

log = logging.getLogger("adscore.state.azure_table")

Service = Literal["table", "blob", "queue"]

SET, VALUE, CLAIM = "set", "value", "claim"
EXPIRES: Final = "expires_at"
DEFAULT_CONNECTION: Final = "AzureWebJobsStorage"
"""App setting holding the storage connection when the URL names none (the Functions host's own)."""

MAX_ENCODED_KEY = 512
"""Longest ``PartitionKey`` written in clear base64url; longer keys are hashed."""
MAX_PROPERTY_CHARS = 30_000
"""Most UTF-16 code units in one member property (a String property holds 32,768)."""
MAX_MEMBER_BYTES = 900_000
"""Most UTF-16 bytes of member properties in one entity (an entity holds 1 MiB)."""
MAX_INFO_KEY = 1000
"""The clear key in property ``k`` is cut to this many characters."""

TABLE_SCHEMA: Final[dict[str, Any]] = {
    "PartitionKey": "state key: 'k' + base64url(UTF-8 key) without padding, or 'h' + sha256 hex "
    f"when the base64url form would pass {MAX_ENCODED_KEY} characters",
    "RowKey": "kind: set | value | claim",
    "Properties": {
        EXPIRES: "Int64: event-time expiry, epoch seconds (entity absent when expires_at <= event time)",
        "k": "String: the state key in clear (informational, capped)",
        "n": "Int32: number of members of a set",
        "m0..mN": f"String: JSON arrays of set members, at most {MAX_PROPERTY_CHARS} characters each",
        "v": "String: a value",
        "o": "String: a claim's owner token (one per claim call)",
    },
    "ExpiryProperty": EXPIRES,
    "CleanupGraceSeconds": int(CLEANUP_GRACE.total_seconds()),
}
"""What the table holds; :func:`init_table` creates it (Table storage has no other schema). The Terraform
module mirrors it: one ``azurerm_storage_table`` and a scheduled cleanup."""

_TABLE_NOT_FOUND = "TableNotFound"
_CAS_ATTEMPTS = 64  # optimistic-concurrency rounds for one key under heavy contention
_TABLE_NAME = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_SDK_OPTIONS: dict[str, Any] = {
    "retry_total": 4,
    "retry_backoff_factor": 0.3,
    "retry_backoff_max": 8,
    "connection_timeout": 10,
    "read_timeout": 30,
}


class _Contention(Exception):
    """An ETag loop kept losing to concurrent writers (retried with backoff, then reported)."""


# --------------------------------------------------------------------------- URLs and connections


@dataclass(frozen=True)
class StorageTarget:
    """Where a storage resource lives and how to reach it.

    Attributes
    ----------
    name : str
        Table, container or queue name.
    connection_string : str | None
        A storage connection string (account key or SAS), or None.
    endpoint : str | None
        The service endpoint (``https://ACCOUNT.table.core.windows.net``) to reach with a
        managed identity when there is no connection string.
    """

    name: str
    connection_string: str | None = None
    endpoint: str | None = None

    def __repr__(self) -> str:  # never show the connection string (it holds the account key)
        how = "connection string" if self.connection_string else f"endpoint {self.endpoint}"
        return f"StorageTarget({self.name!r}, {how})"


def _connection_setting(name: str, service: Service, setting: str) -> tuple[str | None, str | None]:
    value = os.environ.get(name)
    if value:
        return value, None
    uri = os.environ.get(f"{name}__{service}ServiceUri")
    if uri:
        return None, uri.rstrip("/")
    account = os.environ.get(f"{name}__accountName")
    if account:
        return None, f"https://{account}.{service}.core.windows.net"
    raise ConfigError(
        setting,
        f"app setting {name} is not set (a storage connection string, or {name}__{service}ServiceUri / "
        f"{name}__accountName for a managed identity)",
    )


def storage_target(url: str, scheme: str, service: Service, *, setting: str = "state") -> StorageTarget:
    """Parse ``<scheme>://NAME[?connection=SETTING | ?endpoint=URL]`` and resolve its connection.

    Parameters
    ----------
    url : str
        For example ``azuretable://adscorestate``, ``azureblob://deadletter?connection=DLQ_STORAGE``,
        ``azuretable://adscorestate?endpoint=https://acct.table.core.windows.net``.
    scheme : str
        The scheme expected (``azuretable``, ``azureblob``, ``azurequeue``).
    service : {"table", "blob", "queue"}
        Storage service, for identity-based settings (``NAME__tableServiceUri``).
    setting : str
        Setting named in error messages.

    Returns
    -------
    StorageTarget

    Raises
    ------
    ConfigError
        Wrong scheme, missing name, unknown query parameter, or an app setting that is not set.

    Example
    -------
    >>> storage_target("azuretable://adscore?endpoint=https://a.table.core.windows.net", "azuretable", "table")
    StorageTarget('adscore', endpoint https://a.table.core.windows.net)
    """
    parts = urlsplit(url.strip())
    if parts.scheme.lower() != scheme or not parts.netloc:
        raise ConfigError(setting, f"expected {scheme}://NAME[?connection=APP_SETTING|?endpoint=https://...]")
    name = parts.netloc
    if parts.path not in ("", "/"):
        raise ConfigError(setting, f"{scheme}:// takes a bare name, not a path")
    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as exc:
        raise ConfigError(setting, f"malformed query string in the {scheme}:// URL") from exc
    unknown = sorted(set(query) - {"connection", "endpoint"})
    if unknown:
        raise ConfigError(setting, f"unknown parameter(s) {', '.join(unknown)} (known: connection, endpoint)")
    if "connection" in query and "endpoint" in query:
        raise ConfigError(setting, "give either connection= or endpoint=, not both")
    endpoint = query.get("endpoint", [""])[-1]
    if endpoint:
        if not endpoint.startswith(("https://", "http://")):
            raise ConfigError(setting, "endpoint= must be an http(s) URL of the storage service")
        return StorageTarget(name, endpoint=endpoint.rstrip("/"))
    conn, uri = _connection_setting(query.get("connection", [DEFAULT_CONNECTION])[-1], service, setting)
    return StorageTarget(name, connection_string=conn, endpoint=uri)


def default_credential(setting: str = "state") -> Any:
    """A ``DefaultAzureCredential`` (managed identity in Azure, developer logins elsewhere).

    Raises
    ------
    ConfigError
        When the optional ``azure-identity`` package is not installed.
    """
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError as exc:
        raise ConfigError(
            setting,
            "a managed-identity endpoint needs the azure-identity package (pip install azure-identity)",
        ) from exc
    return DefaultAzureCredential()


def _check_table_name(name: str) -> str:
    if not (3 <= len(name) <= 63 and name[0].isalpha() and all(c in _TABLE_NAME for c in name)):
        raise ConfigError(
            "state", f"{name[:80]!r} is not an Azure table name (3-63 letters and digits, a letter first)"
        )
    if name.lower() == "tables":
        raise ConfigError("state", "'tables' is a reserved table name")
    return name


def table_client(target: StorageTarget) -> TableClient:
    """Build a ``TableClient`` for ``target`` (no request is made)."""
    from azure.data.tables import TableClient

    if target.connection_string:
        try:
            return TableClient.from_connection_string(target.connection_string, target.name, **_SDK_OPTIONS)
        except ValueError as exc:
            raise ConfigError("state", "the storage connection string is malformed") from exc
    assert target.endpoint is not None
    return TableClient(target.endpoint, target.name, credential=default_credential(), **_SDK_OPTIONS)


# --------------------------------------------------------------------------- encoding


def encode_key(key: str) -> str:
    """The ``PartitionKey`` of a state key.

    ``k`` + base64url (no padding) of the key's UTF-8 bytes, or ``h`` + the SHA-256 of the
    key when that would pass ``MAX_ENCODED_KEY`` characters. Both forms are free of the
    characters Table keys forbid, never empty, and never collide with each other.

    Example
    -------
    >>> encode_key("burst:alice@300:5")
    'kYnVyc3Q6YWxpY2VAMzAwOjU'
    """
    raw = key.encode("utf-8", "surrogatepass")
    encoded = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    if len(encoded) < MAX_ENCODED_KEY:
        return "k" + encoded
    return "h" + hashlib.sha256(raw).hexdigest()


def _info_key(key: str) -> str:
    return key[:MAX_INFO_KEY].encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def _storable(member: str) -> str:
    # A lone surrogate cannot travel as JSON text; fit_member hashes it (the high-level API already did).
    try:
        member.encode("utf-8")
    except UnicodeEncodeError:
        return fit_member(member)
    return member


def _units(text: str) -> int:
    """UTF-16 code units of ``text`` (what Table storage counts)."""
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def _int(entity: Any, name: str) -> int:
    raw = entity.get(name) if entity is not None else None
    value = getattr(raw, "value", raw)
    return int(value) if isinstance(value, int) else 0


def _members(entity: Any) -> list[str]:
    out: list[str] = []
    for i in range(len(entity)):
        chunk = entity.get(f"m{i}")
        if chunk is None:
            break
        try:
            out.extend(str(m) for m in json.loads(str(chunk)))
        except ValueError as exc:
            raise StateError(f"set entity {entity.get('k', '')[:120]!r} holds a malformed m{i}") from exc
    return out


def _pack(members: Iterable[str]) -> dict[str, str]:
    """Members as properties ``m0``, ``m1``, ... of at most ``MAX_PROPERTY_CHARS`` each."""
    props: dict[str, str] = {}
    chunk: list[str] = []
    size = 2
    for member in members:
        cost = _units(json.dumps(member, ensure_ascii=False)) + 1
        if chunk and size + cost > MAX_PROPERTY_CHARS:
            props[f"m{len(props)}"] = json.dumps(chunk, ensure_ascii=False)
            chunk, size = [], 2
        chunk.append(member)
        size += cost
    if chunk:
        props[f"m{len(props)}"] = json.dumps(chunk, ensure_ascii=False)
    return props


def _room(present: Sequence[str], new: Iterable[str]) -> list[str]:
    """The new members that fit, in order: within ``MAX_SET_MEMBERS`` and the entity's byte budget."""
    count = len(present)
    used = sum(2 * (_units(json.dumps(m, ensure_ascii=False)) + 1) for m in present)
    kept: list[str] = []
    for member in new:
        if count >= MAX_SET_MEMBERS:
            break
        cost = 2 * (_units(json.dumps(member, ensure_ascii=False)) + 1)
        if cost > 2 * MAX_PROPERTY_CHARS or used + cost > MAX_MEMBER_BYTES:
            break  # a set full by size stops adding, like a set full by count
        kept.append(member)
        count += 1
        used += cost
    return kept


# --------------------------------------------------------------------------- errors


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _code(exc: BaseException) -> str:
    if isinstance(exc, StateError):
        return str(exc)[:300]
    code = getattr(exc, "error_code", None)
    status = _status(exc)
    if code:
        return str(code)
    return f"HTTP {status}" if status else type(exc).__name__


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, _Contention):
        return True
    status = _status(exc)
    if status is not None:
        return status in (408, 429) or status >= 500
    return type(exc).__name__ in {
        "ServiceRequestError",
        "ServiceResponseError",
        "ServiceRequestTimeoutError",
        "ServiceResponseTimeoutError",
    }


def _pause(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.5, 0.005 * 2 ** min(attempt, 7))))


def init_table(client: TableClient) -> dict[str, Any]:
    """Create the state table if missing (idempotent).

    Returns
    -------
    dict
        ``{"table", "created", **TABLE_SCHEMA}``.

    Raises
    ------
    StateError
        If the table cannot be created.
    """
    from azure.core.exceptions import ResourceExistsError

    created = False
    try:
        client.create_table()
        created = True
    except ResourceExistsError:
        pass
    except Exception as exc:
        raise StateError(f"cannot create Azure table {client.table_name!r}: {_code(exc)}") from exc
    return {"table": client.table_name, "created": created, **TABLE_SCHEMA}


# --------------------------------------------------------------------------- the store


class AzureTableStateStore(StateStoreBase):
    """State in one Azure Table (see the module docstring for the layout).

    Parameters
    ----------
    client : azure.data.tables.TableClient
        Client bound to the state table (thread-safe; tests pass one bound to Azurite).
    max_workers : int
        Parallel requests per batch read or write.
    attempts : int
        Tries per key for throttled, failing or contended writes (on top of the SDK's retries).

    Example
    -------
    >>> store = AzureTableStateStore.from_url("azuretable://adscorestate")  # doctest: +SKIP
    """

    remote = True  # each read is a request

    SCHEMA: Final = TABLE_SCHEMA

    def __init__(self, client: TableClient, *, max_workers: int = 16, attempts: int = 4) -> None:
        super().__init__()
        self.client = client
        self.table = client.table_name
        self.max_workers = max(1, max_workers)
        self._attempts = max(1, attempts)
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    @classmethod
    def from_url(cls, url: str) -> Self:
        """Open the store an ``azuretable://TABLE[?connection=SETTING|?endpoint=URL]`` URL names.

        Raises
        ------
        ConfigError
            ``state``: a malformed URL, a bad table name or a missing app setting.
        """
        target = storage_target(url, "azuretable", "table")
        _check_table_name(target.name)
        return cls(table_client(target))

    @classmethod
    def from_connection_string(cls, connection_string: str, table: str, **kwargs: Any) -> Self:
        """Open the store on ``table`` of the account a connection string names (Azurite in tests)."""
        return cls(
            table_client(StorageTarget(_check_table_name(table), connection_string=connection_string)),
            **kwargs,
        )

    @classmethod
    def schema(cls) -> dict[str, Any]:
        """The table layout (:data:`TABLE_SCHEMA`)."""
        return dict(TABLE_SCHEMA)

    def init(self) -> dict[str, Any]:  # type: ignore[override]  # a description for `adscore state init`
        """Create the table if missing (idempotent); return ``{"table", "created", **TABLE_SCHEMA}``."""
        return init_table(self.client)

    def close(self) -> None:
        """Stop the worker threads and close the HTTP session."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        self.client.close()

    # -- plumbing -------------------------------------------------------------

    def _map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        if len(items) <= 1:
            return [fn(item) for item in items]
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="adscore-table")
            pool = self._pool
        return list(pool.map(fn, items))

    def _retrying(self) -> Retrying:
        return Retrying(
            retry=retry_if_exception(_retryable),
            stop=stop_after_attempt(self._attempts),
            wait=wait_random_exponential(multiplier=0.05, max=2.0),
            reraise=True,
        )

    def _missing_table(self, exc: BaseException) -> StateError:
        return StateError(
            f"Azure table {self.table!r} does not exist: create it with "
            f"`adscore state init azuretable://{self.table}` (or Terraform)"
        )

    def _get(self, key: str, kind: str) -> Any:
        """The entity of ``key`` and ``kind`` with its ETag in ``.metadata``, or None."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.client.get_entity(encode_key(key), kind)
        except ResourceNotFoundError as exc:
            if getattr(exc, "error_code", None) == _TABLE_NOT_FOUND:
                raise self._missing_table(exc) from exc
            return None

    def _read(self, keys: Sequence[str], kind: str) -> dict[str, Any]:
        unique = list(dict.fromkeys(keys))

        def one(key: str) -> Any:
            return self._retrying()(self._get, key, kind)

        try:
            found = self._map(one, unique)
        except StateError:
            raise
        except Exception as exc:
            raise StateError(f"Azure table {self.table}: read failed: {_code(exc)}") from exc
        return {k: e for k, e in zip(unique, found, strict=True) if e is not None}

    def _entity(self, key: str, kind: str, expires_at: int, **props: Any) -> dict[str, Any]:
        from azure.data.tables import EdmType, EntityProperty

        return {
            "PartitionKey": encode_key(key),
            "RowKey": kind,
            EXPIRES: EntityProperty(expires_at, EdmType.INT64),
            "k": _info_key(key),
            **props,
        }

    def _swap(self, key: str, kind: str, old: Any, new: dict[str, Any]) -> bool:
        """Write ``new`` where ``old`` was: create if ``old`` is None, else replace under its ETag.

        Returns False when another writer got there first (409 or 412, or the entity vanished).
        """
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        try:
            if old is None:
                self.client.create_entity(new)
            else:
                self.client.update_entity(
                    new,
                    mode=UpdateMode.REPLACE,
                    etag=old.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
        except ResourceNotFoundError as exc:
            if getattr(exc, "error_code", None) == _TABLE_NOT_FOUND:
                raise self._missing_table(exc) from exc
            return False
        except (ResourceExistsError, ResourceModifiedError):
            return False
        return True

    def _settle(self, key: str, kind: str, step: Callable[[Any], dict[str, Any] | None]) -> None:
        """Read-decide-write loop: ``step(entity)`` gives the entity to write, or None when nothing changes."""
        for attempt in range(_CAS_ATTEMPTS):
            old = self._get(key, kind)
            new = step(old)
            if new is None or self._swap(key, kind, old, new):
                return
            _pause(attempt)
        raise _Contention(f"{kind} {key[:120]!r} kept changing under concurrent writers")

    # -- reads ----------------------------------------------------------------

    def get_sets(self, keys: Sequence[str], at: datetime) -> dict[str, frozenset[str]]:
        if not keys:
            return {}
        entities = self._read(keys, SET)
        now = epoch(at)
        result: dict[str, frozenset[str]] = {}
        for key in keys:
            entity = entities.get(key)
            alive = entity is not None and _int(entity, EXPIRES) > now
            result[key] = frozenset(_members(entity)) if alive else frozenset()
        return result

    def get_values(self, keys: Sequence[str], at: datetime) -> dict[str, str]:
        if not keys:
            return {}
        entities = self._read(keys, VALUE)
        now = epoch(at)
        return {k: str(e["v"]) for k, e in entities.items() if _int(e, EXPIRES) > now and "v" in e}

    # -- writes ---------------------------------------------------------------

    def _union(self, key: str, union: SetUnion) -> None:
        wanted = sorted({_storable(m) for m in union.members})

        def step(old: Any) -> dict[str, Any] | None:
            present = _members(old) if old is not None else []
            old_expiry = _int(old, EXPIRES)
            have = set(present)
            new = [m for m in wanted if m not in have]
            added = _room(present, new)
            expires_at = max(old_expiry, union.expires_at)
            if old is not None and not added and expires_at == old_expiry:
                return None
            if len(added) < len(new):
                log.debug(
                    "a state set is full: new members dropped",
                    extra={"json_fields": {"key": clean_text(key, 120), "dropped": len(new) - len(added)}},
                )
            members = [*present, *added]
            return self._entity(key, SET, expires_at, n=len(members), **_pack(members))

        self._settle(key, SET, step)

    def _put(self, key: str, put: ValuePut) -> None:
        def step(old: Any) -> dict[str, Any] | None:
            if old is not None and not put_wins(put, str(old.get("v", "")), _int(old, EXPIRES)):
                return None
            return self._entity(key, VALUE, put.expires_at, v=put.value)

        self._settle(key, VALUE, step)

    def _put_if_absent(self, key: str, new: ValuePutIfAbsent) -> None:
        def step(old: Any) -> dict[str, Any] | None:
            if old is not None and _int(old, EXPIRES) > new.at:
                return None
            return self._entity(key, VALUE, new.expires_at, v=new.value)

        self._settle(key, VALUE, step)

    def _write_key(self, op: Callable[[], None]) -> BaseException | None:
        try:
            self._retrying()(op)
        except Exception as exc:
            return exc
        return None

    def write(self, batch: WriteBatch) -> None:
        ops: list[tuple[str, Callable[[], None]]] = []
        for key, union in batch.unions.items():
            ops.append((key, lambda k=key, u=union: self._union(k, u)))  # type: ignore[misc]
        for key, put in batch.puts.items():
            ops.append((key, lambda k=key, p=put: self._put(k, p)))  # type: ignore[misc]
        for key, new in batch.put_if_absent.items():
            ops.append((key, lambda k=key, n=new: self._put_if_absent(k, n)))  # type: ignore[misc]
        if not ops:
            return
        errors = self._map(self._write_key, [op for _, op in ops])
        failed = [(key, exc) for (key, _), exc in zip(ops, errors, strict=True) if exc is not None]
        with self._lock:
            self.writes += len(ops) - len(failed)
        if failed:
            codes = sorted({_code(exc) for _, exc in failed})
            raise StateWriteError(
                [key for key, _ in failed],
                f"Azure table {self.table}: {len(failed)} of {len(ops)} key(s) not written ({', '.join(codes)})",
            )

    # -- claims ---------------------------------------------------------------

    def _claim(self, key: str, expires_at: int, now: int, owner: str) -> bool:
        entity = self._entity(key, CLAIM, expires_at, o=owner)
        for _ in range(_CAS_ATTEMPTS):
            if self._swap(key, CLAIM, None, entity):
                return True
            held = self._get(key, CLAIM)
            if held is None:
                continue  # released in between: try to insert again
            if held.get("o") == owner:
                return True  # our own insert, answered by a retry after a lost response
            if _int(held, EXPIRES) > now:
                return False
            # expired at this event time: take it over, unless someone else does first
            return self._swap(key, CLAIM, held, entity)
        raise _Contention(f"claim {key[:120]!r} kept changing under concurrent writers")

    def claim_item(self, key: str, expires_at: int, now: int) -> bool:
        try:
            won = bool(self._retrying()(self._claim, key, expires_at, now, uuid.uuid4().hex))
        except Exception as exc:
            raise StateError(f"Azure table {self.table}: claim failed: {_code(exc)}") from exc
        with self._lock:
            self.writes += 1
        return won

    def release_item(self, key: str) -> None:
        try:
            self._retrying()(self.client.delete_entity, encode_key(key), CLAIM)
        except Exception as exc:
            raise StateError(f"Azure table {self.table}: release failed: {_code(exc)}") from exc
        with self._lock:
            self.writes += 1

    # -- maintenance ----------------------------------------------------------

    def cleanup(self, older_than: datetime | None = None) -> int:
        """Delete entities that expired before ``older_than``.

        Each entity is deleted under the ETag it was listed with, so one rewritten
        meanwhile (a set that a late union revived) is kept.

        Parameters
        ----------
        older_than : datetime, optional
            Cut-off; default: the wall clock minus ``CLEANUP_GRACE`` (30 days), so replays of
            recent logs never lose state they still need.

        Returns
        -------
        int
            Entities deleted.

        Raises
        ------
        StateError
            If the table cannot be listed or an entity cannot be deleted.
        """
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError

        cutoff = int(epoch(older_than if older_than is not None else datetime.now(UTC) - CLEANUP_GRACE))
        deleted = 0
        try:
            listed = self.client.query_entities(
                f"{EXPIRES} lt {cutoff}L", select=["PartitionKey", "RowKey", EXPIRES]
            )
            for entity in listed:
                try:
                    self._retrying()(
                        self.client.delete_entity,
                        entity["PartitionKey"],
                        entity["RowKey"],
                        etag=entity.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
                except ResourceModifiedError:
                    continue
                deleted += 1
        except Exception as exc:
            raise StateError(f"Azure table {self.table}: cleanup failed: {_code(exc)}") from exc
        return deleted
