"""Hostile input cannot hang, stop or blind the engine, nor leak through what it writes (issue 17).

Each test names the row of the issue it covers. No timing assertions: regular expressions are
checked by construction (compiled by RE2), and the one end-to-end hang check runs a bounded
input in a subprocess with a generous timeout.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from click.testing import CliRunner

from adscore.cli import main
from adscore.detection import Context, Detection, Finding
from adscore.detections import load_catalogue
from adscore.engine import Engine
from adscore.errors import ConfigError
from adscore.patterns import compile_linear
from adscore.redact import REDACTED, redact_text, redact_value
from adscore.render.ocsf import to_ocsf
from adscore.render.text import to_jsonl
from adscore.settings import load_settings
from adscore.sinks.webhook import WebhookSink
from adscore.state.memory import MemoryStateStore
from adscore.testing import run_records
from tests.unit.test_engine import META, ct

if TYPE_CHECKING:
    from collections.abc import Iterable

    from adscore.events import Event

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _exec_record(command: list[str], *, user: str = "alice@example.com") -> dict[str, Any]:
    """A ``create pods/exec`` audit event whose command is in ``requestObject`` (as on some managed services)."""
    rec = json.loads(json.dumps(_lines(EXAMPLES / "kubernetes" / "k8s_exec_copy.jsonl")[1]))
    rec["user"]["username"] = user
    rec["requestURI"] = "/api/v1/namespaces/default/pods/test-pod/exec?container=test-pod&stdout=true"
    rec["requestObject"] = {"kind": "PodExecOptions", "apiVersion": "v1", "command": command, "stdout": True}
    return rec


# ------------------------------------------------------------------ no input can hang the engine


def test_every_pattern_of_the_catalogue_is_compiled_by_a_linear_time_engine() -> None:
    # GIVEN every detection's default parameters: each str tuple field named like a pattern list
    exec_copy = next(d for d in load_catalogue() if d.id == "k8s.exec_copy")
    params = exec_copy.params()
    fields = ("copy_commands", "destination_paths", "dump_commands", "kubectl_cp_from_pod", "kubectl_cp_to_pod")
    for name in fields:
        for pattern in getattr(params, name):
            # THEN RE2 compiles it (RE2 runs in time linear in the text, whatever the pattern)
            assert type(compile_linear(pattern)).__module__.startswith("re2"), (name, pattern)


def test_kubectl_cp_patterns_answer_the_backtracking_attack_in_a_subprocess() -> None:
    # GIVEN the command: tar followed by 30 copies of "--a" and "!" (backtracked for minutes before)
    attack = ["tar", *(["--a"] * 30), "!"]
    code = (
        "import json, sys\n"
        "from adscore.testing import run_records\n"
        "from tests.unit.test_hostile_input import _exec_record\n"
        "report = run_records([_exec_record(json.loads(sys.argv[1]))])\n"
        "print(json.dumps(report.summary()['counts']))\n"
    )
    # WHEN the engine evaluates it (a generous bound: a linear match takes milliseconds)
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(attack)], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    # THEN it finishes, the event is read and nothing failed
    assert out.returncode == 0, out.stderr
    counts = json.loads(out.stdout)
    assert counts["events"] == 1 and "errors" not in counts


def test_kubectl_cp_patterns_still_fire() -> None:
    report = run_records([_exec_record(["tar", "--no-same-owner", "-czf", "-", "/app/data"])])
    assert [a.title for a in report.alerts] == [
        "kubectl cp from pod default/test-pod by alice@example.com: tar --no-same-owner -czf - /app/data"
    ]


def test_a_user_pattern_a_linear_engine_cannot_run_is_rejected_naming_the_setting(tmp_path: Path) -> None:
    # GIVEN a settings pattern with a backreference (no linear-time engine offers one)
    cfg = tmp_path / "s.yaml"
    cfg.write_text('detections:\n  k8s.exec_copy:\n    copy_commands: ["(a+)\\\\1"]\n')
    # WHEN the settings are validated
    res = CliRunner().invoke(main, ["validate-settings", "--config", str(cfg)])
    # THEN validation fails naming the setting, without a traceback
    assert res.exit_code == 2
    assert "detections.k8s.exec_copy.copy_commands" in res.stderr and "RE2" in res.stderr
    assert "Traceback" not in res.output + res.stderr


def test_a_catastrophic_user_pattern_runs_in_linear_time() -> None:
    # GIVEN the textbook catastrophic pattern as a user setting; it is accepted (RE2 runs it linearly)
    settings = load_settings(None, detections={"k8s.exec_copy": {"copy_commands": ["(a+)+$"]}})
    Engine(settings, MemoryStateStore())
    code = (
        "from adscore.testing import run_records\n"
        "from tests.unit.test_hostile_input import _exec_record\n"
        "r = run_records([_exec_record(['a' * 4000 + '!'])], {'detections': {'k8s.exec_copy': "
        "{'copy_commands': ['(a+)+$']}}})\n"
        "print(r.counts['events'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"


def test_allowlist_globs_cannot_backtrack_catastrophically() -> None:
    # GIVEN allowlist globs built to backtrack (many stars before a character that never comes) and
    # 4,000-character principals and user agents: they are compiled by RE2, which does not backtrack.
    # Bounded input, generous timeout, subprocess.
    glob = "*a" * 16 + "*b"
    code = (
        "from adscore.testing import run_records\n"
        "from tests.unit.test_engine import ct\n"
        "recs = [ct(i, role='a' * 4000) for i in range(5)]\n"
        "for r in recs: r['userAgent'] = 'a' * 4000\n"
        f"s = {{'allowlists': {{'principals': [{glob!r}], 'user_agents': [{glob!r}]}}}}\n"
        "print(run_records(recs, s).counts['events'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "5"


def test_a_lone_surrogate_in_an_alert_title_does_not_fail_the_batch() -> None:
    # GIVEN a firing exec whose user name holds a lone UTF-16 surrogate, and a quiet record after it
    bad = _exec_record(["sh", "-c", "cp -R /app/data /snapshot"], user="alice\ud800@example.com")
    other = _lines(EXAMPLES / "kubernetes" / "k8s_exec_copy.jsonl")[0]
    # WHEN the batch runs
    report = run_records([bad, other])
    # THEN it alerts, with the surrogate replaced, and no record failed
    assert [a.detection for a in report.alerts] == ["k8s.exec_copy"]
    assert "\ud800" not in report.alerts[0].title and "alice\ufffd@example.com" in report.alerts[0].title
    assert report.failed == {} and report.counts["events"] == 2


def test_patterns_read_text_with_lone_surrogates() -> None:
    report = run_records([_exec_record(["tar", "czf", "-", "/data\udcff"])])
    assert [a.detection for a in report.alerts] == ["k8s.exec_copy"] and report.failed == {}


# ------------------------------------------------------------------ every failure is counted and retried


def _raising(event: Event, ctx: Context) -> Iterable[Finding]:
    if event.event_id.endswith("1"):
        raise ValueError("boom \x1b]0;pwned\x07\r\nadscore replay: 0 errors")
    return ()


RAISING = Detection(id="test.raising", meta=META, actions=frozenset({"snapshot.create"}), evaluate=_raising)


def test_a_detection_raising_on_a_record_marks_that_record_failed_and_counts_it() -> None:
    eng = Engine(load_settings(None), MemoryStateStore(), None, catalogue=[RAISING])
    report = eng.run([(f"r{i}", ct(i)) for i in range(3)])
    # the record the detection raised on is failed (the platform retries or dead-letters it), the others are not
    assert list(report.failed) == ["r1"] and report.failed["r1"].startswith("detection failed: test.raising")
    assert report.counts["errors"] == 1 and report.summary()["errors"] == 1
    assert report.counts["events"] == 3


def test_the_cli_exits_non_zero_and_counts_a_detection_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a detection that raises on one record of three
    import adscore.detections as catalogue_module

    real = catalogue_module.load_catalogue
    monkeypatch.setattr(catalogue_module, "load_catalogue", lambda *a, **k: [*real(*a, **k), RAISING])
    f = tmp_path / "trail.jsonl"
    f.write_text("".join(json.dumps(ct(i)) + "\n" for i in range(3)))
    # WHEN it is replayed
    res = CliRunner().invoke(main, ["replay", "--output", "jsonl", str(f)])
    # THEN the summary counts the error, the exit status is not 0, and the terminal sees no escape
    assert res.exit_code == 1, res.stderr
    assert "1 errors" in res.stderr and "not fully processed" in res.stderr
    assert "\x1b" not in res.stderr and "\x07" not in res.stderr and "\r" not in res.stderr
    assert "\nadscore replay: 0 errors" not in res.stderr


# ------------------------------------------------------------------ hostile text stays inert


def _firing_with_secrets() -> list[dict[str, Any]]:
    records = _lines(EXAMPLES / "aws" / "snapshot_shared_external.jsonl")
    for rec in records:
        rec["requestParameters"] = {
            **(rec.get("requestParameters") or {}),
            "password": "hunter2-plain",
            "headers": {"Authorization": "Bearer eyJhbGciOi.abcdefghijklmnop"},
            "note": "Authorization: Bearer tok3n-abcdefghijklmnop",
        }
        rec["responseElements"] = {
            **(rec.get("responseElements") or {}),
            "credentials": {
                "accessKeyId": "ASIAEXAMPLE000000001",
                "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "sessionToken": "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD",
                "expiration": "Mar 14, 2026 3:10:00 AM",
            },
            "url": "https://acct.blob.core.windows.net/c/b?sv=2022-11-02&sig=AbC123%2Bxyz%3D&se=2026",
            "leaked": "key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY in a message",
        }
    return records


SECRETS = ("hunter2-plain", "abcdefghijklmnop", "wJalrXUtnFEMI", "IQoJb3JpZ2luX2Vj", "AbC123")


def test_credentials_in_a_firing_event_never_reach_jsonl_ocsf_or_webhook_bodies() -> None:
    report = run_records(_firing_with_secrets())
    assert report.alerts, report.summary()
    for alert in report.alerts:
        body, _ = WebhookSink("https://hooks.example.com/x")._request(alert)
        for text in (to_jsonl(alert), orjson.dumps(to_ocsf(alert)).decode(), body.decode()):
            for secret in SECRETS:
                assert secret not in text, secret
            assert REDACTED in text
        # what identifies the credentials for the responder stays
        assert "ASIAEXAMPLE000000001" in to_jsonl(alert)


def test_redaction_by_key_and_by_shape() -> None:
    value = {
        "annotations": {"authorization.k8s.io/decision": "allow"},
        "authorization": {"action": "Microsoft.Compute/snapshots/write", "scope": "/subscriptions/1"},
        "parameters": {"adminPassword": {"type": "securestring", "value": "P@ss"}},
        "commandLine": "mysql --password=s3cr3t -h db; curl -H 'Authorization: Basic dXNlcjpwYXNz' x",
        "key": "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
        "commit": "0123456789abcdef0123456789abcdef01234567",
    }
    out = redact_value(value)
    assert out["annotations"] == value["annotations"] and out["authorization"] == value["authorization"]
    assert out["parameters"]["adminPassword"] == {"type": "securestring", "value": REDACTED}
    assert "s3cr3t" not in out["commandLine"] and "dXNlcjpwYXNz" not in out["commandLine"]
    assert out["key"] == REDACTED
    assert out["commit"] == value["commit"]  # a hex digest is not a secret key's shape
    assert redact_value(out) == out  # idempotent
    assert redact_text("sig=[REDACTED]") == "sig=[REDACTED]"


@pytest.mark.parametrize(
    ("command", "secret"),
    [
        ("kubectl exec db-0 -- mysqldump -uroot -pS3cret! shop > /backup/shop.sql", "S3cret!"),
        ("mongodump --uri mongodb://admin:hunter2@db:27017/shop --out /backup", "hunter2"),
        ("psql postgresql://app:pw-9x@db/shop -c 'copy t to stdout'", "pw-9x"),
        ("vault login --token s.AbCdEf123 && vault kv get secret/db", "s.AbCdEf123"),
        ("redis-cli -h cache -a r3d1s --rdb /backup/dump.rdb", "r3d1s"),
        ("curl -u admin:adm1n https://registry.internal/v2/_catalog", "adm1n"),
        ("wget --http-user=bob --user bob:b0b https://x.example/backup.tgz", "b0b"),
    ],
)
def test_command_line_credentials_are_redacted(command: str, secret: str) -> None:
    out = redact_text(command)
    assert secret not in out and REDACTED in out
    assert redact_text(out) == out  # idempotent


@pytest.mark.parametrize(
    "command",
    [
        "mkdir -p /backup && cp -p /data/a /backup/a",
        "docker run -p 8080:80 -u 1000:1000 nginx",
        "mysql -h db -u root -p shop",
        "app --token-file /var/run/secrets/token --password-stdin",
        "open https://example.com/a:b and ssh -p 22 host",
    ],
)
def test_command_lines_without_credentials_are_left_alone(command: str) -> None:
    assert redact_text(command) == command


def test_command_line_redaction_is_linear_on_crafted_text() -> None:
    # GIVEN text built to make the command-line patterns rescan: many client names, flags and schemes
    crafted = ("mysql -x " * 20_000) + ("curl -u " * 20_000) + ("://a:" * 20_000) + ("--password " * 20_000)
    code = "import sys\nfrom adscore.redact import redact_text\nprint(len(redact_text(sys.stdin.read())))\n"
    # WHEN it is redacted in a subprocess (a generous bound: a linear scan takes well under a second)
    out = subprocess.run([sys.executable, "-c", code], input=crafted, cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    # THEN it finishes
    assert out.returncode == 0, out.stderr


def test_the_cli_prints_no_escape_from_unreadable_records_or_ids(tmp_path: Path) -> None:
    # GIVEN a file whose unreadable lines carry OSC/CSI escapes and a CR/LF forging a summary line
    f = tmp_path / "bad\x1b[2J.jsonl"
    hostile = '{"kind": "\x1b]0;owned\x07", "\x1b[2J": "x\\r\\nadscore events: 0 errors"}\n{not json \x1b[31m\n'
    f.write_text(hostile + json.dumps(ct(1)) + "\n", encoding="utf-8")
    for command in (["events", str(f)], ["replay", "--output", "jsonl", str(f)]):
        res = CliRunner().invoke(main, command)
        assert "\x1b" not in res.stderr and "\x07" not in res.stderr and "\r" not in res.stderr, command
        lines = res.stderr.splitlines()
        assert not any(line.startswith("adscore events: 0 errors") for line in lines)
        assert "2 errors" in res.stderr


def test_a_detection_error_is_logged_as_fields_not_in_the_message(caplog: pytest.LogCaptureFixture) -> None:
    eng = Engine(load_settings(None), MemoryStateStore(), None, catalogue=[RAISING])
    eng.run([("r\x1b[2J1", ct(1))])
    records = [r for r in caplog.records if r.name == "adscore.engine"]
    assert records and all("\x1b" not in r.getMessage() and "\n" not in r.getMessage() for r in records)
    fields = records[0].json_fields  # type: ignore[attr-defined]
    assert fields["detection"] == "test.raising" and "\x1b" not in fields["record"] + fields["error"]


def test_config_error_is_raised_for_unknown_detection_params() -> None:
    with pytest.raises(ConfigError, match=r"detections\.k8s\.exec_copy\.copy_commands"):
        Engine(load_settings(None, detections={"k8s.exec_copy": {"copy_commands": ["(?=x)"]}}), MemoryStateStore())


def test_adscore_events_prints_json_a_terminal_cannot_act_on(tmp_path: Path) -> None:
    # GIVEN an event whose user agent holds an 8-bit CSI (U+009B), DEL, a bidi override and ESC
    f = tmp_path / "t.jsonl"
    f.write_text(json.dumps(ct(1, role="ops\u009b2J\u202e\x7f\x1b]0;x\x07"), ensure_ascii=False) + "\n", encoding="utf-8")
    res = CliRunner().invoke(main, ["events", str(f)])
    assert res.exit_code == 0, res.stderr
    out = res.stdout_bytes
    for raw in (b"\x1b", b"\x07", b"\x7f", "\u009b".encode(), "\u202e".encode()):
        assert raw not in out, raw
    # the JSON still means the same: the characters are escaped, not lost
    assert "ops\u009b2J\u202e\x7f\x1b]0;x\x07" in json.loads(out)["principal"]["name"]


def test_gcp_log_lines_carry_log_text_in_fields_only() -> None:
    import logging

    from adscore.cloud.gcp import JsonLineFormatter, log_delivery
    from adscore.deadletter import DeadLetter
    from adscore.engine import BatchReport
    from adscore.runtime import DeliveryResult

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    log = logging.getLogger("adscore.functions.gcp")
    handler = Keep()
    log.addHandler(handler)
    try:
        letter = DeadLetter(body=b"x", reason="bad \x1b[2J\r\nforged", location="loc\n2", source="gcp.on_pubsub")
        log_delivery(DeliveryResult(BatchReport(), letters=[letter]), {})
    finally:
        log.removeHandler(handler)
    record = next(r for r in records if r.levelno == logging.WARNING)
    assert record.getMessage() == "rejected an unreadable message"
    line = JsonLineFormatter().format(record)
    assert "\n" not in line and "\x1b" not in line
    assert json.loads(line)["reason"] == "bad   forged"  # the CSI removed whole, CR and LF as spaces


def test_a_credential_cut_by_the_evidence_cap_is_still_redacted() -> None:
    from adscore.alerts import EVIDENCE_STR_LIMIT, Evidence

    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    # GIVEN a long value whose secret straddles the evidence string cap, and a 1 MB value after it
    value = "x" * (EVIDENCE_STR_LIMIT - 20) + " " + secret + " tail"
    evidence = Evidence(records=[{"message": value, "big": "B" * 1_048_576 + " " + secret}])
    text = json.dumps(evidence.records)
    assert secret[:19] not in text and evidence.truncated


def test_record_errors_are_inert_wherever_they_are_printed_or_logged() -> None:
    from adscore.events import RecordError
    from adscore.sources import parse_record

    # GIVEN an unreadable record whose keys carry escapes, a line break and a password
    (err,) = parse_record({"\x1b]0;owned\x07": 1, "a\r\nforged line": 2, "password=hunter2": 3}, "loc\x1b[2J")
    assert isinstance(err, RecordError)
    for text in (err.reason, err.location, err.excerpt):
        assert not any(c in text for c in "\x1b\x07\r\n"), text
    assert "hunter2" not in err.excerpt


def test_a_record_a_detection_raised_on_is_retried_by_sqs_and_pubsub(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import base64
    import os

    from adscore import runtime
    from tests.e2e.aws.conftest import LambdaContext, load_handler, sqs_event

    for k in list(os.environ):
        if k.startswith("ADSCORE_"):
            monkeypatch.delenv(k)
    eng = Engine(load_settings(None), MemoryStateStore(), None, catalogue=[RAISING])
    monkeypatch.setattr(runtime, "get_engine", lambda **_: eng)
    # SQS: the message whose record the detection raised on is redelivered, the others are acknowledged
    result = load_handler().sqs_handler(sqs_event([ct(0), ct(1), ct(2)], ids=["m0", "m1", "m2"]), LambdaContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    # Pub/Sub: the message is nacked (retried) by the one failure policy, and not marked processed
    from adscore.deliveries.pubsub import done_marker, unwrap_pubsub

    record = {**ct(1), "insertId": "i-1", "logName": "projects/p/logs/x"}
    data = base64.b64encode(json.dumps(record).encode()).decode()
    items = unwrap_pubsub({"message": {"data": data, "messageId": "7"}})
    result = runtime.run_delivery(items, source="test.pubsub", engine=eng, done=done_marker(items))
    assert result.retry
    with pytest.raises(Exception):  # noqa: B017 - whatever the runtime raises, Pub/Sub nacks it
        result.raise_for_retry()
    again = runtime.run_delivery(unwrap_pubsub({"message": {"data": data, "messageId": "7"}}), source="t",
                                 engine=eng, done=done_marker(items))  # fmt: skip
    assert not again.duplicate  # not marked processed: the redelivery runs it again
