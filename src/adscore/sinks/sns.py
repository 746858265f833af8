"""Amazon SNS sink: each alert's JSON as one message, with attributes for subscription filter policies.

``sns://arn:aws:sns:<region>:<account>:<topic>`` (or ``...:<topic>.fifo``).

- Message: the alert JSON (:meth:`~adscore.alerts.Alert.to_json`), trimmed
  with :meth:`~adscore.alerts.Alert.fit` to :data:`MAX_MESSAGE_BYTES` so that it
  and its attributes stay under SNS's 256 KiB limit.
- Message attributes (``String``): ``severity``, ``technique``, ``detection``,
  so subscribers filter with a filter policy such as
  ``{"severity": ["high", "critical"]}``.
- Subject (used by email subscriptions): ``[adscore] <severity>: <title>``
  reduced to printable ASCII and 99 characters.
- FIFO topics: ``MessageGroupId`` = detection id, ``MessageDeduplicationId`` =
  alert id (a resend of the same alert within SNS's 5-minute window is dropped
  by SNS itself).

Alerts go out with ``PublishBatch`` (at most 10 entries and 256 KiB per
request). This backend does not retry: it reports what failed, and
:class:`~adscore.sinks.base.RetryingSink` (which :func:`~adscore.sinks.open_sink`
always adds) retries and raises :class:`~adscore.errors.SinkError` with the
unsent ids.
"""

from __future__ import annotations

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

__all__ = ["MAX_BATCH_BYTES", "MAX_MESSAGE_BYTES", "SnsSink"]

log = logging.getLogger("adscore.sinks.sns")

MAX_MESSAGE_BYTES = 256_000
"""Budget for the alert JSON; attributes and subject fit in the rest of SNS's 262,144 bytes."""
MAX_BATCH_BYTES = 262_144
"""SNS limit on one message, and on the sum of the messages of one ``PublishBatch``."""
MAX_BATCH_ENTRIES = 10
_ENTRY_OVERHEAD = 1_024  # attributes, subject and ids of one entry (generous)
_ARN = re.compile(r"^arn:aws[a-z-]*:sns:([a-z0-9-]+):(\d{12}):([A-Za-z0-9_-]{1,256}(?:\.fifo)?)$")
_SUBJECT_UNSAFE = re.compile(r"[^\x20-\x7e]+")
#: Errors a retry cannot fix: the request or the configuration is wrong.
_PERMANENT = frozenset(
    {
        "NotFound",
        "NotFoundException",
        "AuthorizationError",
        "AuthorizationErrorException",
        "InvalidParameter",
        "InvalidParameterException",
        "InvalidParameterValue",
        "InvalidParameterValueException",
        "ValidationException",
        "KMSAccessDenied",
        "KMSDisabled",
        "KMSNotFound",
        "KMSInvalidState",
    }
)


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", "")) or type(exc).__name__
    return type(exc).__name__


def _attr(value: str | None) -> dict[str, str]:
    text = (value or "").strip() or "unknown"
    return {"DataType": "String", "StringValue": text[:256]}


def _subject(alert: Alert) -> str:
    text = _SUBJECT_UNSAFE.sub(" ", f"[adscore] {alert.severity}: {alert.title}").strip()
    return text[:99] or "[adscore] alert"


class SnsSink:
    """Publish alerts to an SNS topic (standard or FIFO).

    Parameters
    ----------
    topic_arn : str
        ``arn:aws:sns:<region>:<account>:<name>``; a name ending ``.fifo`` is a FIFO topic.
    client : botocore SNS client, optional
        Injected client; by default one is built on first send, in the topic's
        region, honouring ``AWS_ENDPOINT_URL``.

    Raises
    ------
    ConfigError
        ``sinks``: the ARN is not an SNS topic ARN.

    Example
    -------
    >>> sink = SnsSink.from_url("sns://arn:aws:sns:eu-west-1:111122223333:adscore-alerts")
    """

    def __init__(self, topic_arn: str, client: Any = None) -> None:
        match = _ARN.match(topic_arn)
        if match is None:
            raise ConfigError(
                "sinks", "an SNS sink URL is written sns://arn:aws:sns:<region>:<account>:<topic>"
            )
        self.topic_arn = topic_arn
        self.region = match.group(1)
        self.fifo = match.group(3).endswith(".fifo")
        self._client = client
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, *, secret: str | None = None) -> Self:
        """Build from ``sns://<topic-arn>`` (``secret`` is unused: SNS requests are signed by IAM)."""
        del secret
        if not url.lower().startswith("sns://"):
            raise ConfigError("sinks", "an SNS sink URL starts with sns://")
        return cls(url[len("sns://") :])

    def __repr__(self) -> str:
        return f"SnsSink({self.topic_arn!r}, fifo={self.fifo})"

    def _sns(self) -> Any:
        with self._lock:
            if self._client is None:
                from adscore.cloud.aws import client

                # Few attempts here: RetryingSink retries whole sends with its own backoff.
                self._client = client("sns", max_attempts=3, region_name=self.region)
            return self._client

    def _entry(self, alert: Alert) -> tuple[dict[str, Any], int]:
        body = alert.fit(MAX_MESSAGE_BYTES).to_json().decode("utf-8")
        entry: dict[str, Any] = {
            "Id": alert.id,
            "Message": body,
            "Subject": _subject(alert),
            "MessageAttributes": {
                "severity": _attr(alert.severity),
                "technique": _attr(alert.technique),
                "detection": _attr(alert.detection),
            },
        }
        if self.fifo:
            entry["MessageGroupId"] = alert.detection[:128] or "adscore"
            entry["MessageDeduplicationId"] = alert.id
        return entry, len(body.encode("utf-8")) + _ENTRY_OVERHEAD

    def _batches(self, alerts: Sequence[Alert]) -> list[list[dict[str, Any]]]:
        batches: list[list[dict[str, Any]]] = []
        current: list[dict[str, Any]] = []
        size = 0
        for alert in alerts:
            entry, entry_size = self._entry(alert)
            if current and (len(current) >= MAX_BATCH_ENTRIES or size + entry_size > MAX_BATCH_BYTES):
                batches.append(current)
                current, size = [], 0
            current.append(entry)
            size += entry_size
        if current:
            batches.append(current)
        return batches

    def send(self, alerts: Sequence[Alert]) -> SendReport:
        """Publish each alert once; report which were published and which failed (and why).

        Returns
        -------
        SendReport
            ``failed`` lists the ids SNS did not accept; ``permanent`` those a
            retry cannot help (bad parameters, missing topic, no permission).
        """
        unique = list({a.id: a for a in alerts}.values())
        sent: list[str] = []
        failed: list[str] = []
        permanent: list[str] = []
        reasons: dict[str, str] = {}
        if not unique:
            return SendReport()
        sns = self._sns()
        for entries in self._batches(unique):
            ids = [e["Id"] for e in entries]
            try:
                response = sns.publish_batch(TopicArn=self.topic_arn, PublishBatchRequestEntries=entries)
            except Exception as exc:
                code = _code(exc)
                log.warning("SNS publish to %s failed: %s", self.topic_arn, code)
                failed.extend(ids)
                reasons.update(dict.fromkeys(ids, code))
                if code in _PERMANENT:
                    permanent.extend(ids)
                continue
            ok = {s["Id"] for s in response.get("Successful", ())}
            for item in response.get("Failed", ()):
                if item.get("Id") in ok:
                    continue
                code = str(item.get("Code") or "Failed")
                reasons[item["Id"]] = code
                if item.get("SenderFault") and code not in ("Throttled", "ThrottlingException"):
                    permanent.append(item["Id"])
            for i in ids:
                if i in ok:
                    sent.append(i)
                else:
                    failed.append(i)
                    reasons.setdefault(i, "not acknowledged")
        return SendReport(sent=tuple(sent), failed=tuple(failed), permanent=tuple(permanent), reasons=reasons)

    def close(self) -> None:
        """Nothing to release (botocore clients hold no open resources that need closing)."""
