"""HTTP request bodies the ingest endpoints and push subscriptions read: JSON, or a reason it is not.

Cloud-neutral (no SDK): the AWS, Azure and GCP entry points and :mod:`adscore.ingest` share it.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["MAX_BODY_DEPTH", "UnreadableBody", "read_json_body"]

MAX_BODY_DEPTH = 128
"""Deepest nesting an HTTP body may have: audit events and Pub/Sub envelopes stay under 20 levels."""


class UnreadableBody(ValueError):
    """An HTTP body that is not a JSON document adscore can read; the entry point answers 400."""


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests deeper than ``limit`` (iterative: no recursion on hostile input)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            children: Any = v.values()
        elif isinstance(v, list):
            children = v
        else:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def read_json_body(data: bytes | str | None) -> Any:
    """Decode an HTTP request body as JSON, or raise :class:`UnreadableBody` saying why.

    Flask's ``get_json`` lets a ``RecursionError`` escape on a deeply nested body (an HTTP 500, so
    the sender retries it forever); here every body is either read or refused: not UTF-8, not JSON,
    nested deeper than :data:`MAX_BODY_DEPTH`. Text with escaped lone surrogates, which orjson
    refuses, is read by the standard library's decoder.

    Examples
    --------
    >>> read_json_body(b'{"kind": "EventList", "items": []}')
    {'kind': 'EventList', 'items': []}
    """
    if not data:
        raise UnreadableBody("the request body is empty")
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "surrogate" not in str(exc):
            raise UnreadableBody(f"the request body is not JSON: {str(exc)[:200]}") from exc
        try:
            text = data.decode("utf-8") if isinstance(data, bytes) else data
            value = json.loads(text)
        except (ValueError, RecursionError) as exc2:  # UnicodeDecodeError is a ValueError
            raise UnreadableBody(f"the request body is not JSON: {str(exc2)[:200]}") from exc2
    if _depth_exceeds(value, MAX_BODY_DEPTH):
        raise UnreadableBody(f"the request body nests deeper than {MAX_BODY_DEPTH} levels")
    return value
