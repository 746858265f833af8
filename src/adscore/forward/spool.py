"""The forwarder's bounded on-disk spool: batches waiting to be posted, and the stream cursor.

Layout of the spool directory::

    pending/<time_ns:020d>-<random:16 hex>-<events>.json   one batch body each, oldest first by name
    rejected/<same name>                                  batches the endpoint refused for good (4xx)
    cursor.json                                            {"time_nano": int, "seen": [key, ...]}

A batch is written (temporary file, fsync, rename) before it is posted and deleted when the
endpoint accepts it, so a crash or an outage loses nothing the spool holds. Its file name is its
``webhook-id``: the same on every retry, across restarts.

**The cap drops the oldest batches.** When ``pending/`` holds more than ``max_batches`` files or
``max_bytes`` bytes, the oldest batches are deleted, each one logged at ERROR with its event
count and counted in :attr:`Spool.dropped_batches` / :attr:`Spool.dropped_events`. Refusing new
batches instead would stall the event reader, and the Docker engine keeps only its last 1000
events in memory: the loss would then happen silently inside the daemon, with no count, and it
would hit the newest events, which are the ones a responder can still act on. Dropping the
oldest keeps the loss bounded, visible and counted.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger("adscore.forward.spool")

#: At most this many boundary keys are kept in the cursor (events sharing one nanosecond).
MAX_SEEN = 1024
#: Files kept in ``rejected/`` (oldest deleted beyond it): an endpoint refusing everything must
#: not fill the disk either.
MAX_REJECTED = 100


@dataclass
class Cursor:
    """Where the event stream was read up to: the last event's ``timeNano`` and the keys of the
    events seen at exactly that nanosecond (``since=`` is inclusive, so they come back)."""

    time_nano: int
    seen: list[str] = field(default_factory=list)

    def admits(self, time_nano: int, key: str) -> bool:
        """Whether an event is new: later than the cursor, or at its nanosecond and not yet seen."""
        return time_nano > self.time_nano or (time_nano == self.time_nano and key not in self.seen)

    def advance(self, time_nano: int, key: str) -> Cursor:
        """The cursor after an admitted event (a new object; cursors are passed between threads)."""
        if time_nano > self.time_nano:
            return Cursor(time_nano, [key])
        return Cursor(self.time_nano, [*self.seen, key][-MAX_SEEN:])

    def since(self) -> str:
        """The Engine API ``since`` value: ``seconds.nanoseconds``."""
        return f"{self.time_nano // 1_000_000_000}.{self.time_nano % 1_000_000_000:09d}"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def events_in(path: Path) -> int:
    """The event count written in a batch file's name (0 when the name is not ours)."""
    try:
        return int(path.stem.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return 0


class Spool:
    """Pending and rejected batches plus the cursor, in one directory.

    Parameters
    ----------
    root : Path
        The spool directory (created, mode 0700).
    max_batches, max_bytes : int
        The cap on ``pending/``; beyond it the oldest batches are dropped (see the module text).
    """

    def __init__(self, root: Path, *, max_batches: int, max_bytes: int) -> None:
        self.root = root
        self.pending_dir = root / "pending"
        self.rejected_dir = root / "rejected"
        for d in (root, self.pending_dir, self.rejected_dir):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.max_batches = max_batches
        self.max_bytes = max_bytes
        self.dropped_batches = 0
        self.dropped_events = 0
        self.rejected_batches = 0
        for stale in root.rglob(".*.tmp"):  # a crash between write and rename
            stale.unlink(missing_ok=True)
        # this process owns the directory: an index of pending batches (name -> bytes) spares a
        # directory listing per batch, which made a backlog of n batches cost n^2 stat calls
        self._index: dict[str, int] = {
            p.name: p.stat().st_size
            for p in sorted(self.pending_dir.iterdir())
            if p.suffix == ".json" and not p.name.startswith(".")
        }
        self._bytes = sum(self._index.values())

    # -- batches ---------------------------------------------------------------------------
    def put(self, body: bytes, events: int) -> Path:
        """Write one batch body durably; return its path (its stem is the batch id). Enforces the cap."""
        name = f"{time.time_ns():020d}-{secrets.token_hex(8)}-{events}.json"
        path = self.pending_dir / name
        _atomic_write(path, body)
        self._index[name] = len(body)
        self._bytes += len(body)
        self._enforce_cap(keep=path)
        return path

    def pending(self) -> list[Path]:
        """Pending batches, oldest first."""
        return [self.pending_dir / name for name in sorted(self._index)]

    def _forget(self, path: Path) -> None:
        self._bytes -= self._index.pop(path.name, 0)

    def delivered(self, path: Path) -> None:
        """Forget a batch the endpoint accepted."""
        path.unlink(missing_ok=True)
        self._forget(path)

    def reject(self, path: Path, reason: str) -> None:
        """Move a batch the endpoint refused for good to ``rejected/`` (kept for a person to read)."""
        self.rejected_batches += 1
        log.error(
            "adscore forward: endpoint refused batch %s (%d events) for good: %s; moved to %s",
            path.stem, events_in(path), reason[:200], self.rejected_dir,
        )
        os.replace(path, self.rejected_dir / path.name)
        self._forget(path)
        rejected = sorted(self.rejected_dir.glob("*.json"))
        for old in rejected[: max(0, len(rejected) - MAX_REJECTED)]:
            old.unlink(missing_ok=True)

    def _enforce_cap(self, keep: Path) -> None:
        if len(self._index) <= self.max_batches and self._bytes <= self.max_bytes:
            return
        for name in sorted(self._index):
            if len(self._index) <= self.max_batches and self._bytes <= self.max_bytes:
                break
            if name == keep.name:
                continue
            old = self.pending_dir / name
            n = events_in(old)
            old.unlink(missing_ok=True)
            self._forget(old)
            self.dropped_batches += 1
            self.dropped_events += n
            log.error(
                "adscore forward: spool full (%d batches / %d bytes allowed): DROPPED the oldest batch %s "
                "with %d events, never delivered (dropped so far: %d batches, %d events)",
                self.max_batches, self.max_bytes, old.stem, n, self.dropped_batches, self.dropped_events,
            )

    # -- cursor ----------------------------------------------------------------------------
    def load_cursor(self) -> Cursor | None:
        """The saved cursor, or None (first start, or an unreadable file, which is logged)."""
        path = self.root / "cursor.json"
        try:
            data = orjson.loads(path.read_bytes())
            seen = [str(k)[:128] for k in data.get("seen", [])][-MAX_SEEN:]
            return Cursor(int(data["time_nano"]), seen)
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, KeyError, AttributeError, orjson.JSONDecodeError) as exc:
            log.error("adscore forward: ignoring unreadable cursor %s (%s): starting from the engine's buffer", path, exc)
            return None

    def save_cursor(self, cursor: Cursor) -> None:
        """Persist the cursor (atomically)."""
        _atomic_write(self.root / "cursor.json", orjson.dumps({"time_nano": cursor.time_nano, "seen": cursor.seen}))
