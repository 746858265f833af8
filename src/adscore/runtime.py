"""One runtime for the CLI and the three cloud functions: build the engine once, run deliveries.

Every cloud function hands its trigger's payload, unwrapped by :mod:`adscore.deliveries`
into records with provenance, to :func:`run_delivery`, which applies the one failure policy:

- an unreadable record (one the delivery could not decode, or one no parser could read)
  goes to the dead-letter store (setting ``deadletter``) with its bytes and reason: it is
  never dropped and never retried forever;
- a state write that fails after retries, an alert that cannot be sent within the send
  budget, an alert another sender holds under a pending lease, or a message the delivery
  deferred, makes exactly the messages behind them retry: :attr:`DeliveryResult.retry`
  lists their indexes (SQS ``batchItemFailures``), :meth:`DeliveryResult.raise_for_retry`
  raises for platforms that retry a whole invocation (EventBridge, CloudWatch Logs,
  Event Grid, Event Hub) and a Pub/Sub handler nacks by raising too;
- a dead letter that cannot be stored makes its message retry instead.

The send of a batch's alerts is bounded by the invocation's remaining time when the
platform tells it (``remaining_seconds``), else by ``send_timeout_seconds``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adscore.errors import AdscoreError, ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from datetime import datetime

    from adscore.deadletter import DeadLetter, DeadLetterStore
    from adscore.deliveries import Item
    from adscore.engine import BatchReport, Engine
    from adscore.settings import Settings

log = logging.getLogger("adscore.runtime")

#: Secret references by prefix -> "module:function" fetching the secret's value (lazy import).
SECRET_RESOLVERS: dict[str, str] = {
    "arn:aws:secretsmanager:": "adscore.cloud.aws:fetch_secret",
    "projects/": "adscore.cloud.gcp:fetch_secret",
}

log = logging.getLogger("adscore.runtime")

_lock = threading.Lock()
_engine: Engine | None = None
_read_at = 0.0  # time.monotonic() of the last settings read
_reset_hooks: list[Callable[[], None]] = []


def resolve_secret(value: str | None, setting: str = "webhook_secret") -> str | None:
    """Resolve a secret reference to its value.

    A plain value is returned as is (Azure Key Vault references are resolved by
    the platform into app settings; GCP Secret Manager can mount secrets as env);
    ``file:///path`` reads a mounted secret file; an AWS Secrets Manager ARN or a
    GCP ``projects/…/secrets/…/versions/…`` name is fetched by that cloud's module.

    Raises
    ------
    ConfigError
        Naming ``setting`` (the setting that holds the reference), never the value.
    """
    if not value:
        return None
    if value.startswith("file://"):
        path = Path(value.removeprefix("file://"))
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(setting, f"cannot read secret file {path}: {exc.strerror}") from exc
    for prefix, target in SECRET_RESOLVERS.items():
        if value.startswith(prefix) and (prefix != "projects/" or "/secrets/" in value):
            mod, _, fn = target.partition(":")
            try:
                resolved: str = getattr(import_module(mod), fn)(value)
            except ConfigError as exc:
                if exc.setting == setting:
                    raise
                raise ConfigError(setting, exc.reason) from exc
            except Exception as exc:
                raise ConfigError(setting, f"cannot fetch the secret: {type(exc).__name__}") from exc
            return resolved
    return value


def check_settings(settings: Settings, *, sinks: list[str] | None = None) -> None:
    """Check what only opening the engine would otherwise reveal, without opening anything remote.

    ``adscore validate-settings`` runs this, so every setting that would fail at start fails
    there: the state URL's scheme, each sink URL's scheme, and a secret file that cannot be read
    (a secret held in a cloud secret store is fetched at start only, with the function's identity).
    Detection ids (``detections``, ``disabled``, ``severity_overrides``) are checked by
    :class:`~adscore.engine.Engine`.

    Raises
    ------
    ConfigError
        Naming the setting: ``state``, ``sinks``, ``webhook_secret``, ``ingest_token``,
        ``ingest_signing_secret``.
    """
    from adscore.sinks import SINKS
    from adscore.state import STORES

    state_scheme, sep, _ = settings.state.partition("://")
    if not sep or state_scheme.lower() not in STORES:
        known = ", ".join(f"{name}://" for name in STORES)
        raise ConfigError("state", f"unknown state backend {state_scheme[:40]!r}; known: {known}")
    for i, url in enumerate(sinks if sinks is not None else settings.sinks):
        scheme, sep, _ = url.strip().partition("://")
        if url.strip() != "-" and (not sep or scheme.lower() not in SINKS):
            raise ConfigError(
                f"sinks.{i}", f"unknown sink scheme {scheme[:40]!r}; known: {', '.join(sorted(SINKS))}"
            )
    for name in ("webhook_secret", "ingest_token", "ingest_signing_secret"):
        held = getattr(settings, name)
        secret = held.get_secret_value() if held is not None else None
        if secret and secret.startswith("file://"):
            resolved = resolve_secret(secret, name)
            if name != "webhook_secret" and resolved:
                from adscore.ingest import check_secret_value

                check_secret_value(name, resolved, reference=False)


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
    """Return the process-wide engine, built from the environment (for cloud functions).

    When ``settings_max_age_seconds`` is set, the settings (``ADSCORE_CONFIG``:
    a file, ``s3://``, ``ssm://``; and the environment) are read again once
    they are that old, so a tuning change reaches a warm function without a
    restart. An invalid update is logged at ERROR, naming the setting, and the
    last good settings stay in force.

    Raises
    ------
    ConfigError
        At start, naming the bad setting.
    """
    global _engine, _read_at
    from adscore.settings import load_settings

    with _lock:
        if _engine is None:
            _engine = build_engine(load_settings(None, **overrides))
            _read_at = time.monotonic()
        elif 0 < _engine.settings.settings_max_age_seconds <= time.monotonic() - _read_at:
            _read_at = time.monotonic()
            _engine = _refreshed(_engine, lambda: load_settings(None, **overrides))
        return _engine


def _refreshed(engine: Engine, load: Callable[[], Settings]) -> Engine:
    """Re-read the settings of a warm function; keep ``engine`` when they are unchanged or invalid."""
    try:
        settings = load()
        if settings == engine.settings:
            return engine
        fresh = build_engine(settings)
    except ConfigError as exc:
        # The last good settings stay in force; the message names the bad setting.
        log.error("settings update rejected, keeping the settings in force: %s", exc)
        return engine
    log.info("settings changed: version %s is in force (was %s)", fresh.settings_version, engine.settings_version)
    try:
        engine.store.close()
    except Exception as exc:  # the old store's close failing must not stop the new engine
        log.warning("closing the previous state store failed: %s", type(exc).__name__)
    return fresh


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
    from adscore.cloud.aws import forget_session
    from adscore.deadletter import forget_deadletters

    forget_deadletters()
    forget_session()
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


# --------------------------------------------------------------------------- deliveries


#: How long a delivery's done marker is kept (Pub/Sub keeps unacknowledged messages 7 days).
DONE_TTL = timedelta(days=7)


class DeliveryDeferred(AdscoreError):
    """Some messages of a delivery were not processed now; the platform must deliver them again."""


@dataclass
class DeliveryResult:
    """What :func:`run_delivery` did with one platform delivery.

    Attributes
    ----------
    report : BatchReport
        The engine's report, with the delivery's own unreadable and skipped items added.
    retry : dict[int, str]
        Message index -> why the platform must deliver it again.
    message_ids : dict[int, str]
        Message index -> the platform's message id, where the delivery named one.
    dead_lettered : int
        Letters written to the dead-letter store.
    letters : list[DeadLetter]
        The letters of this delivery (written, or retried when the store failed).
    duplicate : bool
        The delivery's done marker said it was processed before: nothing ran.
    error : AdscoreError | None
        Why messages are retried (state, sink, dead-letter store, deferral).
    """

    report: BatchReport
    retry: dict[int, str] = field(default_factory=dict)
    message_ids: dict[int, str] = field(default_factory=dict)
    dead_lettered: int = 0
    error: AdscoreError | None = None
    letters: list[DeadLetter] = field(default_factory=list)
    duplicate: bool = False

    def retry_ids(self, count: int) -> list[str]:
        """The platform ids of the messages to retry, in batch order (for SQS ``batchItemFailures``)."""
        return [self.message_ids.get(i, f"missing-message-id-{i}") for i in sorted(self.retry) if i < count]

    def raise_for_retry(self) -> None:
        """Raise when any message must be delivered again (platforms that retry a whole invocation)."""
        if self.retry:
            raise self.error or DeliveryDeferred("; ".join(sorted(set(self.retry.values())))[:1000])

    def summary(self) -> dict[str, Any]:
        """The report's summary plus ``dead_lettered`` and ``retry_messages``."""
        return {
            **self.report.summary(),
            "dead_lettered": self.dead_lettered,
            "retry_messages": len(self.retry),
        }


def deadletter_store(engine: Engine) -> DeadLetterStore | None:
    """The dead-letter store the engine's settings name (opened once per process), or None."""
    url = engine.settings.deadletter_url
    if url is None:
        return None
    from adscore.deadletter import open_deadletter

    return open_deadletter(url)


def run_delivery(
    items: Iterable[Item],
    *,
    source: str,
    engine: Engine | None = None,
    remaining_seconds: float | None = None,
    final: bool = False,
    done: tuple[str, datetime] | None = None,
) -> DeliveryResult:
    """Run one platform delivery through the engine and apply the one failure policy (module docstring).

    Parameters
    ----------
    items : Iterable[Item]
        What a :mod:`adscore.deliveries` function (or a streaming reader) made of the payload.
    source : str
        The entry point (``aws.sqs_handler``), written on each dead letter.
    engine : Engine, optional
        Default :func:`get_engine`.
    remaining_seconds : float, optional
        The invocation's remaining time: the send budget and the leases follow it.
    final : bool
        The platform will not retry again (an Event Hub batch's last retry): the records of the
        messages to retry are dead-lettered too, with the reason.
    done : (key, event time), optional
        A marker of a delivery processed before (a Cloud Logging entry's ``insertId``): when the
        state holds ``done`` under it nothing runs; it is written once nothing is left to retry.

    Returns
    -------
    DeliveryResult

    Example
    -------
    >>> result = run_delivery(unwrap_eventbridge(event), source="aws.eventbridge_handler")  # doctest: +SKIP
    >>> result.raise_for_retry()  # doctest: +SKIP
    """
    from adscore.deadletter import DeadLetter, DeadLetterError
    from adscore.deliveries import Deferred, Record, Skipped, Unreadable, as_bytes
    from adscore.events import RecordError
    from adscore.send import SendBudget
    from adscore.sources import Hinted

    engine = engine or get_engine()
    if done is not None and engine.store.recall(done[0], done[1]) == "done":
        from adscore.engine import BatchReport

        return DeliveryResult(BatchReport(), duplicate=True)
    message_of: dict[str, int] = {}
    bodies: dict[str, bytes] = {}
    raws: dict[str, Any] = {}
    letters: list[tuple[int, DeadLetter]] = []
    result_ids: dict[int, str] = {}
    deferred: dict[int, str] = {}
    skipped: Counter[str] = Counter()
    errors: list[RecordError] = []

    def records() -> Iterator[tuple[str, Any]]:
        for item in items:
            where = item.where
            if where.message_id is not None:
                result_ids.setdefault(where.message, where.message_id)
            if isinstance(item, Record):
                message_of[where.location] = where.message
                if item.body is not None:
                    bodies[where.location] = item.body
                if final:
                    raws[where.location] = item.raw
                yield where.location, (Hinted(item.raw, where.family) if where.family else item.raw)
            elif isinstance(item, Unreadable):
                letter = DeadLetter(item.body, item.reason, where.location, source, where.message_id)
                letters.append((where.message, letter))
                excerpt = item.body[:200].decode("utf-8", "replace")
                family = where.family or "delivery"
                errors.append(RecordError(family, item.reason[:500], where.location, excerpt))
            elif isinstance(item, Deferred):
                deferred.setdefault(where.message, item.reason)
            elif isinstance(item, Skipped):
                skipped[f"skipped_{item.reason}"] += 1
            else:
                skipped[item.name] += 1

    report = engine.run(records(), budget=SendBudget.of(engine.settings, remaining_seconds))
    report.errors.extend(errors)
    report.counts["errors"] += len(errors)
    report.counts["undecoded"] += len(errors)  # received, though not decodable into a record
    report.counts.update(skipped)
    result = DeliveryResult(report, dict(deferred), result_ids)
    result.error = report.state_error or report.sink_error
    if deferred and result.error is None:
        result.error = DeliveryDeferred(next(iter(deferred.values())))
    for ref, reason in report.failed.items():
        result.retry.setdefault(message_of.get(ref, 0), reason)
    for ref, (reason, raw) in report.unreadable.items():
        m, raw = message_of.get(ref, 0), raw.raw if type(raw) is Hinted else raw
        body = bodies.get(ref) or as_bytes(raw)
        letters.append((m, DeadLetter(body, reason, ref, source, result_ids.get(m))))
    if final:
        for ref, reason in report.failed.items():
            m = message_of.get(ref, 0)
            letters.append((m, DeadLetter(as_bytes(raws.get(ref)), f"not processed: {reason}", ref, source)))
    keep = [(m, letter) for m, letter in letters if final or m not in result.retry]
    result.letters = [letter for _, letter in keep]
    if keep:
        _dead_letter(engine, keep, result, DeadLetterError)
    if done is not None and not result.retry:
        try:
            engine.store.remember(done[0], "done", done[1], DONE_TTL)
        except AdscoreError as exc:  # the marker only saves work: a redelivery runs the idempotent engine
            log.warning("could not mark the delivery done: %s", type(exc).__name__)
    return result


def _dead_letter(
    engine: Engine,
    letters: Sequence[tuple[int, DeadLetter]],
    result: DeliveryResult,
    error_type: type[AdscoreError],
) -> None:
    """Store ``letters``; when that fails, have their messages retried instead (nothing is dropped)."""
    try:
        store = deadletter_store(engine)
        if store is None:
            for _, letter in letters[:50]:  # the caller reports them too (logs, stderr)
                log.debug(
                    "unreadable record not kept (set the deadletter setting to keep it): %s: %s",
                    letter.location[:200],
                    letter.reason[:300],
                )
            result.report.counts["unreadable_not_kept"] += len(letters)
            return
        store.put([letter for _, letter in letters])
        result.dead_lettered += len(letters)
        result.report.counts["dead_lettered"] += len(letters)
    except (error_type, ConfigError) as exc:
        log.error("dead letters not stored (%s); their messages will be retried", exc)
        result.error = result.error or exc
        for m, _ in letters:
            result.retry.setdefault(m, f"dead letter not stored: {exc}")
