"""The Azure Functions app end to end: real trigger objects in, Azurite state and signed webhooks out.

Each test calls the app's trigger functions with the objects the Python worker would pass
(``EventGridEvent`` / ``CloudEvent`` from the library's own converter, ``EventHubEvent`` with
diagnostic-settings bodies), with state in Azurite Table storage, dead letters in Azurite Blob or
Queue storage, and alerts sent to a loopback webhook that checks the HMAC signature.
"""

from __future__ import annotations

import base64
import json
import logging
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from adscore.errors import SinkError
from adscore.state.azure_table import encode_key
from adscore.state.base import fit_key
from tests.e2e.azure.conftest import (
    SAMPLES,
    SECRET,
    AppEnv,
    Invocation,
    event_grid,
    event_hub,
    golden,
    graph_sweep,
)
from tests.integration.azurite import ACCOUNT_KEY, free_port

if TYPE_CHECKING:
    from types import ModuleType

pytestmark = pytest.mark.integration

SNAPSHOT = (
    "/subscriptions/7d4a9c2e-1f3b-4c5d-8e6f-0a1b2c3d4e5f/resourcegroups/prod-rg/providers/microsoft.compute"
)
ALICE = "f409edeb-4d29-44b5-9763-ee9348ad91bb"


def summaries(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The JSON summary line the app logs per invocation."""
    out = []
    for record in caplog.records:
        if record.name == "adscore.functions.azure" and "adscore batch" in record.getMessage():
            out.append(json.loads(record.getMessage().split(": ", 1)[1]))
    return out


def claim_entity(env: AppEnv, alert_id: str) -> dict[str, Any] | None:
    """The confirmed send that deduplicates the alert (its lease is a claim; the confirmation a value)."""
    pk = encode_key(fit_key(f"alert|{alert_id}|sent"))
    return next((e for e in env.entities() if e["PartitionKey"] == pk and e["RowKey"] == "value"), None)


# --------------------------------------------------------------------------- the app's shape


def test_the_app_declares_its_functions_with_their_triggers(app: ModuleType) -> None:
    functions = {f.get_function_name(): f for f in app.app.get_functions()}
    assert set(functions) == {"on_event_grid", "on_event_hub", "on_ingest", "cleanup_state"}
    grid = json.loads(functions["on_event_grid"].get_function_json())["bindings"]
    hub = json.loads(functions["on_event_hub"].get_function_json())["bindings"]
    assert grid == [{"direction": "IN", "type": "eventGridTrigger", "name": "event"}]
    assert hub[0]["type"] == "eventHubTrigger" and hub[0]["cardinality"] == "MANY"
    assert hub[0]["connection"] == "ADSCORE_EVENTHUB" and hub[0]["eventHubName"] == "%ADSCORE_EVENTHUB_NAME%"
    retry = functions["on_event_hub"].get_settings_dict("retry_policy")
    assert retry is not None and retry["strategy"] == "exponential_backoff"
    assert int(retry["max_retry_count"]) == app.EVENTHUB_RETRIES
    # the functions the host calls are the module's plain functions the tests call
    assert functions["on_event_grid"].get_user_function() is app.on_event_grid
    assert functions["on_event_hub"].get_user_function() is app.on_event_hub
    # the ingest endpoint: anonymous at the platform (an API server cannot send a function key),
    # adscore.ingest authenticates (bearer token, Standard Webhooks signature)
    http = json.loads(functions["on_ingest"].get_function_json())["bindings"]
    trigger = next(b for b in http if b["type"] == "httpTrigger")
    assert trigger["route"] == "ingest" and trigger["methods"] == ["POST"] and trigger["authLevel"] == "ANONYMOUS"
    assert functions["on_ingest"].get_user_function() is app.on_ingest
    timer = json.loads(functions["cleanup_state"].get_function_json())["bindings"]
    assert timer[0]["type"] == "timerTrigger" and timer[0]["schedule"] == app.CLEANUP_SCHEDULE


def test_host_json_and_example_settings_are_consistent() -> None:
    folder = Path(__file__).resolve().parents[3] / "functions" / "azure"
    host = json.loads((folder / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensionBundle"]["id"] == "Microsoft.Azure.Functions.ExtensionBundle"
    assert host["extensions"]["eventHubs"]["maxEventBatchSize"] >= 1
    values = json.loads((folder / "local.settings.example.json").read_text())["Values"]
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert values["ADSCORE_STATE"].startswith("azuretable://")
    for setting in ("ADSCORE_EVENTHUB", "ADSCORE_EVENTHUB_NAME", "ADSCORE_EVENTHUB_CONSUMER_GROUP"):
        assert setting in values


# --------------------------------------------------------------------------- Event Grid


def test_snapshot_write_is_remembered_in_table_storage(
    app: ModuleType, app_env: AppEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adscore.functions.azure")
    app.on_event_grid(event_grid(golden("azure_eventgrid/snapshot_write.input.json")))
    [summary] = summaries(caplog)
    assert summary["counts"]["events"] == 1 and summary["counts"]["routed"] == 1
    assert summary["failed_records"] == 0 and summary["alerts"] == []
    # the detections' state is in Azurite: the snapshot's creator, for a later share or restore
    entities = app_env.entities()
    assert entities, "nothing was written to Table storage"
    assert {e["RowKey"] for e in entities} <= {"set", "value", "claim"}
    assert any(ALICE in str(e.get("v", "")) or ALICE in e["k"] for e in entities)
    assert app_env.alerts() == []


@pytest.mark.parametrize(
    ("delivery", "resource"),
    [
        (
            lambda: golden("azure_eventgrid/snapshot_begingetaccess.input.json")[0],
            "snapshots/web01-osdisk-snap",
        ),
        (lambda: golden("azure_cloudevents/disk_begingetaccess_batch.input.json")[0], "disks/web01-osdisk"),
    ],
    ids=["eventgrid-schema", "cloudevents-schema"],
)
def test_begin_get_access_sends_one_signed_alert(
    app: ModuleType, app_env: AppEnv, caplog: pytest.LogCaptureFixture, delivery: Any, resource: str
) -> None:
    caplog.set_level(logging.INFO, logger="adscore.functions.azure")
    app.on_event_grid(event_grid(delivery()))
    [alert] = app_env.alerts()
    assert alert["detection"] == "snapshot.shared_external"
    assert alert["technique"] == "T1578.001"
    assert alert["principal"]["id"] == ALICE
    assert any(r["id"] == f"{SNAPSHOT}/{resource}" for r in alert["resources"])
    # the alert's claim is in Azurite and the log names the alert id
    assert claim_entity(app_env, alert["id"]) is not None
    [summary] = summaries(caplog)
    assert [a["id"] for a in summary["alerts"]] == [alert["id"]] == summary["sent"]


def test_three_deliveries_of_the_same_events_send_one_alert(app: ModuleType, app_env: AppEnv) -> None:
    from adscore import runtime

    events = [
        golden("azure_eventgrid/snapshot_write.input.json"),
        golden("azure_eventgrid/snapshot_begingetaccess.input.json")[0],
    ]
    for _ in range(3):
        runtime.reset_engine()  # each delivery may land on another instance
        for doc in events:
            app.on_event_grid(event_grid(doc))
    assert [a["detection"] for a in app_env.alerts()] == ["snapshot.shared_external"]
    assert len(app_env.receiver.requests) == 1


def test_an_event_type_adscore_does_not_read_is_dead_lettered_not_retried(
    app: ModuleType, app_env: AppEnv
) -> None:
    doc = golden("azure_eventgrid/storage_event_unsupported.input.json")
    doc = doc[0] if isinstance(doc, list) else doc
    app.on_event_grid(event_grid(doc))  # no exception: Event Grid must not redeliver it
    [dead] = app_env.dead_letters()
    assert dead["source"] == "azure.on_event_grid" and dead["location"] == f"eventgrid:{doc['id']}"
    assert "unsupported Event Grid event type" in dead["reason"]
    assert json.loads(dead["body"])["eventType"] == doc["eventType"]


def test_an_unreachable_webhook_makes_the_function_raise_and_a_retry_delivers(
    app: ModuleType, app_env: AppEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adscore import runtime

    share = event_grid(golden("azure_eventgrid/snapshot_begingetaccess.input.json")[0])
    monkeypatch.setenv("ADSCORE_SINKS", f"http://127.0.0.1:{free_port()}/hook")
    runtime.reset_engine()
    with pytest.raises(SinkError):
        app.on_event_grid(share)
    assert app_env.dead_letters() == []  # Event Grid redelivers: nothing to dead-letter
    # WHEN Event Grid redelivers to an instance whose webhook answers, THEN the alert goes out:
    # its claim was released when the send failed
    monkeypatch.setenv("ADSCORE_SINKS", app_env.receiver.url)
    runtime.reset_engine()
    app.on_event_grid(share)
    assert [a["detection"] for a in app_env.alerts()] == ["snapshot.shared_external"]


def test_the_documented_resource_events_never_crash_the_function(app: ModuleType, app_env: AppEnv) -> None:
    path = SAMPLES / "microsoft-azure-docs" / "event-grid-resource-group-examples.json"
    if not path.exists():
        pytest.skip("shared samples not present")
    docs = json.loads(path.read_text(encoding="utf-8"))
    for doc in docs:
        app.on_event_grid(event_grid(doc))
    # each event was either read or dead-lettered with a reason: none was dropped silently
    dead = {d["location"]: d["reason"] for d in app_env.dead_letters()}
    assert all(reason for reason in dead.values())
    assert set(dead) <= {f"eventgrid:{d['id']}" for d in docs}


# --------------------------------------------------------------------------- Event Hub


def test_diagnostic_records_from_event_hub_raise_a_discovery_alert(
    app: ModuleType, app_env: AppEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adscore.functions.azure")
    sweep = graph_sweep()
    events = event_hub(
        golden("azure_activity/snapshot_write_started_succeeded.input.json"),
        golden("azure_kube_audit/pod_exec.input.json"),
        {"records": sweep[:12]},
        {"records": sweep[12:]},
    )
    app.on_event_hub(events, Invocation())
    [summary] = summaries(caplog)
    assert summary["counts"]["records"] == 2 + 1 + len(sweep)
    assert summary["counts"]["events"] == summary["counts"]["records"]
    assert summary["failed_records"] == 0 and summary["dead_lettered"] == 0
    [alert] = app_env.alerts()
    assert alert["detection"] == "discovery.api_burst"
    assert alert["technique"] == "T1526"
    assert alert["principal"]["id"] == ALICE
    assert alert["count"] == len(sweep)
    assert summary["sent"] == [alert["id"]]
    assert claim_entity(app_env, alert["id"]) is not None
    # the counting sets live in Azurite: one entity per set, members as JSON arrays
    sets = [e for e in app_env.entities() if e["RowKey"] == "set"]
    assert max(int(e["n"]) for e in sets) >= len(sweep)


def test_a_corrupt_record_is_dead_lettered_and_the_rest_of_the_batch_processed(
    app: ModuleType, app_env: AppEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adscore.functions.azure")
    truncated = golden("azure_kube_audit/truncated_log.input.json")
    events = event_hub(
        {"records": graph_sweep()}, truncated, b'{"records": [{"time": "2024-05-14T1', first_sequence=7
    )
    app.on_event_hub(events, Invocation())  # does not raise: retrying cannot mend these records
    dead = {d["location"]: d for d in app_env.dead_letters()}
    assert set(dead) == {"eventhub:8/records[0]", "eventhub:9"}
    assert "properties.log is not valid JSON" in dead["eventhub:8/records[0]"]["reason"]
    assert json.loads(dead["eventhub:8/records[0]"]["body"]) == truncated["records"][0]
    assert "not JSON" in dead["eventhub:9"]["reason"]
    assert dead["eventhub:9"]["body"] == '{"records": [{"time": "2024-05-14T1'
    # the good records were processed: their alert went out
    assert [a["detection"] for a in app_env.alerts()] == ["discovery.api_burst"]
    [summary] = summaries(caplog)
    assert summary["dead_lettered"] == 2


def test_dead_letters_can_go_to_a_queue(
    app: ModuleType, app_env: AppEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.storage.queue import QueueClient

    queue = f"dlq{app_env.table[-10:].lower()}"
    monkeypatch.setenv("ADSCORE_DEADLETTER", f"azqueue://{queue}")
    huge = b"{" + b"\x01" * 200_000  # not JSON, and far over a queue message's 64 KiB once escaped
    app.on_event_hub(event_hub(b"\xff\xfe not json", huge), Invocation())
    client = QueueClient.from_connection_string(app_env.azurite.connection_string, queue)
    docs = {
        d["location"]: d
        for d in (json.loads(base64.b64decode(m.content)) for m in client.receive_messages(max_messages=10))
    }
    assert set(docs) == {"eventhub:100", "eventhub:101"}
    assert all("not JSON" in d["reason"] for d in docs.values())
    # the bytes as they came: not UTF-8, so base64; too long for a queue message, so cut and said so
    assert base64.b64decode(docs["eventhub:100"]["body_base64"]) == b"\xff\xfe not json"
    assert docs["eventhub:101"]["truncated_from"] == len(huge) and docs["eventhub:101"]["body"].startswith(
        "{"
    )


def test_a_sink_failure_fails_the_batch_and_the_last_retry_dead_letters_it(
    app: ModuleType, app_env: AppEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adscore import runtime

    monkeypatch.setenv("ADSCORE_SINKS", f"http://127.0.0.1:{free_port()}/hook")
    runtime.reset_engine()
    events = event_hub({"records": graph_sweep()})
    # a retry to come: raise, dead-letter nothing
    with pytest.raises(SinkError):
        app.on_event_hub(events, Invocation(retry_count=1, max_retry_count=8))
    assert app_env.dead_letters() == []
    # the last retry: still raise, but keep the records behind the unsent alert
    with pytest.raises(SinkError):
        app.on_event_hub(events, Invocation(retry_count=8, max_retry_count=8))
    dead = app_env.dead_letters()
    assert dead and all("not delivered" in d["reason"] for d in dead)
    assert {d["location"] for d in dead} <= {f"eventhub:100/records[{i}]" for i in range(24)}


def test_logs_hold_counts_and_ids_but_no_secret_nor_event(
    app: ModuleType, app_env: AppEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app.on_event_grid(event_grid(golden("azure_eventgrid/snapshot_begingetaccess.input.json")[0]))
    app.on_event_hub(event_hub({"records": graph_sweep()}), Invocation())
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert len(summaries(caplog)) == 2
    for secret in (SECRET, ACCOUNT_KEY, "alice@contoso.com", "203.0.113.24", "PowerShell/7.4.2"):
        assert secret not in text


def test_the_daily_cleanup_deletes_long_expired_state(
    app: ModuleType, app_env: AppEnv, caplog: pytest.LogCaptureFixture
) -> None:
    from azure.functions.timer import TimerRequest

    caplog.set_level(logging.INFO, logger="adscore.functions.azure")
    app.on_event_grid(event_grid(golden("azure_eventgrid/snapshot_write.input.json")))
    written = len(app_env.entities())
    assert written > 0
    # GIVEN state from May 2024 events, more than 30 days before the wall clock: all of it goes
    app.cleanup_state(TimerRequest(past_due=False))
    assert app_env.entities() == []
    assert any(f'"deleted":{written}' in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------- packaging


@pytest.mark.slow
def test_the_package_holds_the_app_and_linux_wheels(tmp_path: Path) -> None:
    from adscore.packaging import PackagingError
    from adscore.packaging.azure import build

    try:
        zip_path = build(tmp_path)
    except PackagingError as exc:
        if "Could not find a version" in str(exc) or "No matching distribution" in str(exc):
            pytest.skip(f"package index unreachable: {str(exc)[:200]}")
        raise
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())
    site = ".python_packages/lib/site-packages/"
    assert {"function_app.py", "host.json", "requirements.txt"} <= names
    assert f"{site}adscore/__init__.py" in names and f"{site}adscore/data/defaults.yaml" in names
    assert f"{site}azure/functions/__init__.py" in names
    assert f"{site}azure/data/tables/__init__.py" in names
    assert f"{site}azure/identity/__init__.py" in names
    # the command line's modules and packages are not shipped
    assert not [n for n in names if n.startswith((f"{site}adscore/emulate/", f"{site}adscore/packaging/"))]
    assert f"{site}adscore/cli.py" not in names
    assert not [n for n in names if n.startswith((f"{site}rich/", f"{site}click/", f"{site}pygments/"))]
    compiled = [n for n in names if n.endswith(".so")]
    assert compiled and all("cpython-311-x86_64-linux-gnu" in n or "abi3" in n for n in compiled)
    assert not any("/tests/" in n or n.endswith(".pyc") for n in names)
