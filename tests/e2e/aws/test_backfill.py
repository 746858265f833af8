"""`adscore backfill aws s3://...` through the deployed path (moto server): S3 notifications on the
function's queue -> sqs_handler -> DynamoDB state -> SNS; the alerts equal a local replay's."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from adscore.cli import main
from adscore.emulate.aws import _lambda_sqs_record
from tests.e2e.aws.conftest import AwsStack, LambdaContext
from tests.integration.test_replay_object_store import _trail_files

if TYPE_CHECKING:
    from types import ModuleType

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
CONFIG = str(REPO / "examples" / "config.yaml")


def test_a_backfill_through_the_function_raises_the_alerts_of_a_local_replay(
    aws_stack: AwsStack, handler: ModuleType, tmp_path: Path
) -> None:
    # GIVEN the examples as an organization trail's files in the bucket, and the module's queue
    files = _trail_files(tmp_path)
    for key, data in files.items():
        aws_stack.server.client("s3").put_object(Bucket=aws_stack.bucket, Key=key, Body=data)
    prefix = f"bf{uuid.uuid4().hex[:6]}"
    sqs = aws_stack.server.client("sqs")
    queue_url = sqs.create_queue(QueueName=f"{prefix}-cloudtrail-files")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    # WHEN the archive is backfilled, and the event source mapping runs the function on the queue
    result = CliRunner().invoke(main, ["backfill", "aws", f"s3://{aws_stack.bucket}/AWSLogs/", "--name-prefix", prefix])
    assert result.exit_code == 0, result.stderr
    assert f"{len(files)} objects" in result.stderr and "0 failed" in result.stderr
    aws_stack.use_env(ADSCORE_CONFIG=CONFIG)
    invocations = 0
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            break
        event = {"Records": [_lambda_sqs_record(m, queue_arn) for m in messages]}
        assert handler.sqs_handler(event, LambdaContext()) == {"batchItemFailures": []}
        for m in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
        invocations += 1
    assert invocations >= len(files) // 10
    from_function = {(a["alert"]["detection"], a["alert"]["id"]) for a in aws_stack.alerts()}

    # THEN the alerts are those of a local replay of the same files
    replay = CliRunner().invoke(main, ["replay", str(tmp_path / "local"), "--config", CONFIG, "--output", "jsonl"])
    assert replay.exit_code == 0, replay.stderr
    local = {(a["detection"], a["id"]) for a in map(json.loads, replay.stdout.splitlines()) if a}
    assert len({d for d, _ in local}) >= 8
    assert from_function == local


def test_backfill_names_what_is_missing(aws_stack: AwsStack) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["backfill", "aws", f"s3://{aws_stack.bucket}/AWSLogs/", "--name-prefix", "nope"])
    assert result.exit_code == 2 and "nope-cloudtrail-files" in result.stderr and "not found" in result.stderr
    prefix = f"bf{uuid.uuid4().hex[:6]}"
    aws_stack.server.client("sqs").create_queue(QueueName=f"{prefix}-cloudtrail-files")
    result = runner.invoke(main, ["backfill", "aws", f"s3://{aws_stack.bucket}/Empty/", "--name-prefix", prefix])
    assert result.exit_code == 2 and "no log objects" in result.stderr
    result = runner.invoke(main, ["backfill", "gcp", "gs://bucket/x"])
    assert result.exit_code == 2 and "not available yet" in result.stderr
