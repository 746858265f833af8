"""User detections (setting detection_paths, --detections DIR) and `adscore test`.

The worked example lives in examples/detections/ (a detection module and its fire and quiet cases);
these tests load it through every entry: the CLI, the settings variable and the AWS handler.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from adscore.cli import main
from adscore.detections import catalogue_for, load_user_detections
from adscore.errors import ConfigError
from adscore.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "detections"
SOURCE = (EXAMPLE / "acme_snapshot_copy_region.py").read_text()
COPY = json.loads((REPO / "tests" / "golden" / "aws_cloudtrail" / "copy_snapshot.input.json").read_text())


def _copy_far() -> dict[str, object]:
    return {**COPY, "awsRegion": "ap-southeast-2", "eventID": "far-1", "eventTime": "2026-03-14T10:15:00Z"}


def test_the_worked_example_passes_adscore_test_and_fails_without_its_detection() -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["test", str(EXAMPLE / "cases"), "--detections", str(EXAMPLE)])
    assert ok.exit_code == 0, ok.output
    assert "2 passed, 0 failed" in ok.output
    without = runner.invoke(main, ["test", str(EXAMPLE / "cases")])
    assert without.exit_code == 1 and "FAIL" in without.output and "1 failed" in without.output


def test_the_projects_own_cases_pass_through_adscore_test() -> None:
    result = CliRunner().invoke(main, ["test", str(REPO / "tests" / "cases")])
    assert result.exit_code == 0, result.output[-3000:]
    assert " 0 failed" in result.output


def test_adscore_test_without_cases_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["test", str(tmp_path)])
    assert result.exit_code == 2 and "no fire_" in result.stderr


def test_replay_runs_user_detections_from_the_flag_and_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "copy.jsonl"
    log.write_text(json.dumps(_copy_far()) + "\n")
    runner = CliRunner()
    by_flag = runner.invoke(main, ["replay", str(log), "--output", "jsonl", "--detections", str(EXAMPLE)])
    assert by_flag.exit_code == 0, by_flag.stderr
    assert "acme.snapshot_copy_region" in {json.loads(line)["detection"] for line in by_flag.stdout.splitlines()}
    monkeypatch.setenv("ADSCORE_DETECTION_PATHS", str(EXAMPLE))
    by_env = runner.invoke(main, ["replay", str(log), "--output", "jsonl"])
    assert "acme.snapshot_copy_region" in {json.loads(line)["detection"] for line in by_env.stdout.splitlines()}


def test_user_detections_are_listed_documented_and_tunable(tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(main, ["detections", "--json", "--detections", str(EXAMPLE)])
    ids = [json.loads(line)["id"] for line in listed.stdout.splitlines()]
    assert "acme.snapshot_copy_region" in ids and "snapshot.burst" in ids
    ads = runner.invoke(main, ["ads", "acme.snapshot_copy_region", "--detections", str(EXAMPLE)])
    assert ads.exit_code == 0 and "Snapshot copied into an unused region" in ads.stdout
    # tuned like a built-in detection: the region becomes allowed, the copy is quiet
    config = tmp_path / "c.yaml"
    config.write_text("detections:\n  acme.snapshot_copy_region:\n    regions: [ap-southeast-2]\n")
    log = tmp_path / "copy.jsonl"
    log.write_text(json.dumps(_copy_far()) + "\n")
    tuned = runner.invoke(main, ["replay", str(log), "--output", "jsonl", "--config", str(config), "--detections", str(EXAMPLE)])
    assert "acme.snapshot_copy_region" not in tuned.stdout


def _folder(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / f"{name}.py").write_text(text)
    return folder


@pytest.mark.parametrize(
    ("file_name", "text", "expected"),
    [
        ("acme_snapshot_copy_region", SOURCE.replace('DETECTION_ID = "acme.snapshot_copy_region"',
                                                     'DETECTION_ID = "snapshot.burst"'), "must be named snapshot_burst.py"),
        ("snapshot_burst", SOURCE.replace('DETECTION_ID = "acme.snapshot_copy_region"', 'DETECTION_ID = "snapshot.burst"'),
         "is a built-in detection's"),
        ("acme_snapshot_copy_region", SOURCE.replace("frozenset({SNAPSHOT_COPY})", 'frozenset({"snapshot.teleport"})'),
         "actions ['snapshot.teleport'] are unknown"),
        ("acme_snapshot_copy_region", SOURCE.replace('goal="Detect snapshots', 'goal="", x="'), "fails to import"),
        ("acme_snapshot_copy_region", SOURCE.replace('        goal="Detect snapshots copied into regions the organisation does not use (T1578.001).",\n',
                                                     '        goal="",\n'), "meta.goal is empty"),
        ("acme_snapshot_copy_region", "X = 1\n", "defines no DETECTION"),
        ("acme_snapshot_copy_region", SOURCE.replace('DETECTION_ID = "acme.snapshot_copy_region"', 'DETECTION_ID = "Acme Copy"'),
         "is not family.name"),
    ],
    ids=["file name", "built-in id", "unknown action", "import error", "empty ADS field", "no DETECTION", "bad id"],
)
def test_a_broken_user_detection_is_refused_naming_the_file_and_the_field(
    tmp_path: Path, file_name: str, text: str, expected: str
) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    path = folder / f"{file_name}.py"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_user_detections([str(folder)])
    assert "detection_paths" in str(err.value) and expected in str(err.value) and str(path.name) in str(err.value)
    # validate-settings says the same, without a traceback
    result = CliRunner().invoke(main, ["validate-settings", "--detections", str(folder)])
    assert result.exit_code == 2 and expected in result.stderr and "Traceback" not in result.output


def test_two_user_detections_with_one_id_and_a_missing_folder_are_refused(tmp_path: Path) -> None:
    one = tmp_path / "one"
    two = tmp_path / "two"
    for folder in (one, two):
        folder.mkdir()
        shutil.copy(EXAMPLE / "acme_snapshot_copy_region.py", folder)
    with pytest.raises(ConfigError, match="also defined in"):
        load_user_detections([str(one), str(two)])
    with pytest.raises(ConfigError, match="is not a folder"):
        load_user_detections([str(tmp_path / "missing")])


def test_a_changed_file_is_loaded_again(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    path = folder / "acme_snapshot_copy_region.py"
    path.write_text(SOURCE)
    (first,) = load_user_detections([str(folder)])
    path.write_text(SOURCE.replace('severity="high"', 'severity="critical"'))
    import os

    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 5))
    (second,) = load_user_detections([str(folder)])
    assert (first.meta.severity, second.meta.severity) == ("high", "critical")
    settings = load_settings(None, detection_paths=(str(folder),))
    assert catalogue_for(settings)[-1].id == "acme.snapshot_copy_region"


def test_the_aws_handler_runs_user_detections_named_by_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("aws_lambda_powertools")
    from adscore import runtime
    from tests.e2e.aws.conftest import LambdaContext, eventbridge, load_handler

    handler = load_handler()
    monkeypatch.setenv("ADSCORE_STATE", "memory://")
    monkeypatch.setenv("ADSCORE_SINKS", "stdout://jsonl")
    monkeypatch.setenv("ADSCORE_DETECTION_PATHS", str(EXAMPLE))
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.delenv("ADSCORE_CONFIG", raising=False)
    runtime.reset_engine()
    try:
        result = handler.eventbridge_handler(eventbridge(_copy_far()), LambdaContext())
    finally:
        runtime.reset_engine()
    assert result["alerts_by_detection"].get("acme.snapshot_copy_region") == 1


def test_adscore_package_ships_the_user_detections_it_has_checked(tmp_path: Path) -> None:
    import subprocess
    import sys
    import zipfile

    from adscore.packaging import PackagingError
    from adscore.packaging.gcp import build

    # GIVEN the GCP source zip built with the example folder (no download: Cloud Build installs the pins)
    path = build(tmp_path / "dist", detections=[EXAMPLE])
    with zipfile.ZipFile(path) as zf:
        assert "detections/acme_snapshot_copy_region.py" in zf.namelist()
        zf.extractall(tmp_path / "src")
    # THEN the function's code folder loads it when ADSCORE_DETECTION_PATHS names the folder
    code = "from adscore.detections import catalogue_for; from adscore.settings import load_settings; " \
           "print(catalogue_for(load_settings(None))[-1].id)"  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path / "src", capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "ADSCORE_DETECTION_PATHS": "detections"}, check=True)  # fmt: skip
    assert out.stdout.strip() == "acme.snapshot_copy_region"
    # AND a broken detection stops the build, naming it
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "acme_snapshot_copy_region.py").write_text("X = 1\n")
    with pytest.raises(PackagingError, match="defines no DETECTION"):
        build(tmp_path / "dist2", detections=[bad])


AZURE_GCP_DETECTION = '''
from adscore.actions import SNAPSHOT_CREATE
from adscore.detection import AdsMeta, Detection, Finding

def evaluate(event, ctx):
    return (Finding(entity=event.event_id, window_start=event.time, title="acme saw a snapshot",
                    summary="acme saw a snapshot", events=(event,)),)

DETECTION = Detection(
    id="acme.any_snapshot",
    meta=AdsMeta(title="Any snapshot", goal="g", technique="T1578.001", technique_name="Create Snapshot",
                 tactic="Defense Evasion", severity="low", platforms=("IaaS",), strategy="s", technical_context="t",
                 blind_spots=("b",), false_positives=("f",), priority="p", validation=("v",), response=("r",)),
    actions=frozenset({SNAPSHOT_CREATE}), evaluate=evaluate, clouds=("azure", "gcp"),
)
'''


def test_the_azure_and_gcp_functions_run_user_detections(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("azure.functions")
    pytest.importorskip("functions_framework")
    import base64
    import importlib.util
    import sys

    from adscore import runtime
    from tests.e2e.azure.conftest import event_grid, load_app

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "acme_any_snapshot.py").write_text(AZURE_GCP_DETECTION)
    out = tmp_path / "alerts.jsonl"
    for k in [k for k in __import__("os").environ if k.startswith("ADSCORE_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("ADSCORE_STATE", "memory://")
    monkeypatch.setenv("ADSCORE_SINKS", f"jsonl://{out}")
    monkeypatch.setenv("ADSCORE_DETECTION_PATHS", str(folder))
    runtime.reset_engine()
    try:
        # Azure: an Event Grid snapshot write through on_event_grid
        doc = json.loads((REPO / "tests/golden/azure_eventgrid/snapshot_write.input.json").read_text())
        load_app().on_event_grid(event_grid(doc))
        # GCP: a Pub/Sub push body through the function's own handler code
        spec = importlib.util.spec_from_file_location("adscore_gcp_main", REPO / "functions/gcp/main.py")
        assert spec is not None and spec.loader is not None
        gcp_main = importlib.util.module_from_spec(spec)
        sys.modules["adscore_gcp_main"] = gcp_main
        spec.loader.exec_module(gcp_main)
        entry = json.loads((REPO / "tests/golden/gcp_audit/snapshots_insert_first_last.input.json").read_text())
        entry = entry[0] if isinstance(entry, list) else entry
        data = base64.b64encode(json.dumps(entry).encode()).decode()
        gcp_main._pubsub({"message": {"data": data, "messageId": "1"}}, {}, "test.gcp")
    finally:
        runtime.reset_engine()
        sys.modules.pop("adscore_gcp_main", None)
    clouds = {json.loads(line)["cloud"] for line in out.read_text().splitlines()
              if json.loads(line)["detection"] == "acme.any_snapshot"}  # fmt: skip
    assert clouds == {"azure", "gcp"}
