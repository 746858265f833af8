"""The command line: events, replay, detections, ads, validate-settings, state init."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from adscore.cli import main

REPO = Path(__file__).resolve().parents[2]


def _ct(i: int, name: str = "CreateSnapshot", **extra: object) -> dict[str, object]:
    rec: dict[str, object] = {
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice", "accountId": "111122223333",
                         "userName": "alice"},
        "eventTime": f"2026-03-14T02:{i:02d}:00Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": {"volumeId": f"vol-{i}"},
        "responseElements": {"snapshotId": f"snap-{i}"},
        "eventID": f"evt-{i}",
        "readOnly": False,
        "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333",
    }
    rec.update(extra)
    return rec


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_events_prints_normalized_json_lines_and_reports_bad_lines(tmp_path: Path, runner: CliRunner) -> None:
    f = tmp_path / "trail.jsonl"
    f.write_text(json.dumps(_ct(1)) + "\n{truncated\n" + json.dumps(_ct(2)) + "\n")
    res = runner.invoke(main, ["events", str(f)])
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert [e["event_id"] for e in lines] == ["evt-1", "evt-2"]
    ev = lines[0]
    assert ev["action"] == "snapshot.create" and ev["operation"] == "ec2:CreateSnapshot"
    assert ev["principal"]["id"] == "arn:aws:iam::111122223333:user/alice"
    assert ev["time"] == "2026-03-14T02:01:00Z"
    for key in ("cloud", "source", "service", "read_only", "outcome", "error_code", "source_ip", "user_agent",
                "account", "region", "resources", "targets"):
        assert key in ev
    assert f"{f}:2" in res.stderr and "1 errors" in res.stderr


def test_events_strict_exits_2_on_a_bad_record(tmp_path: Path, runner: CliRunner) -> None:
    f = tmp_path / "trail.jsonl"
    f.write_text(json.dumps(_ct(1)) + "\nnot json\n")
    assert runner.invoke(main, ["events", "--strict", str(f)]).exit_code == 2
    f.write_text(json.dumps(_ct(1)) + "\n")
    assert runner.invoke(main, ["events", "--strict", str(f)]).exit_code == 0


def test_events_reads_gzip_cloudtrail_files_and_stdin(tmp_path: Path, runner: CliRunner) -> None:
    f = tmp_path / "111122223333_CloudTrail_us-east-1_x.json.gz"
    f.write_bytes(gzip.compress(json.dumps({"Records": [_ct(1), _ct(2), _ct(3)]}).encode()))
    res = runner.invoke(main, ["events", str(tmp_path)])
    assert len(res.stdout.splitlines()) == 3
    res = runner.invoke(main, ["events", "-"], input=json.dumps(_ct(4)) + "\n")
    assert json.loads(res.stdout)["event_id"] == "evt-4"


def test_replay_jsonl_output_and_fresh_state_each_run(tmp_path: Path, runner: CliRunner) -> None:
    f = tmp_path / "share.jsonl"
    share = _ct(
        5,
        name="ModifySnapshotAttribute",
        requestParameters={"snapshotId": "snap-5", "attributeType": "CREATE_VOLUME_PERMISSION",
                           "createVolumePermission": {"add": {"items": [{"userId": "999988887777"}]}}},
        responseElements={"_return": True},
    )
    f.write_text(json.dumps(share) + "\n")
    outs = []
    for _ in range(2):
        res = runner.invoke(main, ["replay", str(f), "--output", "jsonl"])
        assert res.exit_code == 0, res.output
        outs.append([json.loads(line) for line in res.stdout.splitlines()])
    assert outs[0] == outs[1], "a fresh state per run shows the same alerts"
    detections = {a["detection"] for a in outs[0]}
    assert "snapshot.shared_external" in detections
    alert = next(a for a in outs[0] if a["detection"] == "snapshot.shared_external")
    for key in ("id", "detection", "technique", "severity", "principal", "cloud", "account", "first_seen",
                "last_seen", "count", "evidence"):
        assert key in alert
    assert "evt-5" in alert["evidence"]["event_ids"]
    assert "records" in res.stderr and "alerts" in res.stderr


def test_replay_pauses_the_garbage_collector_while_it_decodes_and_restores_it(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    from adscore.sources import files

    real = files.read_inputs
    while_reading: list[bool] = []

    def spying(paths: list[str], **kwargs):  # type: ignore[no-untyped-def]
        for item in real(paths, **kwargs):
            while_reading.append(gc.isenabled())
            yield item

    monkeypatch.setattr(files, "read_inputs", spying)
    f = tmp_path / "snaps.jsonl"
    f.write_text("".join(json.dumps(_ct(i)) + "\n" for i in range(5)))
    was = gc.isenabled()
    gc.enable()
    try:
        res = runner.invoke(main, ["replay", str(f), "--output", "jsonl"])
        assert res.exit_code == 0, res.output
        assert while_reading == [False] * 5
        assert gc.isenabled()
    finally:
        if not was:
            gc.disable()


def test_replay_with_kept_state_does_not_resend(tmp_path: Path, runner: CliRunner) -> None:
    f = tmp_path / "share.jsonl"
    share = _ct(5, name="ModifySnapshotAttribute",
                requestParameters={"snapshotId": "snap-5",
                                   "createVolumePermission": {"add": {"items": [{"group": "all"}]}}})
    f.write_text(json.dumps(share) + "\n")
    db = tmp_path / "state.db"
    first = runner.invoke(main, ["replay", str(f), "--output", "jsonl", "--state", f"sqlite:///{db}"])
    second = runner.invoke(main, ["replay", str(f), "--output", "jsonl", "--state", f"sqlite:///{db}"])
    assert first.stdout.strip() and not second.stdout.strip()
    assert "already sent" in second.stderr


def test_replay_bad_config_names_the_setting(tmp_path: Path, runner: CliRunner) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("calendar: {default: {timezone: Nowhere/Land}}\n")
    res = runner.invoke(main, ["replay", str(tmp_path), "--config", str(cfg)])
    assert res.exit_code == 2
    assert "calendar.default.timezone" in res.stderr


def test_detections_and_ads(runner: CliRunner, tmp_path: Path) -> None:
    res = runner.invoke(main, ["detections", "--json"])
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    ids = {r["id"] for r in rows}
    assert {"snapshot.shared_external", "discovery.api_burst", "chain.discovery_then_snapshot"} <= ids
    res = runner.invoke(main, ["ads", "snapshot.burst"])
    for section in ("## Goal", "## Categorization", "## Strategy Abstract", "## Technical Context",
                    "## Blind Spots and Assumptions", "## False Positives", "## Priority", "## Validation",
                    "## Response", "## Additional Resources"):
        assert section in res.stdout
    res = runner.invoke(main, ["ads", "--out", str(tmp_path / "ads")])
    assert res.exit_code == 0
    assert len(list((tmp_path / "ads").glob("*.md"))) == len(ids)
    assert runner.invoke(main, ["ads", "no.such"]).exit_code == 2


def test_validate_settings(tmp_path: Path, runner: CliRunner) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("detections: {snapshot.burst: {threshold: -1}}\n")
    res = runner.invoke(main, ["validate-settings", "--config", str(cfg)])
    assert res.exit_code == 2 and "detections.snapshot.burst" in res.stderr
    res = runner.invoke(main, ["validate-settings", "--config", str(REPO / "examples" / "config.yaml")])
    assert res.exit_code == 0, res.stderr


def test_state_init_sqlite_is_idempotent(tmp_path: Path, runner: CliRunner) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    for _ in range(2):
        res = runner.invoke(main, ["state", "init", url])
        assert res.exit_code == 0
        assert json.loads(res.stdout)["backend"] == "sqlite"


@pytest.mark.parametrize("command", ["replay", "events"])
def test_a_missing_path_or_object_store_url_exits_2_before_any_work(
    command: str, tmp_path: Path, runner: CliRunner
) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps(_ct(1)) + "\n")
    for missing in (str(tmp_path / "nope.json"), "ftp://host/AWSLogs/"):
        result = runner.invoke(main, [command, str(good), missing])
        assert result.exit_code == 2
        assert f"no such file or directory: {missing!r}" in result.stderr
        assert result.stdout == ""  # nothing read or printed: the good file is not half-processed


@pytest.mark.parametrize("command", ["replay", "events"])
def test_inputs_that_hold_no_record_exit_2(command: str, tmp_path: Path, runner: CliRunner) -> None:
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "notes.txt").write_text("not a log file")
    for path in (tmp_path / "empty.jsonl", tmp_path / "folder"):
        result = runner.invoke(main, [command, str(path)])
        assert result.exit_code == 2, result.stderr
        assert "no readable records in" in result.stderr


def test_version_is_the_package_version(runner: CliRunner) -> None:
    from adscore import __version__

    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.stdout
