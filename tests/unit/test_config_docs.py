"""docs/configuration.md is generated from the settings model and stays current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import gen_config_docs  # noqa: E402


def test_every_setting_and_parameter_is_described() -> None:
    assert gen_config_docs.undocumented() == []


def test_the_file_matches_the_model() -> None:
    res = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_config_docs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr


def test_every_setting_has_its_variable_default_and_example() -> None:
    from adscore.settings import Settings

    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    for name in Settings.model_fields:
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}` |"))
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert cells[1] == f"`ADSCORE_{name.upper()}`"
        assert cells[2] and cells[3] and cells[4], row
    assert "ADSCORE_DETECTIONS__SNAPSHOT_BURST__THRESHOLD" in text
    assert "ADSCORE_CONFIG" in text
