"""Stream JSON documents of any size: bounded memory, whatever the file holds.

CloudTrail log files, Azure diagnostic ``{"records": [...]}`` files and plain JSON arrays can hold
millions of records. These helpers read such a document in bounded pieces: bytes are inflated
(gzip detected by its magic bytes, several gzip members allowed) at most 1 MiB at a time, decoded
incrementally as UTF-8, and the top-level array is walked element by element, each element decoded
as soon as it is complete (orjson when CloudTrail's compact layout marks its end, else
``json.JSONDecoder.raw_decode``). Memory held at any time is about one read chunk plus the largest
record, never the file.

Used by :func:`adscore.sources.aws.iter_cloudtrail_stream` (objects in S3) and
:mod:`adscore.sources.files` (local files and stdin).
"""

from __future__ import annotations

import codecs
import json
import re
import zlib
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

import orjson

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "MAX_RECORD_CHARS",
    "Readable",
    "Scanner",
    "StreamError",
    "iter_array",
    "iter_bytes",
    "iter_members",
    "iter_text",
    "next_record_fast",
]

MAX_RECORD_CHARS = 32 << 20
"""Largest single record (characters) a stream decodes; a bigger one ends the file with an error."""
_READ_SIZE = 1 << 20
_INFLATE_SIZE = 1 << 20


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class StreamError(Exception):
    """The stream cannot be read further (bad gzip, truncated, not JSON where JSON was expected)."""


def iter_bytes(fileobj: Readable) -> Iterator[bytes]:
    """Decompressed bytes of ``fileobj`` (gzip detected by its magic), in bounded pieces."""
    data = fileobj.read(_READ_SIZE)
    while 0 < len(data) < 2:  # a short first read must not hide the gzip magic
        more = fileobj.read(_READ_SIZE)
        if not more:
            break
        data += more
    if not data:
        return
    if data[:2] != b"\x1f\x8b":
        yield data
        while chunk := fileobj.read(_READ_SIZE):
            yield chunk
        return
    d = zlib.decompressobj(31)
    while True:
        if d.eof:
            rest = d.unused_data
            if not rest:
                rest = fileobj.read(_READ_SIZE)
                if not rest:
                    return
            if not rest.strip(b"\x00"):
                return
            d = zlib.decompressobj(31)  # another gzip member
            data = rest
        out = d.decompress(data, _INFLATE_SIZE)
        if out:
            yield out
        if d.eof:
            continue
        data = d.unconsumed_tail
        if not data and not out:
            data = fileobj.read(_READ_SIZE)
            if not data:
                raise StreamError("truncated gzip stream")


def iter_text(fileobj: Readable) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    first = True
    for chunk in iter_bytes(fileobj):
        text = decoder.decode(chunk)
        if first:
            first = False
            if text.startswith("\ufeff"):
                text = text[1:]
        if text:
            yield text
    tail = decoder.decode(b"", final=True)
    if tail:
        yield tail


_DECODER = json.JSONDecoder()
_WS = " \t\r\n"


class Scanner:
    """A text buffer over a chunk iterator, with just enough to walk one JSON object."""

    def __init__(self, chunks: Iterator[str]) -> None:
        self.chunks = chunks
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.spaced = False  # records are separated by whitespace (see next_record_fast)

    def fill(self, want: int) -> None:
        """Drop consumed text and read until ``want`` unconsumed characters or the end."""
        if self.pos:
            self.buf = self.buf[self.pos :]
            self.pos = 0
        parts = [self.buf]
        have = len(self.buf)
        while have < want and not self.eof:
            chunk = next(self.chunks, None)
            if chunk is None:
                self.eof = True
            else:
                parts.append(chunk)
                have += len(chunk)
        self.buf = "".join(parts)

    def peek(self) -> str:
        """Skip whitespace; return the next character, or "" at the end."""
        while True:
            buf, i, n = self.buf, self.pos, len(self.buf)
            while i < n and buf[i] in _WS:
                i += 1
            self.pos = i
            if i < n:
                return buf[i]
            if self.eof:
                return ""
            self.fill(1)

    def value(self) -> Any:
        """Decode the JSON value at the cursor, reading more text while it is cut short."""
        if not self.peek():
            raise StreamError("file ends where a value was expected")
        while True:
            try:
                obj, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                n = len(self.buf)
                cut = e.pos >= n - 32 or e.msg.startswith("Unterminated string")
                if self.eof or not cut:
                    raise
                pending = n - self.pos
                if pending > MAX_RECORD_CHARS:
                    raise StreamError(f"record larger than {MAX_RECORD_CHARS} characters") from None
                self.fill(2 * pending + 1)
                continue
            if end >= len(self.buf) and not self.eof:  # a number may continue in the next chunk
                self.fill(len(self.buf) - self.pos + 1)
                continue
            self.pos = end
            return obj




@lru_cache(maxsize=64)
def _separator(key: str) -> re.Pattern[str]:
    """``}`` ``,`` ``{"key":`` with any whitespace between: the boundary of two records that start with ``key``."""
    return re.compile(r"\}[ \t\r\n]*,[ \t\r\n]*\{" + re.escape(key) + r"[ \t\r\n]*:")


def next_record_fast(sc: Scanner) -> Any:
    """Decode the record at the cursor with orjson when its end can be found cheaply, else None.

    CloudTrail writes compact JSON whose records all start with the same key
    (``{"eventVersion":``), so the record ends just before the next
    ``},{"eventVersion":``. Inside a JSON string every quote is escaped, so that
    text can only be structure; it may still close a *nested* object, but then
    the slice is not a complete JSON value and orjson rejects it. A slice that
    parses is therefore exactly one record. Anything else (the last record of
    the buffer, values orjson refuses such as NaN or lone surrogates) returns
    None and the caller uses ``json.raw_decode``. Records separated by
    whitespace (an array written one record per line, or pretty-printed) are
    found by the same boundary with whitespace allowed around the comma.
    """
    buf = sc.buf
    pos = sc.pos
    if not buf.startswith('{"', pos):
        return None
    q = buf.find('"', pos + 2, pos + 66)
    if q < 0:
        return None
    key = buf[pos + 1 : q + 1]
    # A failed search scans the whole buffer, so the layout that found the last boundary is tried
    # first: compact (CloudTrail's own), or with whitespace around the comma (an array written one
    # record per line, or pretty-printed; raw whitespace cannot occur inside a JSON string).
    end = -1
    if not sc.spaced:
        end = buf.find("},{" + key + ":", q)
    if end < 0:
        m = _separator(key).search(buf, q)
        if m is None:
            return None
        end = m.start()
        sc.spaced = True
    try:
        v = orjson.loads(buf[pos : end + 1])
    except orjson.JSONDecodeError:
        return None
    sc.pos = end + 1
    return v


def iter_array(sc: Scanner) -> Iterator[Any]:
    """The elements of the JSON array whose ``[`` the cursor has just passed, decoded one by one."""
    while True:
        c = sc.peek()
        if c == "]":
            sc.pos += 1
            return
        if c == ",":
            sc.pos += 1
            continue
        if not c:
            raise StreamError("file ends inside an array")
        v = next_record_fast(sc) if c == "{" else None
        if v is None:
            v = sc.value()
        yield v


def iter_members(sc: Scanner) -> Iterator[str]:
    """The keys of the JSON object whose ``{`` the cursor has just passed, then past its ``}``.

    After each key the cursor is on that member's value, which the caller consumes
    (``sc.value()``, or :func:`iter_array` after its ``[``) before asking for the next key.
    """
    while True:
        c = sc.peek()
        if c == "}":
            sc.pos += 1
            return
        if c == ",":
            sc.pos += 1
            continue
        if c != '"':
            raise StreamError(f"unexpected {c!r} in the top-level object" if c else "file ends early")
        key = sc.value()
        if sc.peek() != ":":
            raise StreamError("expected ':' after a key")
        sc.pos += 1
        yield key
