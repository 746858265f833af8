"""``adscore emulate aws`` end to end: moto server, the real delivery paths, the real Lambda handlers.

The ADS validation logs in ``examples/aws`` and ``examples/kubernetes`` go through
``adscore.emulate.aws.run`` (CloudTrail files into S3 -> S3 notification -> SQS ->
``sqs_handler``; EKS audit events as CloudWatch Logs payloads -> ``cloudwatch_logs_handler``),
and every detection whose validation file is there must fire, while no alert names a principal
that only the benign files contain. Expectations come from the file names and the catalogue.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from adscore.detections import load_catalogue
from adscore.emulate import EXAMPLE_DIRS, EmulationResult, EmulatorMissing, Reporter, default_paths
from adscore.emulate.aws import moto_available, run
from tests.e2e.aws.conftest import cloudtrail, create_snapshot, cwlogs_event, eventbridge, share_public
from tests.e2e.emulate_support import example_principals

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration
slow = pytest.mark.slow  # a run takes a few seconds


REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"
CONFIG = EXAMPLES / "config.yaml"


def _need_emulator() -> None:
    if not moto_available():
        pytest.skip("moto[server] is not installed: pip install 'adscore[emulate]'")
    pytest.importorskip("aws_lambda_powertools", reason="pip install 'adscore[aws]'")


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


_principals = example_principals


def _example_files() -> list[Path]:
    return sorted(p for d in EXAMPLE_DIRS["aws"] for p in (EXAMPLES / d).glob("*.jsonl"))


@pytest.fixture(scope="module")
def examples_run() -> Iterator[tuple[EmulationResult, list[dict[str, Any]], str]]:
    """One emulation over the default examples: the result, the JSON lines printed, the notes."""
    _need_emulator()
    out, err = io.StringIO(), io.StringIO()
    env_before = dict(os.environ)
    result = run(
        default_paths("aws"), config=str(CONFIG), keep=False, reporter=Reporter(out, err, as_json=True)
    )
    assert dict(os.environ) == env_before  # the functions' environment was restored
    yield result, [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


# --------------------------------------------------------------------------- ADS validation as data


@slow
def test_every_validation_example_fires_through_the_aws_paths(examples_run: Any) -> None:
    result, _, _ = examples_run
    modules = {d.module_name: d.id for d in load_catalogue()}
    fired = result.alerts_by_detection()
    expected = set()
    for path in _example_files():
        if path.stem.startswith("benign_"):
            continue
        module = path.name.split(".", 1)[0]  # <detection module>[.<variant>].jsonl
        assert module in modules, f"{path.relative_to(REPO)} is named after no detection"
        expected.add(modules[module])
    assert expected, "no validation examples found"
    missing = sorted(expected - set(fired))
    assert not missing, f"detections that did not fire end to end: {missing}; fired: {fired}"


@slow
def test_no_alert_names_a_principal_seen_only_in_benign_examples(examples_run: Any) -> None:
    result, _, _ = examples_run
    benign, attack = set(), set()
    for path in _example_files():
        (benign if path.stem.startswith("benign_") else attack).update(_principals(path))
    benign_only = benign - attack
    assert benign_only  # the benign files do name principals of their own
    noisy = [
        (a["detection"], a["principal"]["id"]) for a in result.alerts if a["principal"]["id"] in benign_only
    ]
    assert not noisy


@slow
def test_examples_take_the_s3_and_eks_paths_and_leave_state(examples_run: Any) -> None:
    result, lines, notes = examples_run
    assert result.failed == 0 and result.unverified == 0
    assert result.skipped == []
    s3 = result.deliveries["cloudtrail file -> s3 -> sqs -> sqs_handler"]
    eks = result.deliveries["eks audit -> cloudwatch logs -> cloudwatch_logs_handler"]
    assert s3.records == sum(len(_jsonl(p)) for p in (EXAMPLES / "aws").glob("*.jsonl"))
    assert eks.records == sum(len(_jsonl(p)) for p in (EXAMPLES / "kubernetes").glob("*.jsonl"))
    assert s3.invocations >= len(list((EXAMPLES / "aws").glob("*.jsonl")))  # a file per input file and region
    # the self-managed cluster's webhook batch and the Docker hosts' events: the ingest Function URL
    webhook = result.deliveries["k8s audit webhook -> function url -> ingest_handler"]
    docker = result.deliveries["adscore forward docker -> function url -> ingest_handler"]
    [batch] = _jsonl(EXAMPLES / "kubernetes-webhook" / "k8s_exec_copy.jsonl")
    assert (webhook.invocations, webhook.records) == (1, len(batch["items"]))
    assert docker.records == sum(len(_jsonl(p)) for p in (EXAMPLES / "docker").glob("*.jsonl"))
    assert docker.invocations == len(list((EXAMPLES / "docker").glob("*.jsonl")))  # a signed batch per file
    by_principal = {(a["detection"], a["principal"]["id"]) for a in result.alerts}
    assert ("k8s.exec_copy", "kubernetes-admin") in by_principal  # from the webhook batch
    assert ("container.snapshot", "docker-host:prod-web-01") in by_principal
    # state written by the functions into the DynamoDB table, read back by key
    keys = {(i["pk"], i["sk"]) for i in result.state_items}
    assert any(pk.startswith("alert|") and sk == "claim" for pk, sk in keys)
    assert any(pk.startswith("snapshot.new_principal:") for pk, _ in keys)
    # printed as they arrived: every alert line comes before the state and the summary
    kinds = [next(iter(line)) for line in lines]
    assert kinds.count("alert") == len(result.alerts)
    assert kinds[-1] == "summary" and kinds.index("state_item") > max(
        i for i, k in enumerate(kinds) if k == "alert"
    )
    summary = lines[-1]["summary"]
    assert summary["alerts_by_detection"] == result.alerts_by_detection()
    assert "starting moto on 127.0.0.1:" in notes
    assert result.env["AWS_ENDPOINT_URL"] == result.endpoints["moto"]


# --------------------------------------------------------------------------- shapes


@slow
def test_foreign_and_corrupt_records_are_reported_and_the_rest_delivered(tmp_path: Path) -> None:
    _need_emulator()
    docker = _jsonl(EXAMPLES / "docker" / "container_snapshot.jsonl")[0]
    azure = _jsonl(next((EXAMPLES / "azure").glob("*.jsonl")))[0]
    audit = _jsonl(EXAMPLES / "kubernetes" / "k8s_volume_snapshot.jsonl")
    event_list = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": audit}
    payload = cwlogs_event([cloudtrail("DescribeInstances", read_only=True)])
    decoded = json.loads(
        gzip.decompress(base64.b64decode(payload["awslogs"]["data"]))
    )  # a decoded DATA_MESSAGE
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(
        "\n".join(
            [
                json.dumps(docker),
                json.dumps(share_public(user="mallory")),
                "{not json",
                json.dumps(azure),
                json.dumps(eventbridge(create_snapshot(user="eve"))),
                json.dumps(cwlogs_event([cloudtrail("DescribeRegions", read_only=True)])),
                json.dumps(decoded),
                json.dumps(event_list),
                json.dumps({"Records": [create_snapshot(user="trent")]}),
            ]
        )
        + "\n"
    )
    broken = tmp_path / "broken.jsonl"  # read by the parser, refused: the message is dead-lettered
    broken.write_text(json.dumps({"eventSource": "ec2.amazonaws.com", "eventName": "CreateSnapshot"}) + "\n")

    out, err = io.StringIO(), io.StringIO()
    result = run(
        [str(mixed), str(broken)], config=None, keep=False, reporter=Reporter(out, err, as_json=True)
    )

    skipped = "\n".join(result.skipped)
    assert f"{mixed}:4: azure event: no aws delivery path" in skipped
    assert f"{mixed}:3:" in skipped and "invalid JSON" in skipped
    assert len(result.skipped) == 2
    d = result.deliveries
    assert d["eventbridge -> eventbridge_handler"].invocations == 1
    assert d["cloudwatch logs -> cloudwatch_logs_handler"].records == 2
    # the EventList is a webhook batch: the ingest endpoint; the Docker event a forwarder's batch
    assert d["k8s audit webhook -> function url -> ingest_handler"].records == len(audit)
    assert d["adscore forward docker -> function url -> ingest_handler"].records == 1
    s3 = d["cloudtrail file -> s3 -> sqs -> sqs_handler"]
    assert s3.records == 3  # share_public, trent's file, the broken record
    assert s3.failed == 1  # the broken record: in the unreadable-records queue, with its file's notification
    assert s3.invocations <= 3  # at most one per file: retrying cannot mend it, nothing is redelivered
    notes = err.getvalue()
    assert "dead-lettered" in notes
    # something failed: the functions' logs (CloudWatch Logs here) are kept and named
    logs = Path(re.search(r"function logs: (\S+)", notes).group(1))  # type: ignore[union-attr]
    try:
        assert "record not readable" in logs.read_text()
    finally:
        shutil.rmtree(logs.parent)
    fired = result.alerts_by_detection()
    assert "snapshot.shared_external" in fired  # the CloudTrail record of the same file still went through
    assert "k8s.volume_snapshot" in fired  # the EventList, through the ingest endpoint
    shared = next(a for a in result.alerts if a["detection"] == "snapshot.shared_external")
    assert shared["principal"]["id"].endswith(":user/mallory")


# --------------------------------------------------------------------------- the command


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "adscore.cli", "emulate", "aws", "--json", *args]


@slow
def test_cli_emulate_aws_json_end_to_end() -> None:
    _need_emulator()
    done = subprocess.run(
        _cli(str(EXAMPLES / "aws" / "snapshot_shared_external.jsonl")),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    alerts = [line["alert"] for line in lines if "alert" in line]
    summary = lines[-1]["summary"]
    assert {a["detection"] for a in alerts} >= {"snapshot.shared_external"}
    assert summary["alerts"] == len(alerts) and summary["failed"] == 0
    assert summary["deliveries"][0]["records"] == len(
        _jsonl(EXAMPLES / "aws" / "snapshot_shared_external.jsonl")
    )
    assert any("snap-0e00000000000001" in a["title"] for a in alerts)


def _children(pid: int) -> set[int]:
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.add(int(stat.parent.name))
    return out


@slow
def test_keep_serves_the_stack_until_sigint_then_stops_everything() -> None:
    _need_emulator()
    import boto3

    proc = subprocess.Popen(
        _cli("--keep", str(EXAMPLES / "aws" / "snapshot_off_hours.jsonl")),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout or []], daemon=True).start()

    def next_line(kind: str) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                doc = json.loads(lines.get(timeout=1))
            except queue.Empty:
                assert proc.poll() is None, (proc.stderr.read() if proc.stderr else "")[-2000:]
                continue
            if kind in doc:
                return dict(doc[kind])
        raise AssertionError(f"no {kind} line")

    try:
        kept = next_line("keep")
        env, endpoints = kept["env"], kept["endpoints"]
        port = int(env["AWS_ENDPOINT_URL"].rsplit(":", 1)[1])
        session = boto3.session.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_DEFAULT_REGION"],
        )
        ddb = session.client("dynamodb", endpoint_url=env["AWS_ENDPOINT_URL"])
        assert (
            ddb.describe_table(TableName=endpoints["state table"])["Table"]["KeySchema"][0]["AttributeName"]
            == "pk"
        )
        assert ddb.scan(TableName="adscore-state")["Count"] > 0
        # the event source mapping stays on: a CloudTrail file put in the bucket is processed
        bucket = endpoints["cloudtrail bucket"].removeprefix("s3://").split("/", 1)[0]
        record = share_public(user="late-mallory", event_time="2026-03-20T03:00:00Z")
        key = (
            "AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/20/111122223333_CloudTrail_us-east-1_x.json.gz"
        )
        session.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"]).put_object(
            Bucket=bucket, Key=key, Body=gzip.compress(json.dumps({"Records": [record]}).encode())
        )
        while True:
            alert = next_line("alert")
            if alert["principal"]["id"].endswith(":user/late-mallory"):
                break
        assert alert["detection"] == "snapshot.shared_external"
        log_dir = Path(endpoints["function logs"]).parent
        assert log_dir.is_dir()
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    assert code == 0, (proc.stderr.read() if proc.stderr else "")[-2000:]
    assert not _children(proc.pid)
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    assert not log_dir.exists()  # nothing failed: the function logs are removed


# --------------------------------------------------------------------------- missing pieces


@pytest.mark.parametrize(
    ("blocked", "install"),
    [("flask", "pip install 'adscore[emulate]'"), ("aws_lambda_powertools", "pip install 'adscore[aws]'")],
)
def test_a_missing_extra_names_its_install_command_before_starting(
    monkeypatch: pytest.MonkeyPatch, blocked: str, install: str
) -> None:
    # GIVEN the module cannot be imported (what a missing package looks like to the check)
    monkeypatch.setitem(sys.modules, blocked, None)
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(EmulatorMissing) as caught:
        run([str(EXAMPLES / "aws")], config=None, keep=False, reporter=Reporter(out, err))
    assert caught.value.install == install
    assert install in str(caught.value)
    assert out.getvalue() == err.getvalue() == ""  # nothing started, nothing printed
