"""AWS Lambda entry points: read the trigger, unwrap it, run the shared runtime, map its answer.

- ``eventbridge_handler``: an EventBridge rule's ``AWS API Call via CloudTrail`` event.
- ``sqs_handler``: SQS batches of EventBridge events (or SNS envelopes of them) or S3 notifications of
  new CloudTrail files (streamed). Enable ``ReportBatchItemFailures`` on the event source mapping.
- ``cloudwatch_logs_handler``: CloudWatch Logs subscriptions (CloudTrail, EKS audit).
- ``ingest_handler``: the HTTPS ingest endpoint behind a Lambda Function URL (payload format 2.0):
  Kubernetes audit webhook EventLists and signed ``adscore forward docker`` batches, answered by
  :mod:`adscore.ingest` (401/409/413 refusals, 503 to retry).

The failure policy is :func:`adscore.runtime.run_delivery`'s: an unreadable record goes to the
dead-letter store (``ADSCORE_DEADLETTER``) with its bytes and reason; a state or sink failure makes
exactly its messages retry (``batchItemFailures``, or raising for the asynchronous handlers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import lambda_adapter as adapter
from aws_lambda_powertools import Logger, Metrics

from adscore import ingest, runtime
from adscore.cloud.aws import lambda_tracing
from adscore.deliveries.cwlogs import unwrap_cwlogs
from adscore.deliveries.eventbridge import unwrap_eventbridge

if TYPE_CHECKING:
    from collections.abc import Iterable

    from aws_lambda_powertools.utilities.typing import LambdaContext

    from adscore.deliveries import Item

logger = Logger(service="adscore")
metrics = Metrics(namespace="adscore", service="adscore")
tracer, traced = lambda_tracing("adscore")  # no X-Ray recorder built when tracing is off


def _whole_invocation(items: Iterable[Item], source: str, context: LambdaContext) -> dict[str, Any]:
    """Run a delivery the platform retries as a whole (EventBridge, CloudWatch Logs): raise to retry it."""
    remaining = context.get_remaining_time_in_millis() / 1000
    result = runtime.run_delivery(items, source=source, remaining_seconds=remaining)
    summary = adapter.publish(result, logger, metrics)
    result.raise_for_retry()
    return summary


@logger.inject_lambda_context(clear_state=True)
@traced
@metrics.log_metrics(capture_cold_start_metric=True)
def eventbridge_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """One EventBridge event; raises when it must be delivered again."""
    return _whole_invocation(unwrap_eventbridge(event), "aws.eventbridge_handler", context)


@logger.inject_lambda_context(clear_state=True)
@traced
@metrics.log_metrics(capture_cold_start_metric=True)
def sqs_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """An SQS batch; returns ``batchItemFailures`` naming exactly the messages to redeliver."""
    records = event.get("Records") or []
    items = adapter.sqs_items(records, context.get_remaining_time_in_millis)
    remaining = context.get_remaining_time_in_millis() / 1000
    result = runtime.run_delivery(items, source="aws.sqs_handler", remaining_seconds=remaining)
    adapter.publish(result, logger, metrics)
    return {"batchItemFailures": [{"itemIdentifier": i} for i in result.retry_ids(len(records))]}


@logger.inject_lambda_context(clear_state=True)
@traced
@metrics.log_metrics(capture_cold_start_metric=True)
def cloudwatch_logs_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """A CloudWatch Logs subscription payload; raises when it must be delivered again."""
    return _whole_invocation(unwrap_cwlogs(event), "aws.cloudwatch_logs_handler", context)


@logger.inject_lambda_context(clear_state=True)
@traced
@metrics.log_metrics(capture_cold_start_metric=True)
def ingest_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """A Function URL request (payload 2.0); answers with the status :func:`adscore.ingest.handle` chose."""
    body = adapter.url_body(event)
    answer = ingest.handle(body, event.get("headers") or {}, source="aws.ingest_handler")
    if answer.result is not None:
        adapter.publish(answer.result, logger, metrics)
    return adapter.url_answer(answer, metrics)
