#!/usr/bin/env python3
"""Write ``docs/configuration.md`` from the settings model and the detection catalogue.

Every field of :class:`adscore.settings.Settings` (and of the models nested in it),
and every parameter of every detection, becomes a row: its path, its environment
variable, its default (the shipped defaults included) and an example. Meanings and
examples of the settings are kept in ``DESCRIBE`` below (a field's own pydantic
``description`` is used when it has one); detection parameters carry theirs in
their ``Params`` models.

Usage::

    .venv/bin/python scripts/gen_config_docs.py          # rewrite docs/configuration.md
    .venv/bin/python scripts/gen_config_docs.py --check  # exit 1 when it is out of date

``tests/unit/test_config_docs.py`` runs the check, and fails naming any setting
that has no meaning or example here.
"""

from __future__ import annotations

import json
import os
import sys
import types
import typing
from datetime import date, time
from enum import Enum
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "configuration.md"

#: path -> (meaning, example as written in the YAML file). ``[]`` in a path is an item of a list,
#: ``<key>`` an entry of a mapping.
DESCRIBE: dict[str, tuple[str, str]] = {
    "state": (
        "Where detections keep their counts and the alerts already sent: `memory://`, `sqlite:///path`, "
        "`dynamodb://table`, `azuretable://table`, `firestore://collection`.",
        "dynamodb://adscore-state",
    ),
    "sinks": (
        "Where alerts go, comma-separated in the environment: `stdout://`, `jsonl:///path`, `https://…` "
        "(signed JSON; `?adscore_signature=standard` for Standard Webhooks), `slack+https://…`, "
        "`teams+https://…`, `sns://TOPIC_ARN`, `pubsub://projects/P/topics/T`, `securityhub://[region[/account]]`, "
        "`pagerduty://ROUTING_KEY`, `sentinel://DCE_HOST/DCR_ID/STREAM` (see `docs/sinks.md`).",
        "sns://arn:aws:sns:eu-west-1:111122223333:adscore-alerts,securityhub://",
    ),
    "webhook_secret": (
        "Signing secret of generic webhooks, or a reference to it: `file:///path`, an AWS Secrets Manager "
        "ARN, a Key Vault secret URL, a Secret Manager `projects/…/secrets/…` name. Never logged.",
        "arn:aws:secretsmanager:eu-west-1:111122223333:secret:adscore-webhook",
    ),
    "org_accounts": (
        "Accounts, subscriptions and projects of your organisation: sharing a snapshot with any other is "
        "`snapshot.shared_external`.",
        '["111122223333", "444455556666"]',
    ),
    "calendar": ("Business hours and maintenance windows (`snapshot.off_hours`).", "see the rows below"),
    "calendar.default": ("Business hours of every account without its own.", "see the rows below"),
    "calendar.accounts": (
        "Business hours per account (key: the account, subscription or project).",
        '{"444455556666": {timezone: Asia/Tokyo, start: "09:00", end: "18:00"}}',
    ),
    "calendar.maintenance": (
        "Declared change windows: matching activity does not alert.",
        '[{name: dr-test, start: "2026-03-20T22:00:00Z", end: "2026-03-21T04:00:00Z"}]',
    ),
    "allowlists": ("Activity that never alerts, for every detection.", "see the rows below"),
    "allowlists.principals": ("Principal id or name globs.", '["arn:aws:iam::*:role/backup-*"]'),
    "allowlists.services": (
        "Services acting for someone (AWS `invokedBy`) or as themselves: backup, lifecycle, scanners.",
        '["backup.amazonaws.com"]',
    ),
    "allowlists.source_cidrs": ("Networks whose calls are trusted.", '["10.0.0.0/8"]'),
    "allowlists.user_agents": (
        "User-agent globs (weak: user agents are attacker-controlled).",
        '["Terraform/*"]',
    ),
    "allowlists.resource_tags": ("`key=value` or `key` tags on the request.", '["backup=true"]'),
    "suppressions": (
        "Named rules that silence some detections for matching activity; every criterion given must "
        "match. Added to the shipped rules (same name replaces).",
        '[{name: test-env, reason: "test accounts", detections: ["discovery.*"], accounts: ["555566667777"]}]',
    ),
    "inherit_default_suppressions": (
        "Keep the shipped suppressions (Kubernetes control plane, cloud service agents, backup operators…).",
        "false",
    ),
    "detections": (
        "Parameters per detection (key: its id); see *Detections* below.",
        "{snapshot.burst: {threshold: 10}}",
    ),
    "disabled": ("Detection ids or globs that never run.", '["snapshot.off_hours"]'),
    "severity_overrides": (
        "Severity per detection id, replacing the ADS severity.",
        "{discovery.enumeration_tool: medium}",
    ),
    "alert_dedup_hours": ("An alert id is sent at most once in this many hours.", "12"),
    "batch_size": ("Records evaluated per batch by `adscore replay`.", "5000"),
    "sigma_paths": (
        "Folders (or files) of Sigma rules run on the stream beside the built-in detections (`--sigma DIR`; "
        "`adscore sigma check` says which load).",
        "[/etc/adscore/sigma]",
    ),
    "deadletter": (
        "Where records that cannot be read go, with their bytes and reason, never retried: `sqs://QUEUE`, "
        "`s3://BUCKET/PREFIX`, `azqueue://QUEUE`, `azblob://CONTAINER`, `pubsub://projects/P/topics/T`, "
        "`file:///path.jsonl`.",
        "sqs://adscore-unreadable",
    ),
    "deadletter_topic": (
        "The older name of a `pubsub://` dead-letter store: `projects/P/topics/T`.",
        "projects/acme/topics/adscore-deadletter",
    ),
    "send_timeout_seconds": (
        "The budget of one batch's alert sends in the CLI (a function uses its remaining time): a claimed "
        "alert whose send is not confirmed within it may be taken again by a retry.",
        "30",
    ),
    "detection_paths": (
        "Folders (comma-separated in the environment) of your own detection modules, written to the "
        "built-in contract and checked when they load; `--detections DIR` on the command line.",
        '["./detections"]',
    ),
    "ads_base_url": (
        "Where the ADS reports are published: alerts link to it plus the detection id (`ads_url`); "
        "`{id}` in it is replaced by the id instead.",
        "https://github.com/acme/detections/blob/main/ads/{id}.md",
    ),
    "settings_max_age_seconds": (
        "Warm functions read their settings again (`ADSCORE_CONFIG` from a file, S3, SSM or Azure Blob) once they are "
        "this old; an invalid update is logged and the last good settings stay. 0: read once per process.",
        "60",
    ),
    "ingest_token": (
        "Bearer token of the HTTPS ingest endpoint (a Kubernetes API server's audit webhook kubeconfig "
        "`users[].user.token`), at least 16 characters, or a reference: `file:///path`, an AWS Secrets Manager "
        "ARN, a Key Vault reference, a Secret Manager `projects/…/secrets/…` name. Never logged (see `docs/ingest.md`).",
        "arn:aws:secretsmanager:eu-west-1:111122223333:secret:adscore-ingest-token",
    ),
    "ingest_signing_secret": (
        "Standard Webhooks secret (`whsec_<base64 of 24-64 bytes>`) of signed ingest requests "
        "(`adscore forward docker`), or a reference as for `ingest_token`. Never logged.",
        "projects/acme/secrets/adscore-ingest-signing/versions/latest",
    ),
    "ingest_max_bytes": (
        "Largest request body the ingest endpoint reads; a larger one is answered 413 (AWS Function URLs stop at 6 MB).",
        "4194304",
    ),
    # business hours (calendar.default, and each calendar.accounts entry)
    "calendar.default.timezone": ("IANA time zone of the hours.", "Europe/Paris"),
    "calendar.default.days": ("Working days, names or 1 (Monday) … 7 (Sunday).", "[mon, tue, wed, thu]"),
    "calendar.default.start": ("Start of the working day.", '"07:30"'),
    "calendar.default.end": ("End of the working day.", '"18:00"'),
    "calendar.default.holidays": ("Days off (the whole day is outside hours).", '["2026-12-25"]'),
    # maintenance windows
    "calendar.maintenance[].name": ("Name, shown in logs.", "dr-test"),
    "calendar.maintenance[].start": ("Start (UTC when no offset).", '"2026-03-20T22:00:00Z"'),
    "calendar.maintenance[].end": ("End, after start.", '"2026-03-21T04:00:00Z"'),
    "calendar.maintenance[].accounts": ("Only in these accounts (all when empty).", '["111122223333"]'),
    "calendar.maintenance[].principals": (
        "Only for these principal globs (all when empty).",
        '["*:role/dr-*"]',
    ),
    "calendar.maintenance[].detections": ("Detection globs silenced.", '["snapshot.*"]'),
    # suppressions
    "suppressions[].name": ("Name; the same name replaces a shipped rule.", "test-env"),
    "suppressions[].reason": ("Why, for reviewers.", "test accounts"),
    "suppressions[].detections": ("Detection id globs it applies to.", '["discovery.*"]'),
    "suppressions[].principals": ("Principal id or name globs.", '["arn:aws:iam::*:role/scanner"]'),
    "suppressions[].principal_types": ("Principal types (`user`, `role`, `service`…).", '["service"]'),
    "suppressions[].accounts": ("Account, subscription or project ids.", '["555566667777"]'),
    "suppressions[].utc_hours": (
        "UTC hours of the day (0-23) the rule applies in; empty: all day (a nightly job's hour, so the "
        "same identity at another hour still alerts).",
        "[1, 2]",
    ),
    "suppressions[].namespaces": ("Kubernetes namespace globs.", '["ci-*"]'),
    "suppressions[].user_agents": ("User-agent globs.", '["Prowler/*"]'),
    "suppressions[].source_cidrs": ("Source networks.", '["10.1.0.0/16"]'),
    "suppressions[].operations": ("Provider operation globs.", '["ec2:Describe*"]'),
    "suppressions[].until": ("Expiry (the rule stops applying after it).", '"2026-06-30T00:00:00Z"'),
}
DESCRIBE.update(
    {
        k.replace("calendar.default.", "calendar.accounts.<account>."): v
        for k, v in list(DESCRIBE.items())
        if k.startswith("calendar.default.")
    }
)

#: Meanings of parameters many detections share, when a detection gives none.
COMMON_PARAMS = {
    "enabled": "Run this detection.",
    "severity": "Severity instead of the ADS one.",
    "window_minutes": "Counting window, in minutes.",
    "episode_minutes": "At most one alert per principal in this many minutes.",
    "verbs": "Kubernetes verbs that count.",
}

#: Variables read from the environment only (not settings of the model).
ENV_ONLY: tuple[tuple[str, str, str], ...] = (
    (
        "ADSCORE_CONFIG",
        "The settings YAML file: a path, `file://`, `s3://bucket/key`, `ssm://name` or `azureblob://container/file.yaml`.",
        "ssm:///adscore/config",
    ),
    (
        "ADSCORE_DEADLETTER",
        "Azure: dead-letter store of unreadable records, `azureblob://CONTAINER` or `azurequeue://QUEUE`.",
        "azureblob://adscore-deadletter",
    ),
    (
        "ADSCORE_DEADLETTER_TOPIC",
        "GCP: Pub/Sub topic that receives unreadable records.",
        "projects/p/topics/adscore-deadletter",
    ),
    ("ADSCORE_EVENTHUB_NAME", "Azure: the Event Hub the function reads.", "adscore-activity"),
    ("ADSCORE_EVENTHUB_CONSUMER_GROUP", "Azure: its consumer group.", "adscore"),
    ("ADSCORE_LOCAL", "GCP: set to log as plain text when running the function locally.", "1"),
)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.upper().startswith("ADSCORE_")}


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> X; ``Annotated[X, ...]`` -> X."""
    if get_origin(annotation) is typing.Annotated:
        return _unwrap(get_args(annotation)[0])
    if get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    return annotation


def _model(annotation: Any) -> type[BaseModel] | None:
    a = _unwrap(annotation)
    return a if isinstance(a, type) and issubclass(a, BaseModel) else None


def _item_model(annotation: Any) -> tuple[str, type[BaseModel]] | None:
    """``tuple[M, ...]``/``list[M]`` -> ("[]", M); ``dict[str, M]`` -> (".<key>", M)."""
    a = _unwrap(annotation)
    origin, args = get_origin(a), get_args(a)
    if origin in (tuple, list) and args and _model(args[0]):
        return "[]", _model(args[0])  # type: ignore[return-value]
    if origin is dict and len(args) == 2 and _model(args[1]):
        return ".<account>", _model(args[1])  # type: ignore[return-value]
    return None


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return {k: _plain(v) for k, v in value.model_dump().items()}
    if isinstance(value, SecretStr):
        return "***"
    if isinstance(value, (tuple, list, frozenset, set)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def _default(value: Any) -> str:
    if value is PydanticUndefined:
        return "required"
    value = _plain(value)
    if value is None:
        return "none"
    if isinstance(value, (list, dict)) and len(json.dumps(value)) > 60:
        # No count: adding a shipped default needs no doc change.
        return "the shipped list in `adscore/data/defaults.yaml`"
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return f"`{text}`" if text else '`""`'


def _env(path: str) -> str:
    if "[]" in path:
        return "(in the list's JSON)"
    if "<" in path:
        head = path.split(".<", 1)[0]
        return f"`ADSCORE_{head.upper().replace('.', '__')}` (JSON)"
    return f"`ADSCORE_{path.upper().replace('.', '__')}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def setting_rows() -> list[tuple[str, str, str, str, str]]:
    """(path, env variable, default, example, meaning) for every setting, in model order."""
    from adscore.settings import Settings, load_settings

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(_clean_env())
    try:
        effective = load_settings(None)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    rows: list[tuple[str, str, str, str, str]] = []

    def walk(model: type[BaseModel], value: Any, prefix: str) -> None:
        for name, field in model.model_fields.items():
            path = f"{prefix}{name}"
            meaning, example = DESCRIBE.get(path, (field.description or "", ""))
            current = (
                getattr(value, name) if value is not None else field.get_default(call_default_factory=True)
            )
            if path == "detections":
                current = {}
            sub = _model(field.annotation)
            shown = "see the rows below" if sub is not None else _default(current)
            rows.append((path, _env(path), shown, example, meaning))
            if sub is not None:
                walk(sub, current, path + ".")
                continue
            items = _item_model(field.annotation)
            if items is not None:
                marker, item_model = items
                walk(item_model, None, path + marker + ".")

    walk(Settings, effective, "")
    return rows


def detection_rows() -> list[tuple[str, list[tuple[str, str, str, str]]]]:
    """Per detection: (id, [(parameter, env variable, default, meaning)])."""
    from adscore.detections import load_catalogue

    out = []
    for det in sorted(load_catalogue(), key=lambda d: d.id):
        rows = []
        for name, field in det.params.model_fields.items():
            env = f"`ADSCORE_DETECTIONS__{det.module_name.upper()}__{name.upper()}`"
            meaning = field.description or COMMON_PARAMS.get(name, "")
            rows.append((name, env, _default(field.get_default(call_default_factory=True)), meaning))
        out.append((det.id, rows))
    return out


def render() -> str:
    lines = [
        "# Configuration",
        "",
        "<!-- GENERATED by scripts/gen_config_docs.py from the settings model: do not edit by hand. -->",
        "",
        "adscore reads one settings model. Sources, highest priority first: command-line flags, "
        "`ADSCORE_*` environment variables, the YAML file named by `--config` or `ADSCORE_CONFIG`, "
        "then the shipped defaults (`src/adscore/data/defaults.yaml`). `adscore validate-settings` "
        "checks a file and the environment; a bad value fails at start naming the setting.",
        "",
        "- Nested settings take `__` in their variable: `calendar.default.timezone` is "
        "`ADSCORE_CALENDAR__DEFAULT__TIMEZONE`.",
        "- `sinks`, `org_accounts` and `disabled` are comma-separated in the environment; other lists "
        "and mappings are JSON there (`ADSCORE_SUPPRESSIONS='[{\"name\": …}]'`).",
        "- `examples/config.yaml` is a complete file to start from.",
        "",
        "## Settings",
        "",
        "| setting | environment variable | default | example | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for path, env, default, example, meaning in setting_rows():
        shown = example if example == "see the rows below" else f"`{example}`"
        lines.append(f"| `{path}` | {env} | {_cell(default)} | {_cell(shown)} | {_cell(meaning)} |")
    lines += [
        "",
        "## Environment only",
        "",
        "| variable | meaning | example |",
        "| --- | --- | --- |",
    ]
    for name, meaning, example in ENV_ONLY:
        lines.append(f"| `{name}` | {_cell(meaning)} | `{example}` |")
    lines += [
        "",
        "## Detections",
        "",
        "Each detection's parameters, under `detections: {<id>: {...}}` in the file. Its ADS report "
        "(`adscore ads <id>`) explains them in context.",
    ]
    for det_id, rows in detection_rows():
        lines += [
            "",
            f"### `{det_id}`",
            "",
            "| parameter | environment variable | default | meaning |",
            "| --- | --- | --- | --- |",
        ]
        for name, env, default, meaning in rows:
            lines.append(f"| `{name}` | {env} | {_cell(default)} | {_cell(meaning)} |")
    lines += [
        "",
        "Example, in the settings file:",
        "",
        "```yaml",
        "detections:",
        "  snapshot.burst: {threshold: 10, window_minutes: 30}",
        "  discovery.api_burst: {enabled: false}",
        "```",
        "",
        "or `ADSCORE_DETECTIONS__SNAPSHOT_BURST__THRESHOLD=10` in the environment.",
        "",
    ]
    return "\n".join(lines)


def undocumented() -> list[str]:
    """Settings with no meaning or no example, parameters with no meaning (the check names them)."""
    missing = [path for path, _, _, example, meaning in setting_rows() if not meaning or not example]
    for det_id, rows in detection_rows():
        missing += [f"detections.{det_id}.{name}" for name, _, _, meaning in rows if not meaning]
    return missing


def main(argv: list[str]) -> int:
    missing = undocumented()
    if missing:
        print(
            f"describe these (DESCRIBE in {__file__}, or a Field description): {', '.join(missing)}",
            file=sys.stderr,
        )
        return 1
    text = render()
    if "--check" in argv:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT.relative_to(ROOT)} is out of date: run scripts/gen_config_docs.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    sys.exit(main(sys.argv[1:]))
