"""A strict in-process stand-in for the part of ``google.cloud.firestore.Client`` adscore uses.

No Firestore emulator runs on the machines that run this suite (it needs gcloud and a download),
so :class:`FakeFirestore` reproduces what Firestore itself enforces, with the same exception
classes (``google.api_core.exceptions``) and the real transform objects
(``google.cloud.firestore_v1.transforms``):

- document ids: non-empty, valid UTF-8, at most 1,500 bytes, no ``/``, not ``.`` or ``..``,
  not ``__.*__`` (``InvalidArgument``; a ``/`` is a ``ValueError`` in the client, as in the SDK);
- preconditions: ``create`` on an existing document -> ``AlreadyExists``; ``update`` of a missing
  document -> ``NotFound``; a ``last_update_time`` option that is not the stored
  ``update_time`` -> ``FailedPrecondition``;
- transforms: ``ArrayUnion`` (appends the values not already present, in order; a missing or
  non-array field becomes an array), ``ArrayRemove``, ``Maximum`` / ``Minimum`` / ``Increment``
  (numeric, else set), ``SERVER_TIMESTAMP``, ``DELETE_FIELD`` (update and merge only);
- values: the types the SDK encodes; no nested arrays, no transform inside an array, strings
  of valid UTF-8, integers in int64;
- limits: 500 writes per commit, 10 MiB per request (estimated as the storage size of the data
  the writes carry), 1 MiB (1,048,576 bytes) per document by Firestore's documented storage-size
  rules (``InvalidArgument``);
- a commit is atomic (all writes apply or none), all its writes share one commit time, and a
  write that changes nothing keeps the document's ``update_time``.

``get_all`` yields snapshots in no particular order (reversed here, so callers cannot rely on
order). Tests can make RPCs fail (:meth:`FakeFirestore.fail_next`) and run a concurrent writer
between a caller's read and its commit (:meth:`FakeFirestore.before_next_commit`).
Transactions, queries and listeners are not implemented: adscore does not use them.
"""

from __future__ import annotations

import copy
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from google.api_core import exceptions as gexc
from google.cloud.firestore_v1 import transforms

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

MAX_WRITES_PER_COMMIT = 500
MAX_REQUEST_BYTES = 10 * 1024 * 1024
MAX_DOCUMENT_BYTES = 1_048_576
MAX_STRING_BYTES = 1_048_487
MAX_ID_BYTES = 1_500
_RESERVED = re.compile(r"^__.*__$")
_INT64 = (-(2**63), 2**63 - 1)


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class LastUpdateOption:
    last_update_time: datetime


@dataclass(frozen=True)
class ExistsOption:
    exists: bool


# --------------------------------------------------------------------------- validation


def _check_id(doc_id: str) -> None:
    if not isinstance(doc_id, str) or not doc_id:
        raise gexc.InvalidArgument("Document id must be a non-empty string")
    try:
        size = len(doc_id.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise gexc.InvalidArgument("Document id is not valid UTF-8") from exc
    if size > MAX_ID_BYTES:
        raise gexc.InvalidArgument(f"Document id is longer than {MAX_ID_BYTES} bytes")
    if doc_id in (".", "..") or _RESERVED.match(doc_id):
        raise gexc.InvalidArgument(f"Document id {doc_id!r} is reserved")


def _is_sentinel(value: Any) -> bool:
    return isinstance(
        value,
        (
            transforms.Sentinel,
            transforms.ArrayUnion,
            transforms.ArrayRemove,
            transforms.Increment,
            transforms.Maximum,
            transforms.Minimum,
        ),
    )


def _check_value(value: Any, *, in_array: bool = False) -> Any:
    """A stored copy of ``value``; raises as the SDK (TypeError/ValueError) or the server (InvalidArgument)."""
    if value is None or isinstance(value, (bool, float)):
        return value
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise ValueError("Value out of range for int64")
        return value
    if isinstance(value, str):
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise gexc.InvalidArgument("String value is not valid UTF-8") from exc
        if size > MAX_STRING_BYTES:
            raise gexc.InvalidArgument(f"String value is longer than {MAX_STRING_BYTES} bytes")
        return value
    if isinstance(value, bytes):
        return value
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if _is_sentinel(value):
        if in_array:
            raise ValueError("Transforms and sentinels cannot be used inside arrays")
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        if in_array:
            raise gexc.InvalidArgument("Cannot have nested arrays")
        return [_check_value(v, in_array=True) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or not k:
                raise ValueError("Map keys must be non-empty strings")
            out[k] = _check_value(v, in_array=in_array)
        return out
    raise TypeError("Cannot convert to a Firestore Value", value, "Invalid type", type(value))


def _str_size(text: str) -> int:
    return len(text.encode("utf-8")) + 1


def _value_size(value: Any) -> int:
    """Storage size of a value (https://cloud.google.com/firestore/docs/storage-size)."""
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, (int, float, datetime)):
        return 8
    if isinstance(value, str):
        return _str_size(value)
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, list):
        return sum(_value_size(v) for v in value)
    if isinstance(value, dict):
        return sum(_str_size(k) + _value_size(v) for k, v in value.items())
    raise TypeError(type(value))


def _request_size(write: Any) -> int:
    """What one write adds to a commit request: its document name and the values it carries."""

    def size(value: Any) -> int:
        if _is_sentinel(value):
            values = getattr(value, "values", None)
            return sum(_value_size(v) for v in values) if values is not None else 8
        if isinstance(value, dict):
            return sum(_str_size(k) + size(v) for k, v in value.items())
        return _value_size(value)

    return _str_size(write.ref.path) + (size(write.data) if write.data is not None else 0)


def document_size(path: str, data: dict[str, Any]) -> int:
    """Document name size + field names and values + 32 bytes."""
    name = sum(_str_size(part) for part in path.split("/")) + 16
    return name + sum(_str_size(k) + _value_size(v) for k, v in data.items()) + 32


# --------------------------------------------------------------------------- transforms


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _apply_transform(current: Any, exists: bool, sentinel: Any, commit_time: datetime) -> tuple[bool, Any]:
    """(keep the field?, new value)."""
    if sentinel is transforms.DELETE_FIELD:
        return False, None
    if sentinel is transforms.SERVER_TIMESTAMP:
        return True, commit_time
    if isinstance(sentinel, transforms.ArrayUnion):
        out = list(current) if exists and isinstance(current, list) else []
        for v in sentinel.values:
            item = _check_value(v, in_array=True)
            if item not in out:
                out.append(item)
        return True, out
    if isinstance(sentinel, transforms.ArrayRemove):
        removed = [_check_value(v, in_array=True) for v in sentinel.values]
        out = [v for v in current if v not in removed] if exists and isinstance(current, list) else []
        return True, out
    if isinstance(sentinel, transforms.Increment):
        return True, (current + sentinel.value) if exists and _numeric(current) else sentinel.value
    if isinstance(sentinel, transforms.Maximum):
        return True, max(current, sentinel.value) if exists and _numeric(current) else sentinel.value
    if isinstance(sentinel, transforms.Minimum):
        return True, min(current, sentinel.value) if exists and _numeric(current) else sentinel.value
    raise TypeError(f"unsupported sentinel {sentinel!r}")


def _split_path(field_path: str) -> list[str]:
    if not isinstance(field_path, str) or not field_path or "`" in field_path:
        raise ValueError(f"unsupported field path {field_path!r}")
    parts = field_path.split(".")
    if any(not p for p in parts):
        raise ValueError(f"invalid field path {field_path!r}")
    return parts


def _leaves(data: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Leaf field paths of ``set(merge=True)`` data (nested maps merge; sentinels are leaves)."""
    for key, value in data.items():
        if "." in key:
            raise ValueError(f"field names with '.' are ambiguous here: {key!r}")
        path = (*prefix, key)
        if isinstance(value, dict) and value:
            yield from _leaves(value, path)
        else:
            yield path, value


def _get(data: dict[str, Any], path: tuple[str, ...]) -> tuple[bool, Any]:
    node: Any = data
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _put(data: dict[str, Any], path: tuple[str, ...], value: Any, keep: bool = True) -> None:
    node = data
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            if not keep:
                return
            child = node[part] = {}
        node = child
    if keep:
        node[path[-1]] = value
    else:
        node.pop(path[-1], None)


def _strip_sentinels(data: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[tuple[str, ...], Any]]]:
    plain: dict[str, Any] = {}
    found: list[tuple[tuple[str, ...], Any]] = []
    for path, value in _leaves(data):
        if _is_sentinel(value):
            found.append((path, value))
        else:
            _put(plain, path, value)
    return plain, found


# --------------------------------------------------------------------------- documents


@dataclass
class _Stored:
    data: dict[str, Any]
    create_time: datetime
    update_time: datetime


class FakeSnapshot:
    """``DocumentSnapshot``: ``exists``, ``id``, ``reference``, ``to_dict()``, ``get()``, times."""

    def __init__(self, reference: FakeDocumentReference, stored: _Stored | None, read_time: datetime) -> None:
        self.reference = reference
        self.id = reference.id
        self.exists = stored is not None
        self._data = copy.deepcopy(stored.data) if stored is not None else None
        self.create_time = stored.create_time if stored is not None else None
        self.update_time = stored.update_time if stored is not None else None
        self.read_time = read_time

    def to_dict(self) -> dict[str, Any] | None:
        return copy.deepcopy(self._data)

    def get(self, field_path: str) -> Any:
        if self._data is None:
            return None
        found, value = _get(self._data, tuple(_split_path(field_path)))
        if not found:
            raise KeyError(field_path)
        return copy.deepcopy(value)


class FakeDocumentReference:
    """``DocumentReference``: ``create``, ``set``, ``update``, ``delete``, ``get``."""

    def __init__(self, client: FakeFirestore, collection: str, doc_id: str) -> None:
        if not isinstance(doc_id, str):
            raise TypeError("document id must be a string")
        if "/" in doc_id:
            raise ValueError("A document must have an even number of path elements")
        self._client = client
        self.id = doc_id
        self.path = f"{collection}/{doc_id}"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, FakeDocumentReference)
            and other._client is self._client
            and other.path == self.path
        )

    def __hash__(self) -> int:
        return hash(self.path)

    def get(self, field_paths: Iterable[str] | None = None, transaction: Any = None) -> FakeSnapshot:
        if field_paths is not None or transaction is not None:
            raise NotImplementedError("field_paths and transactions are not faked")
        return next(iter(self._client.get_all([self])))

    def create(self, document_data: dict[str, Any]) -> None:
        batch = self._client.batch()
        batch.create(self, document_data)
        batch.commit()

    def set(self, document_data: dict[str, Any], merge: bool = False) -> None:
        batch = self._client.batch()
        batch.set(self, document_data, merge=merge)
        batch.commit()

    def update(self, field_updates: dict[str, Any], option: Any = None) -> None:
        batch = self._client.batch()
        batch.update(self, field_updates, option=option)
        batch.commit()

    def delete(self, option: Any = None) -> None:
        batch = self._client.batch()
        batch.delete(self, option=option)
        batch.commit()


class FakeCollectionReference:
    def __init__(self, client: FakeFirestore, collection_id: str) -> None:
        if not isinstance(collection_id, str) or "/" in collection_id:
            raise ValueError("nested collection paths are not faked")
        _check_id(collection_id)
        self._client = client
        self.id = collection_id

    def document(self, document_id: str) -> FakeDocumentReference:
        return FakeDocumentReference(self._client, self.id, document_id)


@dataclass(frozen=True)
class _Write:
    op: str  # create | set | merge | update | delete
    ref: FakeDocumentReference
    data: dict[str, Any] | None
    option: Any


class FakeWriteBatch:
    """``WriteBatch``: queue ``create``/``set``/``update``/``delete``, then one atomic ``commit``."""

    def __init__(self, client: FakeFirestore) -> None:
        self._client = client
        self._writes: list[_Write] = []
        self._committed = False

    def __len__(self) -> int:
        return len(self._writes)

    def _add(self, write: _Write) -> None:
        if self._committed:
            raise ValueError("Cannot add writes to a committed batch")
        if not isinstance(write.ref, FakeDocumentReference) or write.ref._client is not self._client:
            raise ValueError("reference does not belong to this client")
        self._writes.append(write)

    def create(self, reference: FakeDocumentReference, document_data: dict[str, Any]) -> None:
        data = _check_value(document_data)
        if any(v is transforms.DELETE_FIELD for _, v in _leaves(data)):
            raise ValueError("Cannot apply DELETE_FIELD in a create request.")
        self._add(_Write("create", reference, data, None))

    def set(
        self, reference: FakeDocumentReference, document_data: dict[str, Any], merge: bool = False
    ) -> None:
        if merge not in (True, False):
            raise NotImplementedError("merge with a field list is not faked")
        data = _check_value(document_data)
        if not merge and any(v is transforms.DELETE_FIELD for _, v in _leaves(data)):
            raise ValueError("Cannot apply DELETE_FIELD in a set request without specifying 'merge=True'")
        self._add(_Write("merge" if merge else "set", reference, data, None))

    def update(
        self, reference: FakeDocumentReference, field_updates: dict[str, Any], option: Any = None
    ) -> None:
        if not field_updates:
            raise ValueError("Cannot update with an empty dictionary")
        for key in field_updates:
            _split_path(key)
        if option is not None and not isinstance(option, (LastUpdateOption, ExistsOption)):
            raise TypeError("option must come from client.write_option()")
        if isinstance(option, ExistsOption) and not option.exists:
            raise ValueError("update() cannot take exists=False")
        self._add(_Write("update", reference, _check_value(field_updates), option))

    def delete(self, reference: FakeDocumentReference, option: Any = None) -> None:
        if option is not None and not isinstance(option, (LastUpdateOption, ExistsOption)):
            raise TypeError("option must come from client.write_option()")
        self._add(_Write("delete", reference, None, option))

    def commit(self) -> list[datetime]:
        if self._committed:
            raise ValueError("This batch has already been committed")
        self._committed = True
        return self._client._commit(self._writes)


# --------------------------------------------------------------------------- client


class FakeFirestore:
    """The client: ``collection()``, ``get_all()``, ``batch()``, ``write_option()``, ``close()``.

    Attributes
    ----------
    commits : list[list[tuple[str, str]]]
        For each successful commit, its ``(operation, document path)`` writes, in order.
    rejected : list[str]
        The exception class of each commit that failed, in order.
    get_all_calls : int
        ``get_all`` RPCs made.
    """

    def __init__(self, project: str = "fake-project", database: str = "(default)") -> None:
        self.project = project
        self._database = database
        self._docs: dict[str, _Stored] = {}
        self._lock = threading.RLock()
        self._tick = datetime(2030, 1, 1, tzinfo=UTC)
        self._failures: list[tuple[str, Exception]] = []
        self._before_commit: list[Callable[[FakeFirestore], None]] = []
        self.commits: list[list[tuple[str, str]]] = []
        self.rejected: list[str] = []
        self.get_all_calls = 0
        self.closed = False

    # -- test controls -----------------------------------------------------

    def fail_next(self, n: int, exc: Exception, on: str = "commit") -> None:
        """Make the next ``n`` RPCs of kind ``on`` (``commit``, ``get_all`` or ``any``) raise ``exc``."""
        with self._lock:
            self._failures.extend([(on, exc)] * n)

    def before_next_commit(self, hook: Callable[[FakeFirestore], None]) -> None:
        """Run ``hook(client)`` once, just before the next commit is checked (a concurrent writer)."""
        with self._lock:
            self._before_commit.append(hook)

    def raw(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        """The stored data of a document (a copy), or None."""
        with self._lock:
            stored = self._docs.get(f"{collection}/{doc_id}")
            return copy.deepcopy(stored.data) if stored is not None else None

    def documents(self, collection: str) -> dict[str, dict[str, Any]]:
        """Every document of a collection: id -> data (copies)."""
        prefix = f"{collection}/"
        with self._lock:
            return {
                p[len(prefix) :]: copy.deepcopy(s.data) for p, s in self._docs.items() if p.startswith(prefix)
            }

    def _maybe_fail(self, kind: str) -> None:
        with self._lock:
            if self._failures and self._failures[0][0] in (kind, "any"):
                raise self._failures.pop(0)[1]

    # -- client surface ----------------------------------------------------

    def collection(self, collection_id: str) -> FakeCollectionReference:
        return FakeCollectionReference(self, collection_id)

    def batch(self) -> FakeWriteBatch:
        return FakeWriteBatch(self)

    def write_option(self, **kwargs: Any) -> LastUpdateOption | ExistsOption:
        if len(kwargs) != 1:
            raise TypeError("write_option takes exactly one of last_update_time, exists")
        name, value = next(iter(kwargs.items()))
        if name == "last_update_time":
            if not isinstance(value, datetime):
                raise TypeError("last_update_time must be a timestamp")
            return LastUpdateOption(value)
        if name == "exists":
            return ExistsOption(bool(value))
        raise TypeError(f"unknown write option {name!r}")

    def get_all(
        self,
        references: Iterable[FakeDocumentReference],
        field_paths: Iterable[str] | None = None,
        transaction: Any = None,
    ) -> Iterator[FakeSnapshot]:
        if field_paths is not None or transaction is not None:
            raise NotImplementedError("field_paths and transactions are not faked")
        refs = list(references)
        for ref in refs:
            if not isinstance(ref, FakeDocumentReference) or ref._client is not self:
                raise ValueError("reference does not belong to this client")
            _check_id(ref.id)
        self._maybe_fail("get_all")
        with self._lock:
            self.get_all_calls += 1
            read_time = self._tick
            unique = {r.path: r for r in refs}
            snaps = [FakeSnapshot(r, self._docs.get(p), read_time) for p, r in unique.items()]
        return iter(reversed(snaps))

    def close(self) -> None:
        self.closed = True

    # -- commit --------------------------------------------------------------

    def _commit(self, writes: list[_Write]) -> list[datetime]:
        try:
            return self._commit_checked(writes)
        except Exception as exc:
            with self._lock:
                self.rejected.append(type(exc).__name__)
            raise

    def _commit_checked(self, writes: list[_Write]) -> list[datetime]:
        with self._lock:
            hooks, self._before_commit = self._before_commit, []
        for hook in hooks:
            hook(self)
        self._maybe_fail("commit")
        if len(writes) > MAX_WRITES_PER_COMMIT:
            raise gexc.InvalidArgument(f"maximum {MAX_WRITES_PER_COMMIT} writes allowed per request")
        request = sum(_request_size(w) for w in writes)
        if request > MAX_REQUEST_BYTES:
            raise gexc.InvalidArgument(f"Request payload size exceeds the limit: {MAX_REQUEST_BYTES} bytes.")
        with self._lock:
            commit_time = self._tick + timedelta(microseconds=1)
            staged: dict[str, _Stored | None] = {}
            for w in writes:
                _check_id(w.ref.id)
                path = w.ref.path
                before = staged[path] if path in staged else self._docs.get(path)
                staged[path] = self._apply(w, before, commit_time)
            for path, stored in staged.items():
                if stored is not None:
                    size = document_size(path, stored.data)
                    if size > MAX_DOCUMENT_BYTES:
                        raise gexc.InvalidArgument(
                            f"Document '{path[:80]}' cannot be written because its size ({size:,} bytes) "
                            f"exceeds the maximum allowed size of {MAX_DOCUMENT_BYTES:,} bytes."
                        )
            for path, stored in staged.items():
                if stored is None:
                    self._docs.pop(path, None)
                else:
                    self._docs[path] = stored
            self._tick = commit_time
            self.commits.append([(w.op, w.ref.path) for w in writes])
            return [commit_time for _ in writes]

    def _check_option(self, w: _Write, before: _Stored | None) -> None:
        option = w.option
        if isinstance(option, LastUpdateOption):
            if before is None or before.update_time != option.last_update_time:
                stored = int(before.update_time.timestamp() * 1e6) if before is not None else 0
                wanted = int(option.last_update_time.timestamp() * 1e6)
                raise gexc.FailedPrecondition(
                    f"the stored version ({stored}) does not match the required base version ({wanted})"
                )
        elif isinstance(option, ExistsOption):
            if option.exists and before is None:
                raise gexc.NotFound(f"No document to update: {w.ref.path}")
            if not option.exists and before is not None:
                raise gexc.AlreadyExists(f"Document already exists: {w.ref.path}")

    def _apply(self, w: _Write, before: _Stored | None, commit_time: datetime) -> _Stored | None:
        if w.op == "delete":
            self._check_option(w, before)
            return None
        assert w.data is not None
        if w.op == "create":
            if before is not None:
                raise gexc.AlreadyExists(f"Document already exists: {w.ref.path}")
            base: dict[str, Any] = {}
            plain, sentinels = _strip_sentinels(w.data)
            updates = [(p, v) for p, v in _leaves(plain)] if plain else []
        elif w.op == "set":
            base = {}
            plain, sentinels = _strip_sentinels(w.data)
            updates = [((k,), v) for k, v in plain.items()]
        elif w.op == "merge":
            base = copy.deepcopy(before.data) if before is not None else {}
            plain, sentinels = _strip_sentinels(w.data)
            updates = list(_leaves(plain))
        else:  # update: keys are field paths; a map value replaces the field
            if w.option is None and before is None:
                raise gexc.NotFound(f"No document to update: {w.ref.path}")
            self._check_option(w, before)
            base = copy.deepcopy(before.data) if before is not None else {}
            updates, sentinels = [], []
            for key, value in w.data.items():
                path = tuple(_split_path(key))
                (sentinels if _is_sentinel(value) else updates).append((path, value))
        data = base
        for path, value in updates:
            _put(data, path, copy.deepcopy(value))
        for path, sentinel in sentinels:
            exists, current = _get(data, path)
            keep, value = _apply_transform(current, exists, sentinel, commit_time)
            _put(data, path, value, keep)
        if before is not None and before.data == data:
            return before  # nothing changed: Firestore keeps the update time
        return _Stored(data, before.create_time if before is not None else commit_time, commit_time)


# --------------------------------------------------------------------------- the real thing, when present


def emulator_client() -> Any:
    """A ``google.cloud.firestore.Client`` bound to ``FIRESTORE_EMULATOR_HOST``; skips the test without one.

    Start the emulator with ``gcloud emulators firestore start --host-port=127.0.0.1:8080`` and
    export ``FIRESTORE_EMULATOR_HOST=127.0.0.1:8080`` (see functions/gcp/README.md).
    """
    import os

    import pytest

    if not os.environ.get("FIRESTORE_EMULATOR_HOST"):
        pytest.skip("FIRESTORE_EMULATOR_HOST is not set (no Firestore emulator)")
    from google.cloud import firestore

    return firestore.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT") or "adscore-test")


def unique_collection(label: str) -> str:
    """A collection id no other test run uses (the emulator keeps data between runs)."""
    import uuid

    return f"adscore-{label}-{uuid.uuid4().hex[:12]}"
