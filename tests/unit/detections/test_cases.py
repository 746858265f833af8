"""Every detection case under tests/cases/<module>/ (fire_* and quiet_*), run with in-memory state."""

from __future__ import annotations

from pathlib import Path

import pytest

from adscore.testing import case_paths, run_case

CASES_DIR = Path(__file__).resolve().parents[2] / "cases"
CASES = case_paths(CASES_DIR)


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
def test_case(path: Path) -> None:
    # GIVEN the case's records and settings, WHEN the engine runs them as one batch,
    # THEN every expected alert matches and every listed detection stays quiet.
    result = run_case(path)
    assert result.ok, "\n".join(result.problems)


def test_cases_exist() -> None:
    assert CASES, f"no case files under {CASES_DIR}"
