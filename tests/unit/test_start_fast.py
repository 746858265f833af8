"""Start fast (issue 22): what a cold start no longer pays for, and that nothing else changed.

- the AWS handler builds no X-Ray recorder when tracing is off (``POWERTOOLS_TRACE_DISABLED``, or
  outside Lambda), and still traces when it is on;
- the shipped defaults are parsed once per process, and every caller still gets its own copy;
- boto3 clients share one session (endpoint rules and models read once), but never credentials
  that the environment has since changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adscore import settings as settings_module
from adscore.errors import ConfigError
from adscore.settings import default_config, load_settings

FUNCTIONS_AWS = Path(__file__).resolve().parents[2] / "functions" / "aws"

_PROBE = """
import json, sys
sys.path.insert(0, {path!r})
import handler
print(json.dumps({{"xray": "aws_xray_sdk" in sys.modules, "tracer": handler.tracer is not None,
                  "wrapped": hasattr(handler.sqs_handler, "__wrapped__")}}))
"""


def _import_handler(**env: str) -> dict[str, bool]:
    pytest.importorskip("aws_lambda_powertools")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "LAMBDA_", "AWS_SAM", "ADSCORE_"))}
    base.update(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", **env)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(path=str(FUNCTIONS_AWS))],
        capture_output=True, text=True, env=base, check=True, timeout=120,
    )
    result: dict[str, bool] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_no_xray_recorder_when_tracing_is_disabled_in_lambda() -> None:
    got = _import_handler(LAMBDA_TASK_ROOT="/var/task", POWERTOOLS_TRACE_DISABLED="true")
    assert got == {"xray": False, "tracer": False, "wrapped": True}  # wrapped by the Logger and Metrics only


def test_no_xray_recorder_outside_lambda() -> None:
    assert _import_handler()["xray"] is False


def test_tracing_on_in_lambda_builds_the_tracer() -> None:
    got = _import_handler(LAMBDA_TASK_ROOT="/var/task", POWERTOOLS_TRACE_DISABLED="false")
    assert got["xray"] is True and got["tracer"] is True


def test_tracing_rule_is_powertools_rule() -> None:
    from adscore.cloud.aws import tracing_on as on

    assert on({"LAMBDA_TASK_ROOT": "/var/task"}) is True
    assert on({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "1"}) is False
    assert on({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "TRUE "}) is False
    assert on({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"}) is True
    assert on({"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"}) is False
    assert on({}) is False


def test_defaults_are_parsed_once_and_each_caller_gets_its_own_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    first = default_config()
    first["suppressions"].clear()
    first["batch_size"] = -1
    calls = []
    monkeypatch.setattr(settings_module, "_safe_load", lambda text: calls.append(text))
    second = default_config()
    assert calls == []  # not parsed again
    assert second["suppressions"] and second.get("batch_size") != -1
    assert second == default_config() and second is not default_config()


def test_settings_keep_the_shipped_suppressions_and_still_name_bad_yaml(tmp_path: Path) -> None:
    shipped = {s["name"] for s in default_config().get("suppressions", [])}
    assert shipped
    for _ in range(2):
        assert shipped <= {s.name for s in load_settings(None, state="memory://").suppressions}
    bad = tmp_path / "bad.yaml"
    bad.write_text("detections: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(str(bad))
    assert "not valid YAML" in str(info.value)


def test_clients_share_a_session_but_follow_credentials_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("boto3")
    from adscore.cloud import aws

    aws.forget_session()
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFIRST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "first")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    sqs, sns = aws.client("sqs"), aws.client("sns")
    assert sqs._loader is sns._loader  # one session: service data read once
    assert sns._request_signer._credentials.access_key == "AKIAFIRST"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIASECOND")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "second")
    assert aws.client("sns")._request_signer._credentials.access_key == "AKIASECOND"
    aws.forget_session()
