"""The ``adscore tune`` report on a terminal (rich tables; command line only).

Every value that came from a log (principal names and ids, accounts) is a :class:`rich.text.Text`,
never markup: ``[red]`` in a role name is printed as those characters. The tally already removed
control characters and escape sequences from them and capped their length.
"""

from __future__ import annotations

from typing import IO, TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from adscore.tune import Report

_VERDICT_STYLE = {
    "suppress": "yellow",
    "calendar": "yellow",
    "one-off": "bold red",
    "occasional": "cyan",
    "protected": "bold red",
    "unnamed": "dim",
    "unmatchable": "dim",
}
_MAX_DAY_COLUMNS = 10


def _t(text: object, style: str = "") -> Text:
    return Text(str(text), style=style, overflow="fold")


def _days_table(report: Report) -> Table:
    days = report.days
    wide = len(days) <= _MAX_DAY_COLUMNS
    t = Table(title=_t(f"alerts per day, {len(days)} days"), box=box.SIMPLE_HEAD, pad_edge=False)
    t.add_column("detection", no_wrap=True)
    t.add_column("total", justify="right")
    if wide:
        for d in days:
            t.add_column(d[5:], justify="right")
    else:
        t.add_column("min/avg/max per day", justify="right")
    t.add_column("top accounts", overflow="fold")
    for det, per_day in report.by_detection.items():
        total = per_day.get("total", 0)
        counts = [per_day.get(d, 0) for d in days]
        cells: list[Text] = [_t(det), _t(total)]
        if wide:
            cells.extend(_t(c or "-") for c in counts)
        else:
            avg = total / len(days) if days else 0.0
            cells.append(_t(f"{min(counts, default=0)}/{avg:.1f}/{max(counts, default=0)}"))
        cells.append(_t(", ".join(f"{a} ({n})" for a, n in report.top_accounts.get(det, []))))
        t.add_row(*cells)
    return t


def _principals_table(report: Report, det: str, top: int) -> Table:
    findings = report.findings.get(det, [])
    t = Table(title=_t(f"{det}: top principals"), box=box.SIMPLE_HEAD, pad_edge=False)
    t.add_column("principal", overflow="fold", ratio=2)
    t.add_column("account", overflow="fold")
    t.add_column("alerts", justify="right")
    t.add_column("days", justify="right")
    t.add_column("verdict", overflow="fold", ratio=2)
    n_days = len(report.days)
    for f in findings[:top]:
        who = Text()
        who.append(f.name)
        who.append(f" ({f.type})", style="dim")
        if f.principal != f.name:
            who.append("\n")
            who.append(f.principal, style="dim")
        verdict = Text(f.verdict, style=_VERDICT_STYLE.get(f.verdict, ""))
        verdict.append(f": {f.why}", style="dim")
        t.add_row(who, _t(", ".join(f.accounts)), _t(f.alerts), _t(f"{f.days}/{n_days}"), verdict)
    if len(findings) > top:
        t.add_row(_t(f"... {len(findings) - top} more"), _t(""), _t(""), _t(""), _t(""))
    return t


def _proposals_table(report: Report) -> Table:
    t = Table(title=_t(f"proposals ({len(report.proposals)})"), box=box.SIMPLE_HEAD, pad_edge=False)
    t.add_column("kind", no_wrap=True)
    t.add_column("target", overflow="fold", ratio=2)
    t.add_column("removes", justify="right")
    t.add_column("evidence", overflow="fold", ratio=3)
    for p in report.proposals:
        kind = p.kind + (" (advice)" if p.kind == "threshold" else "")
        t.add_row(_t(kind), _t(p.target), _t(p.removes), _t("\n".join(p.evidence)))
    return t


def print_tune(report: Report, stream: IO[str], top: int = 5) -> None:
    """Print the tune report: alerts per day, top principals per detection, proposals, what was held back."""
    console = Console(file=stream, soft_wrap=False, highlight=False)
    if not report.by_detection:
        console.print(_t(f"no alerts over {len(report.days)} days: nothing to tune"))
        return
    console.print(_days_table(report))
    for det in report.by_detection:
        console.print(_principals_table(report, det, top))
    console.print(_proposals_table(report))
    for h in report.held:
        console.print(_t(f"held back: {h}", "magenta"))
