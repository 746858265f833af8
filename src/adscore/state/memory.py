"""In-process state store: dictionaries behind a lock (unit tests, single-process runs)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from adscore.errors import ConfigError
from adscore.state.base import MAX_SET_MEMBERS, StateStoreBase, put_wins
from adscore.windows import epoch

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime
    from typing import Self

    from adscore.state.base import WriteBatch

__all__ = ["MemoryStateStore"]


class MemoryStateStore(StateStoreBase):
    """State kept in dictionaries; thread-safe; lost when the process ends.

    Example
    -------
    >>> store = MemoryStateStore()
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._sets: dict[str, tuple[set[str], int]] = {}
        self._values: dict[str, tuple[str, int]] = {}
        self._claims: dict[str, int] = {}

    @classmethod
    def from_url(cls, url: str) -> Self:
        """Build from ``memory://`` (anything after the scheme is ignored).

        Raises
        ------
        ConfigError
            If the URL's scheme is not ``memory``.
        """
        if not url.lower().startswith("memory:"):
            raise ConfigError("state", "a memory state URL is written memory://")
        return cls()

    def get_sets(self, keys: Sequence[str], at: datetime) -> dict[str, frozenset[str]]:
        now = epoch(at)
        result: dict[str, frozenset[str]] = {}
        with self._lock:
            for key in keys:
                item = self._sets.get(key)
                result[key] = frozenset(item[0]) if item is not None and item[1] > now else frozenset()
        return result

    def get_values(self, keys: Sequence[str], at: datetime) -> dict[str, str]:
        now = epoch(at)
        result: dict[str, str] = {}
        with self._lock:
            for key in keys:
                item = self._values.get(key)
                if item is not None and item[1] > now:
                    result[key] = item[0]
        return result

    def write(self, batch: WriteBatch) -> None:
        with self._lock:
            for key, union in batch.unions.items():
                members, expires_at = self._sets.get(key, (set(), 0))
                new = sorted(union.members - members)[: max(MAX_SET_MEMBERS - len(members), 0)]
                members.update(new)
                self._sets[key] = (members, max(expires_at, union.expires_at))
            for key, put in batch.puts.items():
                old = self._values.get(key)
                if old is None or put_wins(put, *old):
                    self._values[key] = (put.value, put.expires_at)
            for key, new_value in batch.put_if_absent.items():
                old = self._values.get(key)
                if old is None or old[1] <= new_value.at:
                    self._values[key] = (new_value.value, new_value.expires_at)
            self.writes += len(batch)

    def claim_item(self, key: str, expires_at: int, now: int) -> bool:
        with self._lock:
            self.writes += 1
            held = self._claims.get(key)
            if held is not None and held > now:
                return False
            self._claims[key] = expires_at
            return True

    def release_item(self, key: str) -> None:
        with self._lock:
            self.writes += 1
            self._claims.pop(key, None)

    def cleanup(self, older_than: datetime) -> int:
        """Delete items that expired before ``older_than``; return how many were deleted."""
        cutoff = epoch(older_than)
        with self._lock:
            dead_sets = [k for k, (_, e) in self._sets.items() if e < cutoff]
            dead_values = [k for k, (_, e) in self._values.items() if e < cutoff]
            dead_claims = [k for k, e in self._claims.items() if e < cutoff]
            for k in dead_sets:
                del self._sets[k]
            for k in dead_values:
                del self._values[k]
            for k in dead_claims:
                del self._claims[k]
        return len(dead_sets) + len(dead_values) + len(dead_claims)
