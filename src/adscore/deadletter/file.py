"""``file:///path/dead.jsonl``: dead letters as JSON lines appended to a local file."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Self

from adscore.deadletter import DeadLetterError
from adscore.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from adscore.deadletter import DeadLetter


class FileDeadLetterStore:
    """Append each letter's :meth:`~adscore.deadletter.DeadLetter.document` as one JSON line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> Self:
        path = url.split("://", 1)[1]
        if not path:
            raise ConfigError("deadletter", "file:// needs a path (file:///var/adscore/dead.jsonl)")
        return cls(Path(path))

    def put(self, letters: Sequence[DeadLetter]) -> None:
        lines = b"".join(letter.to_json() + b"\n" for letter in letters)
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("ab") as fh:
                    fh.write(lines)
        except OSError as exc:
            raise DeadLetterError(f"cannot write {self.path}: {exc.strerror or exc}") from exc

    def close(self) -> None:
        """Nothing to release: the file is closed after each write."""
