"""The AWS Lambda handlers end to end, against moto in server mode over loopback.

``aws_stack`` creates what a deployment has (the DynamoDB state table, the
alert topic, a queue subscribed to it, the CloudTrail bucket), points the
handlers' environment at them (``ADSCORE_STATE``, ``ADSCORE_SINKS``,
``AWS_ENDPOINT_URL``...) and gives helpers to build deliveries and read what
arrived. Records are small hand-written CloudTrail records in the documented
format (no public sample of these deliveries exists).
"""

from __future__ import annotations

import base64
import gzip
import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from adscore import runtime
from tests.integration import moto_server as _moto
from tests.integration.moto_server import REGION, MotoServer

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

moto_server, aws_env = _moto.moto_server, _moto.aws_env  # fixtures

FUNCTIONS_AWS = Path(__file__).resolve().parents[3] / "functions" / "aws"
ACCOUNT = "111122223333"
T0 = "2024-05-01T12:00:00Z"


@dataclass
class LambdaContext:
    """What Lambda passes as ``context`` (the attributes Powertools reads)."""

    function_name: str = "adscore-detector"
    function_version: str = "$LATEST"
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:adscore-detector"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/adscore-detector"
    log_stream_name: str = "2024/05/01/[$LATEST]0123456789abcdef"
    remaining_ms: int = 300_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def load_handler() -> ModuleType:
    """Import ``functions/aws/handler.py`` as Lambda does (its folder on ``sys.path``)."""
    if str(FUNCTIONS_AWS) not in sys.path:
        sys.path.insert(0, str(FUNCTIONS_AWS))
    import handler

    return handler


# --------------------------------------------------------------------------- records and deliveries


def cloudtrail(
    event_name: str,
    *,
    event_id: str | None = None,
    user: str = "mallory",
    event_time: str = T0,
    source: str = "ec2.amazonaws.com",
    params: dict[str, Any] | None = None,
    read_only: bool = False,
) -> dict[str, Any]:
    """A CloudTrail management event record as CloudTrail writes it."""
    return {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": f"AIDA{user.upper()}",
            "arn": f"arn:aws:iam::{ACCOUNT}:user/{user}",
            "accountId": ACCOUNT,
            "accessKeyId": "AKIAEXAMPLE",
            "userName": user,
        },
        "eventTime": event_time,
        "eventSource": source,
        "eventName": event_name,
        "awsRegion": REGION,
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64",
        "requestParameters": params or {},
        "responseElements": None if read_only else {"_return": True},
        "requestID": str(uuid.uuid4()),
        "eventID": event_id or str(uuid.uuid4()),
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }


def share_public(snapshot: str = "snap-0a1b2c3d4e5f60718", **kw: Any) -> dict[str, Any]:
    """``ModifySnapshotAttribute`` adding ``createVolumePermission`` for group ``all``: the snapshot made public."""
    params = {
        "snapshotId": snapshot,
        "attributeType": "CREATE_VOLUME_PERMISSION",
        "createVolumePermission": {"add": {"items": [{"group": "all"}]}},
    }
    return cloudtrail("ModifySnapshotAttribute", params=params, **kw)


def create_snapshot(volume: str = "vol-0123456789abcdef0", **kw: Any) -> dict[str, Any]:
    """``CreateSnapshot`` of ``volume``; the snapshot id is derived from the event id."""
    record = cloudtrail("CreateSnapshot", params={"volumeId": volume, "description": "nightly"}, **kw)
    snapshot = "snap-" + uuid.uuid5(uuid.NAMESPACE_URL, record["eventID"]).hex[:17]
    record["responseElements"] = {"snapshotId": snapshot, "volumeId": volume, "status": "pending"}
    return record


def eventbridge(record: dict[str, Any]) -> dict[str, Any]:
    """The EventBridge event a rule on ``AWS API Call via CloudTrail`` delivers."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws." + record["eventSource"].split(".")[0],
        "account": ACCOUNT,
        "time": record["eventTime"],
        "region": record["awsRegion"],
        "resources": [],
        "detail": record,
    }


def s3_notification(bucket: str, key: str, size: int) -> dict[str, Any]:
    """An S3 event notification (``ObjectCreated:Put``) as S3 sends it to SQS (key URL-encoded)."""
    from urllib.parse import quote_plus

    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventTime": "2024-05-01T12:05:00.000Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:AROAEXAMPLE:regionalDeliverySession"},
                "requestParameters": {"sourceIPAddress": "10.0.0.1"},
                "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "abc"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "cloudtrail-new-file",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {
                        "key": quote_plus(key, safe="/"),
                        "size": size,
                        "sequencer": "0055AED6DCD90281E5",
                    },
                },
            }
        ]
    }


S3_TEST_EVENT = {
    "Service": "Amazon S3",
    "Event": "s3:TestEvent",
    "Time": "2024-05-01T12:00:00.000Z",
    "Bucket": "b",
    "RequestId": "5582815E1AEA5ADF",
    "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
}


def sqs_event(bodies: list[Any], ids: list[str] | None = None) -> dict[str, Any]:
    """An SQS event source mapping batch; dict bodies are JSON-encoded, strings sent as they are."""
    records = []
    for i, body in enumerate(bodies):
        text = body if isinstance(body, str) else json.dumps(body)
        records.append(
            {
                "messageId": ids[i] if ids else str(uuid.uuid4()),
                "receiptHandle": "AQEB" + uuid.uuid4().hex,
                "body": text,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1714564800000",
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "1714564800001",
                },
                "messageAttributes": {},
                "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:adscore-input",
                "awsRegion": REGION,
            }
        )
    return {"Records": records}


def cwlogs_event(
    records: list[dict[str, Any]], *, group: str = "aws-cloudtrail-logs-111122223333"
) -> dict[str, Any]:
    """A CloudWatch Logs subscription Lambda event: base64 of gzip of a ``DATA_MESSAGE``."""
    message = {
        "messageType": "DATA_MESSAGE",
        "owner": ACCOUNT,
        "logGroup": group,
        "logStream": f"{ACCOUNT}_CloudTrail_{REGION}",
        "subscriptionFilters": ["adscore"],
        "logEvents": [
            {"id": str(36_000_000_000 + i), "timestamp": 1714564800000 + i, "message": json.dumps(r)}
            for i, r in enumerate(records)
        ],
    }
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(message).encode())).decode()}}


def cloudtrail_file(records: list[dict[str, Any]]) -> bytes:
    """A CloudTrail log file as delivered to S3 (gzip of ``{"Records": [...]}``)."""
    return gzip.compress(json.dumps({"Records": records}).encode())


def trail_key(n: int = 1) -> str:
    return (
        f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/2024/05/01/"
        f"{ACCOUNT}_CloudTrail_{REGION}_20240501T1205Z_{n:04d}abcdEFGH.json.gz"
    )


# --------------------------------------------------------------------------- the stack


@dataclass
class AwsStack:
    """The resources of one test, and helpers to use them."""

    server: MotoServer
    table: str
    topic_arn: str
    queue_url: str
    bucket: str
    monkeypatch: pytest.MonkeyPatch
    deadletter_url: str = ""

    @property
    def ddb(self) -> Any:
        return self.server.client("dynamodb")

    def put_object(self, key: str, data: bytes) -> dict[str, Any]:
        """Upload an object and return the S3 notification SQS would carry for it."""
        self.server.client("s3").put_object(Bucket=self.bucket, Key=key, Body=data)
        return s3_notification(self.bucket, key, len(data))

    def alerts(self, wait: float = 0) -> list[dict[str, Any]]:
        """Drain the subscribed queue: each item is ``{"alert", "attributes", "subject"}``."""
        sqs = self.server.client("sqs")
        out: list[dict[str, Any]] = []
        while True:
            response = sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=int(wait)
            )
            messages = response.get("Messages", [])
            if not messages:
                return out
            for m in messages:
                envelope = json.loads(m["Body"])  # SNS -> SQS envelope (raw delivery off)
                out.append(
                    {
                        "alert": json.loads(envelope["Message"]),
                        "attributes": {
                            k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()
                        },
                        "subject": envelope.get("Subject"),
                    }
                )
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])

    def dead_letters(self) -> list[dict[str, Any]]:
        """Drain the dead-letter queue (``ADSCORE_DEADLETTER=sqs://...``): each item is a letter's document."""
        sqs = self.server.client("sqs")
        out: list[dict[str, Any]] = []
        while True:
            response = sqs.receive_message(QueueUrl=self.deadletter_url, MaxNumberOfMessages=10)
            messages = response.get("Messages", [])
            if not messages:
                return out
            for m in messages:
                out.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=self.deadletter_url, ReceiptHandle=m["ReceiptHandle"])

    def items(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Every item of the state table, keyed by ``(pk, sk)``, values decoded."""
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for page in self.ddb.get_paginator("scan").paginate(TableName=self.table, ConsistentRead=True):
            for item in page["Items"]:
                decoded: dict[str, Any] = {}
                for name, value in item.items():
                    ((kind, v),) = value.items()
                    decoded[name] = set(v) if kind == "SS" else int(v) if kind == "N" else v
                out[(decoded["pk"], decoded["sk"])] = decoded
        return out

    def subscribe(self) -> None:
        sns = self.server.client("sns")
        queue_arn = self.server.client("sqs").get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn)

    def use_env(self, **env: str) -> None:
        """Change the handlers' environment; the engine is rebuilt on the next invocation."""
        for name, value in env.items():
            self.monkeypatch.setenv(name, value)
        runtime.reset_engine()


@pytest.fixture
def aws_stack(aws_env: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsStack]:
    from adscore.state.dynamodb import init_table

    suffix = uuid.uuid4().hex[:8]
    table = f"adscore-state-{suffix}"
    init_table(table, aws_env.client("dynamodb"))
    topic_arn = aws_env.client("sns").create_topic(Name=f"adscore-alerts-{suffix}")["TopicArn"]
    queue_url = aws_env.client("sqs").create_queue(QueueName=f"alerts-{suffix}")["QueueUrl"]
    bucket = f"cloudtrail-{suffix}"
    aws_env.client("s3").create_bucket(Bucket=bucket)
    deadletter = f"adscore-deadletter-{suffix}"
    deadletter_url = aws_env.client("sqs").create_queue(QueueName=deadletter)["QueueUrl"]
    stack = AwsStack(aws_env, table, topic_arn, queue_url, bucket, monkeypatch, deadletter_url)
    stack.subscribe()
    monkeypatch.delenv("ADSCORE_CONFIG", raising=False)
    monkeypatch.delenv("ADSCORE_WEBHOOK_SECRET", raising=False)
    stack.use_env(
        ADSCORE_STATE=f"dynamodb://{table}",
        ADSCORE_SINKS=f"sns://{topic_arn}",
        ADSCORE_DEADLETTER=f"sqs://{deadletter}",
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_SERVICE_NAME="adscore",
        POWERTOOLS_DEV="false",
    )
    try:
        yield stack
    finally:
        runtime.reset_engine()


try:  # imported once, outside any test's output capture (Powertools binds its log stream at import)
    _HANDLER: ModuleType | None = load_handler()
except ImportError:  # pragma: no cover - the [aws] extra is not installed
    _HANDLER = None


@pytest.fixture
def handler() -> ModuleType:
    if _HANDLER is None:
        pytest.skip("the [aws] extra (aws-lambda-powertools) is not installed")
    return _HANDLER
