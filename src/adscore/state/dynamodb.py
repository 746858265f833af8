"""DynamoDB state store: one table, idempotent and commutative writes, event-time expiry.

Table layout (:data:`TABLE_SCHEMA`; the Terraform module creates the same):

==========  ======================================================================
attribute   meaning
==========  ======================================================================
``pk``      (S, partition key) the state key (an empty key is stored as ``"\\x00"``)
``sk``      (S, sort key) the kind: ``set``, ``value`` or ``claim``, so the three
            kinds are separate key spaces
``m``       (SS) a set's members (an empty member is stored as ``"\\x00"``)
``v``       (S) a value
``expires_at``  (N) event-time expiry, epoch seconds: readers treat an item with
            ``expires_at <= at`` as absent (:mod:`adscore.state.base`)
``purge_at``    (N) the table's TTL attribute: ``expires_at`` plus
            ``CLEANUP_GRACE`` (30 days), so DynamoDB never deletes an item a replay
            of recent logs still reads
==========  ======================================================================

Writes, one request per key (:meth:`DynamoDBStateStore.write` sends them in
parallel):

- set UNION: ``UpdateItem`` ``ADD m :members`` (string-set union, commutative),
  raising ``expires_at`` in the same request; a condition on ``size(m)``
  enforces ``MAX_SET_MEMBERS``. Only near the cap, or when an older expiry
  arrives after a newer one, does a second conditional request follow, using
  the item DynamoDB returned with the failed condition (no extra read).
- value PUT: conditional ``PutItem`` (the later expiry, then the greater
  value, wins; a losing put is a no-op, not an error).
- PUT_IF_ABSENT and ``claim``: ``PutItem`` with
  ``attribute_not_exists(pk) OR expires_at <= :at``; ``release``: ``DeleteItem``.

Reads use ``BatchGetItem`` (100 keys per request, unprocessed keys retried),
strongly consistent by default so concurrent function instances see each
other's writes. Throttling is retried by botocore's adaptive retry mode and
then, per key, by a tenacity loop with jittered backoff; keys that still fail
are raised in :class:`~adscore.state.base.StateWriteError`.

The version item, and the process-wide read cache
------------------------------------------------
The store is :class:`~adscore.state.warm.Versioned`, so the engine keeps a warm
function's reads in memory (:mod:`adscore.state.warm`). One more item, pk
:data:`VERSION_PK` (a NUL and text: no :func:`~adscore.state.base.fit_key`'d key
holds a NUL) and sk ``version`` (a kind of its own), holds a number ``n``, with no
TTL attribute. Every :meth:`DynamoDBStateStore.write` that sent any key write ends
with one ``UpdateItem ADD n :1`` after them, also when some keys failed (those that
succeeded are in the table, and other instances must learn it);
:meth:`DynamoDBStateStore.version` is one strongly consistent ``GetItem`` of it:
``(n - this object's increments, this object's item writes)``. So a warm Lambda that
is the only writer sees ``theirs`` stay put and reads each item once; another
instance's batch changes ``theirs`` once its increment lands, and every cache that
sees it starts over. Another instance's batch counts from its increment, which follows its key
writes: a read in between may be answered as just before that batch, as a read a moment earlier
would have been. The recount rule of concurrent instances still holds: of two increments the one
item orders, the later one's version shows the earlier, so that instance reads the store after both
batches' keys were written. A batch costs about one ``GetItem`` (the cache's check at its
start) and one ``UpdateItem`` (the increment, whose ``UPDATED_NEW`` answer serves as
the version after the write) more; sending outside a batch checks again.

Two limits. The version item is one hot item: every batch of every instance
increments it, and DynamoDB takes about 1,000 writes per second on one item
(then it throttles; an increment that still fails raises
:class:`~adscore.state.base.StateWriteError` for the whole batch, since its keys
are written but not announced, and the records are delivered again). And with
many concurrent instances nearly every batch sees another writer: the cache
drops everything and reads through, as without it (correct, no saving, plus
the two requests).

A cached item cannot follow what DynamoDB does on its own, so the store names
it (:class:`~adscore.state.warm.Forgetful`): a union the 400 KB item-size limit
cut short (the key is named after the write and dropped from the cache), and any
item DynamoDB's TTL may have deleted (``expires_at`` within an hour of
``now - CLEANUP_GRACE``: :meth:`DynamoDBStateStore.purge_horizon`), which the cache
reads through instead of keeping.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from adscore.errors import ConfigError, StateError
from adscore.render.escape import clean_text
from adscore.state.base import (
    CLEANUP_GRACE,
    MAX_SET_MEMBERS,
    StateStoreBase,
    StateWriteError,
    sets_alive,
    values_alive,
)
from adscore.state.warm import Written

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime
    from typing import Self

    from adscore.state.base import SetUnion, ValuePut, ValuePutIfAbsent, WriteBatch

__all__ = ["TABLE_SCHEMA", "VERSION_PK", "DynamoDBStateStore", "init_from_url", "init_table", "table_name"]

log = logging.getLogger("adscore.state.dynamodb")

TTL_ATTRIBUTE: Final = "purge_at"
TABLE_SCHEMA: Final[dict[str, Any]] = {
    "KeySchema": [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ],
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ],
    "BillingMode": "PAY_PER_REQUEST",
    "TimeToLiveAttribute": TTL_ATTRIBUTE,
    "ExpiryAttribute": "expires_at",
    "TtlGraceSeconds": int(CLEANUP_GRACE.total_seconds()),
}
"""What :func:`init_table` creates: key schema, attribute definitions, billing mode and the TTL attribute
(``purge_at = expires_at + TtlGraceSeconds``). The Terraform module mirrors it."""

SET, VALUE, CLAIM, VERSION = "set", "value", "claim", "version"
VERSION_PK: Final = "\x00adscore"
"""The version item's partition key (sk ``version``): a NUL, which no fitted state key holds."""
_VERSION_KEY: Final = {"pk": {"S": VERSION_PK}, "sk": {"S": VERSION}}
_TTL_MARGIN = 3600  # the clock DynamoDB's TTL runs on may be ahead of ours
_EMPTY = "\x00"  # DynamoDB rejects empty key strings and empty set members
_GRACE = int(CLEANUP_GRACE.total_seconds())
_BATCH_GET = 100  # BatchGetItem limit
_CAS_ATTEMPTS = 12  # conditional-union rounds under contention near the cap
_THROTTLING = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
        "_Contention",
    }
)
_TABLE_RE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")


class _Contention(Exception):
    """Conditional union rounds kept losing to concurrent writers (retried with backoff)."""


def table_name(url: str) -> str:
    """Table name of a ``dynamodb://TABLE`` URL.

    Raises
    ------
    ConfigError
        ``state``: not a dynamodb URL, or not a valid table name (3-255 of ``A-Z a-z 0-9 _ . -``).

    Example
    -------
    >>> table_name("dynamodb://adscore-state")
    'adscore-state'
    """
    prefix = "dynamodb://"
    if not url.lower().startswith(prefix):
        raise ConfigError("state", "a DynamoDB state URL is written dynamodb://TABLE")
    name = url[len(prefix) :].rstrip("/")
    if not _TABLE_RE.match(name):
        raise ConfigError("state", f"{name[:80]!r} is not a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)")
    return name


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", "")) or type(exc).__name__
    return type(exc).__name__


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, _Contention):
        return True
    if _code(exc) in _THROTTLING:
        return True
    # botocore connection and timeout errors (already retried by botocore; a few more tries here)
    return type(exc).__name__ in {
        "EndpointConnectionError",
        "ConnectionClosedError",
        "ReadTimeoutError",
        "ConnectTimeoutError",
    }


def _pk(key: str) -> dict[str, str]:
    return {"S": key or _EMPTY}


def _enc(member: str) -> str:
    return member or _EMPTY


def _dec(member: str) -> str:
    return "" if member == _EMPTY else member


def _num(item: dict[str, Any], name: str) -> int:
    attr = item.get(name)
    return int(attr["N"]) if isinstance(attr, dict) and "N" in attr else 0


def _item_too_large(exc: BaseException) -> bool:
    # "Item size has exceeded..." / "Item size to update has exceeded the maximum allowed size"
    return _code(exc) == "ValidationException" and "item size" in str(exc).lower()


def init_table(name: str, client: Any = None, *, wait: bool = True) -> dict[str, Any]:
    """Create the state table if missing and enable its TTL (idempotent: an existing table is fine).

    Parameters
    ----------
    name : str
        Table name.
    client : botocore DynamoDB client, optional
        Default: :func:`adscore.cloud.aws.client` ``("dynamodb")`` (honours ``AWS_ENDPOINT_URL``).
    wait : bool
        Wait until the table is ACTIVE before enabling TTL.

    Returns
    -------
    dict
        ``{"table", "created", "status", **TABLE_SCHEMA}``.

    Raises
    ------
    StateError
        If the table cannot be created or exists with another key schema.

    Example
    -------
    >>> init_table("adscore-state")  # doctest: +SKIP
    {'table': 'adscore-state', 'created': True, ...}
    """
    if client is None:
        from adscore.cloud.aws import client as make_client

        client = make_client("dynamodb")
    created = False
    try:
        try:
            client.create_table(
                TableName=name,
                KeySchema=TABLE_SCHEMA["KeySchema"],
                AttributeDefinitions=TABLE_SCHEMA["AttributeDefinitions"],
                BillingMode=TABLE_SCHEMA["BillingMode"],
            )
            created = True
        except Exception as exc:
            if _code(exc) != "ResourceInUseException":
                raise
        if wait:
            client.get_waiter("table_exists").wait(
                TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
            )
        table = client.describe_table(TableName=name)["Table"]
        schema = sorted((k["AttributeName"], k["KeyType"]) for k in table.get("KeySchema", []))
        if schema != sorted((k["AttributeName"], k["KeyType"]) for k in TABLE_SCHEMA["KeySchema"]):
            raise StateError(f"DynamoDB table {name!r} exists with another key schema: {schema}")
        try:
            client.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
            )
        except Exception as exc:
            if _code(exc) != "ValidationException" or "already enabled" not in str(exc).lower():
                raise
    except StateError:
        raise
    except Exception as exc:
        raise StateError(f"cannot initialise DynamoDB table {name!r}: {_code(exc)}: {exc}") from exc
    return {"table": name, "created": created, "status": table.get("TableStatus"), **TABLE_SCHEMA}


def init_from_url(url: str) -> dict[str, Any]:
    """``adscore state init dynamodb://TABLE``: :func:`init_table` for the table a URL names."""
    return init_table(table_name(url))


class DynamoDBStateStore(StateStoreBase):
    """State in one DynamoDB table (see the module docstring for the layout).

    Parameters
    ----------
    table : str
        Table name (create it with :func:`init_table`, ``adscore state init dynamodb://TABLE`` or Terraform).
    client : botocore DynamoDB client, optional
        Injected client; default one from :func:`adscore.cloud.aws.client`.
    consistent_read : bool
        Strongly consistent reads (default), so instances see each other's writes at once.
    max_workers : int
        Parallel requests per :meth:`write`.
    attempts : int
        Tries per key for throttled or contended writes (on top of botocore's retries).

    Notes
    -----
    Thread-safe; open one store per process (its writer threads and client do not survive ``fork``).
    :class:`~adscore.state.warm.Versioned` through the version item (see the module's text); with
    ``consistent_read=False`` a read may miss a write the version already shows, so :meth:`version`
    then never repeats itself and a cache in front reads through.

    Example
    -------
    >>> store = DynamoDBStateStore.from_url("dynamodb://adscore-state")  # doctest: +SKIP
    """

    remote = True  # each read is a request

    def __init__(
        self,
        table: str,
        client: Any = None,
        *,
        consistent_read: bool = True,
        max_workers: int = 16,
        attempts: int = 4,
    ) -> None:
        super().__init__()
        if client is None:
            from adscore.cloud.aws import client as make_client

            client = make_client("dynamodb", max_attempts=5)
        self.table = table
        self.client = client
        self.consistent_read = consistent_read
        self.max_workers = max(1, max_workers)
        self._attempts = max(1, attempts)
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._bump_lock = threading.Lock()  # an increment and the count of this object's increments, together
        self._bumps = 0  # increments of the version item made through this object
        self._item_writes = 0  # set and value item writes through this object
        self._ticks = itertools.count(-1, -1)  # version()'s ever-new "theirs" without consistent reads
        self._last = threading.local()  # per thread: the Written of its last write()

    @classmethod
    def from_url(cls, url: str) -> Self:
        """Open the store a ``dynamodb://TABLE`` URL names (no request is made)."""
        return cls(table_name(url))

    # -- plumbing -------------------------------------------------------------

    def _retrying(self) -> Retrying:
        return Retrying(
            retry=retry_if_exception(_retryable),
            stop=stop_after_attempt(self._attempts),
            wait=wait_random_exponential(multiplier=0.05, max=2.0),
            reraise=True,
        )

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="adscore-ddb")
            return self._pool

    def init(self) -> None:
        """Create the table and enable TTL if missing (idempotent)."""
        init_table(self.table, self.client)

    def close(self) -> None:
        """Stop the writer threads (the client has nothing to close)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    # -- reads ----------------------------------------------------------------

    def _batch_get(self, keys: Sequence[str], kind: str, projection: str) -> dict[str, dict[str, Any]]:
        unique = list(dict.fromkeys(keys))
        found: dict[str, dict[str, Any]] = {}
        names = {"#pk": "pk", "#sk": "sk", "#e": "expires_at", "#m": "m", "#v": "v"}
        try:
            for start in range(0, len(unique), _BATCH_GET):
                request: dict[str, Any] = {
                    self.table: {
                        "Keys": [
                            {"pk": _pk(k), "sk": {"S": kind}} for k in unique[start : start + _BATCH_GET]
                        ],
                        "ProjectionExpression": projection,
                        "ExpressionAttributeNames": {n: names[n] for n in names if n in projection},
                        "ConsistentRead": self.consistent_read,
                    }
                }
                for attempt in range(10):
                    response = self.client.batch_get_item(RequestItems=request)
                    for item in response.get("Responses", {}).get(self.table, []):
                        found[_dec(item["pk"]["S"])] = item
                    request = response.get("UnprocessedKeys") or {}
                    if not request:
                        break
                    time.sleep(min(2.0, 0.05 * 2**attempt))
                else:
                    raise StateError(f"DynamoDB {self.table}: reads still unprocessed after retries")
        except StateError:
            raise
        except Exception as exc:
            raise StateError(f"DynamoDB {self.table}: read failed: {_code(exc)}") from exc
        return found

    def read_sets(self, keys: Sequence[str]) -> dict[str, tuple[frozenset[str], int]]:
        """Each set item as stored (its members, its expiry), expired or not; absent keys left out."""
        if not keys:
            return {}
        items = self._batch_get(keys, SET, "#pk, #m, #e")
        return {
            key: (frozenset(_dec(m) for m in item.get("m", {}).get("SS", ())), _num(item, "expires_at"))
            for key, item in items.items()
        }

    def read_values(self, keys: Sequence[str]) -> dict[str, tuple[str, int]]:
        """Each value item as stored (its value, its expiry), expired or not; absent keys left out."""
        if not keys:
            return {}
        items = self._batch_get(keys, VALUE, "#pk, #v, #e")
        return {key: (item["v"]["S"], _num(item, "expires_at")) for key, item in items.items() if "S" in item.get("v", {})}

    def get_sets(self, keys: Sequence[str], at: datetime) -> dict[str, frozenset[str]]:
        return sets_alive(self.read_sets(keys), keys, at)

    def get_values(self, keys: Sequence[str], at: datetime) -> dict[str, str]:
        return values_alive(self.read_values(keys), at)

    # -- the version item (adscore.state.warm.Versioned) ------------------------

    def version(self) -> tuple[int, int]:
        """``(theirs, ours)``: the version item's count less this object's increments, and this object's
        item writes (one strongly consistent ``GetItem``; see the module's text)."""
        with self._bump_lock:  # read before the item: an increment in flight can only make theirs look changed
            bumps, ours = self._bumps, self._item_writes
        if not self.consistent_read:
            return next(self._ticks), ours
        try:
            response = self.client.get_item(
                TableName=self.table,
                Key=_VERSION_KEY,
                ConsistentRead=True,
                ProjectionExpression="#n",
                ExpressionAttributeNames={"#n": "n"},
            )
        except Exception as exc:
            raise StateError(f"DynamoDB {self.table}: version read failed: {_code(exc)}") from exc
        return _num(response.get("Item") or {}, "n") - bumps, ours

    def last_write(self) -> Written:
        """What this thread's last :meth:`write` left that the version cannot show: the version right
        after it (from the increment's answer) and the set keys whose union the item-size limit cut."""
        written: Written = getattr(self._last, "written", Written())
        self._last.written = Written()
        return written

    def purge_horizon(self) -> int:
        """Items whose ``expires_at`` is at or before this (wall clock, epoch seconds) DynamoDB's TTL may
        have deleted or may delete at any moment (``purge_at`` passed, within an hour)."""
        return int(time.time()) - _GRACE + _TTL_MARGIN

    def _bump(self, written: int) -> tuple[int, int]:
        """Increment the version item once, after a write's key writes; return the version it leaves."""

        def add() -> dict[str, Any]:
            response: dict[str, Any] = self.client.update_item(
                TableName=self.table,
                Key=_VERSION_KEY,
                UpdateExpression="ADD #n :one",
                ExpressionAttributeNames={"#n": "n"},
                ExpressionAttributeValues={":one": {"N": "1"}},
                ReturnValues="UPDATED_NEW",
            )
            return response

        with self._bump_lock:  # so _bumps counts exactly this object's increments the count includes
            response = self._retrying()(add)
            self._bumps += 1
            self._item_writes += written
            return _num(response.get("Attributes") or {}, "n") - self._bumps, self._item_writes

    # -- writes ---------------------------------------------------------------

    def _union(self, key: str, union: SetUnion, cut: list[str]) -> None:
        members = {_enc(m) for m in union.members}
        old: dict[str, Any] | None = None  # the item as DynamoDB last showed it, once a condition failed
        for _ in range(_CAS_ATTEMPTS):
            names = {"#e": "expires_at", "#p": TTL_ATTRIBUTE}
            values: dict[str, Any] = {}
            conditions: list[str] = []
            if old is None:
                set_expiry = True
                if len(members) <= MAX_SET_MEMBERS:
                    to_add = sorted(members)
                    # room for every member of the union, whichever are new
                    conditions.append("(attribute_not_exists(#m) OR size(#m) <= :room)")
                    values[":room"] = {"N": str(MAX_SET_MEMBERS - len(members))}
                else:
                    to_add = sorted(members)[:MAX_SET_MEMBERS]
                    conditions.append("attribute_not_exists(#m)")
            else:
                present = set(old.get("m", {}).get("SS", ()))
                set_expiry = union.expires_at > _num(old, "expires_at")
                to_add = sorted(members - present)[: max(MAX_SET_MEMBERS - len(present), 0)]
                if not to_add and not set_expiry:
                    return
                if to_add:
                    # exactly the set we saw: nobody added members since
                    if present:
                        conditions.append("size(#m) = :size")
                        values[":size"] = {"N": str(len(present))}
                    else:
                        conditions.append("attribute_not_exists(#m)")
            clauses = []
            if set_expiry:
                clauses.append("SET #e = :e, #p = :p")
                conditions.append("(attribute_not_exists(#e) OR #e <= :e)")
                values[":e"] = {"N": str(union.expires_at)}
                values[":p"] = {"N": str(union.expires_at + _GRACE)}
            else:
                del names["#e"], names["#p"]
            if to_add:
                clauses.append("ADD #m :m")
                values[":m"] = {"SS": to_add}
            if any("#m" in c for c in conditions) or to_add:
                names["#m"] = "m"
            if not clauses:
                return
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key={"pk": _pk(key), "sk": {"S": SET}},
                    UpdateExpression=" ".join(clauses),
                    ConditionExpression=" AND ".join(conditions),
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return
            except Exception as exc:
                if _item_too_large(exc):
                    # A set full by bytes (400 KB item limit) stops adding, like a set full by count.
                    log.warning(
                        "a state set reached DynamoDB's item size limit; new members dropped",
                        extra={"json_fields": {"key": clean_text(key, 120)}},
                    )
                    cut.append(key)  # which members it holds now, only a read can say
                    return
                if _code(exc) != "ConditionalCheckFailedException":
                    raise
                item = getattr(exc, "response", {}).get("Item")
                old = item if isinstance(item, dict) else self._get_item(key, SET)
        raise _Contention(f"set {key[:120]!r} kept changing under concurrent writers")

    def _get_item(self, key: str, kind: str) -> dict[str, Any]:
        response = self.client.get_item(
            TableName=self.table, Key={"pk": _pk(key), "sk": {"S": kind}}, ConsistentRead=True
        )
        item: dict[str, Any] = response.get("Item") or {}
        return item

    def _conditional_put(self, item: dict[str, Any], condition: str, values: dict[str, Any]) -> bool:
        """PutItem under ``condition``; True if written, False if the condition kept it out."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression=condition,
                ExpressionAttributeNames={
                    "#pk": "pk",
                    "#e": "expires_at",
                    **({"#v": "v"} if "#v" in condition else {}),
                },
                ExpressionAttributeValues=values,
            )
        except Exception as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _value_item(self, key: str, value: str, expires_at: int) -> dict[str, Any]:
        return {
            "pk": _pk(key),
            "sk": {"S": VALUE},
            "v": {"S": value},
            "expires_at": {"N": str(expires_at)},
            TTL_ATTRIBUTE: {"N": str(expires_at + _GRACE)},
        }

    def _put(self, key: str, put: ValuePut) -> None:
        self._conditional_put(
            self._value_item(key, put.value, put.expires_at),
            "attribute_not_exists(#pk) OR #e < :e OR (#e = :e AND #v < :v)",
            {":e": {"N": str(put.expires_at)}, ":v": {"S": put.value}},
        )

    def _put_if_absent(self, key: str, new: ValuePutIfAbsent) -> None:
        self._conditional_put(
            self._value_item(key, new.value, new.expires_at),
            "attribute_not_exists(#pk) OR #e <= :at",
            {":at": {"N": str(new.at)}},
        )

    def _write_key(self, op: Callable[[], None]) -> BaseException | None:
        try:
            self._retrying()(op)
        except Exception as exc:
            return exc
        return None

    def write(self, batch: WriteBatch) -> None:
        """Each key's write (in parallel), then one increment of the version item (see the module's text).

        Raises
        ------
        StateWriteError
            Naming the keys not written; every key of the batch when the increment failed (written,
            but other instances' caches would not know it: delivered again, the batch is rewritten).
        """
        self._last.written = Written()
        cut: list[str] = []  # list.append is atomic: the writer threads share it
        ops: list[tuple[str, Callable[[], None]]] = []
        for key, union in batch.unions.items():
            ops.append((key, lambda k=key, u=union: self._union(k, u, cut)))  # type: ignore[misc]
        for key, put in batch.puts.items():
            ops.append((key, lambda k=key, p=put: self._put(k, p)))  # type: ignore[misc]
        for key, new in batch.put_if_absent.items():
            ops.append((key, lambda k=key, n=new: self._put_if_absent(k, n)))  # type: ignore[misc]
        if not ops:
            return
        if len(ops) == 1:
            errors = [self._write_key(ops[0][1])]
        else:
            errors = list(self._executor().map(self._write_key, [op for _, op in ops]))
        failed = [(key, exc) for (key, _), exc in zip(ops, errors, strict=True) if exc is not None]
        with self._lock:
            self.writes += len(ops) - len(failed)
        try:  # also after a partial failure: the keys that were written must reach other instances' caches
            after = self._bump(len(ops) - len(failed))
        except Exception as exc:
            raise StateWriteError(
                [key for key, _ in ops],
                f"DynamoDB {self.table}: {len(ops) - len(failed)} of {len(ops)} key(s) written but the "
                f"version item not incremented ({_code(exc)})",
            ) from exc
        if not failed:
            self._last.written = Written(after if self.consistent_read else None, frozenset(cut))
        if failed:
            codes = sorted({_code(exc) for _, exc in failed})
            raise StateWriteError(
                [key for key, _ in failed],
                f"DynamoDB {self.table}: {len(failed)} of {len(ops)} key(s) not written ({', '.join(codes)})",
            )

    # -- claims ---------------------------------------------------------------

    def claim_item(self, key: str, expires_at: int, now: int) -> bool:
        item = {
            "pk": _pk(key),
            "sk": {"S": CLAIM},
            "expires_at": {"N": str(expires_at)},
            TTL_ATTRIBUTE: {"N": str(expires_at + _GRACE)},
        }
        try:
            won = self._retrying()(
                self._conditional_put,
                item,
                "attribute_not_exists(#pk) OR #e <= :now",
                {":now": {"N": str(now)}},
            )
        except Exception as exc:
            raise StateError(f"DynamoDB {self.table}: claim failed: {_code(exc)}") from exc
        with self._lock:
            self.writes += 1
        return bool(won)

    def release_item(self, key: str) -> None:
        try:
            self._retrying()(
                self.client.delete_item, TableName=self.table, Key={"pk": _pk(key), "sk": {"S": CLAIM}}
            )
        except Exception as exc:
            raise StateError(f"DynamoDB {self.table}: release failed: {_code(exc)}") from exc
        with self._lock:
            self.writes += 1
