"""``adscore replay --output table`` and ``adscore detections`` at 80 columns.

Captured with ``COLUMNS=80`` (which ``rich`` honours) through the real command
line, on the bundled examples (65 alerts). "No word split" is checked as: every
word short enough to fit on a line appears whole on some line of the output.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from adscore.alerts import make_alert
from adscore.cli import main
from adscore.render.text import table_text

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = [str(ROOT / "examples"), "--config", str(ROOT / "examples" / "config.yaml")]


def _tokens(text: str) -> set[str]:
    return {tok for line in text.splitlines() for tok in line.split()}


def _assert_fits_without_split(out: str, words: list[str], width: int = 80) -> None:
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= width
    tokens = _tokens(out)
    split = sorted({w for w in words if len(w) < width - 4 and w not in tokens})
    assert split == [], f"words split or missing: {split[:10]}"


@pytest.fixture(scope="module")
def replayed() -> tuple[str, list[dict[str, object]]]:
    runner = CliRunner()
    table = runner.invoke(main, ["replay", *EXAMPLES, "--output", "table"], env={"COLUMNS": "80"})
    assert table.exit_code == 0, table.output
    jsonl = runner.invoke(main, ["replay", *EXAMPLES, "--output", "jsonl"])
    return table.stdout, [json.loads(line) for line in jsonl.stdout.splitlines()]


def test_replay_table_at_80_columns_splits_no_word(replayed: tuple[str, list[dict[str, object]]]) -> None:
    out, alerts = replayed
    assert len(alerts) == 65  # 62, and the CI role of discovery_api_burst.ci_role_credentials.jsonl: days 1, 2 and 3
    words: list[str] = []
    for a in alerts:
        words += str(a["title"]).split()
        words += [str(a["id"]), str(a["detection"])]
        principal = a["principal"]
        assert isinstance(principal, dict)
        words += str(principal.get("name") or principal["id"]).split()
    _assert_fits_without_split(out, words)
    assert len(out.splitlines()) < 6 * len(alerts)  # about 4 lines an alert, not 12


def test_replay_table_shows_each_alert_id_and_a_summary_line_per_detection(
    replayed: tuple[str, list[dict[str, object]]],
) -> None:
    out, alerts = replayed
    lines = out.splitlines()
    for a in alerts:
        assert any(f"id {a['id']}" in line for line in lines)
    counts: dict[str, int] = {}
    for a in alerts:
        counts[str(a["detection"])] = counts.get(str(a["detection"]), 0) + 1
    for det, n in counts.items():
        assert any(line.startswith(f"{det}: {n} alert") for line in lines), det


def test_detections_at_80_columns_shows_whole_ids_and_splits_no_word() -> None:
    from adscore.detections import load_catalogue

    res = CliRunner().invoke(main, ["detections"], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    words: list[str] = []
    for d in load_catalogue():
        words += [d.id, d.meta.technique, *d.meta.title.split()]
    _assert_fits_without_split(res.stdout, words)


def test_a_token_longer_than_a_line_is_cut_not_split() -> None:
    # GIVEN a principal whose name is one 150-character token
    t0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    long_name = "arn:aws:iam::111122223333:role/" + "x" * 110 + "TAIL"
    a = make_alert(
        detection="snapshot.burst",
        entity="e",
        window_start=t0,
        technique="T1578.001",
        technique_name="Create Snapshot",
        tactic="Defense Evasion",
        severity="medium",
        title=f"7 snapshots by {long_name} [bold]not markup[/bold]",
        summary="s",
        principal={"id": long_name, "type": "role", "name": long_name},
        cloud="aws",
        first_seen=t0,
        last_seen=t0,
    )
    out = table_text([a], width=80)
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "TAIL" not in out  # the tail is cut off, never wrapped onto a line of its own
    assert "arn:aws:iam::111122223333:role/xxx" in out and "…" in out
    assert "[bold]not" in out  # shown literally
    assert f"id {a.id}" in out
