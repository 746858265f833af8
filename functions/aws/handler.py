"""AWS Lambda entry points. No detection logic: unwrap, run the shared engine, report failures.

- ``handler.eventbridge_handler``: an EventBridge rule's ``AWS API Call via CloudTrail`` event.
- ``handler.sqs_handler``: SQS batches of EventBridge events or S3 notifications of new CloudTrail
  files (streamed from S3). Enable ``ReportBatchItemFailures`` on the event source mapping.
- ``handler.cloudwatch_logs_handler``: CloudWatch Logs subscriptions (CloudTrail, EKS audit).

Configuration comes from the environment only (``ADSCORE_STATE``, ``ADSCORE_SINKS``,
``ADSCORE_CONFIG``, ``ADSCORE_WEBHOOK_SECRET``, ``AWS_ENDPOINT_URL``, ``AWS_REGION``); the engine is
built on the first invocation and reused. Failure policy (:mod:`adscore.runtime`): SQS reports
exactly the failed messages; the asynchronous handlers raise on a state or sink failure, so Lambda
retries them or sends them to the on-failure destination; an unreadable record is logged and
counted (retrying it cannot help).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import lambda_adapter as adapter
from aws_lambda_powertools import Logger, Metrics, Tracer

from adscore import runtime

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="adscore")
metrics = Metrics(namespace="adscore", service="adscore")
tracer = Tracer(service="adscore")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def eventbridge_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """One EventBridge event; raises when its state or alerts could not be saved or sent."""
    report = runtime.run_batch([adapter.eventbridge_item(event)])
    adapter.publish(report, logger, metrics)
    runtime.raise_for_delivery(report)
    return report.summary()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def sqs_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """An SQS batch; returns ``batchItemFailures`` naming exactly the messages to redeliver."""
    delivery = adapter.SqsDelivery(event.get("Records") or [], context.get_remaining_time_in_millis)
    report = runtime.run_batch(delivery.items())
    delivery.merge_into(report)
    failed = delivery.failures(report)
    adapter.publish(report, logger, metrics, failed_messages=len(failed))
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def cloudwatch_logs_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """A CloudWatch Logs subscription payload; raises when state or alerts could not be saved or sent."""
    report = runtime.run_batch([adapter.cwlogs_item(event)])
    adapter.publish(report, logger, metrics)
    runtime.raise_for_delivery(report)
    return report.summary()
