"""State stores: the :class:`StateStore` contract, its backends and :func:`open_store`.

Backends are imported only when a URL names them, so no cloud SDK is loaded
unless its backend is used.
"""

from __future__ import annotations

import importlib
import re
from typing import cast

from adscore.errors import ConfigError
from adscore.state.base import (
    MAX_SET_MEMBERS,
    BatchedState,
    StateStore,
    StateStoreBase,
    StateView,
    StateWriteError,
    WriteBatch,
    make_key,
)

__all__ = [
    "MAX_SET_MEMBERS",
    "STORES",
    "BatchedState",
    "StateStore",
    "StateStoreBase",
    "StateView",
    "StateWriteError",
    "WriteBatch",
    "make_key",
    "open_store",
]

STORES: dict[str, str] = {
    "memory": "adscore.state.memory:MemoryStateStore",
    "sqlite": "adscore.state.sqlite:SqliteStateStore",
    "dynamodb": "adscore.state.dynamodb:DynamoDBStateStore",
    "azuretable": "adscore.state.azure_table:AzureTableStateStore",
    "firestore": "adscore.state.firestore:FirestoreStateStore",
}
"""URL scheme -> ``"module:Class"``; each class has ``from_url(url)``."""

_EXTRAS = {"dynamodb": "aws", "azuretable": "azure", "firestore": "gcp"}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def _redact(url: str) -> str:
    """The URL without credentials, query string or fragment, capped, for error messages."""
    url = re.sub(r"^([^:/]+://)[^/@]*@", r"\1***@", url)
    url = re.split(r"[?#]", url, maxsplit=1)[0]
    return url[:200]


def open_store(url: str) -> StateStore:
    """Open the state store a URL names.

    Parameters
    ----------
    url : str
        ``memory://``, ``sqlite:///relative.db``, ``sqlite:////abs/path.db``,
        ``sqlite:///:memory:``, ``dynamodb://table``, ``azuretable://table``
        or ``firestore://collection``.

    Returns
    -------
    StateStore
        The opened store (SQLite creates its schema on open).

    Raises
    ------
    ConfigError
        If the URL is malformed, its scheme unknown, or its backend's
        dependencies are not installed. The message names the problem.

    Example
    -------
    >>> store = open_store("memory://")
    """
    match = _SCHEME.match(url)
    if match is None:
        raise ConfigError(
            "state",
            f"malformed state URL {_redact(url)!r}: expected <scheme>://..., "
            "for example sqlite:///adscore.db or memory://",
        )
    scheme = match.group(1).lower()
    target = STORES.get(scheme)
    if target is None:
        known = ", ".join(f"{name}://" for name in STORES)
        raise ConfigError("state", f"unknown state backend {scheme!r} in {_redact(url)!r}; known: {known}")
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = _EXTRAS.get(scheme)
        hint = f"; install adscore[{extra}]" if extra else ""
        raise ConfigError("state", f"state backend {scheme!r} is not available ({exc}){hint}") from exc
    store_class = getattr(module, class_name)
    return cast("StateStore", store_class.from_url(url))


def init_store(url: str) -> dict[str, object]:
    """Create the table or collection ``url`` names, with the schema and TTL the backend expects.

    Idempotent: an existing table is left as it is. Returns a description of
    what exists (backend, and the schema where the backend reports one).

    Raises
    ------
    ConfigError
        If the URL is bad or the backend cannot be reached.
    """
    store = open_store(url)
    try:
        init = getattr(store, "init")  # noqa: B009 - Protocol's init returns None; backends may return a description
        result = init()
        info: dict[str, object] = {"url": _redact(url), "backend": url.split("://", 1)[0].lower()}
        if isinstance(result, dict):
            info.update(result)
        schema = getattr(store, "schema", None)
        if callable(schema) and "schema" not in info:
            info["schema"] = schema()
        return info
    finally:
        store.close()
