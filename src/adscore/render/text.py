"""Terminal and JSON-lines renderings of alerts.

On a terminal narrower than :data:`WIDE` columns, alerts print as one block
each (:func:`blocks`): text wraps between words and a token too long for a line
is cut with "…", never split across lines. Wider terminals get a table
(:func:`table`). :func:`summary` adds one line per detection.
"""

from __future__ import annotations

from collections import Counter
from io import StringIO
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from adscore.render.escape import clean_text

if TYPE_CHECKING:
    from collections.abc import Iterable

    from adscore.alerts import Alert

_SEVERITY_STYLE = {
    "info": "dim",
    "low": "cyan",
    "medium": "yellow",
    "high": "bold red",
    "critical": "bold white on red",
}
_CELL_LIMIT = 120
WIDE = 160
"""Terminals at least this wide get the table; narrower ones one block per alert."""


def to_jsonl(alert: Alert) -> str:
    """Return the alert as one line of JSON (no trailing newline).

    Examples
    --------
    >>> to_jsonl(alert).startswith('{"id":')  # doctest: +SKIP
    True
    """
    return alert.to_json().decode("utf-8")


def _cell(value: object, limit: int = _CELL_LIMIT) -> Text:
    # A Text object is never parsed for markup ("[bold]", "[link=...]") or emoji
    # codes; clean_text removes ANSI sequences and control characters. Overflow
    # "ellipsis" wraps between words and cuts a word too long for its line.
    return Text(clean_text(value, limit), overflow="ellipsis")


def _when(alert: Alert) -> str:
    first, last = alert.first_seen, alert.last_seen
    if last.date() == first.date():
        if last.strftime("%H:%M") == first.strftime("%H:%M"):
            return first.strftime("%Y-%m-%d %H:%MZ")
        return f"{first:%Y-%m-%d %H:%M}-{last:%H:%M}Z"
    return f"{first:%Y-%m-%d %H:%M}Z to {last:%Y-%m-%d %H:%M}Z"


def blocks(alerts: Iterable[Alert]) -> Group:
    """Return one block per alert, for narrow terminals.

    Each block: severity, detection and alert id on the first line; the title,
    wrapped; then principal, account, region, event count and time. Log-derived
    text is shown literally (no markup) and never split inside a word.
    """
    parts: list[Padding | Text] = []
    for a in alerts:
        head = Text(overflow="ellipsis", no_wrap=True)
        head.append(f"{a.severity.upper():<8}", style=_SEVERITY_STYLE.get(a.severity, ""))
        head.append(f" {clean_text(a.detection, 40)}  ")
        head.append(f"id {a.id}", style="dim")
        principal = a.principal.get("name") or a.principal.get("id") or "unknown"
        facts = [f"by {clean_text(principal, _CELL_LIMIT)}"]
        if a.account:
            facts.append(f"in {clean_text(a.account, _CELL_LIMIT)}")
        if a.region:
            facts.append(clean_text(a.region, 40))
        facts.append(f"{a.count} event{'s' if a.count != 1 else ''}")
        facts.append(_when(a))
        parts += [
            head,
            Padding(_cell(a.title, 400), (0, 0, 0, 2), expand=False),
            Padding(Text("  ·  ".join(facts), style="dim", overflow="ellipsis"), (0, 0, 0, 2), expand=False),
            Text(""),
        ]
    return Group(*parts)


def summary(alerts: Iterable[Alert]) -> list[str]:
    """One line per detection: how many alerts, by severity (highest first).

    Examples
    --------
    >>> summary(alerts)  # doctest: +SKIP
    ['snapshot.shared_external: 2 alerts (1 high, 1 medium)']
    """
    from adscore.alerts import SEVERITY_ORDER

    by_detection: dict[str, Counter[str]] = {}
    for a in alerts:
        by_detection.setdefault(a.detection, Counter())[a.severity] += 1
    lines = []
    for det, counts in sorted(by_detection.items()):
        n = sum(counts.values())
        sev = ", ".join(f"{counts[s]} {s}" for s in sorted(counts, key=lambda s: -SEVERITY_ORDER.get(s, 0)))
        lines.append(f"{clean_text(det, 80)}: {n} alert{'s' if n != 1 else ''} ({sev})")
    return lines


def view(alerts: Iterable[Alert], width: int) -> Table | Group:
    """The table when ``width`` is at least :data:`WIDE`, else :func:`blocks`."""
    return table(alerts) if width >= WIDE else blocks(alerts)


def table(alerts: Iterable[Alert]) -> Table:
    """Return a ``rich`` table of alerts, one row each.

    Columns: severity, detection, principal, account, count, first seen, title, id.
    Log-derived text is shown literally: rich markup in it is not interpreted.

    Parameters
    ----------
    alerts : Iterable[Alert]

    Returns
    -------
    rich.table.Table
        Print it with a ``rich`` console, or use :func:`table_text`.
    """
    t = Table(title="adscore alerts", show_lines=False, highlight=False)
    for name, justify in (
        ("severity", "left"),
        ("detection", "left"),
        ("principal", "left"),
        ("account", "left"),
        ("count", "right"),
        ("first seen", "left"),
        ("title", "left"),
        ("id", "left"),
    ):
        t.add_column(name, justify=justify, overflow="ellipsis")  # type: ignore[arg-type]
    for a in alerts:
        principal = a.principal.get("name") or a.principal.get("id") or ""
        t.add_row(
            Text(a.severity, style=_SEVERITY_STYLE.get(a.severity, "")),
            _cell(a.detection),
            _cell(principal),
            _cell(a.account or ""),
            Text(str(a.count)),
            Text(a.first_seen.strftime("%Y-%m-%d %H:%M:%SZ")),
            _cell(a.title),
            Text(a.id, no_wrap=True),
        )
    return t


def table_text(alerts: Iterable[Alert], *, width: int = WIDE, color: bool = False) -> str:
    """Return :func:`view` (the table, or blocks when narrower than :data:`WIDE`) and :func:`summary` as a string.

    Parameters
    ----------
    alerts : Iterable[Alert]
    width : int
        Console width in characters.
    color : bool
        Keep ANSI colour codes (only those of the table's own styles).

    Returns
    -------
    str
    """
    buf = StringIO()
    console = Console(
        file=buf,
        width=width,
        color_system="standard" if color else None,
        force_terminal=color,
        markup=False,
        emoji=False,
        highlight=False,
    )
    alerts = list(alerts)
    console.print(view(alerts, width))
    for line in summary(alerts):
        console.print(Text(line, overflow="ellipsis"))
    return buf.getvalue()
