"""Google Cloud Pub/Sub sink: each alert's JSON as one message, with attributes subscribers filter on.

``pubsub://projects/<project>/topics/<topic>`` (optionally ``?ordering_key=detection``).

- Data: the alert JSON (:meth:`~adscore.alerts.Alert.to_json`), trimmed with
  :meth:`~adscore.alerts.Alert.fit` to :data:`MAX_MESSAGE_BYTES` (Pub/Sub's limit is 10 MB).
- Attributes: ``severity``, ``technique``, ``detection`` and ``alert_id``, so a subscription
  filter such as ``attributes.severity = "critical"`` picks what it wants.
- Ordering: with ``?ordering_key=detection`` the messages of one detection carry its id as
  ordering key (the subscription must enable message ordering). After a failed publish the
  key is resumed, so a retry can go through.

``google-cloud-pubsub`` is imported on the first send; the client honours
``PUBSUB_EMULATOR_HOST``. This backend does not retry beyond a short per-request retry: it
reports what failed, and :class:`~adscore.sinks.base.RetryingSink` (which
:func:`~adscore.sinks.open_sink` always adds) retries and raises
:class:`~adscore.errors.SinkError` with the unsent ids.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from typing import TYPE_CHECKING, Any

from adscore.errors import ConfigError
from adscore.sinks.base import SendReport

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Self

    from adscore.alerts import Alert

__all__ = ["MAX_MESSAGE_BYTES", "PubSubSink", "topic_name"]

log = logging.getLogger("adscore.sinks.pubsub")

MAX_MESSAGE_BYTES = 9_000_000
"""Budget for the alert JSON; Pub/Sub accepts 10 MB per message, attributes included."""
_TOPIC = re.compile(r"^projects/([a-z][a-z0-9.:-]{4,61}[a-z0-9])/topics/([A-Za-z][A-Za-z0-9._~+%-]{2,254})$")
#: Errors a retry cannot fix: the topic, the request or the permissions are wrong.
_PERMANENT = frozenset(
    {"NotFound", "PermissionDenied", "InvalidArgument", "Unauthenticated", "FailedPrecondition"}
)


def topic_name(value: str, setting: str = "sinks") -> str:
    """Check a full Pub/Sub topic name (``projects/P/topics/T``) and return it.

    Raises
    ------
    ConfigError
        Naming ``setting``, when ``value`` is not a topic name.

    Example
    -------
    >>> topic_name("projects/acme-prod/topics/adscore-alerts")
    'projects/acme-prod/topics/adscore-alerts'
    """
    if not _TOPIC.match(value):
        raise ConfigError(setting, "a Pub/Sub topic is written projects/<project>/topics/<topic>")
    return value


def _code(exc: BaseException) -> str:
    return type(exc).__name__


def _attr(value: str | None) -> str:
    return ((value or "").strip() or "unknown")[:1024]


class PubSubSink:
    """Publish alerts to a Pub/Sub topic.

    Parameters
    ----------
    topic : str
        ``projects/<project>/topics/<topic>``.
    publisher : google.cloud.pubsub_v1.PublisherClient, optional
        Injected client (built with ``enable_message_ordering`` when ordering is used); by
        default one is built on the first send and stopped by :meth:`close`.
    ordering : bool
        Use the detection id as ordering key.
    timeout : float
        Seconds to wait for Pub/Sub to acknowledge a publish.

    Raises
    ------
    ConfigError
        ``sinks``: not a topic name.

    Example
    -------
    >>> sink = PubSubSink.from_url("pubsub://projects/acme-prod/topics/adscore-alerts")
    """

    def __init__(
        self, topic: str, publisher: Any = None, *, ordering: bool = False, timeout: float = 20.0
    ) -> None:
        self.topic = topic_name(topic)
        self.ordering = ordering
        self.timeout = timeout
        self._publisher = publisher
        self._owns = publisher is None
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, *, secret: str | None = None) -> Self:
        """Build from ``pubsub://projects/P/topics/T[?ordering_key=detection]`` (``secret`` is unused: IAM signs)."""
        del secret
        if not url.lower().startswith("pubsub://"):
            raise ConfigError("sinks", "a Pub/Sub sink URL starts with pubsub://")
        topic, _, query = url[len("pubsub://") :].partition("?")
        ordering = False
        if query:
            if query != "ordering_key=detection":
                raise ConfigError("sinks", "the only Pub/Sub sink option is ?ordering_key=detection")
            ordering = True
        return cls(topic, ordering=ordering)

    def __repr__(self) -> str:
        return f"PubSubSink({self.topic!r}, ordering={self.ordering})"

    def _client(self) -> Any:
        with self._lock:
            if self._publisher is None:
                try:
                    from google.cloud.pubsub_v1 import PublisherClient
                    from google.cloud.pubsub_v1.types import BatchSettings, PublisherOptions
                except ImportError as exc:
                    raise ConfigError("sinks", f"the Pub/Sub sink needs google-cloud-pubsub ({exc})") from exc
                self._publisher = PublisherClient(
                    batch_settings=BatchSettings(max_latency=0.01),
                    publisher_options=PublisherOptions(enable_message_ordering=self.ordering),
                )
            return self._publisher

    def send(self, alerts: Sequence[Alert]) -> SendReport:
        """Publish each alert once; report which were acknowledged and which failed (and why).

        Returns
        -------
        SendReport
            ``failed`` lists the ids Pub/Sub did not acknowledge; ``permanent`` those a retry cannot
            help (missing topic, no permission, invalid message).
        """
        unique = list({a.id: a for a in alerts}.values())
        if not unique:
            return SendReport()
        publisher = self._client()
        from google.api_core.retry import Retry

        retry = Retry(initial=0.1, maximum=1.0, multiplier=2.0, timeout=self.timeout / 2)
        pending: list[tuple[Alert, Any]] = []
        sent: list[str] = []
        failed: list[str] = []
        permanent: list[str] = []
        reasons: dict[str, str] = {}

        def fail(alert: Alert, exc: BaseException) -> None:
            code = _code(exc)
            log.warning("Pub/Sub publish to %s failed: %s", self.topic, code)
            failed.append(alert.id)
            reasons[alert.id] = code
            if code in _PERMANENT:
                permanent.append(alert.id)
            if self.ordering:
                with contextlib.suppress(Exception):  # resuming a key that is not paused is harmless
                    publisher.resume_publish(self.topic, alert.detection[:1024])

        for alert in unique:
            data = alert.fit(MAX_MESSAGE_BYTES).to_json()
            attrs = {
                "severity": _attr(alert.severity),
                "technique": _attr(alert.technique),
                "detection": _attr(alert.detection),
                "alert_id": _attr(alert.id),
            }
            key = alert.detection[:1024] if self.ordering else ""
            try:
                pending.append(
                    (alert, publisher.publish(self.topic, data, ordering_key=key, retry=retry, **attrs))
                )
            except Exception as exc:
                fail(alert, exc)
        for alert, future in pending:
            try:
                future.result(timeout=self.timeout)
                sent.append(alert.id)
            except Exception as exc:
                fail(alert, exc)
        return SendReport(sent=tuple(sent), failed=tuple(failed), permanent=tuple(permanent), reasons=reasons)

    def close(self) -> None:
        """Flush and stop the publisher this sink built (an injected one is left running)."""
        with self._lock:
            publisher, self._publisher = self._publisher, (None if self._owns else self._publisher)
        if self._owns and publisher is not None:
            try:
                publisher.stop()
            except Exception as exc:  # stopping twice or after a failure: nothing left to flush
                log.debug("Pub/Sub publisher stop: %s", _code(exc))
