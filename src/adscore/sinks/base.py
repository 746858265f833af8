"""The AlertSink protocol, its report, and the wrappers every sink is used through.

Convention: a *backend* (``StdoutSink``, ``WebhookSink``, ``SnsSink``...)
returns a :class:`SendReport` that lists what it delivered and what it could
not, and does not retry. :class:`RetryingSink` retries the failed alerts with
backoff and raises :class:`~adscore.errors.SinkError` with the ids still unsent;
:class:`MultiSink` fans out and raises the same way. :func:`adscore.sinks.open_sink`
always returns a wrapped sink, so callers get either success or a ``SinkError``
naming exactly the alerts to retry: nothing is lost silently.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from urllib.parse import urlsplit

from tenacity import RetryCallState, RetryError, Retrying, retry_if_exception_type, stop_after_attempt

from adscore.errors import SinkError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from adscore.alerts import Alert

log = logging.getLogger("adscore.sinks")


def safe_target(url: str) -> str:
    """Return only the scheme and host of ``url``, for logs and error messages.

    Webhook URLs (Slack, Teams) carry their secret in the path; user info and
    query strings can carry credentials too.

    Examples
    --------
    >>> safe_target("https://hooks.slack.com/services/T0/B0/secret?x=1")
    'https://hooks.slack.com'
    """
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname or '?'}"
    except ValueError:
        return "<invalid url>"


@dataclass(frozen=True, slots=True)
class SendReport:
    """What a sink did with a batch.

    Attributes
    ----------
    sent : tuple[str, ...]
        Ids of the alerts delivered.
    failed : tuple[str, ...]
        Ids of the alerts not delivered.
    permanent : tuple[str, ...]
        The subset of ``failed`` that retrying cannot help (e.g. HTTP 400).
    reasons : dict[str, str]
        Short reason per failed id; never contains a secret or a URL's path or query.
    """

    sent: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    permanent: tuple[str, ...] = ()
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failed

    def raise_for_failures(self, sink: str = "sink") -> None:
        """Raise :class:`SinkError` with the failed ids, if any."""
        if self.failed:
            detail = "; ".join(f"{i}: {r}" for i, r in list(self.reasons.items())[:5])
            raise SinkError(
                f"{sink}: {len(self.failed)} alert(s) not delivered" + (f" ({detail})" if detail else ""),
                unsent=self.failed,
            )


def http_permanent(status: int) -> bool:
    """A 4xx other than 408 and 429: the request itself is wrong, retrying cannot help."""
    return 400 <= status < 500 and status not in (408, 429)


class Tally:
    """A :class:`SendReport` built alert by alert, for sinks that send one request per alert."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.failed: list[str] = []
        self.permanent: list[str] = []
        self.reasons: dict[str, str] = {}

    def fail(self, alert_id: str, reason: str, *, permanent: bool = False) -> None:
        self.failed.append(alert_id)
        self.reasons[alert_id] = reason
        if permanent:
            self.permanent.append(alert_id)

    def status(self, alert_id: str, status: int) -> None:
        """Count one HTTP answer: 2xx sent, else failed (permanent per :func:`http_permanent`)."""
        if 200 <= status < 300:
            self.sent.append(alert_id)
        else:
            self.fail(alert_id, f"HTTP {status}", permanent=http_permanent(status))

    def report(self, logger: logging.Logger, what: str, total: int) -> SendReport:
        """The report, with one warning line naming the distinct reasons when something failed."""
        if self.failed:
            logger.warning(
                "%s: %d of %d alert(s) failed (%s)", what, len(self.failed), total,
                ", ".join(sorted(set(self.reasons.values()))),
            )  # fmt: skip
        return SendReport(sent=tuple(self.sent), failed=tuple(self.failed), permanent=tuple(self.permanent),
                          reasons=self.reasons)  # fmt: skip


@runtime_checkable
class AlertSink(Protocol):
    """Delivers alerts somewhere.

    ``send`` delivers each alert at least once or reports it as failed; a
    backend reports, a wrapper (:class:`RetryingSink`, :class:`MultiSink`)
    raises :class:`~adscore.errors.SinkError` with the unsent ids. ``close``
    releases connections and may be called more than once.

    A backend loaded by URL (see :func:`adscore.sinks.open_sink`) also has a
    classmethod ``from_url(url: str, *, secret: str | None) -> Self``.
    """

    def send(self, alerts: Sequence[Alert]) -> SendReport: ...

    def close(self) -> None: ...


class _Pending(Exception):
    """Raised inside the retry loop while some alerts remain unsent."""


class RetryingSink:
    """Retry the alerts a sink failed to deliver, with exponential backoff and jitter.

    Each attempt sends only the alerts still pending; alerts a backend marks as
    permanent failures are not retried.

    Parameters
    ----------
    inner : AlertSink
        The backend.
    attempts : int
        Total attempts, the first included.
    base_delay, max_delay : float
        The wait before retry *n* is ``base_delay * 2**(n-1)`` plus up to
        ``base_delay`` of random jitter, capped at ``max_delay`` (seconds).
    sleep : Callable[[float], None]
        How to wait (tests pass a no-op).

    Raises
    ------
    SinkError
        From :meth:`send`, with ``unsent`` the ids still failed after all attempts.
    """

    def __init__(
        self,
        inner: AlertSink,
        attempts: int = 4,
        base_delay: float = 0.2,
        max_delay: float = 5.0,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.inner = inner
        self.attempts = max(1, attempts)
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep

    def send(self, alerts: Sequence[Alert]) -> SendReport:
        """Send, retrying failures; see the class docstring."""
        pending = list(alerts)
        sent: list[str] = []
        permanent: list[str] = []
        reasons: dict[str, str] = {}
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=self._backoff,
            retry=retry_if_exception_type(_Pending),
            sleep=self._sleep,
        )
        try:
            for attempt in retrying:
                with attempt:
                    report = self._send_once(pending)
                    sent.extend(report.sent)
                    reasons.update(report.reasons)
                    failed, gave_up = set(report.failed), set(report.permanent)
                    permanent.extend(a.id for a in pending if a.id in gave_up)
                    pending = [a for a in pending if a.id in failed and a.id not in gave_up]
                    if pending:
                        log.warning(
                            "%s: %d alert(s) failed on attempt %d of %d",
                            type(self.inner).__name__,
                            len(pending),
                            attempt.retry_state.attempt_number,
                            self.attempts,
                        )
                        raise _Pending
        except RetryError:
            pass  # attempts exhausted: pending holds what is left
        unsent = tuple(permanent) + tuple(a.id for a in pending)
        report = SendReport(
            sent=tuple(sent),
            failed=unsent,
            permanent=tuple(permanent),
            reasons={i: reasons[i] for i in unsent if i in reasons},
        )
        report.raise_for_failures(type(self.inner).__name__)
        return report

    def _backoff(self, state: RetryCallState) -> float:
        # Our own formula: tenacity's wait_exponential_jitter changed its arguments between 8.x and 9.x.
        exp = self.base_delay * 2 ** (state.attempt_number - 1)
        return float(min(self.max_delay, exp + random.uniform(0, self.base_delay)))

    def _send_once(self, alerts: Sequence[Alert]) -> SendReport:
        try:
            return self.inner.send(alerts)
        except SinkError as exc:
            unsent = set(exc.unsent) if exc.unsent else {a.id for a in alerts}
            return SendReport(
                sent=tuple(a.id for a in alerts if a.id not in unsent),
                failed=tuple(a.id for a in alerts if a.id in unsent),
                reasons=dict.fromkeys(unsent, "SinkError"),
            )
        except Exception as exc:  # a backend bug or an unexpected library error: retry all
            # Only the type: messages of HTTP client errors can carry the URL.
            log.warning("%s raised %s", type(self.inner).__name__, type(exc).__name__)
            return SendReport(
                failed=tuple(a.id for a in alerts),
                reasons=dict.fromkeys((a.id for a in alerts), type(exc).__name__),
            )

    def close(self) -> None:
        """Close the inner sink."""
        self.inner.close()


class MultiSink:
    """Send every alert to every sink, and fail for any alert one of them did not deliver.

    All sinks are tried even when one fails. An alert counts as sent only when
    every sink delivered it. When the platform redelivers after a failure, the
    sinks that had succeeded receive that alert again (at-least-once delivery).

    Parameters
    ----------
    sinks : Sequence[AlertSink]

    Raises
    ------
    SinkError
        From :meth:`send`, with ``unsent`` the ids that at least one sink failed to deliver.
    """

    def __init__(self, sinks: Sequence[AlertSink]) -> None:
        self.sinks = tuple(sinks)

    def send(self, alerts: Sequence[Alert]) -> SendReport:
        """Send to all sinks; see the class docstring."""
        failed: set[str] = set()
        reasons: dict[str, str] = {}
        for sink in self.sinks:
            name = type(getattr(sink, "inner", sink)).__name__
            try:
                report = sink.send(alerts)
            except SinkError as exc:
                ids = set(exc.unsent) if exc.unsent else {a.id for a in alerts}
                report = SendReport(failed=tuple(ids), reasons=dict.fromkeys(ids, str(exc)))
            except Exception as exc:
                log.warning("%s raised %s", name, type(exc).__name__)
                report = SendReport(
                    failed=tuple(a.id for a in alerts),
                    reasons=dict.fromkeys((a.id for a in alerts), type(exc).__name__),
                )
            failed.update(report.failed)
            for i in report.failed:
                reasons.setdefault(i, f"{name}: {report.reasons.get(i, 'failed')}")
        ordered_failed = tuple(a.id for a in alerts if a.id in failed)
        result = SendReport(
            sent=tuple(a.id for a in alerts if a.id not in failed),
            failed=ordered_failed,
            reasons={i: reasons[i] for i in ordered_failed},
        )
        result.raise_for_failures("MultiSink")
        return result

    def close(self) -> None:
        """Close every sink, even if one fails to close."""
        errors: list[BaseException] = []
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
