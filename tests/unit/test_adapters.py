"""The cloud functions stay thin and same-shaped: read the trigger, unwrap, run the runtime, map its answer.

Checked here, on the source: every entry point stays within 60 lines with its module's share of
helpers (counting lines of code only, and counting every line); no adapter builds or patches a
``BatchReport`` (only the engine, its send stage and the runtime do); no adapter parses provenance
back out of a string.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"
ENTRY_POINTS = {
    "aws": ("eventbridge_handler", "sqs_handler", "cloudwatch_logs_handler", "ingest_handler"),
    "azure": ("on_event_grid", "on_event_hub", "on_ingest", "cleanup_state"),
    "gcp": ("on_pubsub", "on_pubsub_push", "on_k8s_audit"),
}
MAX_LINES_PER_ENTRY_POINT = 60
#: Writes into a BatchReport's fields.
PATCHES = re.compile(
    r"\.(counts|suppressed|by_detection)\[|\.(failed|unreadable)(\[|\.setdefault|\.update)|"
    r"\.(errors|sent|alerts)\.(append|extend)|\.(state_error|sink_error)\s*="
)
REPORT_BUILDERS = {"engine.py", "runtime.py", "send.py"}


def code_lines(path: Path) -> int:
    """Lines of code: not blank, not a comment, not part of a docstring or a bare string."""
    source = path.read_text(encoding="utf-8")
    strings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            strings.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return sum(
        1
        for number, line in enumerate(source.splitlines(), 1)
        if line.strip() and not line.strip().startswith("#") and number not in strings
    )


def defined_functions(path: Path) -> set[str]:
    return {
        n.name
        for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(n, ast.FunctionDef)
    }


@pytest.mark.parametrize("cloud", sorted(ENTRY_POINTS))
def test_each_entry_point_with_its_share_of_helpers_stays_within_60_lines(cloud: str) -> None:
    files = sorted((FUNCTIONS / cloud).glob("*.py"))
    defined = set().union(*(defined_functions(f) for f in files))
    assert set(ENTRY_POINTS[cloud]) <= defined
    lines = sum(code_lines(f) for f in files)
    assert lines / len(ENTRY_POINTS[cloud]) <= MAX_LINES_PER_ENTRY_POINT, f"{cloud}: {lines} lines of code"
    # docstrings, comments and blank lines included, too
    physical = sum(len(f.read_text(encoding="utf-8").splitlines()) for f in files)
    assert physical / len(ENTRY_POINTS[cloud]) <= MAX_LINES_PER_ENTRY_POINT, f"{cloud}: {physical} lines"


@pytest.mark.parametrize("cloud", sorted(ENTRY_POINTS))
def test_every_entry_point_calls_the_runtime_and_no_adapter_builds_a_report(cloud: str) -> None:
    text = "\n".join(f.read_text(encoding="utf-8") for f in sorted((FUNCTIONS / cloud).glob("*.py")))
    assert "run_delivery(" in text
    assert not PATCHES.search(text), PATCHES.search(text)
    assert "BatchReport(" not in text
    assert "import re\n" not in text and "re.compile" not in text  # no provenance parsed back from strings


def test_only_the_engine_and_the_runtime_build_batch_reports() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {m.group(0)}"
        for path in sorted((ROOT / "src" / "adscore").rglob("*.py"))
        if path.name not in REPORT_BUILDERS
        for m in PATCHES.finditer(path.read_text(encoding="utf-8"))
        if "report" in path.read_text(encoding="utf-8")[max(0, m.start() - 40) : m.start()].lower()
    ]
    assert offenders == []
