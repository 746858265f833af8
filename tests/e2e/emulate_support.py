"""What the three `adscore emulate` test modules share: a JSON reporter, JSON Lines, example principals."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

from adscore.emulate import Reporter
from adscore.events import Event
from adscore.sources import parse_record
from adscore.sources.files import read_inputs

if TYPE_CHECKING:
    from pathlib import Path


def json_reporter() -> tuple[Reporter, io.StringIO, io.StringIO]:
    """A JSON Lines reporter writing to two string buffers (stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    return Reporter(out, err, as_json=True), out, err


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON objects of ``text``, one per non-blank line."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def example_principals(path: Path) -> set[str]:
    """Principal ids of the events in one examples file, parsed as `adscore replay` parses them."""
    out: set[str] = set()
    for item in read_inputs([str(path)]):
        if isinstance(item, tuple):
            out.update(
                e.principal.id
                for e in parse_record(item[1], item[0])
                if isinstance(e, Event) and e.principal.id
            )
    return out
