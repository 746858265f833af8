"""``adscore emulate azure`` end to end: Azurite, the real function app, signed webhooks.

The bundled examples are the ADS validation steps as data: every detection whose examples file
is in the Azure defaults must fire through Event Grid / Event Hub and the real ``function_app.py``,
and no alert may name a principal that only the benign examples contain.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hcl2
import pytest

from adscore.detections import load_catalogue
from adscore.emulate import (
    EXAMPLE_DIRS,
    NAME_PREFIX,
    EmulationResult,
    EmulatorMissing,
    default_paths,
)
from adscore.emulate import azure as emulate_azure
from adscore.emulate import azurite as azurite_mod
from adscore.sources import parse_record
from tests.e2e.emulate_support import example_principals, json_lines, json_reporter
from tests.integration.azurite import MISSING, azurite_available

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not azurite_available(), reason=MISSING),
]


REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"
CONFIG = str(EXAMPLES / "config.yaml")
GOLDEN = REPO / "tests" / "golden"


reporter, lines, principals = json_reporter, json_lines, example_principals


# --------------------------------------------------------------------------- names


def test_resource_names_and_app_settings_are_the_terraform_modules() -> None:
    with (REPO / "infra" / "azure" / "main.tf").open() as handle:
        main = hcl2.load(handle)
    with (REPO / "infra" / "azure" / "variables.tf").open() as handle:
        variables = {k.strip('"'): v for block in hcl2.load(handle)["variable"] for k, v in block.items()}
    local = {k.strip('"'): v for block in main["locals"] for k, v in block.items()}

    def text(value: Any) -> str:
        return str(value).strip('"')

    assert text(local["function_dead_letter"]) == emulate_azure.FUNCTION_DEAD_LETTER
    assert text(local["grid_dead_letter"]) == emulate_azure.GRID_DEAD_LETTER
    assert text(local["eventhub_name"]) == emulate_azure.EVENTHUB_NAME
    assert text(local["consumer_group"]) == emulate_azure.CONSUMER_GROUP
    assert text(variables["state_table_name"]["default"]) == emulate_azure.STATE_TABLE
    assert text(variables["name_prefix"]["default"]) == NAME_PREFIX
    # every setting the emulation gives the app is one the module gives it
    settings = str(local["app_settings"]) + str(local["ingest_settings"])  # merged into app_settings
    for name in (
        "FUNCTIONS_WORKER_RUNTIME",
        "ADSCORE_STATE",
        "ADSCORE_DEADLETTER",
        "ADSCORE_EVENTHUB_NAME",
        "ADSCORE_EVENTHUB_CONSUMER_GROUP",
        "ADSCORE_SINKS",
        "ADSCORE_WEBHOOK_SECRET",
        "ADSCORE_INGEST_TOKEN",
        "ADSCORE_INGEST_SIGNING_SECRET",
    ):
        assert f"{name} =" in settings, name


def test_an_aks_kube_audit_record_carries_the_audit_event_unchanged() -> None:
    event = json.loads((EXAMPLES / "kubernetes" / "k8s_exec_copy.jsonl").read_text().splitlines()[1])
    record = emulate_azure.aks_record(event)
    assert record["category"] == "kube-audit" and json.loads(record["properties"]["log"]) == event
    (direct,) = parse_record(event, "direct")
    (via_aks,) = parse_record({"records": [record]}, "aks")
    assert via_aks.source == "aks_audit" and via_aks.principal.id == direct.principal.id
    assert (via_aks.action, via_aks.operation, via_aks.time) == (direct.action, direct.operation, direct.time)


# --------------------------------------------------------------------------- ADS validation as data


@pytest.fixture(scope="module")
def examples_run() -> tuple[EmulationResult, str]:
    rep, _, err = reporter()
    result = emulate_azure.run(default_paths("azure"), config=CONFIG, keep=False, reporter=rep)
    return result, err.getvalue()


def test_every_validated_detection_fires_through_the_function(
    examples_run: tuple[EmulationResult, str],
) -> None:
    result, notes = examples_run
    catalogue = {d.module_name: d.id for d in load_catalogue()}
    files = [f for d in EXAMPLE_DIRS["azure"] for f in sorted((EXAMPLES / d).glob("*.jsonl"))]
    expected = {catalogue[f.stem] for f in files if not f.stem.startswith("benign_") and f.stem in catalogue}
    assert expected, "no validation examples found"
    fired = result.alerts_by_detection()
    assert sorted(expected - set(fired)) == [], f"did not fire through the Azure function: {notes[-2000:]}"
    assert result.failed == 0 and result.unverified == 0
    assert result.skipped == []  # every bundled Azure and Kubernetes record has a delivery path
    assert result.delivery(emulate_azure.PATH_EVENT_GRID).invocations > 0
    hub = result.delivery(emulate_azure.PATH_EVENT_HUB)
    assert 0 < hub.invocations < hub.records  # batched, not one record per invocation
    # the self-managed cluster's webhook batch and the Docker hosts' signed batches: /api/ingest
    webhook = result.delivery(emulate_azure.PATH_INGEST_K8S)
    docker = result.delivery(emulate_azure.PATH_INGEST_DOCKER)
    assert (webhook.invocations, webhook.records) == (1, 2)
    assert docker.invocations == len(list((EXAMPLES / "docker").glob("*.jsonl"))) < docker.records
    by_principal = {(a["detection"], a["principal"]["id"]) for a in result.alerts}
    assert ("k8s.exec_copy", "kubernetes-admin") in by_principal
    assert ("container.snapshot", "docker-host:prod-web-01") in by_principal


def test_no_alert_names_a_principal_seen_only_in_benign_examples(
    examples_run: tuple[EmulationResult, str],
) -> None:
    result, _ = examples_run
    benign: set[str] = set()
    other: set[str] = set()
    for d in EXAMPLE_DIRS["azure"]:
        for f in (EXAMPLES / d).glob("*.jsonl"):
            (benign if f.stem.startswith("benign_") else other).update(principals(f))
    only_benign = benign - other
    assert only_benign, "the benign examples name no principal of their own"
    alerted = {str((a.get("principal") or {}).get("id")) for a in result.alerts}
    assert alerted and not alerted & only_benign


def test_the_state_table_holds_what_the_detections_wrote(examples_run: tuple[EmulationResult, str]) -> None:
    result, _ = examples_run
    kinds = {item["RowKey"] for item in result.state_items}
    assert {"set", "claim"} <= kinds
    claims = {item["k"] for item in result.state_items if item["RowKey"] == "claim"}
    assert {f"alert|{a['id']}|lease" for a in result.alerts} <= claims  # each alert was leased, then sent
    confirmed = {item["k"] for item in result.state_items if item["RowKey"] == "value"}
    assert {f"alert|{a['id']}|sent" for a in result.alerts} <= confirmed  # and its send confirmed
    assert result.endpoints["webhook receiver"].startswith("http://127.0.0.1:")
    assert "AccountName=devstoreaccount1" in result.env["AZURE_STORAGE_CONNECTION_STRING"]


def test_the_environment_is_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADSCORE_STATE", "sqlite:///mine.db")
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    before = dict(os.environ)
    rep, _, _ = reporter()
    result = emulate_azure.run(
        [str(EXAMPLES / "azure" / "snapshot_off_hours.jsonl")], config=CONFIG, keep=False, reporter=rep
    )
    assert result.alerts_by_detection() == {"snapshot.off_hours": 1}
    assert dict(os.environ) == before
    from adscore import runtime

    assert runtime._engine is None


# --------------------------------------------------------------------------- odd inputs


def test_foreign_shapes_are_skipped_and_a_corrupt_record_is_dead_lettered(tmp_path: Path) -> None:
    cloudtrail = {
        "eventSource": "ec2.amazonaws.com",
        "eventName": "CreateSnapshot",
        "eventVersion": "1.08",
        "eventTime": "2026-03-14T02:00:00Z",
        "userIdentity": {"type": "IAMUser"},
    }
    docker = json.loads((EXAMPLES / "docker" / "container_snapshot.jsonl").read_text().splitlines()[0])
    storage = json.loads((GOLDEN / "azure_eventgrid" / "storage_event_unsupported.input.json").read_text())
    cloudevent = json.loads((GOLDEN / "azure_cloudevents" / "snapshot_write.input.json").read_text())
    broken_aks = {
        "records": [
            {
                "category": "kube-audit",
                "resourceId": emulate_azure.AKS_RESOURCE_ID,
                "operationName": emulate_azure.AKS_OPERATION,
                "properties": {"log": "{not json"},
            }
        ]
    }
    shared = (EXAMPLES / "azure" / "snapshot_shared_external.jsonl").read_text().splitlines()
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps(cloudtrail),
                json.dumps(docker),
                "{this is not json",
                json.dumps(storage if isinstance(storage, dict) else storage[0]),
                json.dumps(cloudevent),
                json.dumps(broken_aks),
                *shared,
            ]
        )
        + "\n"
    )
    rep, out, err = reporter()
    result = emulate_azure.run([str(path)], config=CONFIG, keep=False, reporter=rep)

    skipped = "\n".join(result.skipped)
    assert f"{path}:1: aws record: no azure delivery path" in skipped
    assert f"{path}:3" in skipped  # not JSON: never sent
    assert f"{path}:4: not delivered by the Event Grid subscription" in skipped
    assert len(result.skipped) == 3
    assert result.delivery(emulate_azure.PATH_INGEST_DOCKER).records == 1  # a forwarder's batch
    # the unreadable kube-audit record was dead-lettered by the app, named by its input line
    assert result.failed == 1 and result.delivery(emulate_azure.PATH_EVENT_HUB).failed == 1
    assert f"dead-lettered {path}:6/records[0]: " in err.getvalue()
    # the rest went on: the CloudEvent and both Event Grid events reached on_event_grid
    assert result.delivery(emulate_azure.PATH_EVENT_GRID).invocations == 3
    assert result.alerts_by_detection().get("snapshot.shared_external") == 1
    summary = lines(out.getvalue())[-1]["summary"]
    assert summary["failed"] == 1 and summary["skipped"] == 3


# --------------------------------------------------------------------------- the CLI


def test_the_cli_prints_alerts_state_and_a_summary_as_json() -> None:
    small = EXAMPLES / "azure" / "snapshot_shared_external.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "adscore.cli", "emulate", "azure", "--json", "--config", CONFIG, str(small)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    docs = lines(proc.stdout)
    alerts = [d["alert"] for d in docs if "alert" in d]
    assert "snapshot.shared_external" in {a["detection"] for a in alerts}
    assert {a["principal"]["id"] for a in alerts} == {"11111111-2222-4333-8444-555555555555"}
    assert any("state_item" in d for d in docs)
    summary = docs[-1]["summary"]
    assert summary["cloud"] == "azure" and summary["alerts"] == len(alerts) and summary["failed"] == 0
    assert summary["deliveries"] == [
        {"path": emulate_azure.PATH_EVENT_GRID, "invocations": 2, "records": 2, "failed": 0}
    ]


# --------------------------------------------------------------------------- --keep


def _read_json_line(proc: subprocess.Popen[str], key: str, timeout: float = 60) -> dict[str, Any]:
    """The first JSON line on ``proc``'s stdout holding ``key`` (read in a thread: no blocking past ``timeout``)."""
    found: queue.Queue[dict[str, Any] | None] = queue.Queue()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            doc = json.loads(line)
            if key in doc:
                found.put(dict(doc[key]))
                return
        found.put(None)

    threading.Thread(target=reader, daemon=True).start()
    try:
        doc = found.get(timeout=timeout)
    except queue.Empty:
        doc = None
    if doc is None:
        raise AssertionError(f"no {key!r} line from adscore emulate (exit {proc.poll()})")
    return doc


def _children(pid: int) -> set[int]:
    out: set[int] = set()
    with contextlib.suppress(FileNotFoundError):  # gone already
        for task in Path(f"/proc/{pid}/task").iterdir():
            out.update(int(p) for p in (task / "children").read_text().split())
    return out


def _answers(url: str) -> bool:
    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def kept() -> Iterator[subprocess.Popen[str]]:
    small = EXAMPLES / "azure" / "snapshot_off_hours.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "adscore.cli",
            "emulate",
            "azure",
            "--json",
            "--keep",
            "--config",
            CONFIG,
            str(small),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:  # the test failed: stop it the clean way, then by force with its children
            children = _children(proc.pid)
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
                for pid in children:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_keep_holds_the_emulators_until_a_signal_then_stops_them(
    kept: subprocess.Popen[str], sig: signal.Signals
) -> None:
    from azure.data.tables import TableServiceClient

    keep = _read_json_line(kept, "keep")
    endpoints, env = keep["endpoints"], keep["env"]
    assert set(endpoints) >= {"table", "blob", "queue", "webhook receiver"}
    assert all(_answers(url) for url in endpoints.values())
    # the printed environment reaches the emulated storage account and its state table
    with TableServiceClient.from_connection_string(env["AZURE_STORAGE_CONNECTION_STRING"]) as service:
        assert emulate_azure.STATE_TABLE in {t.name for t in service.list_tables()}
    children = _children(kept.pid)
    assert children, "Azurite runs as a child process"

    kept.send_signal(sig)
    assert kept.wait(timeout=30) == 0
    assert not any(_answers(url) for url in endpoints.values())
    for pid in children:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
        )


# --------------------------------------------------------------------------- missing pieces


def test_missing_azurite_names_npm_ci_before_anything_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(azurite_mod, "binary", lambda name: None)
    rep, out, err = reporter()
    with pytest.raises(EmulatorMissing) as info:
        emulate_azure.run([str(EXAMPLES / "azure")], config=None, keep=False, reporter=rep)
    assert info.value.install == "npm ci" and "`npm ci`" in str(info.value)
    assert "Azurite" in str(info.value)
    assert out.getvalue() == "" and err.getvalue() == ""


def test_missing_azure_extra_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "azure.data.tables", None)  # import fails as if not installed
    rep, out, err = reporter()
    with pytest.raises(EmulatorMissing) as info:
        emulate_azure.run([str(EXAMPLES / "azure")], config=None, keep=False, reporter=rep)
    assert "pip install 'adscore[azure]'" in str(info.value)
    assert out.getvalue() == "" and err.getvalue() == ""
