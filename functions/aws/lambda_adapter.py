"""What the Lambda handlers share: the SQS batch reader (CloudTrail files streamed from S3) and logging.

No detection logic and no failure policy here: :func:`adscore.runtime.run_delivery` decides.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import orjson
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from adscore import runtime
from adscore.deadletter import code_of
from adscore.deliveries import Counted, Deferred, Provenance, Record, Skipped, Unreadable
from adscore.deliveries.s3 import S3Object
from adscore.deliveries.sqs import unwrap_sqs_message
from adscore.events import RecordError
from adscore.sources.aws import iter_cloudtrail_stream

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from adscore.deliveries import Item
    from adscore.ingest import IngestAnswer

#: Stop starting new work with less time left than this (ms): the engine still saves state and sends alerts.
RESERVE_MS = 10_000
CLOCK_EVERY = 2_000  # while streaming a CloudTrail file, check the clock every this many records
MAX_LOGGED_ERRORS = 20


@functools.cache
def _s3() -> Any:
    """One S3 client per process (``AWS_ENDPOINT_URL`` / ``AWS_REGION``), forgotten by ``reset_engine``."""
    from adscore.cloud.aws import client

    return client("s3", max_attempts=5)


runtime.on_reset(_s3.cache_clear)


def sqs_items(records: list[dict[str, Any]], remaining_ms: Callable[[], int]) -> Iterator[Item]:
    """The items of an SQS batch, CloudTrail files streamed; messages not started in time are deferred."""
    for index, message in enumerate(records):
        if remaining_ms() < RESERVE_MS:
            for rest in range(index, len(records)):
                mid = str(records[rest].get("messageId") or "") or None
                yield Deferred(
                    "not enough time left in this invocation",
                    Provenance(rest, f"sqs[{rest}]", message_id=mid),
                )
            return
        for item in unwrap_sqs_message(index, message):
            yield from (_stream(item, remaining_ms) if isinstance(item, S3Object) else (item,))


def _stream(obj: S3Object, remaining_ms: Callable[[], int]) -> Iterator[Item]:
    where, location = obj.where, f"{obj.where.location}:s3://{obj.bucket}/{obj.key[:512]}"
    try:
        response = _s3().get_object(Bucket=obj.bucket, Key=obj.key)
    except Exception as exc:  # this message only; SQS redelivers it
        yield Deferred(f"cannot read the delivery: {code_of(exc)}", where)
        return
    if not response.get("ContentLength"):
        yield Skipped("empty", where)
        return
    yield Counted("s3_objects", where)
    body = response["Body"]
    try:
        for i, record in enumerate(iter_cloudtrail_stream(body, location)):
            at = Provenance(where.message, f"{location}#Records[{i}]", i, "aws", where.message_id)
            if isinstance(record, RecordError):
                yield Unreadable(obj.notification, f"{record.reason} (in {location})", at)
            elif i % CLOCK_EVERY == CLOCK_EVERY - 1 and remaining_ms() < RESERVE_MS:
                yield Deferred("ran out of time while reading its CloudTrail file", where)
                return
            else:
                yield Record(record, at)
    except Exception as exc:  # an S3 read failing midway: this message is delivered again
        yield Deferred(f"cannot read the delivery: {code_of(exc)}", where)
    finally:
        body.close()


def publish(result: runtime.DeliveryResult, logger: Any, metrics: Any) -> dict[str, Any]:
    """Log the delivery (summary, errors, alert ids), record its EMF metrics; return the summary."""
    report, summary = result.report, result.summary()
    for error in report.errors[:MAX_LOGGED_ERRORS]:
        logger.warning(
            "record not readable", extra={"reason": error.reason[:500], "location": error.location[:300]}
        )
    for alert in report.sent:
        logger.info(
            "alert sent",
            extra={"alert_id": alert.id, "detection": alert.detection, "severity": alert.severity},
        )
    for name, value in (*report.counts.items(), ("failed_messages", len(result.retry))):
        if value:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    for detection, n in report.by_detection.items():
        with single_metric(name="alerts", unit=MetricUnit.Count, value=n, namespace="adscore") as metric:
            metric.add_dimension(name="detection", value=detection)
    if result.retry:
        logger.error("batch not fully delivered", extra={"batch": summary})
    else:
        logger.info("batch done", extra={"batch": summary, "alert_ids": [a.id for a in report.alerts][:50]})
    return summary


def url_body(event: dict[str, Any]) -> bytes | None:
    """The body of a Function URL request as sent (base64-decoded when Lambda encoded it)."""
    import base64
    import binascii

    body = event.get("body") or ""
    if not isinstance(body, str):
        return b""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return b""
    return body.encode("utf-8", "surrogatepass")


def url_answer(answer: IngestAnswer, metrics: Any) -> dict[str, Any]:
    """The Function URL response of an ingest answer; a refusal is counted as ``ingest_refused_<reason>``."""
    for name, value in answer.counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    return {
        "statusCode": answer.status,
        "headers": {"content-type": "application/json", **answer.headers},
        "body": orjson.dumps(answer.body).decode(),
    }
