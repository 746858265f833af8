"""`adscore emulate`'s terminal output: text from logs reaches the terminal without its escape sequences."""

from __future__ import annotations

import io

from adscore.emulate import EmulationResult, Reporter

HOSTILE = "evil\x1b]8;;https://x.example\x07link\x1b]8;;\x07\x1b[2J\x1b[31m[bold]red[/bold]\r\nforged line\x00"


def test_alerts_and_the_summary_print_no_escape_sequence_from_a_log() -> None:
    out, err = io.StringIO(), io.StringIO()
    reporter = Reporter(out, err, color=False)
    reporter.alert({"severity": HOSTILE, "detection": HOSTILE, "title": HOSTILE, "principal": {"id": HOSTILE}})
    result = EmulationResult(cloud="aws", skipped=[f"r1: {HOSTILE}"])
    result.alerts.append({"detection": HOSTILE})
    reporter.summary(result)
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text and "\x00" not in text and "\r" not in text
    assert "[bold]red[/bold]" in text  # rich markup from the log is printed as text, not applied
    assert all(not line.startswith("forged line") for line in text.splitlines())
    assert text.count("\n") == 5  # the alert, the summary head, one detection, the skipped head, one record
