"""Settings: YAML + env overrides, comma lists, defaults, and errors that name the setting."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from adscore.errors import ConfigError
from adscore.settings import load_settings

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for k in list(os.environ):
        if k.startswith("ADSCORE_"):
            monkeypatch.delenv(k)


def test_defaults_ship_backup_services_and_suppressions() -> None:
    s = load_settings()
    assert "backup.amazonaws.com" in s.allowlists.services
    assert "dlm.amazonaws.com" in s.allowlists.services
    names = {r.name for r in s.suppressions}
    assert "kubernetes-control-plane" in names
    assert s.state == "memory://"


def test_yaml_file_then_env_then_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "state: sqlite:///from-yaml.db\n"
        "org_accounts: ['111122223333']\n"
        "detections:\n  snapshot.burst: {threshold: 7}\n"
        "calendar:\n  default: {timezone: Europe/Paris, days: [mon, tue], start: '09:00', end: '17:30'}\n"
    )
    s = load_settings(str(cfg))
    assert s.state == "sqlite:///from-yaml.db"
    assert s.org_accounts == ("111122223333",)
    assert s.params_for("snapshot.burst") == {"threshold": 7}
    assert s.calendar.default.timezone == "Europe/Paris"
    assert s.calendar.default.days == (1, 2)
    # env wins over the file
    monkeypatch.setenv("ADSCORE_STATE", "sqlite:///from-env.db")
    monkeypatch.setenv("ADSCORE_SINKS", "stdout://, https://hooks.example/x")
    monkeypatch.setenv("ADSCORE_DETECTIONS__SNAPSHOT_BURST__THRESHOLD", "9")
    s = load_settings(str(cfg))
    assert s.state == "sqlite:///from-env.db"
    assert s.sinks == ("stdout://", "https://hooks.example/x")
    assert s.params_for("snapshot.burst")["threshold"] in (9, "9")
    # explicit overrides (CLI flags) win over env
    assert load_settings(str(cfg), state="memory://").state == "memory://"


def test_config_from_env_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("org_accounts: ['1', '2']\n")
    monkeypatch.setenv("ADSCORE_CONFIG", str(cfg))
    assert load_settings().org_accounts == ("1", "2")


@pytest.mark.parametrize(
    ("yaml_text", "setting"),
    [
        ("calendar: {default: {timezone: Mars/Olympus}}", "calendar.default.timezone"),
        ("calendar: {default: {days: [funday]}}", "calendar.default.days"),
        ("allowlists: {source_cidrs: ['10.0.0.0/33']}", "allowlists.source_cidrs"),
        ("state: not-a-url", "state"),
        ("severity_overrides: {snapshot.burst: extreme}", "severity_overrides.snapshot.burst"),
        ("suppressions: [{name: everything}]", "suppressions.0"),
        ("no_such_setting: 1", "no_such_setting"),
        ("calendar: {maintenance: [{name: w, start: 2026-01-02T00:00:00Z, end: 2026-01-01T00:00:00Z}]}",
         "calendar.maintenance.0"),
    ],
)
def test_bad_setting_fails_naming_it(tmp_path: Path, yaml_text: str, setting: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_settings(str(cfg))
    assert info.value.setting.startswith(setting), info.value


def test_unreadable_or_invalid_yaml_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(str(bad))
    top = tmp_path / "list.yaml"
    top.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(str(top))


def test_user_suppressions_are_added_to_defaults(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("suppressions: [{name: ci, principals: ['arn:aws:iam::*:role/ci-*']}]\n")
    names = [r.name for r in load_settings(str(cfg)).suppressions]
    assert names[0] == "ci"
    assert "kubernetes-control-plane" in names
    cfg.write_text("inherit_default_suppressions: false\nsuppressions: [{name: ci, principals: ['x']}]\n")
    assert [r.name for r in load_settings(str(cfg)).suppressions] == ["ci"]


def test_webhook_secret_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADSCORE_WEBHOOK_SECRET", "s3cr3t-value")
    s = load_settings()
    assert s.webhook_secret is not None
    assert s.webhook_secret.get_secret_value() == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(s)
    assert "s3cr3t-value" not in str(s.model_dump())


# --------------------------------------------------------------------------- issue 17: settings that would fail, fail at validation


def _validate(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], config: str | None = None) -> tuple[int, str]:
    from click.testing import CliRunner

    from adscore.cli import main

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    res = CliRunner().invoke(main, ["validate-settings", *(["--config", config] if config else [])])
    assert "Traceback" not in res.output + res.stderr
    return res.exit_code, res.stderr


def test_a_json_list_in_an_env_variable_is_read_as_a_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADSCORE_ORG_ACCOUNTS", '["111122223333", "444455556666"]')
    assert load_settings().org_accounts == ("111122223333", "444455556666")
    monkeypatch.setenv("ADSCORE_SINKS", '["stdout://"]')
    assert load_settings().sinks == ("stdout://",)
    monkeypatch.setenv("ADSCORE_ORG_ACCOUNTS", "111122223333, 444455556666")
    assert load_settings().org_accounts == ("111122223333", "444455556666")
    monkeypatch.setenv("ADSCORE_SINKS", "https://[::1]:8443/hook, stdout://")  # brackets inside a value
    assert load_settings().sinks == ("https://[::1]:8443/hook", "stdout://")


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"ADSCORE_ORG_ACCOUNTS": '["1","2"'}, "org_accounts"),  # a broken JSON list, not the ids '["1"' and '"2"'
        ({"ADSCORE_ORG_ACCOUNTS": '"1","2"'}, "org_accounts"),
        ({"ADSCORE_ORG_ACCOUNTS": "[1, 2]"}, "org_accounts"),
        ({"ADSCORE_SUPPRESSIONS": "[{"}, "suppressions"),
        ({"ADSCORE_BATCH_SIZE": "lots"}, "batch_size"),
        ({"ADSCORE_SINK": "https://hooks.example/x"}, "ADSCORE_SINK"),  # unknown: a typo of ADSCORE_SINKS
        ({"ADSCORE_DETECTIONS__SNAPSHOT_BURST__THRESHOLDD": "5"}, "detections.snapshot.burst.thresholdd"),
        ({"ADSCORE_DETECTIONS__SNAPSHOT_BURST__THRESHOLD": "many"}, "detections.snapshot.burst.threshold"),
        ({"ADSCORE_CALENDAR__DEFAULT__TIMEZONE": "Mars/Olympus"}, "calendar.default.timezone"),
        # issue 16: what would fail at start fails at validation
        ({"ADSCORE_SINKS": "ftp://example.com/alerts"}, "sinks.0"),
        ({"ADSCORE_STATE": "mongodb://db/adscore"}, "state"),
        ({"ADSCORE_DISABLED": "snapshot.no_such_detection"}, "disabled.0"),
        ({"ADSCORE_WEBHOOK_SECRET": "file:///nope/secret"}, "webhook_secret"),
    ],
)
def test_validate_settings_rejects_what_would_fail_naming_it(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], setting: str
) -> None:
    code, err = _validate(monkeypatch, env)
    assert code == 2, err
    assert f"invalid setting {setting}:" in err


def test_unknown_variable_suggests_the_known_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADSCORE_WEBHOOK_SECRE", "x")
    with pytest.raises(ConfigError, match="did you mean ADSCORE_WEBHOOK_SECRET"):
        load_settings()


def test_adapter_variables_and_globs_are_accepted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    env = {
        "ADSCORE_EVENTHUB__fullyQualifiedNamespace": "ns.servicebus.windows.net",
        "ADSCORE_DEADLETTER_TOPIC": "projects/p/topics/t",
        "ADSCORE_DISABLED": "discovery.*, snapshot_burst",
        "ADSCORE_WEBHOOK_SECRET": f"file://{secret}",
        "ADSCORE_SINKS": "-, stdout://jsonl",
    }
    code, err = _validate(monkeypatch, env)
    assert code == 0, err


def test_the_engine_refuses_to_start_on_an_unknown_disabled_detection() -> None:
    from adscore.engine import Engine
    from adscore.state.memory import MemoryStateStore

    with pytest.raises(ConfigError, match=r"disabled\.1"):
        Engine(load_settings(None, disabled=["snapshot.*", "nope"]), MemoryStateStore())
