"""Firestore state store: one document per state item, idempotent writes, event-time expiry.

URL: ``firestore://COLLECTION`` (optionally ``?database=NAME`` and ``&project=ID``; by default the
``(default)`` database of the project the environment names). ``google-cloud-firestore`` is
imported on first use, so opening the store makes no request and loads no SDK.

Documents (all in ``COLLECTION``)
---------------------------------
Each kind of item is its own key space: the document id is the kind's prefix (``s~`` set,
``v~`` value, ``c~`` claim) and the key with ``%``, ``/`` and control characters
percent-encoded (Firestore ids forbid ``/`` and ``__.*__``); an id longer than 1,500 bytes,
or a key that is not valid UTF-8, becomes ``<kind>#<sha256 of the key>``.

=================  ===============================================================================
field              meaning
=================  ===============================================================================
``k``              the state key (for people reading the collection; never used to look up)
``m``              (set) the members, in the order they were added
``v``              (value) the value
``expires_at``     integer epoch seconds: the event-time expiry readers compare with ``at``
``expire_time``    Timestamp ``expires_at + CLEANUP_GRACE`` (30 days): the field a Firestore TTL
                   policy deletes by (``gcloud firestore fields ttls update expire_time
                   --collection-group=COLLECTION --enable-ttl``; the Terraform module sets it)
=================  ===============================================================================

Writes
------
:meth:`FirestoreStateStore.write` reads the batch's documents with one ``get_all`` and commits
one Firestore ``WriteBatch`` per 500 keys (Firestore's limit; fewer when their members or values
would pass :data:`MAX_COMMIT_BYTES`), one write per key:

- set UNION: ``set(merge=True)`` with ``ArrayUnion`` of the new members (sorted) and
  ``Maximum`` on ``expires_at``, server-side transforms that commute and repeat safely. When the
  members read plus the new ones would pass ``MAX_SET_MEMBERS``, the union becomes a
  conditional ``update`` (precondition: the document's ``update_time`` as read) adding only the
  members that fit. Concurrent unions that each fitted may together pass the cap by a little;
  readers return the first ``MAX_SET_MEMBERS`` members in insertion order, which is exactly
  "stop adding" (the earliest members stay), so the size a reader sees never passes the cap.
- value PUT: ``create`` when absent, else a conditional ``update`` (same ``update_time``
  precondition) only when the put wins (later ``expires_at``, then greater value).
- PUT_IF_ABSENT and ``claim``: ``create`` (``AlreadyExists`` = lost), or, when the stored item
  has expired at the write's event time, a conditional ``update``.
- ``release``: ``delete`` (deleting a missing document succeeds).

A batch commit is atomic: when a precondition fails (another instance wrote one of the
documents since the read) the whole chunk is read and planned again, with jittered backoff;
keys that still fail are committed one by one so one hot key cannot sink the others, and the
keys never written are raised in :class:`~adscore.state.base.StateWriteError`.

``expire_time`` is raised with ``expires_at`` from the value read; two unions racing on one
set may leave it at the smaller of their expiries (it only delays or advances physical
deletion by their difference, never what readers see, which ``expires_at`` decides).
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs

from adscore.errors import ConfigError, StateError
from adscore.render.escape import clean_text
from adscore.state.base import (
    CLEANUP_GRACE,
    MAX_SET_MEMBERS,
    SetUnion,
    StateStoreBase,
    StateWriteError,
    ValuePut,
    ValuePutIfAbsent,
    put_wins,
)
from adscore.windows import epoch

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Self

    from adscore.state.base import WriteBatch

__all__ = [
    "MAX_BATCH_WRITES",
    "TTL_FIELD",
    "FirestoreStateStore",
    "document_id",
    "parse_url",
]

log = logging.getLogger("adscore.state.firestore")

SET: Final = "s"
VALUE: Final = "v"
CLAIM: Final = "c"
TTL_FIELD: Final = "expire_time"
"""The Timestamp field a Firestore TTL policy deletes documents by."""
MAX_BATCH_WRITES: Final = 500
"""Firestore's limit on the writes of one commit."""
MAX_COMMIT_BYTES: Final = 4 * 1024 * 1024
"""Budget for the estimated payload of one commit (Firestore refuses requests over 10 MiB)."""
MAX_DOC_ID_BYTES: Final = 1500
_GRACE = int(CLEANUP_GRACE.total_seconds())
_MAX_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z, the largest Firestore Timestamp
_UNSAFE_ID = re.compile(r"[%/\x00-\x1f\x7f]")
_COLLECTION_RE = re.compile(r"^[A-Za-z0-9_.~-]{1,128}$")
_DATABASE_RE = re.compile(r"^(?:\(default\)|[a-z][a-z0-9-]{2,61}[a-z0-9])$")
_PROJECT_RE = re.compile(r"^[a-z][a-z0-9.:-]{4,61}[a-z0-9]$")
_RESERVED_ID = re.compile(r"^__.*__$")

# gRPC status names (google.api_core exception classes) by what a retry can do about them.
_CONTENTION = frozenset({"AlreadyExists", "Conflict", "Aborted", "FailedPrecondition", "NotFound"})
_TRANSIENT = frozenset(
    {
        "ServiceUnavailable",
        "DeadlineExceeded",
        "InternalServerError",
        "TooManyRequests",
        "ResourceExhausted",
        "GatewayTimeout",
        "BadGateway",
        "Unknown",
        "RetryError",
    }
)


def document_id(kind: str, key: str) -> str:
    """The Firestore document id of a state item.

    Parameters
    ----------
    kind : str
        ``"s"`` (set), ``"v"`` (value) or ``"c"`` (claim).
    key : str
        The state key, verbatim.

    Returns
    -------
    str
        ``<kind>~<key with %, / and control characters percent-encoded>``, or
        ``<kind>#<sha256 hex>`` when that is over 1,500 bytes or ``key`` is not valid UTF-8.

    Example
    -------
    >>> document_id("s", "apis:alice/x@300:1")
    's~apis:alice%2Fx@300:1'
    """
    encoded = f"{kind}~" + _UNSAFE_ID.sub(lambda m: f"%{ord(m.group()):02X}", key)
    try:
        size = len(encoded.encode("utf-8"))
    except UnicodeEncodeError:
        size = MAX_DOC_ID_BYTES + 1
    if size <= MAX_DOC_ID_BYTES:
        return encoded
    return f"{kind}#" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def parse_url(url: str) -> tuple[str, str | None, str | None]:
    """``(collection, database, project)`` of a ``firestore://COLLECTION?database=NAME&project=ID`` URL.

    Raises
    ------
    ConfigError
        ``state``: not a firestore URL, a bad collection or database name, or an unknown option.

    Example
    -------
    >>> parse_url("firestore://adscore-state?database=security")
    ('adscore-state', 'security', None)
    """
    prefix = "firestore://"
    if not url.lower().startswith(prefix):
        raise ConfigError("state", "a Firestore state URL is written firestore://COLLECTION[?database=NAME]")
    rest = url[len(prefix) :]
    collection, _, query = rest.partition("?")
    collection = collection.rstrip("/")
    if not _COLLECTION_RE.match(collection) or _RESERVED_ID.match(collection) or collection in (".", ".."):
        raise ConfigError(
            "state",
            f"{collection[:80]!r} is not a Firestore collection id (1-128 of A-Z a-z 0-9 _ . ~ -, not __x__)",
        )
    try:
        options = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise ConfigError("state", f"malformed Firestore URL options: {exc}") from exc
    unknown = sorted(set(options) - {"database", "project"})
    if unknown:
        raise ConfigError(
            "state", f"unknown Firestore URL option(s) {', '.join(unknown)[:80]} (known: database, project)"
        )
    database = options.get("database", [None])[-1] or None
    project = options.get("project", [None])[-1] or None
    if database is not None and not _DATABASE_RE.match(database):
        raise ConfigError(
            "state", f"{database[:80]!r} is not a Firestore database id ((default) or 4-63 of a-z 0-9 -)"
        )
    if project is not None and not _PROJECT_RE.match(project):
        raise ConfigError("state", f"{project[:80]!r} is not a Google Cloud project id")
    return collection, database, project


def _code(exc: BaseException) -> str:
    return type(exc).__name__


def _retry_kind(exc: BaseException) -> str:
    """``contention``, ``transient``, ``too_large`` or ``permanent``."""
    name = _code(exc)
    if name in _CONTENTION:
        return "contention"
    if name in _TRANSIENT:
        return "transient"
    text = str(exc).lower()
    if name == "InvalidArgument" and (
        "exceeds the maximum" in text or "too large" in text or "too big" in text
    ):
        return "too_large"
    return "permanent"


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    return 0


def _members(data: dict[str, Any]) -> list[str]:
    raw = data.get("m")
    if not isinstance(raw, list):
        return []
    return [m for m in raw if isinstance(m, str)]


def _op_bytes(op: _Op) -> int:
    """A generous estimate of what one key's write adds to a commit request."""
    size = 200 + 3 * len(op.key)
    if isinstance(op.op, SetUnion):
        size += sum(4 * len(m) + 8 for m in op.op.members)
    else:
        size += 4 * len(op.op.value)
    return size


def _chunks(ops: Sequence[_Op]) -> list[list[_Op]]:
    chunks: list[list[_Op]] = []
    current: list[_Op] = []
    size = 0
    for op in ops:
        n = _op_bytes(op)
        if current and (len(current) >= MAX_BATCH_WRITES or size + n > MAX_COMMIT_BYTES):
            chunks.append(current)
            current, size = [], 0
        current.append(op)
        size += n
    if current:
        chunks.append(current)
    return chunks


def _ttl_time(expires_at: int) -> datetime:
    return datetime.fromtimestamp(min(max(expires_at + _GRACE, 0), _MAX_TIMESTAMP), tz=UTC)


def _storable_key(key: str) -> str | None:
    try:
        return key if len(key.encode("utf-8")) <= MAX_DOC_ID_BYTES else None
    except UnicodeEncodeError:
        return None


@dataclass(frozen=True, slots=True)
class _Op:
    key: str
    kind: str
    op: SetUnion | ValuePut | ValuePutIfAbsent


@dataclass(frozen=True, slots=True)
class _Doc:
    data: dict[str, Any] | None  # None: the document does not exist
    update_time: Any


class FirestoreStateStore(StateStoreBase):
    """State in one Firestore collection (see the module docstring for the layout).

    Parameters
    ----------
    collection : str
        Collection id.
    client : google.cloud.firestore.Client, optional
        Injected client (an emulator-bound client, or a test double of the same surface); by
        default one is built on first use for ``project`` and ``database`` (it honours
        ``FIRESTORE_EMULATOR_HOST`` and ``GOOGLE_CLOUD_PROJECT``) and closed by :meth:`close`.
    database, project : str, optional
        Database id (default ``(default)``) and project (default: from the environment).
    attempts : int
        Rounds per chunk when a precondition fails or Firestore is unavailable.
    sleep : Callable[[float], None]
        How to wait between rounds.

    Example
    -------
    >>> store = FirestoreStateStore.from_url("firestore://adscore-state")  # no request is made
    """

    remote = True  # each read is a request

    def __init__(
        self,
        collection: str,
        client: Any = None,
        *,
        database: str | None = None,
        project: str | None = None,
        attempts: int = 6,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()
        self.collection = collection
        self.database = database
        self.project = project
        self.attempts = max(1, attempts)
        self._sleep = sleep
        self._db: Any = client
        self._owns_client = client is None
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> Self:
        """Open the store a ``firestore://COLLECTION[?database=NAME][&project=ID]`` URL names (no request)."""
        collection, database, project = parse_url(url)
        return cls(collection, database=database, project=project)

    def __repr__(self) -> str:
        return f"FirestoreStateStore({self.collection!r}, database={self.database or '(default)'!r})"

    # -- plumbing -------------------------------------------------------------

    def _client(self) -> Any:
        with self._lock:
            if self._db is None:
                try:
                    from google.cloud import firestore
                except ImportError as exc:
                    raise ConfigError(
                        "state",
                        f"the Firestore backend needs google-cloud-firestore ({exc}); install adscore[gcp]",
                    ) from exc
                try:
                    self._db = firestore.Client(project=self.project, database=self.database)
                except Exception as exc:  # no credentials or project: name the cause, not the environment
                    raise StateError(
                        f"cannot create a Firestore client: {_code(exc)}: {str(exc)[:200]}"
                    ) from exc
            return self._db

    def _ref(self, kind: str, key: str) -> Any:
        return self._client().collection(self.collection).document(document_id(kind, key))

    def _backoff(self, attempt: int) -> None:
        self._sleep(min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.5))

    def _fetch(self, kind: str, keys: Sequence[str]) -> dict[str, _Doc]:
        """Documents of ``keys`` (one ``get_all`` per 500), keyed by state key; raw client errors."""
        unique = list(dict.fromkeys(keys))
        by_id = {document_id(kind, k): k for k in unique}
        found: dict[str, _Doc] = {}
        client = self._client()
        for start in range(0, len(unique), MAX_BATCH_WRITES):
            refs = [self._ref(kind, k) for k in unique[start : start + MAX_BATCH_WRITES]]
            for snap in client.get_all(refs):
                key = by_id.get(snap.id)
                if key is None:
                    continue
                data = snap.to_dict() if snap.exists else None
                found[key] = _Doc(
                    data if isinstance(data, dict) else None, snap.update_time if snap.exists else None
                )
        return found

    def _read(self, kind: str, keys: Sequence[str]) -> dict[str, _Doc]:
        for attempt in range(self.attempts):
            try:
                return self._fetch(kind, keys)
            except (StateError, ConfigError):
                raise
            except Exception as exc:
                if _retry_kind(exc) != "transient" or attempt + 1 >= self.attempts:
                    raise StateError(f"Firestore {self.collection}: read failed: {_code(exc)}") from exc
                self._backoff(attempt)
        raise StateError(
            f"Firestore {self.collection}: read failed"
        )  # pragma: no cover - loop returns or raises

    def init(self) -> None:
        """Check that the collection can be read (Firestore creates collections on first write).

        The TTL policy on ``expire_time`` is set outside the data API: by the Terraform module or
        ``gcloud firestore fields ttls update expire_time --collection-group=COLLECTION --enable-ttl``.

        Raises
        ------
        StateError
            If Firestore cannot be reached with the environment's credentials.
        """
        self._read(CLAIM, ["adscore-init-probe"])

    def schema(self) -> dict[str, object]:
        """What the store expects of the collection (``adscore state init`` prints it)."""
        database = self.database or "(default)"
        return {
            "collection": self.collection,
            "database": database,
            "document_ids": "s~KEY (set), v~KEY (value), c~KEY (claim); / and % percent-encoded",
            "fields": {
                "k": "key",
                "m": "set members",
                "v": "value",
                "expires_at": "event-time expiry (epoch s)",
            },
            "ttl_field": TTL_FIELD,
            "ttl_grace_seconds": _GRACE,
            "ttl_command": (
                f"gcloud firestore fields ttls update {TTL_FIELD} --collection-group={self.collection} "
                f"--enable-ttl --database={database}"
            ),
        }

    def close(self) -> None:
        """Close the client this store built (an injected client is left open)."""
        with self._lock:
            db, self._db = self._db, (None if self._owns_client else self._db)
        if self._owns_client and db is not None:
            close = getattr(db, "close", None)
            if callable(close):
                close()

    # -- reads ----------------------------------------------------------------

    def get_sets(self, keys: Sequence[str], at: datetime) -> dict[str, frozenset[str]]:
        if not keys:
            return {}
        docs = self._read(SET, keys)
        now = epoch(at)
        result: dict[str, frozenset[str]] = {}
        for key in keys:
            doc = docs.get(key)
            if doc is None or doc.data is None or _int(doc.data.get("expires_at")) <= now:
                result[key] = frozenset()
            else:
                # insertion order: the first MAX_SET_MEMBERS are the ones "stop adding" kept
                result[key] = frozenset(_members(doc.data)[:MAX_SET_MEMBERS])
        return result

    def get_values(self, keys: Sequence[str], at: datetime) -> dict[str, str]:
        if not keys:
            return {}
        docs = self._read(VALUE, keys)
        now = epoch(at)
        return {
            key: doc.data["v"]
            for key, doc in docs.items()
            if doc.data is not None
            and isinstance(doc.data.get("v"), str)
            and _int(doc.data.get("expires_at")) > now
        }

    # -- writes ---------------------------------------------------------------

    def _fields(self, key: str, expires_at: int) -> dict[str, Any]:
        fields: dict[str, Any] = {"expires_at": expires_at, TTL_FIELD: _ttl_time(expires_at)}
        stored = _storable_key(key)
        if stored is not None:
            fields["k"] = stored
        return fields

    def _precondition(self, doc: _Doc) -> Any:
        return self._client().write_option(last_update_time=doc.update_time)

    def _plan_union(self, batch: Any, key: str, union: SetUnion, doc: _Doc | None) -> int:
        from google.cloud.firestore_v1.transforms import ArrayUnion, Maximum

        ref = self._ref(SET, key)
        members = sorted(union.members)
        exp = union.expires_at
        if doc is None or doc.data is None:
            if len(members) <= MAX_SET_MEMBERS:
                fields = self._fields(key, exp)
                fields["expires_at"] = Maximum(exp)
                if members:
                    fields["m"] = ArrayUnion(members)
                batch.set(ref, fields, merge=True)
            else:  # one union larger than the cap: its smallest members, if nobody created the set meanwhile
                batch.create(ref, {**self._fields(key, exp), "m": members[:MAX_SET_MEMBERS]})
            return 1
        present = _members(doc.data)
        seen = set(present)
        new = [m for m in members if m not in seen]
        later = exp > _int(doc.data.get("expires_at"))
        update: dict[str, Any] = {}
        if later:
            update["expires_at"] = Maximum(exp)
            update[TTL_FIELD] = _ttl_time(exp)
        if len(present) + len(new) <= MAX_SET_MEMBERS:
            if new:
                update["m"] = ArrayUnion(new)
            if not update:
                return 0
            batch.set(ref, update, merge=True)
            return 1
        # near the cap: add what fits, only if the set is still the one read
        to_add = new[: max(0, MAX_SET_MEMBERS - len(present))]
        if to_add:
            update["m"] = ArrayUnion(to_add)
        if not update:
            return 0
        if later:
            update["expires_at"] = exp
        batch.update(ref, update, option=self._precondition(doc))
        return 1

    def _plan_value(self, batch: Any, key: str, op: ValuePut | ValuePutIfAbsent, doc: _Doc | None) -> int:
        ref = self._ref(VALUE, key)
        fields = {**self._fields(key, op.expires_at), "v": op.value}
        if doc is None or doc.data is None:
            batch.create(ref, fields)
            return 1
        old_exp = _int(doc.data.get("expires_at"))
        if isinstance(op, ValuePutIfAbsent):
            replace = old_exp <= op.at  # only over an item expired at the write's event time
        else:
            old = doc.data.get("v")
            replace = put_wins(op, old if isinstance(old, str) else "", old_exp)
        if not replace:
            return 0
        fields.pop("k", None)
        batch.update(ref, fields, option=self._precondition(doc))
        return 1

    def _commit(self, ops: Sequence[_Op]) -> str | None:
        """Read, plan and commit ``ops`` as one atomic batch, retrying; the error code if it never commits."""
        last = "unknown"
        for attempt in range(self.attempts):
            try:
                docs: dict[str, dict[str, _Doc]] = {}
                for kind in (SET, VALUE):
                    keys = [o.key for o in ops if o.kind == kind]
                    if keys:
                        docs[kind] = self._fetch(kind, keys)
                batch = self._client().batch()
                planned = 0
                for o in ops:
                    doc = docs[o.kind].get(o.key)
                    if isinstance(o.op, SetUnion):
                        planned += self._plan_union(batch, o.key, o.op, doc)
                    else:
                        planned += self._plan_value(batch, o.key, o.op, doc)
                if planned:
                    batch.commit()
                return None
            except (StateError, ConfigError):
                raise
            except Exception as exc:
                last = _code(exc)
                kind = _retry_kind(exc)
                if kind == "too_large" and len(ops) == 1 and ops[0].kind == SET:
                    # A set full by bytes (1 MiB document) stops adding, like a set full by count.
                    log.warning(
                        "a state set reached Firestore's document size limit; new members dropped",
                        extra={"json_fields": {"key": clean_text(ops[0].key, 120)}},
                    )
                    return None
                if kind not in ("contention", "transient") or attempt + 1 >= self.attempts:
                    return last
                self._backoff(attempt)
        return last

    def write(self, batch: WriteBatch) -> None:
        ops: list[_Op] = [_Op(k, SET, u) for k, u in batch.unions.items()]
        ops += [_Op(k, VALUE, p) for k, p in batch.puts.items()]
        ops += [_Op(k, VALUE, n) for k, n in batch.put_if_absent.items()]
        if not ops:
            return
        failed: dict[str, str] = {}
        for chunk in _chunks(ops):
            error = self._commit(chunk)
            if error is None:
                continue
            if len(chunk) == 1:
                failed[chunk[0].key] = error
                continue
            for op in chunk:  # one key at a time: a hot or broken key does not take the others down
                single = self._commit([op])
                if single is not None:
                    failed[op.key] = single
        with self._lock:
            self.writes += len(ops) - len(failed)
        if failed:
            codes = ", ".join(sorted(set(failed.values())))
            raise StateWriteError(
                failed,
                f"Firestore {self.collection}: {len(failed)} of {len(ops)} key(s) not written ({codes})",
            )

    # -- claims ---------------------------------------------------------------

    def claim_item(self, key: str, expires_at: int, now: int) -> bool:
        fields = self._fields(key, expires_at)
        last = "unknown"
        for attempt in range(self.attempts):
            ref = self._ref(CLAIM, key)
            try:
                try:
                    ref.create(fields)
                    won = True
                except Exception as exc:
                    if _code(exc) not in ("AlreadyExists", "Conflict"):
                        raise
                    snap = ref.get()
                    if not snap.exists:
                        continue  # released since: create again
                    data = snap.to_dict() or {}
                    if _int(data.get("expires_at")) > now:
                        won = False
                    else:  # expired at this event time: take it over, unless someone else just did
                        ref.update(
                            fields, option=self._client().write_option(last_update_time=snap.update_time)
                        )
                        won = True
            except (StateError, ConfigError):
                raise
            except Exception as exc:
                last = _code(exc)
                if _retry_kind(exc) not in ("contention", "transient"):
                    break
                self._backoff(attempt)
                continue
            with self._lock:
                self.writes += 1
            return won
        raise StateError(f"Firestore {self.collection}: claim failed: {last}")

    def release_item(self, key: str) -> None:
        last = "unknown"
        for attempt in range(self.attempts):
            try:
                self._ref(CLAIM, key).delete()
            except (StateError, ConfigError):
                raise
            except Exception as exc:
                last = _code(exc)
                if _retry_kind(exc) != "transient":
                    break
                self._backoff(attempt)
                continue
            with self._lock:
                self.writes += 1
            return
        raise StateError(f"Firestore {self.collection}: release failed: {last}")
