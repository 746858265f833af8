"""``adscore emulate gcp`` end to end: the real function on functions-framework, fed as the push subscription feeds it.

The ADS validation test runs the bundled examples through the emulation and checks, from the file
names and the catalogue alone, that every detection whose validation they record fires, and that
nothing fires for principals that appear only in the benign recordings.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from adscore.detections import load_catalogue
from adscore.emulate import EXAMPLE_DIRS, EmulationResult, EmulatorMissing, default_paths, free_port
from adscore.emulate import gcp as emulate_gcp
from adscore.errors import AdscoreError
from adscore.sources.files import read_inputs
from tests.e2e.emulate_support import example_principals, json_lines, json_reporter

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration


REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"
CONFIG = str(EXAMPLES / "config.yaml")


@pytest.fixture(autouse=True)
def _needs_functions_framework() -> None:
    gap = emulate_gcp.missing()
    if gap is not None:
        pytest.skip(f"{gap[0]} is not installed: {gap[1]}")


_reporter, _lines, _principals = json_reporter, json_lines, example_principals


# --------------------------------------------------------------------------- ADS validation as data


@pytest.fixture(scope="module")
def examples_run() -> tuple[EmulationResult, str]:
    reporter, out, _ = _reporter()
    result = emulate_gcp.run(default_paths("gcp"), config=CONFIG, keep=False, reporter=reporter)
    return result, out.getvalue()


def test_every_detection_with_examples_fires_through_the_gcp_path(
    examples_run: tuple[EmulationResult, str],
) -> None:
    result, _ = examples_run
    by_module = {d.module_name: d.id for d in load_catalogue()}
    files = [f for d in EXAMPLE_DIRS["gcp"] for f in sorted((EXAMPLES / d).glob("*.jsonl"))]
    expected = {by_module[f.stem] for f in files if not f.stem.startswith("benign_")}
    assert expected, "no attack examples found"
    fired = result.alerts_by_detection()
    assert sorted(expected - set(fired)) == []

    benign = set().union(*(_principals(f) for f in files if f.stem.startswith("benign_")))
    attack = set().union(*(_principals(f) for f in files if not f.stem.startswith("benign_")))
    only_benign = benign - attack
    assert only_benign, "the benign examples name no principal of their own"
    noisy = {a["principal"]["id"] for a in result.alerts if a["principal"]["id"] in only_benign}
    assert noisy == set()


def test_examples_are_all_delivered_signed_and_stored(examples_run: tuple[EmulationResult, str]) -> None:
    result, out = examples_run
    assert result.failed == 0 and result.unverified == 0
    assert result.skipped == []
    # every example record went through one of the two real delivery paths
    total = sum(
        len(r[1]["items"]) if r[1].get("kind") == "EventList" else 1  # a webhook batch: its events
        for d in EXAMPLE_DIRS["gcp"]
        for f in (EXAMPLES / d).glob("*.jsonl")
        for r in read_inputs([str(f)])
    )
    pubsub, k8s = result.deliveries[emulate_gcp.PUBSUB_PATH], result.deliveries[emulate_gcp.K8S_PATH]
    docker = result.deliveries[emulate_gcp.DOCKER_PATH]
    assert pubsub.records + k8s.records + docker.records == total
    assert docker.records == sum(1 for f in (EXAMPLES / "docker").glob("*.jsonl") for _ in read_inputs([str(f)]))
    assert docker.invocations < docker.records  # signed batches, as adscore forward docker posts them
    by_principal = {(a["detection"], a["principal"]["id"]) for a in result.alerts}
    assert ("k8s.exec_copy", "kubernetes-admin") in by_principal  # the self-managed cluster's batch
    assert ("container.snapshot", "docker-host:prod-web-01") in by_principal
    assert pubsub.invocations == pubsub.records  # one push request per message
    assert k8s.invocations < k8s.records  # audit events go in EventList batches
    # alerts were printed as they arrived, then state items, then the summary
    lines = _lines(out)
    assert [line["alert"]["id"] for line in lines if "alert" in line] == [a["id"] for a in result.alerts]
    kinds = {line["state_item"]["kind"] for line in lines if "state_item" in line}
    assert {"set", "value", "claim"} <= kinds
    assert len(result.state_items) == sum(1 for line in lines if "state_item" in line)
    claims = {i["key"] for i in result.state_items if i["kind"] == "claim"}
    assert {f"alert|{a['id']}|lease" for a in result.alerts} <= claims  # each alert was leased in the store
    confirmed = {i["key"] for i in result.state_items if i["kind"] == "value"}
    assert {f"alert|{a['id']}|sent" for a in result.alerts} <= confirmed  # and its send confirmed
    summary = lines[-1]["summary"]
    assert summary["alerts"] == len(result.alerts) and summary["failed"] == 0


# --------------------------------------------------------------------------- shapes


def _first_line(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8").splitlines()[0]))


def test_foreign_and_corrupt_records_are_reported_and_the_rest_delivered(tmp_path: Path) -> None:
    off_hours = _first_line(EXAMPLES / "gcp" / "snapshot_off_hours.jsonl")
    shared = [
        json.loads(x) for x in (EXAMPLES / "gcp" / "snapshot_shared_external.jsonl").read_text().splitlines()
    ]
    data = [base64.b64encode(json.dumps(e).encode()).decode() for e in shared]
    broken = {**off_hours, "insertId": "-broken-entry", "protoPayload": "not an AuditLog"}
    records = [
        json.dumps(_first_line(EXAMPLES / "docker" / "container_snapshot.jsonl")),
        "{this is not json",
        json.dumps({"message": {"data": "@@not-base64@@", "messageId": "7"}, "subscription": "s"}),
        json.dumps(broken),  # delivered; the function acknowledges it as unreadable
        json.dumps(off_hours),
        # already wrapped: a push body and a CloudEvent, unwrapped and delivered again as Eventarc does
        json.dumps(
            {"message": {"data": data[0], "messageId": "1"}, "subscription": "projects/p/subscriptions/s"}
        ),
        json.dumps(
            {
                "specversion": "1.0",
                "type": "google.cloud.pubsub.topic.v1.messagePublished",
                "source": "//pubsub.googleapis.com/projects/p/topics/t",
                "id": "2",
                "data": {"message": {"data": data[1], "messageId": "2"}},
            }
        ),
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(records) + "\n", encoding="utf-8")
    reporter, _, _ = _reporter()
    result = emulate_gcp.run([str(path)], config=CONFIG, keep=False, reporter=reporter)

    assert result.alerts_by_detection().get("snapshot.off_hours") == 1
    assert result.alerts_by_detection().get("snapshot.shared_external") == 1
    assert any(s.startswith(f"{path}:2:") for s in result.skipped)  # not JSON
    assert any(s.startswith(f"{path}:3:") and "base64" in s for s in result.skipped)
    assert len(result.skipped) == 2
    assert result.deliveries[emulate_gcp.DOCKER_PATH].records == 1  # the Docker event: a forwarder's batch
    pubsub = result.deliveries[emulate_gcp.PUBSUB_PATH]
    assert (pubsub.invocations, pubsub.records) == (4, 4)
    assert pubsub.failed == 1  # the unreadable entry, as the function reported it
    assert emulate_gcp.K8S_PATH not in result.deliveries
    kept = Path(result.endpoints["function logs"])  # kept for a look, since something failed
    logged = [
        json.loads(x) for x in (kept / "on_pubsub_push.log").read_text().splitlines() if x.startswith("{")
    ]
    assert [r["event"] for r in logged if r.get("event") == "rejected"] == ["rejected"]
    # AND the unreadable entry is in the dead-letter store with its bytes and reason
    [letter] = [
        json.loads(x)
        for x in Path(result.endpoints["dead letters"].removeprefix("file://")).read_text().splitlines()
    ]
    assert letter["source"] == "gcp.on_pubsub_push" and letter["reason"]
    shutil.rmtree(kept)


def test_the_cli_prints_json_lines_and_exits_zero() -> None:
    sample = EXAMPLES / "kubernetes" / "k8s_exec_copy.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "adscore.cli", "emulate", "gcp", "--json", str(sample)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = _lines(proc.stdout)
    alerts = [line["alert"] for line in lines if "alert" in line]
    assert [a["detection"] for a in alerts] == ["k8s.exec_copy"]
    summary = lines[-1]["summary"]
    assert summary["alerts"] == 1 and summary["failed"] == 0 and summary["unverified"] == 0
    assert summary["deliveries"] == [
        {
            "path": emulate_gcp.K8S_PATH,
            "invocations": 1,
            "records": sum(1 for _ in sample.open()),
            "failed": 0,
        }
    ]
    assert "FIRESTORE_EMULATOR_HOST unset" in proc.stderr or "Firestore emulator at" in proc.stderr


# --------------------------------------------------------------------------- --keep


def _children(pid: int) -> set[int]:
    """Every descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _port_open(url: str) -> bool:
    port = int(url.rstrip("/").rsplit(":", 1)[1].split("/")[0])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def keep_proc() -> Iterator[subprocess.Popen[str]]:
    sample = EXAMPLES / "gcp" / "snapshot_off_hours.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "adscore.cli", "emulate", "gcp", "--json", "--keep", str(sample)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_keep_leaves_the_function_up_until_a_signal(
    keep_proc: subprocess.Popen[str], sig: signal.Signals
) -> None:
    assert keep_proc.stdout is not None
    lines: list[dict[str, Any]] = []
    for raw in keep_proc.stdout:
        lines.append(json.loads(raw))
        if "keep" in lines[-1]:
            break
    keep = lines[-1]["keep"]
    env, endpoints = keep["env"], keep["endpoints"]
    assert [line["alert"]["detection"] for line in lines if "alert" in line] == ["snapshot.off_hours"]
    assert env["ADSCORE_STATE"].startswith(("sqlite:///", "firestore://"))
    children = _children(keep_proc.pid)
    assert children, "no server processes"

    # the function answers a push body the user sends, and its alert is printed as it arrives
    entry = _first_line(EXAMPLES / "gcp" / "snapshot_shared_external.jsonl")
    setiam = json.loads((EXAMPLES / "gcp" / "snapshot_shared_external.jsonl").read_text().splitlines()[1])
    for n, e in enumerate((entry, setiam)):
        headers, body = emulate_gcp.push_request(e, f"9{n}")
        assert (
            httpx.post(env["ADSCORE_GCP_FUNCTION_URL"], headers=headers, content=body, timeout=60).status_code
            == 204  # the push subscription is acknowledged
        )
    alert = json.loads(keep_proc.stdout.readline())["alert"]
    assert alert["detection"] == "snapshot.shared_external"
    # AND the ingest endpoint takes a self-managed cluster's EventList with the printed token
    from tests.e2e.ingest_support import event_list, exec_copy_event

    bearer = {"content-type": "application/json", "authorization": f"Bearer {env['ADSCORE_INGEST_TOKEN']}"}
    body = event_list(exec_copy_event("grace@example.com", "ledger-0"))
    assert httpx.post(env["ADSCORE_K8S_AUDIT_URL"], headers=bearer, content=body, timeout=60).status_code == 200
    assert json.loads(keep_proc.stdout.readline())["alert"]["detection"] == "k8s.exec_copy"
    assert httpx.post(endpoints["webhook receiver"], content=b"{}", timeout=10).status_code == 200  # unsigned

    urls = [env["ADSCORE_GCP_FUNCTION_URL"], env["ADSCORE_K8S_AUDIT_URL"], env["ADSCORE_WEBHOOK_URL"]]
    assert all(_port_open(u) for u in urls)
    keep_proc.send_signal(sig)
    assert keep_proc.wait(timeout=60) == 1  # the unsigned request is counted as unverified
    assert not any(_port_open(u) for u in urls)
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p for p in children if _alive(p)] == []


# --------------------------------------------------------------------------- missing or unreachable emulators


def test_a_missing_functions_framework_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        return None if name == "functions_framework" else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    reporter, out, err = _reporter()
    with pytest.raises(EmulatorMissing) as info:
        emulate_gcp.run(default_paths("gcp"), config=None, keep=False, reporter=reporter)
    assert info.value.install == "pip install 'adscore[gcp]'"
    assert "functions-framework is not installed: run `pip install 'adscore[gcp]'`" in str(info.value)
    assert out.getvalue() == "" and err.getvalue() == ""  # nothing was started

    from click.testing import CliRunner

    from adscore.cli import main

    cli = CliRunner().invoke(main, ["emulate", "gcp"])
    assert cli.exit_code == 2
    assert "pip install 'adscore[gcp]'" in cli.output


def test_an_emulator_variable_pointing_nowhere_fails_before_starting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{free_port()}")
    reporter, out, _ = _reporter()
    with pytest.raises(AdscoreError, match=r"FIRESTORE_EMULATOR_HOST=127\.0\.0\.1:[0-9]+: nothing answers"):
        emulate_gcp.run([str(EXAMPLES / "gcp")], config=None, keep=False, reporter=reporter)
    assert out.getvalue() == ""


@pytest.mark.skipif(
    not os.environ.get("FIRESTORE_EMULATOR_HOST"), reason="FIRESTORE_EMULATOR_HOST is not set"
)
def test_state_in_the_firestore_emulator() -> None:
    reporter, _, err = _reporter()
    result = emulate_gcp.run(
        [str(EXAMPLES / "gcp" / "snapshot_off_hours.jsonl")], config=CONFIG, keep=False, reporter=reporter
    )
    assert result.alerts_by_detection() == {"snapshot.off_hours": 1} and result.failed == 0
    assert "firestore://adscore-state?database=adscore" in err.getvalue()
    assert {f"alert|{result.alerts[0]['id']}|sent"} <= {
        i["key"] for i in result.state_items if i["kind"] == "value"
    }


@pytest.mark.skipif(not os.environ.get("PUBSUB_EMULATOR_HOST"), reason="PUBSUB_EMULATOR_HOST is not set")
def test_alerts_and_dead_letters_through_the_pubsub_emulator() -> None:
    reporter, _, err = _reporter()
    result = emulate_gcp.run(
        [str(EXAMPLES / "gcp" / "snapshot_off_hours.jsonl")], config=CONFIG, keep=False, reporter=reporter
    )
    assert result.alerts_by_detection() == {"snapshot.off_hours": 1} and result.failed == 0
    assert f"topics {emulate_gcp.ALERTS_TOPIC} and {emulate_gcp.DEADLETTER_TOPIC} created" in err.getvalue()
