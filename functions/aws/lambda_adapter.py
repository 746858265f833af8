"""Glue shared by the Lambda handlers: turn deliveries into ``(ref, record)`` items, map failures back.

No detection logic lives here: records go to :func:`adscore.runtime.run_batch`
unread. What this module knows is the delivery formats (SQS messages holding
EventBridge events or S3 notifications for CloudTrail files, CloudWatch Logs
subscription payloads) and how each platform is told what failed.

SQS failure mapping. Every item's ref starts with ``sqs[<n>]`` (the index of
its message in the batch), so a failed ref names its message. A message is
reported in ``batchItemFailures`` when any of its records is in
``BatchReport.failed`` (unreadable, state not saved, alert not delivered), or
when it could not be unwrapped here (body not JSON, S3 object unreadable,
out of time). Everything else in the batch is acknowledged.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

import orjson
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from adscore import runtime
from adscore.events import RecordError
from adscore.sources.aws import (
    is_cloudtrail_object,
    is_s3_notification,
    iter_cloudtrail_stream,
    unwrap_cwlogs,
    unwrap_s3_objects,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from adscore.engine import BatchReport

__all__ = ["SqsDelivery", "cwlogs_item", "eventbridge_item", "publish"]

#: Stop starting new work when the invocation has less time left than this (ms): the engine still has to
#: save state and send alerts. Messages not started are reported failed, so SQS redelivers them.
RESERVE_MS = 10_000
#: While streaming a CloudTrail file, check the clock every this many records.
CLOCK_EVERY = 2_000
MAX_LOGGED_ERRORS = 20
_REF = re.compile(r"^sqs\[(\d+)\]")

_s3_lock = threading.Lock()
_s3_client: Any = None


def _s3() -> Any:
    """One S3 client per process (honours ``AWS_ENDPOINT_URL`` / ``AWS_REGION``); forgotten by ``reset_engine``."""
    global _s3_client
    with _s3_lock:
        if _s3_client is None:
            from adscore.cloud.aws import client

            _s3_client = client("s3", max_attempts=5)
        return _s3_client


@runtime.on_reset
def _forget_s3() -> None:
    global _s3_client
    with _s3_lock:
        _s3_client = None


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", "")) or type(exc).__name__
    return type(exc).__name__


class _OutOfTime(Exception):
    pass


class SqsDelivery:
    """One SQS batch: yields its records lazily and remembers which message failed and why.

    Parameters
    ----------
    records : list[dict]
        ``event["Records"]`` of the SQS event.
    remaining_ms : Callable[[], int]
        ``context.get_remaining_time_in_millis``.
    """

    def __init__(self, records: list[dict[str, Any]], remaining_ms: Callable[[], int]) -> None:
        self.records = records
        self.remaining_ms = remaining_ms
        self.failed: dict[int, str] = {}  # message index -> reason (failed while unwrapping)
        self.errors: list[RecordError] = []
        self.skipped: Counter[str] = Counter()
        self.objects = 0

    def _fail(self, index: int, reason: str, family: str = "sqs") -> None:
        self.failed.setdefault(index, reason)
        self.errors.append(RecordError(family=family, reason=reason[:500], location=f"sqs[{index}]"))

    def items(self) -> Iterator[tuple[str, Any]]:
        """``(ref, record)`` pairs for :func:`adscore.runtime.run_batch`; S3 files are streamed."""
        for index, message in enumerate(self.records):
            if self.remaining_ms() < RESERVE_MS:
                for rest in range(index, len(self.records)):
                    self.failed.setdefault(rest, "deferred: not enough time left in this invocation")
                return
            try:
                yield from self._message(index, message)
            except _OutOfTime:
                self.failed.setdefault(index, "deferred: ran out of time while reading its CloudTrail file")
            except Exception as exc:  # an S3 read failing midway fails this message only
                self._fail(index, f"cannot read the delivery: {_code(exc)}", "s3")

    def _message(self, index: int, message: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        ref = f"sqs[{index}]"
        try:
            body = orjson.loads(message.get("body") or "")
        except orjson.JSONDecodeError as exc:
            self._fail(index, f"message body is not JSON: {exc}")
            return
        if not isinstance(body, dict):
            self._fail(index, f"message body is a JSON {type(body).__name__}, expected an object")
            return
        if not is_s3_notification(body):
            if body.get("Type") == "Notification" and isinstance(body.get("Message"), str):
                try:  # an SNS envelope (raw message delivery off): the record is its Message
                    body = orjson.loads(body["Message"])
                except orjson.JSONDecodeError as exc:
                    self._fail(index, f"SNS Message is not JSON: {exc}")
                    return
            yield ref, body
            return
        for obj in unwrap_s3_objects(body, ref):
            if isinstance(obj, RecordError):
                self._fail(index, obj.reason, "s3")
                continue
            yield from self._object(index, *obj)

    def _object(self, index: int, bucket: str, key: str, size: int | None) -> Iterator[tuple[str, Any]]:
        wanted, reason = is_cloudtrail_object(key, size)
        if not wanted:
            self.skipped[reason] += 1
            return
        response = _s3().get_object(Bucket=bucket, Key=key)
        if not response.get("ContentLength"):
            self.skipped["empty"] += 1
            return
        self.objects += 1
        location = f"sqs[{index}]:s3://{bucket}/{key[:512]}"
        body = response["Body"]
        try:
            for i, record in enumerate(iter_cloudtrail_stream(body, location)):
                if isinstance(record, RecordError):
                    self._fail(index, record.reason, "cloudtrail")
                    continue
                if i % CLOCK_EVERY == CLOCK_EVERY - 1 and self.remaining_ms() < RESERVE_MS:
                    raise _OutOfTime
                yield f"{location}#Records[{i}]", record
        finally:
            body.close()

    def failures(self, report: BatchReport) -> list[str]:
        """Message ids to report in ``batchItemFailures``, in batch order."""
        indexes = set(self.failed)
        for ref in report.failed:
            match = _REF.match(ref)
            if match is not None:
                indexes.add(int(match.group(1)))
        return [
            str(self.records[i].get("messageId") or f"missing-message-id-{i}")
            for i in sorted(indexes)
            if i < len(self.records)
        ]

    def merge_into(self, report: BatchReport) -> None:
        """Add this delivery's own errors and skips to the engine's report."""
        report.errors.extend(self.errors)
        report.counts["errors"] += len(self.errors)
        report.counts["s3_objects"] += self.objects
        for reason, n in self.skipped.items():
            report.counts[f"skipped_{reason}"] += n
        for index, reason in self.failed.items():
            report.failed.setdefault(f"sqs[{index}]", reason)


def eventbridge_item(event: Any) -> tuple[str, Any]:
    """The ``(ref, record)`` of an EventBridge event delivered directly by a rule."""
    event_id = event.get("id") if isinstance(event, dict) else None
    return f"eventbridge:{str(event_id)[:100]}", event


def cwlogs_item(event: Any) -> tuple[str, Any]:
    """The ``(ref, record)`` of a CloudWatch Logs subscription payload (decoded when possible)."""
    message = unwrap_cwlogs(event, "cwlogs")
    if isinstance(message, RecordError):
        return "cwlogs", event  # the engine reports why it cannot be read
    group, stream = str(message.get("logGroup", ""))[:256], str(message.get("logStream", ""))[:256]
    return f"cwlogs:{group}:{stream}", message


def publish(report: BatchReport, logger: Any, metrics: Any, **extra: Any) -> None:
    """Log the batch (summary, errors, alert ids) and record its EMF metrics.

    Parameters
    ----------
    report : BatchReport
    logger : aws_lambda_powertools.Logger
    metrics : aws_lambda_powertools.Metrics
        Namespace ``adscore``; counts become metrics, alerts get a ``detection`` dimension.
    **extra
        More numbers to log and record (for example ``failed_messages``).
    """
    for error in report.errors[:MAX_LOGGED_ERRORS]:
        logger.warning(
            "record not readable", extra={"reason": error.reason[:500], "location": error.location[:300]}
        )
    for alert in report.sent:
        logger.info(
            "alert sent",
            extra={"alert_id": alert.id, "detection": alert.detection, "severity": alert.severity},
        )
    for name, value in (*report.counts.items(), *extra.items()):
        if value:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    for detection, n in report.by_detection.items():
        with single_metric(name="alerts", unit=MetricUnit.Count, value=n, namespace="adscore") as metric:
            metric.add_dimension(name="detection", value=detection)
    summary = {**report.summary(), **extra}
    if report.sink_error is not None or report.state_error is not None:
        logger.error("batch not fully delivered", extra={"batch": summary})
    else:
        logger.info("batch done", extra={"batch": summary, "alert_ids": [a.id for a in report.alerts][:50]})
