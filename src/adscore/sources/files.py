"""Read log records from files, directories and stdin.

A file's layout is recognised from its content, whatever its name (``.log``,
``.txt``, none): one record per line (JSON Lines, streamed) when its first line
is a record, else one JSON document (an object, or an array of records,
pretty-printed or not). ``.json`` is read as one document first. ``.gz`` is
read the same way after decompression. ``.parquet`` files (AWS Security Lake)
are streamed row by row with pyarrow, an optional dependency (``[lake]``). A line that cannot be read becomes a ``RecordError`` and the
reading goes on.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import sys
import zlib
from typing import IO, TYPE_CHECKING, Any

import orjson

from adscore.events import RecordError
from adscore.sources.objects import is_object_url, read_objects
from adscore.sources.stream import Scanner, StreamError, iter_array, iter_bytes, iter_members, iter_text

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from datetime import datetime

    from adscore.sources.stream import Readable

__all__ = ["SUFFIXES", "count_hint", "read_inputs", "stream_document", "stream_object"]

Item = tuple[str, Any] | RecordError

#: Suffixes always read from directories; any other file there is read when its content starts as JSON.
SUFFIXES = (".json", ".jsonl", ".ndjson", ".log", ".gz", ".parquet")
_BOM = b"\xef\xbb\xbf"
_EXCERPT = 200
_WS = b" \t\r\n"


def _excerpt(data: bytes) -> str:
    return data[: _EXCERPT * 4].decode("utf-8", "backslashreplace")[:_EXCERPT]


def _error(location: str, reason: str, data: bytes = b"") -> RecordError:
    return RecordError(family="input", reason=reason[:1024], location=location, excerpt=_excerpt(data))


def _decode_error(data: bytes, exc: Exception) -> str:
    """Explain why ``data`` is not JSON, naming bad UTF-8 precisely."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"invalid UTF-8 at byte {e.start} ({e.reason})"
    return f"invalid JSON: {exc}"


def _items(doc: Any, location: str) -> Iterator[Item]:
    """One item for an object; one per element (``loc[i]``) for a top-level array."""
    if isinstance(doc, list):
        for i, item in enumerate(doc):
            yield f"{location}[{i}]", item
    else:
        yield location, doc


def _lines(lines: Iterable[bytes | str], name: str, start: int = 1) -> Iterator[Item]:
    """Stream JSON Lines: one item per non-empty line, located ``name:LINE``."""
    for lineno, line in enumerate(lines, start):
        if isinstance(line, str):
            line = line.encode("utf-8", "surrogateescape")
        if lineno == 1 and line.startswith(_BOM):
            line = line[3:]
        stripped = line.strip(_WS)
        if not stripped:
            continue
        try:
            yield f"{name}:{lineno}", orjson.loads(stripped)
        except orjson.JSONDecodeError as e:
            yield _error(f"{name}:{lineno}", _decode_error(stripped, e), stripped)


def _document(data: bytes, name: str) -> Iterator[Item]:
    """Parse a whole document; if it is not one, read it as JSON Lines before reporting."""
    if data.startswith(_BOM):
        data = data[3:]
    if not data.strip(_WS):
        return
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        first_error = e
    else:
        yield from _items(doc, name)
        return
    # Not one document: JSON Lines if at least one line holds an object or array.
    results = list(_lines(data.split(b"\n"), name))
    if any(not isinstance(r, RecordError) and isinstance(r[1], dict | list) for r in results):
        yield from results
    else:
        yield _error(name, _decode_error(data, first_error), data)


#: A document streamed record by record: an object whose first member is one of these arrays
#: (a CloudTrail log file, an Azure diagnostic-settings file).
_STREAMED = re.compile(r'\{\s*"(Records|records)"\s*:\s*\[')
_HEAD_CHARS = 256


class _Prefixed:
    """A byte stream that first returns ``head`` (bytes already read), then the rest of ``stream``."""

    def __init__(self, head: bytes, stream: Any) -> None:
        self._head = head
        self._stream = stream

    def read(self, size: int = -1, /) -> bytes:
        if self._head:
            out, self._head = self._head, b""
            return out
        data = self._stream.read(size)
        return data.encode("utf-8", "surrogateescape") if isinstance(data, str) else bytes(data)


def stream_document(raw: Readable, name: str) -> Iterator[Item]:
    """Read one JSON document in bounded memory, record by record where it is a list of records.

    A top-level array yields its elements (``name[i]``); an object whose first member is a
    ``Records`` / ``records`` array (CloudTrail, Azure diagnostic settings) yields that array's
    elements (``name#Records[i]``), which the parsers read as they read the whole file. Any other
    document is read whole (then as JSON Lines if it is not one document). Damage (bad gzip,
    UTF-8 or JSON) ends the file with one error; the records before it are kept. Gzip is detected
    by its magic bytes.
    """
    sc = Scanner(iter_text(raw))
    count = 0
    try:
        c = sc.peek()
        if c == "[":
            sc.pos += 1
            for count, value in enumerate(iter_array(sc), 1):
                yield f"{name}[{count - 1}]", value
            if sc.peek():
                raise StreamError("content after the top-level array")
            return
        if c == "{":
            if len(sc.buf) - sc.pos < _HEAD_CHARS:
                sc.fill(_HEAD_CHARS)
            m = _STREAMED.match(sc.buf, sc.pos)
            if m is not None:
                key = m.group(1)
                sc.pos = m.end()
                for count, value in enumerate(iter_array(sc), 1):
                    yield f"{name}#{key}[{count - 1}]", value
                _skip_rest_of_object(sc)
                return
        if not c:
            return
    except (StreamError, json.JSONDecodeError, UnicodeDecodeError, zlib.error, RecursionError) as e:
        where = f"after {count} records: " if count else ""
        yield _error(name, f"unreadable document {where}{type(e).__name__}: {e}")
        return
    # not a list of records: read it whole (a pretty-printed record, an EventList...)
    try:
        rest = sc.buf[sc.pos :] + "".join(sc.chunks)
    except (StreamError, UnicodeDecodeError, zlib.error) as e:
        yield _error(name, f"unreadable document: {type(e).__name__}: {e}")
        return
    yield from _document(rest.encode("utf-8", "surrogatepass"), name)


def _skip_rest_of_object(sc: Scanner) -> None:
    """After the records array: the object's other members (skipped), its ``}`` and nothing else."""
    for _key in iter_members(sc):
        sc.value()
    if sc.peek():
        raise StreamError("content after the top-level object")


class _ChunkIO(io.RawIOBase):
    """A readable raw stream over an iterator of byte chunks (for :class:`io.BufferedReader`)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buf:
            self._buf = next(self._chunks, b"")
            if not self._buf:
                return 0
        n = min(len(target), len(self._buf))
        target[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def stream_object(raw: Readable, name: str) -> Iterator[Item]:
    """A stored object of any layout, gzipped or not (by its magic bytes), in bounded memory.

    JSON Lines (an Azure diagnostic container's ``PT1H.json``, a log sink's files) stream line by
    line; a document (a CloudTrail file, a JSON array) streams record by record. A read that fails
    part-way (network, truncated gzip) ends the object with one error; what was read stays read.
    """
    reader = io.BufferedReader(_ChunkIO(iter_bytes(raw)), buffer_size=1 << 20)
    count = 0
    try:
        for item in _auto(reader, name):
            count += 1
            yield item
    except (StreamError, zlib.error, OSError, EOFError) as e:
        where = f"after {count} records: " if count else ""
        yield _error(name, f"unreadable object {where}{type(e).__name__}: {e}")


def _auto(stream: IO[Any] | gzip.GzipFile, name: str) -> Iterator[Item]:
    """Read a stream of unknown layout: JSON Lines when its first line is a record, else one document."""
    first = b""
    lineno = 0
    for raw in stream:
        lineno += 1
        line = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw
        first += line
        if line.strip(_WS):
            break
    head = first.lstrip(_WS + _BOM)
    if not head:
        return
    if head[:1] == b"{":
        head = head.rstrip(_WS)
        error: Exception | None = None
        try:
            doc = orjson.loads(head)
        except orjson.JSONDecodeError as e:
            doc, error = None, e
        if isinstance(doc, dict):
            yield f"{name}:{lineno}", doc
            yield from _lines(stream, name, start=lineno + 1)
            return
        if error is not None and len(head) > 1 and head.endswith(b"}"):
            # a one-line record that is broken: still JSON Lines
            yield _error(f"{name}:{lineno}", _decode_error(head, error), head)
            yield from _lines(stream, name, start=lineno + 1)
            return
    yield from stream_document(_Prefixed(first, stream), name)


#: Rows read from a Parquet file at a time (one record batch; a row group is read in several).
PARQUET_BATCH_ROWS = 2048


def _parquet(path: str) -> Iterator[Item]:
    """Stream a Parquet file (AWS Security Lake's OCSF tables) row by row, one record batch at a time.

    Needs pyarrow (``pip install 'adscore[lake]'``); without it the file is one unreadable item.
    Map columns (OCSF ``unmapped``) become dicts; timestamps become datetimes, which the parsers read.
    """
    try:
        import pyarrow.parquet as pq
    except ImportError:
        yield _error(path, "reading Parquet needs pyarrow: pip install 'adscore[lake]'")
        return
    try:
        reader = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises ArrowInvalid / OSError subclasses for a damaged file
        yield _error(path, f"unreadable Parquet file: {str(e)[:300]}")
        return
    row = 0
    try:
        for batch in reader.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            for record in batch.to_pylist(maps_as_pydicts="lossy"):
                yield f"{path}#row{row}", record
                row += 1
    except Exception as e:  # a damaged row group: what was read stays read
        yield _error(f"{path}#row{row}", f"unreadable Parquet data: {str(e)[:300]}")


class _CountingRaw(io.RawIOBase):
    """A raw file that reports how many bytes have been read from it (for progress)."""

    def __init__(self, raw: io.RawIOBase, on_bytes: Callable[[int], None]) -> None:
        self._raw = raw
        self._on_bytes = on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        n = self._raw.readinto(target) or 0
        if n:
            self._on_bytes(n)
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


def _open(path: str, on_bytes: Callable[[int], None] | None) -> io.BufferedReader:
    raw = open(path, "rb", buffering=0)  # noqa: SIM115 - closed with the buffered reader
    return io.BufferedReader(raw if on_bytes is None else _CountingRaw(raw, on_bytes), 1 << 20)


def _read_file(path: str, on_bytes: Callable[[int], None] | None = None) -> Iterator[Item]:
    low = path.lower()
    if low.endswith(".parquet"):
        yield from _parquet(path)
        if on_bytes is not None:
            on_bytes(os.path.getsize(path))
        return
    inner = low[:-3] if low.endswith(".gz") else low
    try:
        # The layout is recognised from the content, not the name: a `.log` may hold one
        # pretty-printed document, a `.json` JSON Lines. `.json` is read whole (then as lines if it
        # is not one document); anything else streams as JSON Lines when its first line is a record.
        with _open(path, on_bytes) as f:
            if inner.endswith(".json"):  # gzip or not: detected by its magic bytes
                yield from stream_document(f, path)
            elif low.endswith(".gz"):
                with gzip.GzipFile(fileobj=f, mode="rb") as gz:
                    yield from _auto(gz, path)
            else:
                yield from _auto(f, path)
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        yield _error(path, f"unreadable gzip file: {e or type(e).__name__}")
    except OSError as e:
        yield _error(path, f"cannot read file: {e.strerror or e}")


def _looks_like_json(path: str) -> bool:
    """A file of another name is read from a directory when its first non-blank byte opens JSON."""
    try:
        with open(path, "rb") as f:
            head = f.read(512).lstrip(_WS)
    except OSError:
        return False
    return head.removeprefix(_BOM)[:1] in (b"{", b"[")


def _walk(directory: str) -> Iterator[str]:
    """Files under ``directory`` that hold logs (by suffix, or by content), sorted, hidden ones skipped."""
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if f.startswith("."):
                continue
            path = os.path.join(root, f)
            if f.lower().endswith(SUFFIXES) or _looks_like_json(path):
                yield path


def read_inputs(
    paths: Sequence[str],
    *,
    stdin: IO[bytes] | IO[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[Item]:
    """Yield ``(location, record)`` pairs, or ``RecordError`` for what cannot be read.

    Parameters
    ----------
    paths : Sequence[str]
        Files, directories (read recursively, sorted; hidden files skipped; files
        named ``.json``, ``.jsonl``, ``.ndjson``, ``.log``, ``.gz``, ``.parquet``, or
        whose content opens as JSON), ``-`` for stdin, or ``s3://bucket/prefix``.
    stdin : IO | None
        Stream used for ``-`` (default ``sys.stdin``); read as JSON Lines when its
        first line is a record, else as one document.
    since, until : datetime | None
        For object-store URLs: only the objects whose key names a day in this range
        (keys without a day are always read).
    on_bytes : callable, optional
        Called with the number of bytes read from a local file, as they are read (progress
        against :func:`count_hint`).

    Returns
    -------
    Iterator[tuple[str, Any] | RecordError]
        Locations are ``file`` (a document), ``file[i]`` (array element) or
        ``file:LINE`` (1-based line).

    Example
    -------
    >>> for item in read_inputs(["trail/"]):  # doctest: +SKIP
    ...     print(item)
    """
    for path in paths:
        if is_object_url(path):
            yield from read_objects(path, since=since, until=until)
        elif path == "-":
            stream: Any = stdin if stdin is not None else sys.stdin
            yield from _auto(getattr(stream, "buffer", stream), "<stdin>")
        elif os.path.isdir(path):
            for f in _walk(path):
                yield from _read_file(f, on_bytes)
        elif os.path.exists(path):
            yield from _read_file(path, on_bytes)
        else:
            yield _error(path, "no such file or directory")


def count_hint(paths: Sequence[str]) -> int | None:
    """Return the total size in bytes of what :func:`read_inputs` would read (None for stdin)."""
    total = 0
    for path in paths:
        if path == "-" or is_object_url(path):
            return None
        try:
            if os.path.isdir(path):
                total += sum(os.path.getsize(f) for f in _walk(path))
            else:
                total += os.path.getsize(path)
        except OSError:
            continue
    return total
