"""Local sinks: a stream (stdout) and an append-only JSON-lines file."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TextIO

import orjson

from adscore.errors import ConfigError
from adscore.sinks.base import SendReport

if TYPE_CHECKING:
    from collections.abc import Sequence

    from adscore.alerts import Alert

log = logging.getLogger("adscore.sinks.stdout")

Format = Literal["jsonl", "ocsf", "table"]
_FORMATS: tuple[str, ...] = ("jsonl", "ocsf", "table")


def _failed(alerts: Sequence[Alert], exc: BaseException) -> SendReport:
    ids = tuple(a.id for a in alerts)
    return SendReport(failed=ids, reasons=dict.fromkeys(ids, type(exc).__name__))


class StdoutSink:
    """Write alerts to a text stream.

    Parameters
    ----------
    stream : TextIO | None
        Where to write; ``None`` means ``sys.stdout`` as it is at each send.
    fmt : {"jsonl", "ocsf", "table"}
        One JSON line per alert, one OCSF Detection Finding line per alert, or a
        ``rich`` table of the batch.

    URLs: ``-``, ``stdout://`` (JSON lines), ``stdout://ocsf``, ``stdout://table``.
    """

    def __init__(self, stream: TextIO | None = None, fmt: Format = "jsonl") -> None:
        if fmt not in _FORMATS:
            raise ConfigError(
                "sinks", f"unknown stdout format {fmt!r}; expected one of {', '.join(_FORMATS)}"
            )
        self.stream = stream
        self.fmt = fmt

    @classmethod
    def from_url(cls, url: str, *, secret: str | None = None) -> StdoutSink:
        """Build from ``-`` or ``stdout://[jsonl|ocsf|table]``."""
        fmt = "" if url == "-" else url.removeprefix("stdout://").strip("/")
        return cls(fmt=fmt or "jsonl")  # type: ignore[arg-type]  # checked in __init__

    def _render(self, alerts: Sequence[Alert]) -> str:
        if self.fmt == "table":
            from adscore.render.text import table_text  # imports rich: only when asked

            return table_text(alerts)
        if self.fmt == "ocsf":
            from adscore.render.ocsf import to_ocsf

            return "".join(orjson.dumps(to_ocsf(a)).decode() + "\n" for a in alerts)
        return "".join(a.to_json().decode() + "\n" for a in alerts)

    def send(self, alerts: Sequence[Alert]) -> SendReport:
        """Write the batch; a write error fails the whole batch."""
        if not alerts:
            return SendReport()
        stream = self.stream if self.stream is not None else sys.stdout
        try:
            stream.write(self._render(alerts))
            stream.flush()
        except (OSError, ValueError) as exc:  # broken pipe, closed stream
            log.warning("writing alerts to the stream failed: %s", type(exc).__name__)
            return _failed(alerts, exc)
        return SendReport(sent=tuple(a.id for a in alerts))

    def close(self) -> None:
        """Nothing to release: the stream belongs to the caller."""


class JsonlSink:
    """Append alerts as JSON lines to a file (created with its folders if needed).

    The file is opened for each batch and closed after it, so a long-lived
    process holds no handle. URL: ``jsonl:///absolute/path.jsonl`` or
    ``jsonl://relative/path.jsonl``.

    Parameters
    ----------
    path : str | Path
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def from_url(cls, url: str, *, secret: str | None = None) -> JsonlSink:
        """Build from ``jsonl://<path>``."""
        path = url.removeprefix("jsonl://")
        if not path:
            raise ConfigError("sinks", "jsonl sink needs a path: jsonl:///path/to/alerts.jsonl")
        return cls(path)

    def send(self, alerts: Sequence[Alert]) -> SendReport:
        """Append one line per alert in one write; an I/O error fails the whole batch."""
        if not alerts:
            return SendReport()
        data = b"".join(a.to_json() + b"\n" for a in alerts)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab") as f:
                f.write(data)
        except OSError as exc:
            log.warning("appending alerts to %s failed: %s", self.path.name, type(exc).__name__)
            return _failed(alerts, exc)
        return SendReport(sent=tuple(a.id for a in alerts))

    def close(self) -> None:
        """Nothing to release: the file is closed after each batch."""
