"""Terminal and JSON-lines renderings of alerts."""

from __future__ import annotations

from io import StringIO
from typing import TYPE_CHECKING

from rich.console import Console
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
    # codes; clean_text removes ANSI sequences and control characters.
    return Text(clean_text(value, limit))


def table(alerts: Iterable[Alert]) -> Table:
    """Return a ``rich`` table of alerts, one row each.

    Columns: severity, detection, principal, account, count, first seen, title.
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
    ):
        t.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
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
        )
    return t


def table_text(alerts: Iterable[Alert], *, width: int = 160, color: bool = False) -> str:
    """Return :func:`table` rendered as a string.

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
    console.print(table(alerts))
    return buf.getvalue()
