"""One runtime for the CLI and the three cloud functions: build the engine once, run batches.

All three functions and ``adscore replay`` share :func:`get_engine` and
:func:`run_batch`, and so one failure policy:

- an unreadable record is reported with its reason and listed in
  ``BatchReport.failed`` (the platform retries or dead-letters it);
- a state write that fails after retries lists the records whose state was
  lost in ``failed``;
- an alert that cannot be sent after retries has its claim released and the
  records behind it listed in ``failed``, and ``BatchReport.sink_error`` is set;
  :func:`raise_for_delivery` turns that into an exception for platforms that
  retry a whole invocation (EventBridge, Event Grid, Event Hub, Pub/Sub).
"""

from __future__ import annotations

import threading
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adscore.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from adscore.engine import BatchReport, Engine
    from adscore.settings import Settings

#: Secret references by prefix -> "module:function" fetching the secret's value (lazy import).
SECRET_RESOLVERS: dict[str, str] = {
    "arn:aws:secretsmanager:": "adscore.cloud.aws:fetch_secret",
    "projects/": "adscore.cloud.gcp:fetch_secret",
}

_lock = threading.Lock()
_engine: Engine | None = None
_reset_hooks: list[Callable[[], None]] = []


def resolve_secret(value: str | None) -> str | None:
    """Resolve a secret reference to its value.

    A plain value is returned as is (Azure Key Vault references are resolved by
    the platform into app settings; GCP Secret Manager can mount secrets as env);
    ``file:///path`` reads a mounted secret file; an AWS Secrets Manager ARN or a
    GCP ``projects/…/secrets/…/versions/…`` name is fetched by that cloud's module.
    """
    if not value:
        return None
    if value.startswith("file://"):
        path = Path(value.removeprefix("file://"))
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError("webhook_secret", f"cannot read secret file {path}: {exc.strerror}") from exc
    for prefix, target in SECRET_RESOLVERS.items():
        if value.startswith(prefix) and (prefix != "projects/" or "/secrets/" in value):
            mod, _, fn = target.partition(":")
            try:
                resolved: str = getattr(import_module(mod), fn)(value)
            except ConfigError:
                raise
            except Exception as exc:
                raise ConfigError("webhook_secret", f"cannot fetch the secret: {type(exc).__name__}") from exc
            return resolved
    return value


def build_engine(settings: Settings, *, sinks: list[str] | None = None) -> Engine:
    """Build an engine from settings: state store, sinks (with the resolved webhook secret)."""
    from adscore.engine import Engine
    from adscore.sinks import open_sinks
    from adscore.state import open_store

    secret = resolve_secret(settings.webhook_secret.get_secret_value() if settings.webhook_secret else None)
    urls = list(sinks if sinks is not None else settings.sinks)
    sink = open_sinks(urls, secret=secret) if urls else None
    return Engine(settings, open_store(settings.state), sink)


def get_engine(**overrides: Any) -> Engine:
    """Return the process-wide engine, built once from the environment (for cloud functions).

    Raises
    ------
    ConfigError
        At start, naming the bad setting.
    """
    global _engine
    with _lock:
        if _engine is None:
            from adscore.settings import load_settings

            _engine = build_engine(load_settings(None, **overrides))
        return _engine


def on_reset(hook: Callable[[], None]) -> Callable[[], None]:
    """Register ``hook`` to run on :func:`reset_engine` (an adapter forgetting its per-process clients).

    Usable as a decorator; registering the same function twice keeps one.
    """
    with _lock:
        if hook not in _reset_hooks:
            _reset_hooks.append(hook)
    return hook


def reset_engine() -> None:
    """Forget the process-wide engine and what adapters built with it (tests; settings or endpoints changed)."""
    global _engine
    with _lock:
        hooks = list(_reset_hooks)
        try:
            if _engine is not None:
                _engine.store.close()
        finally:
            _engine = None
    for hook in hooks:
        hook()


def run_batch(items: Iterable[tuple[str, Any]], engine: Engine | None = None) -> BatchReport:
    """Run one batch of ``(record_ref, raw_record)`` pairs through the engine."""
    return (engine or get_engine()).run(items)


def raise_for_delivery(report: BatchReport) -> None:
    """Raise the sink or state error of a batch, for platforms that retry whole invocations."""
    if report.sink_error is not None:
        raise report.sink_error
    if report.state_error is not None:
        raise report.state_error
