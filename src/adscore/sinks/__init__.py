"""Alert sinks, opened by URL.

``open_sink(url)`` maps the URL's scheme to a ``"module:Class"`` path and
imports that module only then, so an unused backend (and its SDK) is never
loaded. Every sink it returns is wrapped in a
:class:`~adscore.sinks.base.RetryingSink`.

=================================  ==========================================
URL                                sink
=================================  ==========================================
``-``, ``stdout://[jsonl|ocsf|table]``  :class:`~adscore.sinks.stdout.StdoutSink`
``jsonl:///path/alerts.jsonl``     :class:`~adscore.sinks.stdout.JsonlSink`
``https://...``, ``http://...``    signed JSON :class:`~adscore.sinks.webhook.WebhookSink`
``slack+https://hooks.slack.com/...``  Slack incoming webhook
``teams+https://...``              Microsoft Teams webhook (Adaptive Card)
``sns://<topic-arn>``              ``adscore.sinks.sns.SnsSink``
``pubsub://<topic>``               ``adscore.sinks.pubsub.PubSubSink``
``securityhub://[region[/account]]``  ASFF findings, ``adscore.sinks.securityhub.SecurityHubSink``
``pagerduty://<routing key>``      PagerDuty Events API v2, ``adscore.sinks.pagerduty.PagerDutySink``
``sentinel://<dce host>/<dcr>/<stream>``  Microsoft Sentinel, ``adscore.sinks.sentinel.SentinelSink``
=================================  ==========================================
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from adscore.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from adscore.sinks.base import AlertSink

SINKS: dict[str, str] = {
    "stdout": "adscore.sinks.stdout:StdoutSink",
    "jsonl": "adscore.sinks.stdout:JsonlSink",
    "http": "adscore.sinks.webhook:WebhookSink",
    "https": "adscore.sinks.webhook:WebhookSink",
    "slack+https": "adscore.sinks.webhook:WebhookSink",
    "teams+https": "adscore.sinks.webhook:WebhookSink",
    "sns": "adscore.sinks.sns:SnsSink",
    "pubsub": "adscore.sinks.pubsub:PubSubSink",
    "securityhub": "adscore.sinks.securityhub:SecurityHubSink",
    "pagerduty": "adscore.sinks.pagerduty:PagerDutySink",
    "sentinel": "adscore.sinks.sentinel:SentinelSink",
}
"""URL scheme -> ``"module:Class"``; the class has ``from_url(url, *, secret)``."""

__all__ = ["SINKS", "open_sink", "open_sinks"]


def _scheme(url: str) -> str:
    if url.strip() == "-":
        return "stdout"
    scheme, sep, _ = url.partition("://")
    if not sep or not scheme:
        raise ConfigError(
            "sinks", "a sink URL needs a scheme (stdout://, jsonl://, https://, slack+https://, ...)"
        )
    return scheme.lower()


def open_sink(
    url: str,
    *,
    secret: str | None = None,
    attempts: int = 4,
    base_delay: float = 0.2,
    max_delay: float = 5.0,
) -> AlertSink:
    """Open the sink a URL names, wrapped in a :class:`~adscore.sinks.base.RetryingSink`.

    Parameters
    ----------
    url : str
        See the module docstring for the schemes.
    secret : str | None
        Webhook signing secret (settings read it from ``ADSCORE_WEBHOOK_SECRET``).
    attempts, base_delay, max_delay
        Retry policy (see :class:`~adscore.sinks.base.RetryingSink`).

    Returns
    -------
    AlertSink
        A sink whose ``send`` raises :class:`~adscore.errors.SinkError` with the
        unsent ids when delivery still fails after the retries.

    Raises
    ------
    ConfigError
        ``ConfigError("sinks", ...)`` for an unknown scheme, a malformed URL or a
        backend that cannot be loaded. The message never contains the URL's path
        or query (webhook URLs are secrets).

    Examples
    --------
    >>> sink = open_sink("jsonl:///tmp/alerts.jsonl")  # doctest: +SKIP
    """
    from adscore.sinks.base import RetryingSink, safe_target

    scheme = _scheme(url)
    target = SINKS.get(scheme)
    if target is None:
        raise ConfigError(
            "sinks",
            f"unknown sink scheme {scheme!r} in {safe_target(url)}; known: {', '.join(sorted(SINKS))}",
        )
    module_name, _, class_name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            "sinks",
            f"sink {scheme!r} is not available ({type(exc).__name__}: {exc}); is its extra installed?",
        ) from exc
    inner: AlertSink = cls.from_url(url.strip(), secret=secret)
    return RetryingSink(inner, attempts=attempts, base_delay=base_delay, max_delay=max_delay)


def open_sinks(
    urls: Sequence[str],
    secret: str | None = None,
    *,
    attempts: int = 4,
    base_delay: float = 0.2,
    max_delay: float = 5.0,
) -> AlertSink:
    """Open several sinks as one :class:`~adscore.sinks.base.MultiSink`.

    Parameters
    ----------
    urls : Sequence[str]
        At least one sink URL.
    secret : str | None
        Webhook signing secret, given to every webhook sink.
    attempts, base_delay, max_delay
        Retry policy of each sink.

    Returns
    -------
    AlertSink
        Raises :class:`~adscore.errors.SinkError` listing the ids any sink failed to deliver.

    Raises
    ------
    ConfigError
        If ``urls`` is empty or any URL is bad.
    """
    from adscore.sinks.base import MultiSink

    if isinstance(urls, str) or not urls:
        raise ConfigError("sinks", "give a list of one or more sink URLs")
    return MultiSink(
        [
            open_sink(u, secret=secret, attempts=attempts, base_delay=base_delay, max_delay=max_delay)
            for u in urls
        ]
    )
