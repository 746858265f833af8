"""Small helpers shared by the parsers of every log family.

Everything here is pure, cheap and never touches the network or disk.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "cap",
    "excerpt",
    "get_path",
    "get_str",
    "parse_epoch",
    "parse_time",
    "record_hash",
    "short_hash",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _fix_fraction(s: str) -> str:
    """Return ``s`` with a fractional-second part cut or padded to 6 digits."""
    dot = s.find(".")
    if dot < 0:
        return s
    end = dot + 1
    n = len(s)
    while end < n and s[end].isdigit():
        end += 1
    digits = s[dot + 1 : end]
    if not digits:
        # "12:00:00.Z" -> drop the lone dot
        return s[:dot] + s[end:]
    if len(digits) == 6:
        return s
    return s[: dot + 1] + digits[:6].ljust(6, "0") + s[end:]


def parse_time(value: object) -> datetime:
    """Parse a log timestamp into a timezone-aware UTC datetime.

    Accepts ISO-8601 / RFC 3339 (``Z`` or offset, 0-9 fractional digits,
    ``T`` or space separator, so Panther's ``YYYY-MM-DD HH:MM:SS[.fff]`` too;
    naive values are taken as UTC) and :class:`datetime` values.

    Parameters
    ----------
    value : object
        The logged value.

    Returns
    -------
    datetime
        Timezone-aware UTC time.

    Raises
    ------
    ValueError
        If ``value`` is not a string or datetime, or cannot be parsed.
    """
    if isinstance(value, datetime):
        dt = value
    else:
        if not isinstance(value, str):
            raise ValueError(f"time is not a string: {type(value).__name__}")
        s = value.strip()
        if not 10 <= len(s) <= 64:
            raise ValueError(f"invalid time {value[:64]!r}")
        if s[-1] in "zZ":
            s = s[:-1] + "+00:00"
        if "." in s:
            s = _fix_fraction(s)
        # Offsets like "+0000" (no colon) are accepted by fromisoformat in 3.11.
        try:
            dt = datetime.fromisoformat(s)
        except ValueError:
            raise ValueError(f"invalid time {value[:64]!r}") from None
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def parse_epoch(value: object, unit: str = "s") -> datetime:
    """Parse an epoch number (``unit`` is ``s``, ``ms``, ``us`` or ``ns``).

    Raises
    ------
    ValueError
        If ``value`` is not a finite number (or numeric string) in range.
    """
    if isinstance(value, bool):
        raise ValueError("epoch time is a boolean")
    if isinstance(value, str):
        try:
            num: int | float = int(value) if value.strip().lstrip("-").isdigit() else float(value)
        except ValueError:
            raise ValueError(f"invalid epoch time {value[:64]!r}") from None
    elif isinstance(value, int | float):
        num = value
    else:
        raise ValueError(f"epoch time is not a number: {type(value).__name__}")
    try:
        if unit == "ns":
            if isinstance(num, int):
                secs, ns = divmod(num, 1_000_000_000)
                return _EPOCH + timedelta(seconds=secs, microseconds=ns // 1000)
            return _EPOCH + timedelta(microseconds=num / 1000)
        if unit == "us":
            return _EPOCH + timedelta(microseconds=num)
        if unit == "ms":
            return _EPOCH + timedelta(milliseconds=num)
        if unit == "s":
            return _EPOCH + timedelta(seconds=num)
    except (OverflowError, ValueError):
        raise ValueError(f"epoch time out of range: {str(value)[:64]}") from None
    raise ValueError(f"unknown epoch unit {unit!r}")


def cap(s: object, n: int = 4096) -> str | None:
    """Return ``s`` as a string of at most ``n`` characters, or None.

    None stays None; strings are cut; other scalars are converted with
    ``str`` (then cut). Dicts and lists are rejected (None) so a structure
    is never flattened into a field by accident.
    """
    if s is None:
        return None
    if isinstance(s, str):
        return s if len(s) <= n else s[:n]
    if isinstance(s, bool | int | float):
        r = str(s)
        return r if len(r) <= n else r[:n]
    return None


def _scalar_json(v: object, budget: int) -> str:
    if isinstance(v, str) and len(v) > budget:
        v = v[:budget]
    try:
        import orjson

        return orjson.dumps(v, default=str).decode("utf-8")
    except Exception:  # lone surrogates, odd types
        try:
            return json.dumps(v, default=str)
        except Exception:
            return f"<{type(v).__name__}>"


def _emit(obj: object, out: list[str], budget: int, depth: int) -> int:
    """Append compact JSON for ``obj`` to ``out`` until ``budget`` characters are used."""
    if budget <= 0:
        return 0
    if depth > 64:
        out.append("...")
        return budget - 3
    if isinstance(obj, dict):
        out.append("{")
        budget -= 1
        for i, (k, v) in enumerate(obj.items()):
            if budget <= 0:
                break
            if i:
                out.append(",")
                budget -= 1
            key = _scalar_json(str(k), budget)
            out.append(key)
            out.append(":")
            budget = _emit(v, out, budget - len(key) - 1, depth + 1)
        out.append("}")
        return budget - 1
    if isinstance(obj, list | tuple):
        out.append("[")
        budget -= 1
        for i, v in enumerate(obj):
            if budget <= 0:
                break
            if i:
                out.append(",")
                budget -= 1
            budget = _emit(v, out, budget, depth + 1)
        out.append("]")
        return budget - 1
    s = _scalar_json(obj, budget)
    out.append(s)
    return budget - len(s)


def excerpt(obj: object, n: int = 200) -> str:
    """Return the first ``n`` characters of a record, as compact JSON, for an error report.

    Only as much of the record as fits is serialized, so a 10 MB record costs no more
    than a small one.
    """
    if isinstance(obj, bytes | bytearray):
        return bytes(obj[: n * 4]).decode("utf-8", "backslashreplace")[:n]
    if isinstance(obj, str):
        return obj[:n]
    out: list[str] = []
    try:
        _emit(obj, out, n, 0)
    except Exception:  # an excerpt must never fail
        return f"<{type(obj).__name__}>"
    return "".join(out)[:n]


def short_hash(*parts: str) -> str:
    """Return a stable 24-hex-digit blake2b (digest_size=12) hash of ``parts``.

    Parts are joined with a NUL byte so ``("ab", "c")`` and ``("a", "bc")``
    differ.
    """
    h = hashlib.blake2b(digest_size=12)
    first = True
    for p in parts:
        if not first:
            h.update(b"\x00")
        first = False
        h.update(str(p).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def get_path(d: object, *keys: str | int) -> Any:
    """Safe nested get: ``get_path(rec, "a", "b", 0)``; None on any miss.

    String keys index dicts, integer keys index lists; a wrong type anywhere
    on the path gives None.
    """
    cur: Any = d
    for k in keys:
        if isinstance(k, str):
            if not isinstance(cur, dict):
                return None
            cur = cur.get(k)
        else:
            if not isinstance(cur, list) or not -len(cur) <= k < len(cur):
                return None
            cur = cur[k]
        if cur is None:
            return None
    return cur


def get_str(d: object, *keys: str | int, n: int = 4096) -> str | None:
    """Like :func:`get_path` but return a capped string (scalars converted) or None."""
    v = get_path(d, *keys)
    if v is None or isinstance(v, dict | list):
        return None
    return cap(v, n)


def record_hash(obj: object) -> str:
    """Return a stable :func:`short_hash` of a whole record (for records without a natural id)."""
    try:
        import orjson

        data = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS, default=str)
    except Exception:  # too deep, odd types: fall back to repr
        try:
            data = repr(obj).encode("utf-8", "backslashreplace")
        except Exception:  # repr itself can fail on pathological input
            data = type(obj).__name__.encode()
    h = hashlib.blake2b(data, digest_size=12)
    return h.hexdigest()
