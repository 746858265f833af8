"""The three Lambda handlers end to end: real-format deliveries in, alerts out of a subscribed queue.

Everything talks to moto in server mode over loopback (see conftest.py): the
DynamoDB state table, the SNS topic and the queue subscribed to it, the S3
bucket holding CloudTrail files, SSM and Secrets Manager.
"""

from __future__ import annotations

import base64
import gzip
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import uuid
import zipfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from adscore.errors import ConfigError, SinkError
from tests.e2e.aws.conftest import (
    ACCOUNT,
    S3_TEST_EVENT,
    AwsStack,
    LambdaContext,
    cloudtrail,
    cloudtrail_file,
    create_snapshot,
    cwlogs_event,
    eventbridge,
    load_handler,
    share_public,
    sqs_event,
    trail_key,
)
from tests.integration import moto_server as _moto

if TYPE_CHECKING:
    from types import ModuleType

    from adscore.alerts import Alert
    from tests.integration.moto_server import MotoServer

pytestmark = pytest.mark.integration

SHARED = "snapshot.shared_external"


def emf_metrics(text: str) -> Counter[str]:
    """Sum the EMF metrics printed on stdout (name -> value), across dimension sets."""
    totals: Counter[str] = Counter()
    for line in text.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        doc = json.loads(line)
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            dims = [d for group in directive["Dimensions"] for d in group if d != "service"]
            for metric in directive["Metrics"]:
                name = metric["Name"]
                suffix = "".join(f"[{doc[d]}]" for d in dims if d != "function_name")
                for value in doc[name] if isinstance(doc[name], list) else [doc[name]]:
                    totals[name + suffix] += int(value)
    return totals


def discovery_reads(user: str, n: int) -> list[dict[str, Any]]:
    apis = [
        ("ec2.amazonaws.com", "DescribeInstances"),
        ("s3.amazonaws.com", "ListBuckets"),
        ("iam.amazonaws.com", "ListRoles"),
        ("lambda.amazonaws.com", "ListFunctions20150331"),
        ("rds.amazonaws.com", "DescribeDBInstances"),
    ]
    return [
        cloudtrail(apis[i % len(apis)][1], source=apis[i % len(apis)][0], user=user, read_only=True)
        for i in range(n)
    ]


# --------------------------------------------------------------------------- EventBridge


def test_eventbridge_event_alerts_through_sns_with_filterable_attributes(
    aws_stack: AwsStack, handler: ModuleType
) -> None:
    # GIVEN a rule delivering "snapshot made public" (ModifySnapshotAttribute, group all)
    record = share_public(snapshot="snap-0feedface0000001", user="mallory")
    # WHEN the function handles it
    summary = handler.eventbridge_handler(eventbridge(record), LambdaContext())
    # THEN one alert arrives in the subscribed queue, with the attributes filter policies use
    [received] = aws_stack.alerts()
    alert = received["alert"]
    assert alert["detection"] == SHARED
    assert alert["technique"] == "T1578.001"
    assert "snap-0feedface0000001" in alert["title"] and "public" in alert["title"]
    assert alert["principal"]["id"] == f"arn:aws:iam::{ACCOUNT}:user/mallory"
    assert alert["evidence"]["event_ids"] == [record["eventID"]]
    assert received["attributes"] == {
        "severity": alert["severity"],
        "technique": "T1578.001",
        "detection": SHARED,
    }
    assert received["subject"].startswith(f"[adscore] {alert['severity']}: snap-0feedface0000001")
    assert summary["alerts_by_detection"] == {SHARED: 1}
    # AND the table holds the confirmed send that deduplicates it, with event-time expiry and a later purge
    claim = aws_stack.items()[(f"alert|{alert['id']}|sent", "value")]
    assert claim["purge_at"] - claim["expires_at"] == 30 * 86400


def test_unreadable_eventbridge_event_is_dead_lettered_not_retried(
    aws_stack: AwsStack, handler: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # An event with no CloudTrail detail cannot become readable by retrying: it goes to the dead-letter queue.
    broken = {"version": "0", "id": "x", "detail-type": "AWS API Call via CloudTrail", "detail": "oops"}
    summary = handler.eventbridge_handler(broken, LambdaContext())  # returns: Lambda does not retry it
    assert summary["errors"] == 1 and summary["dead_lettered"] == 1 and summary["retry_messages"] == 0
    assert emf_metrics(capsys.readouterr().out)["errors"] == 1
    assert aws_stack.alerts() == []
    [letter] = aws_stack.dead_letters()
    assert json.loads(letter["body"]) == broken
    assert letter["source"] == "aws.eventbridge_handler" and letter["location"] == "eventbridge:x"
    assert "detail" in letter["reason"]


# --------------------------------------------------------------------------- SQS and S3 CloudTrail files


def test_sqs_batch_streams_cloudtrail_files_and_skips_non_log_objects(
    aws_stack: AwsStack, handler: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a CloudTrail file (reads, a snapshot, a public share) and the other objects a trail bucket holds
    records = [*discovery_reads("scout", 7), create_snapshot(user="alice"), share_public(user="alice")]
    log_file = aws_stack.put_object(trail_key(1), cloudtrail_file(records))
    digest = aws_stack.put_object(
        f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/2024/05/01/{ACCOUNT}_CloudTrail-Digest_x.json.gz",
        gzip.compress(b"{}"),
    )
    empty = aws_stack.put_object(f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2024/05/01/empty.json.gz", b"")
    other = aws_stack.put_object(f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2024/05/01/notes.txt", b"hello")
    direct = eventbridge(share_public(snapshot="snap-0000000000000beef", user="bob"))
    # a second file whose notification came through SNS (raw message delivery off)
    via_sns_records = [share_public(snapshot="snap-00000000000005e5", user="carl")]
    via_sns = {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:cloudtrail-files",
        "Message": json.dumps(aws_stack.put_object(trail_key(9), cloudtrail_file(via_sns_records))),
        "Timestamp": "2024-05-01T12:05:01.000Z",
    }
    # a third file announced by the trail's own SNS notification ({"s3Bucket", "s3ObjectKey": [...]})
    trail_records = [share_public(snapshot="snap-0000000000000d1a", user="dina")]
    aws_stack.put_object(trail_key(10), cloudtrail_file(trail_records))
    bucket = json.loads(via_sns["Message"])["Records"][0]["s3"]["bucket"]["name"]
    via_trail_topic = {
        **via_sns,
        "MessageId": str(uuid.uuid4()),
        "Message": json.dumps({"s3Bucket": bucket, "s3ObjectKey": [trail_key(10)]}),
    }
    batch = sqs_event([log_file, digest, empty, other, S3_TEST_EVENT, direct, via_sns, via_trail_topic])
    # WHEN one SQS batch carries their notifications, a test event and an EventBridge event
    result = handler.sqs_handler(batch, LambdaContext())
    # THEN every message is acknowledged
    assert result == {"batchItemFailures": []}
    alerts = {
        a["alert"]["principal"]["name"]: a for a in aws_stack.alerts() if a["alert"]["detection"] == SHARED
    }
    assert set(alerts) == {"alice", "bob", "carl", "dina"}
    assert alerts["alice"]["alert"]["evidence"]["event_ids"] == [records[-1]["eventID"]]
    # AND skipped objects are counted by reason, not as errors; every file record and the event were read
    metrics = emf_metrics(capsys.readouterr().out)
    assert metrics["skipped_digest"] == 1
    assert metrics["skipped_empty"] == 1
    assert metrics["skipped_not_json_gz"] == 1
    assert metrics["s3_objects"] == 3
    assert metrics["records"] == len(records) + 1 + len(via_sns_records) + len(trail_records)
    assert metrics["errors"] == 0 and metrics["failed_messages"] == 0
    assert metrics[f"alerts[{SHARED}]"] == 4


def test_same_batch_delivered_three_times_gives_one_alert_and_unchanged_state(
    aws_stack: AwsStack, handler: ModuleType
) -> None:
    records = [create_snapshot(user="carol", event_time=f"2024-05-01T12:0{i}:00Z") for i in range(6)]
    records.append(share_public(user="carol", event_time="2024-05-01T12:07:00Z"))
    batch = sqs_event([aws_stack.put_object(trail_key(2), cloudtrail_file(records))])
    assert handler.sqs_handler(batch, LambdaContext()) == {"batchItemFailures": []}
    first_alerts = aws_stack.alerts()
    state = aws_stack.items()
    assert {a["alert"]["detection"] for a in first_alerts} >= {SHARED}
    assert len({a["alert"]["id"] for a in first_alerts}) == len(first_alerts)
    burst_sets = [item for (pk, sk), item in state.items() if sk == "set" and pk.startswith("snapshot.burst")]
    assert any(len(item["m"]) == 6 for item in burst_sets)  # six distinct snapshots counted
    for _ in range(2):  # SQS redelivers the same batch (at-least-once)
        assert handler.sqs_handler(batch, LambdaContext()) == {"batchItemFailures": []}
        assert aws_stack.alerts() == []
        assert aws_stack.items() == state


def test_corrupt_message_and_truncated_file_are_dead_lettered_and_the_rest_processed(
    aws_stack: AwsStack, handler: ModuleType
) -> None:
    good_file = aws_stack.put_object(trail_key(3), cloudtrail_file([share_public(user="dave")]))
    whole = cloudtrail_file([share_public(user="erin", snapshot=f"snap-{i:017d}") for i in range(50)])
    truncated = aws_stack.put_object(trail_key(4), whole[: len(whole) // 2])
    ids = ["m-good-event", "m-corrupt", "m-good-file", "m-truncated"]
    batch = sqs_event([eventbridge(share_public(user="frank")), '{"Records": [', good_file, truncated], ids)
    result = handler.sqs_handler(batch, LambdaContext())
    # retrying cannot mend them: nothing is redelivered, both are in the dead-letter queue with their bytes
    assert result == {"batchItemFailures": []}
    letters = {letter["message_id"]: letter for letter in aws_stack.dead_letters()}
    assert set(letters) == {"m-corrupt", "m-truncated"}
    assert letters["m-corrupt"]["body"] == '{"Records": [' and "not JSON" in letters["m-corrupt"]["reason"]
    assert json.loads(letters["m-truncated"]["body"]) == truncated  # the notification, to redrive the file
    assert trail_key(4) in letters["m-truncated"]["reason"]
    # the good messages' alerts were delivered; the truncated file's records before the damage too
    names = Counter(a["alert"]["principal"]["name"] for a in aws_stack.alerts())
    assert names["dave"] == 1 and names["frank"] == 1


def test_out_of_time_messages_are_returned_unread(aws_stack: AwsStack, handler: ModuleType) -> None:
    batch = sqs_event([eventbridge(share_public(user="gina"))], ["m-late"])
    result = handler.sqs_handler(batch, LambdaContext(remaining_ms=1_000))
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-late"}]}
    assert aws_stack.alerts() == []
    assert handler.sqs_handler(batch, LambdaContext()) == {"batchItemFailures": []}
    assert len(aws_stack.alerts()) == 1


# --------------------------------------------------------------------------- CloudWatch Logs


def test_cloudwatch_logs_subscription_payload(aws_stack: AwsStack, handler: ModuleType) -> None:
    records = [*discovery_reads("henry", 3), share_public(user="henry", snapshot="snap-00000000000c10d")]
    summary = handler.cloudwatch_logs_handler(cwlogs_event(records), LambdaContext())
    assert summary["counts"]["records"] == 4 and summary["counts"]["events"] == 4  # one record per log event
    [received] = aws_stack.alerts()
    assert received["alert"]["detection"] == SHARED
    assert "snap-00000000000c10d" in received["alert"]["title"]
    # a CONTROL_MESSAGE (sent when the subscription is created) carries nothing and is no error
    control = {"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "", "logEvents": []}
    import base64

    payload = {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(control).encode())).decode()}}
    summary = handler.cloudwatch_logs_handler(payload, LambdaContext())
    assert summary["errors"] == 0 and summary["counts"].get("events", 0) == 0


def test_cloudwatch_logs_eks_audit_log_group(aws_stack: AwsStack, handler: ModuleType) -> None:
    audit = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": str(uuid.uuid4()),
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/payments/secrets",
        "verb": "list",
        "user": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
        "sourceIPs": ["198.51.100.7"],
        "userAgent": "kubectl/v1.29.0",
        "objectRef": {"resource": "secrets", "namespace": "payments", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": "2024-05-01T12:00:00.000000Z",
        "stageTimestamp": "2024-05-01T12:00:00.010000Z",
        "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
    }
    summary = handler.cloudwatch_logs_handler(
        cwlogs_event([audit], group="/aws/eks/prod/cluster"), LambdaContext()
    )
    assert summary["errors"] == 0 and summary["counts"]["events"] == 1


def test_unreadable_cloudwatch_logs_payload_is_dead_lettered(
    aws_stack: AwsStack, handler: ModuleType
) -> None:
    broken = {"awslogs": {"data": "H4sI-not-gzip"}}
    summary = handler.cloudwatch_logs_handler(broken, LambdaContext())
    assert summary["dead_lettered"] == 1 and summary["retry_messages"] == 0
    [letter] = aws_stack.dead_letters()
    assert json.loads(letter["body"]) == broken and "awslogs.data" in letter["reason"]
    assert letter["source"] == "aws.cloudwatch_logs_handler"


def test_an_unreadable_log_event_is_dead_lettered_alone_and_the_rest_processed(
    aws_stack: AwsStack, handler: ModuleType
) -> None:
    good = share_public(user="lena", snapshot="snap-00000000000c10e")
    payload = json.loads(gzip.decompress(base64.b64decode(cwlogs_event([good])["awslogs"]["data"])))
    payload["logEvents"].insert(0, {"id": "1", "timestamp": 1714564800000, "message": "{not json"})
    event = {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()}}
    summary = handler.cloudwatch_logs_handler(event, LambdaContext())  # returns: nothing to retry
    assert summary["dead_lettered"] == 1 and summary["counts"]["events"] == 1
    [letter] = aws_stack.dead_letters()
    assert letter["body"] == "{not json" and letter["location"].endswith("#logEvents[0]")
    assert [a["alert"]["principal"]["name"] for a in aws_stack.alerts()] == ["lena"]


def test_unreadable_records_go_to_the_dead_letter_bucket_too(
    aws_stack: AwsStack, handler: ModuleType
) -> None:
    # GIVEN the dead-letter store is a bucket (s3://BUCKET/PREFIX) instead of a queue
    aws_stack.use_env(ADSCORE_DEADLETTER=f"s3://{aws_stack.bucket}/deadletter")
    batch = sqs_event(["not json", eventbridge(share_public(user="kim"))], ["m-bad", "m-good"])
    assert handler.sqs_handler(batch, LambdaContext()) == {"batchItemFailures": []}
    s3 = aws_stack.server.client("s3")
    [obj] = s3.list_objects_v2(Bucket=aws_stack.bucket, Prefix="deadletter/")["Contents"]
    assert obj["Key"].startswith("deadletter/aws.sqs_handler/")
    letter = json.loads(s3.get_object(Bucket=aws_stack.bucket, Key=obj["Key"])["Body"].read())
    assert letter["body"] == "not json" and letter["message_id"] == "m-bad"
    assert [a["alert"]["principal"]["name"] for a in aws_stack.alerts()] == ["kim"]


def test_a_dead_letter_store_that_fails_makes_its_message_retry(
    aws_stack: AwsStack, handler: ModuleType
) -> None:
    aws_stack.use_env(ADSCORE_DEADLETTER="sqs://no-such-queue")
    batch = sqs_event(["not json", eventbridge(share_public(user="lee"))], ["m-bad", "m-good"])
    assert handler.sqs_handler(batch, LambdaContext()) == {"batchItemFailures": [{"itemIdentifier": "m-bad"}]}
    assert [a["alert"]["principal"]["name"] for a in aws_stack.alerts()] == ["lee"]


# --------------------------------------------------------------------------- delivery failures


def test_unreachable_topic_fails_the_invocation_and_a_retry_delivers(
    aws_stack: AwsStack, handler: ModuleType
) -> None:
    sns = aws_stack.server.client("sns")
    sns.delete_topic(TopicArn=aws_stack.topic_arn)
    event = eventbridge(share_public(user="ivan", snapshot="snap-0000000000000dead"))
    # WHEN the alert cannot be published, the asynchronous invocation fails (Lambda retries it)
    with pytest.raises(SinkError):
        handler.eventbridge_handler(event, LambdaContext())
    # AND the lease was given back, so the retry is not deduplicated away
    assert not [k for k in aws_stack.items() if k[1] == "claim"]
    # WHEN the topic is back and Lambda retries, the alert arrives once
    assert sns.create_topic(Name=aws_stack.topic_arn.rsplit(":", 1)[1])["TopicArn"] == aws_stack.topic_arn
    aws_stack.subscribe()
    handler.eventbridge_handler(event, LambdaContext())
    [received] = aws_stack.alerts()
    assert received["alert"]["principal"]["name"] == "ivan"


def test_closed_sns_port_reports_the_alerting_sqs_message_only(
    aws_stack: AwsStack, handler: ModuleType
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    aws_stack.use_env(AWS_ENDPOINT_URL_SNS=f"http://127.0.0.1:{closed}")
    benign = eventbridge(cloudtrail("DescribeInstances", user="judy", read_only=True))
    alerting = eventbridge(share_public(user="judy"))
    batch = sqs_event([benign, alerting], ["m-benign", "m-alerting"])
    assert handler.sqs_handler(batch, LambdaContext()) == {
        "batchItemFailures": [{"itemIdentifier": "m-alerting"}]
    }
    aws_stack.monkeypatch.delenv("AWS_ENDPOINT_URL_SNS")
    aws_stack.use_env()
    assert handler.sqs_handler(batch, LambdaContext()) == {"batchItemFailures": []}
    assert [a["alert"]["principal"]["name"] for a in aws_stack.alerts()] == ["judy"]


# --------------------------------------------------------------------------- configuration by reference


def test_settings_from_ssm_and_webhook_secret_from_secrets_manager(
    aws_stack: AwsStack, handler: ModuleType
) -> None:
    from tests.integration.webhook_receiver import WebhookReceiver

    secret = "whsec-" + uuid.uuid4().hex
    arn = aws_stack.server.client("secretsmanager").create_secret(
        Name="adscore/webhook", SecretString=secret
    )["ARN"]
    config = "disabled: [snapshot.burst]\norg_accounts: ['444455556666']\n"
    aws_stack.server.client("ssm").put_parameter(Name="/adscore/config", Value=config, Type="SecureString")
    share = share_public(user="kim")
    share["requestParameters"]["createVolumePermission"]["add"]["items"] = [{"userId": "444455556666"}]
    with WebhookReceiver(secret=secret) as receiver:
        aws_stack.use_env(
            ADSCORE_CONFIG="ssm:///adscore/config",
            ADSCORE_WEBHOOK_SECRET=arn,
            ADSCORE_SINKS=f"sns://{aws_stack.topic_arn},{receiver.url}",
        )
        # an org account (from the SSM settings) is not external: no alert
        handler.eventbridge_handler(eventbridge(share), LambdaContext())
        assert receiver.requests == [] and aws_stack.alerts() == []
        handler.eventbridge_handler(eventbridge(share_public(user="kim")), LambdaContext())
        [request] = receiver.requests
    assert request.verified  # signed with the value fetched from Secrets Manager
    assert json.loads(request.body)["detection"] == SHARED
    assert len(aws_stack.alerts()) == 1


def test_settings_from_s3(aws_stack: AwsStack, handler: ModuleType) -> None:
    aws_stack.server.client("s3").put_object(
        Bucket=aws_stack.bucket, Key="config/adscore.yaml", Body=b"disabled: ['snapshot.*']\n"
    )
    aws_stack.use_env(ADSCORE_CONFIG=f"s3://{aws_stack.bucket}/config/adscore.yaml")
    summary = handler.eventbridge_handler(eventbridge(share_public(user="lee")), LambdaContext())
    assert summary["alerts_by_detection"] == {} and summary["counts"]["events"] == 1
    assert aws_stack.alerts() == []


# --------------------------------------------------------------------------- the SNS sink on its own


def make_test_alert(n: int, **overrides: Any) -> Alert:
    from adscore.alerts import make_alert

    fields: dict[str, Any] = {
        "detection": SHARED,
        "entity": f"arn:aws:iam::{ACCOUNT}:user/u{n}|snap-{n}",
        "window_start": datetime(2024, 5, 1, 12, tzinfo=UTC),
        "technique": "T1578.001",
        "technique_name": "Create Snapshot",
        "tactic": "Defense Evasion",
        "severity": "high",
        "title": f"snap-{n} shared by u{n}\nwith ünïcode",
        "summary": "shared",
        "principal": {"id": f"arn:aws:iam::{ACCOUNT}:user/u{n}", "type": "user", "name": f"u{n}"},
        "cloud": "aws",
        "first_seen": datetime(2024, 5, 1, 12, tzinfo=UTC),
        "last_seen": datetime(2024, 5, 1, 12, tzinfo=UTC),
        "event_ids": [f"ev-{n}"],
    }
    return make_alert(**{**fields, **overrides})


def raw_subscribed_queue(server: MotoServer, topic_arn: str, fifo: bool = False) -> str:
    sqs = server.client("sqs")
    name = f"raw-{uuid.uuid4().hex[:8]}" + (".fifo" if fifo else "")
    url = sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"} if fifo else {})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    server.client("sns").subscribe(
        TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"}
    )
    return str(url)


def drain(server: MotoServer, url: str) -> list[dict[str, Any]]:
    sqs = server.client("sqs")
    out: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not got:
            return out
        for m in got:
            out.append(m)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_sns_sink_fifo_topic_groups_by_detection_and_deduplicates_by_alert_id(aws_env: MotoServer) -> None:
    from adscore.sinks import open_sink

    topic = aws_env.client("sns").create_topic(Name="alerts.fifo", Attributes={"FifoTopic": "true"})[
        "TopicArn"
    ]
    queue = raw_subscribed_queue(aws_env, topic, fifo=True)
    sink = open_sink(f"sns://{topic}")
    first, second = make_test_alert(1), make_test_alert(2, severity="critical")
    sink.send([first, second])
    sink.send([first])  # a resend (e.g. after a partial failure) inside SNS's deduplication window
    messages = drain(aws_env, queue)
    assert sorted(json.loads(m["Body"])["id"] for m in messages) == sorted([first.id, second.id])
    for m in messages:
        alert = json.loads(m["Body"])
        assert m["Attributes"]["MessageGroupId"] == SHARED
        assert m["Attributes"]["MessageDeduplicationId"] == alert["id"]
        assert {k: v["StringValue"] for k, v in m["MessageAttributes"].items()} == {
            "severity": alert["severity"],
            "technique": "T1578.001",
            "detection": SHARED,
        }


def test_sns_sink_trims_oversized_alerts_and_batches_many(aws_env: MotoServer) -> None:
    from adscore.sinks import open_sink
    from adscore.sinks.sns import MAX_MESSAGE_BYTES

    topic = aws_env.client("sns").create_topic(Name="alerts")["TopicArn"]
    queue = raw_subscribed_queue(aws_env, topic)
    huge = [{f"k{i}": "x" * 2000 for i in range(100)} for _ in range(5)]  # ~1 MB of evidence
    alerts = [make_test_alert(n) for n in range(22)] + [make_test_alert(99, records=huge)]
    assert len(alerts[-1].to_json()) > 262_144
    report = open_sink(f"sns://{topic}").send(alerts)
    assert sorted(report.sent) == sorted(a.id for a in alerts) and report.failed == ()
    bodies = {json.loads(m["Body"])["id"]: m["Body"] for m in drain(aws_env, queue)}
    assert set(bodies) == {a.id for a in alerts}
    big = json.loads(bodies[alerts[-1].id])
    assert len(bodies[alerts[-1].id].encode()) <= MAX_MESSAGE_BYTES
    assert big["evidence"]["truncated"] is True and big["evidence"]["event_ids"] == ["ev-99"]


def test_sns_sink_reports_a_missing_topic_as_a_permanent_failure(aws_env: MotoServer) -> None:
    from adscore.sinks.sns import SnsSink

    sink = SnsSink(f"arn:aws:sns:us-east-1:{_moto.ACCOUNT}:never-created")
    alert = make_test_alert(1)
    report = sink.send([alert])
    assert report.failed == (alert.id,) and report.permanent == (alert.id,)
    assert report.reasons[alert.id].startswith("NotFound")
    for bad in ("sns://not-an-arn", "sns://arn:aws:sqs:us-east-1:123456789012:q", "https://x"):
        with pytest.raises(ConfigError):
            SnsSink.from_url(bad)


# --------------------------------------------------------------------------- concurrency

PRINCIPALS = ("p0", "p1", "p2")
PROCESSES = 8


def _process_events(proc: int) -> list[dict[str, Any]]:
    """CreateSnapshot events of overlapping principals; three events are in every instance's batch.

    Each batch alone holds five snapshots by ``p0``: every instance reaches the
    ``snapshot.burst`` threshold and computes the same alert, which the claims
    must let through exactly once.
    """
    events = []
    for j in range(9):
        user = "p0" if j < 5 else PRINCIPALS[1 + (proc + j) % 2]
        at = f"2024-05-01T12:{j:02d}:{proc:02d}Z"
        events.append(
            create_snapshot(user=user, event_id=f"ev-{proc}-{j}", event_time=at, volume=f"vol-{j % 4}")
        )
    for j in range(3):  # the same events redelivered to every instance
        shared = create_snapshot(
            user=PRINCIPALS[j], event_id=f"ev-shared-{j}", event_time="2024-05-01T12:00:30Z"
        )
        events.append(shared)
    return events


def _invoke(index: int, event: dict[str, Any], barrier: Any, results: Any) -> None:
    handler = load_handler()
    barrier.wait(timeout=120)
    results.put((index, handler.sqs_handler(event, LambdaContext())))


def _invoke_at_once(batches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each batch handed to its own process, all released at once; their responses in batch order."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(batches))
    results = ctx.Queue()
    workers = [ctx.Process(target=_invoke, args=(i, b, barrier, results)) for i, b in enumerate(batches)]
    for worker in workers:
        worker.start()
    outcomes = dict(results.get(timeout=180) for _ in workers)
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    return [outcomes[i] for i in range(len(batches))]


def _only(batch: dict[str, Any], outcome: dict[str, Any]) -> dict[str, Any]:
    """The messages of ``batch`` its response asked SQS to deliver again."""
    again = {f["itemIdentifier"] for f in outcome["batchItemFailures"]}
    return {"Records": [r for r in batch["Records"] if r["messageId"] in again]}


def _learned(members: set[str]) -> tuple[frozenset[str], int]:
    """A set's members but its "#<count>" peak entries, and the largest of those (a baseline day's peak)."""
    peaks = {int(m[1:]) for m in members if m.startswith("#") and m[1:].isdigit()}
    return frozenset(m for m in members if not (m.startswith("#") and m[1:].isdigit())), max(peaks, default=0)


def test_eight_instances_at_once_lose_no_update(aws_stack: AwsStack) -> None:
    from adscore.engine import Engine
    from adscore.settings import load_settings
    from adscore.state.memory import MemoryStateStore

    batches = [sqs_event([eventbridge(r) for r in _process_events(p)]) for p in range(PROCESSES)]
    # SQS redelivers exactly the messages a batch names in batchItemFailures (a transient state error or
    # writers contending past their retries): the test does the same, so it checks what the platform
    # guarantees — every message is finally taken, and the state and alerts equal one clean run.
    rounds = 0
    while batches:
        rounds += 1
        assert rounds <= 4, f"messages still failing after {rounds - 1} deliveries"
        outcomes = _invoke_at_once(batches)
        batches = [_only(b, o) for b, o in zip(batches, outcomes, strict=True) if o["batchItemFailures"]]
    # THEN every set item holds exactly what one engine seeing all events would hold
    reference = MemoryStateStore()
    Engine(load_settings(), reference).run(
        [(str(i), eventbridge(r)) for p in range(PROCESSES) for i, r in enumerate(_process_events(p))],
        send=False,
    )
    expected = {key: members for key, (members, _) in reference._sets.items()}
    stored = {pk: item.get("m", set()) for (pk, sk), item in aws_stack.items().items() if sk == "set"}
    # a minimum ("|earliest") holds every time written while it was the least known: racing instances
    # each write theirs; its minimum is what counts. Deferred candidates are checked again when read.
    assert {k: min(m) for k, m in stored.items() if k.endswith("|earliest")} == {
        k: min(m) for k, m in expected.items() if k.endswith("|earliest")
    }
    assert all(expected[k] <= stored.get(k, set()) for k in expected if ":deferred:" in k)
    loose = [k for k in stored.keys() | expected.keys() if k.endswith("|earliest") or ":deferred:" in k]
    # a learned day's peak is its largest "#<count>" member: racing instances each write the count they
    # reached, so the entries below the peak differ from a single run's. The other members may not, and
    # the peak may not exceed the single run's (a lower one judges later days on less: only more alerts).
    learned_stored = {k: _learned(m) for k, m in stored.items() if k not in loose}
    learned_expected = {k: _learned(m) for k, m in expected.items() if k not in loose}
    assert {k: m for k, (m, _) in learned_stored.items()} == {k: m for k, (m, _) in learned_expected.items()}
    assert all(peak <= learned_expected[k][1] for k, (_, peak) in learned_stored.items())
    per_principal = [m for k, m in stored.items() if "principal" in k]
    assert len(per_principal) >= len(PRINCIPALS)
    assert max(len(m) for m in per_principal) >= 3 * PROCESSES  # members came from many processes
    # AND the burst every instance saw was alerted once; no alert was sent twice
    alerts = aws_stack.alerts()
    ids = [a["alert"]["id"] for a in alerts]
    assert len(ids) == len(set(ids))
    bursts = [a["alert"] for a in alerts if a["alert"]["detection"] == "snapshot.burst"]
    assert [a["principal"]["name"] for a in bursts if a["entity"].endswith("/p0")] == ["p0"]


# --------------------------------------------------------------------------- packaging


def test_zip_dir_leaves_out_tests_caches_and_stubs(tmp_path: Path) -> None:
    from adscore.packaging import zip_dir

    root = tmp_path / "pkg"
    files = (
        "handler.py",
        "lib/mod.py",
        "lib/tests/test_mod.py",
        "lib/tests/__pycache__/test_mod.cpython-311.pyc",
        "lib/__pycache__/mod.cpython-311.pyc",
        "lib/__pycache__/mod.cpython-312.pyc",
        "lib/mod.pyi",
        "bin/tool",
        "lib/test/x.py",
        "lib/testing.py",
    )
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x")
    first = zip_dir(root, tmp_path / "a.zip")
    second = zip_dir(root, tmp_path / "b.zip")
    assert sorted(zipfile.ZipFile(first).namelist()) == ["handler.py", "lib/mod.py", "lib/testing.py"]
    assert first.read_bytes() == second.read_bytes()  # reproducible
    # with the target's bytecode kept: only that interpreter's, and never under tests/
    with_bytecode = zip_dir(root, tmp_path / "c.zip", bytecode_tag="cpython-311")
    assert sorted(zipfile.ZipFile(with_bytecode).namelist()) == [
        "handler.py",
        "lib/__pycache__/mod.cpython-311.pyc",
        "lib/mod.py",
        "lib/testing.py",
    ]


@pytest.mark.slow
def test_lambda_zip_runs_the_handler_with_only_the_runtime_sdk(tmp_path: Path) -> None:
    """Build the real zip (pip and compileall, network: 20-40 s) and run a handler from it in a clean interpreter."""
    from adscore.packaging import PackagingError
    from adscore.packaging.aws import RUNTIME_PROVIDED, build

    try:
        path = build(tmp_path / "dist", "x86_64")
    except PackagingError as exc:
        if any(s in str(exc) for s in ("No matching distribution", "onnection", "Network", "resolve")):
            pytest.skip(f"no package index reachable: {str(exc)[:200]}")
        raise
    names = zipfile.ZipFile(path).namelist()
    assert {"handler.py", "lambda_adapter.py", "adscore/__init__.py", "adscore/data/defaults.yaml"} <= set(
        names
    )
    assert not [n for n in names if "/tests/" in n]
    assert all(n.endswith(".cpython-311.pyc") for n in names if "__pycache__" in n)
    assert not [n for n in names if n.split("/")[0] in RUNTIME_PROVIDED]
    # lean: none of the command line's modules or packages (click, rich, pygments, markdown-it)
    top = {n.split("/")[0] for n in names}
    assert not top & {"click", "rich", "pygments", "markdown_it", "mdurl", "moto", "pip"}
    assert not [n for n in names if n.startswith(("adscore/emulate/", "adscore/forward/", "adscore/packaging/", "adscore/cli."))]
    # exactly the locked versions
    from packaging.utils import canonicalize_name

    from adscore.packaging import locked_requirements

    dist_infos = {n.split("/")[0].removesuffix(".dist-info") for n in names if ".dist-info/" in n}
    shipped = {canonicalize_name(d.rsplit("-", 1)[0]): d.rsplit("-", 1)[1] for d in dist_infos}
    locked = dict(
        (canonicalize_name(r.split("==")[0]), r.split("==")[1])
        for r in locked_requirements(
            Path(__file__).resolve().parents[3] / "functions/aws/requirements.txt",
            python_version="3.11",
            leave_out=RUNTIME_PROVIDED,
        )
    )
    assert {**locked, "adscore": shipped["adscore"]} == shipped
    # GIVEN the zip unpacked as /var/task, and only what the Lambda runtime adds (boto3 and its deps)
    task = tmp_path / "task"
    zipfile.ZipFile(path).extractall(task)
    runtime_dir = tmp_path / "runtime"
    runtime_dir.mkdir()
    import boto3

    site = Path(boto3.__file__).resolve().parents[1]
    for name in RUNTIME_PROVIDED:
        (runtime_dir / name).symlink_to(site / name)
    code = f"""
import json, sys
sys.path[:0] = [{str(task)!r}, {str(runtime_dir)!r}]
import handler
class Ctx:
    function_name = "f"; memory_limit_in_mb = 128; aws_request_id = "r"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:f"
    def get_remaining_time_in_millis(self): return 60000
event = json.loads(sys.stdin.read())
print("RESULT " + json.dumps(handler.eventbridge_handler(event, Ctx())))
"""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "ADSCORE_STATE": "memory://",
        "ADSCORE_SINKS": "stdout://jsonl",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],
        input=json.dumps(eventbridge(share_public(user="zip"))),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert result["alerts_by_detection"] == {SHARED: 1}


def test_reset_engine_forgets_the_adapters_s3_client(aws_stack: AwsStack, handler: ModuleType) -> None:
    # GIVEN a file read through the adapter's per-process S3 client
    log_file = aws_stack.put_object(trail_key(5), cloudtrail_file([create_snapshot(user="dora")]))
    assert handler.sqs_handler(sqs_event([log_file]), LambdaContext()) == {"batchItemFailures": []}
    adapter = sys.modules["lambda_adapter"]
    assert adapter._s3.cache_info().currsize == 1
    # WHEN the runtime is reset (settings or endpoints changed)
    from adscore import runtime

    runtime.reset_engine()
    # THEN the client goes with the engine, and the next file is read with a new one
    assert adapter._s3.cache_info().currsize == 0
    again = aws_stack.put_object(trail_key(6), cloudtrail_file([create_snapshot(user="dora")]))
    assert handler.sqs_handler(sqs_event([again]), LambdaContext()) == {"batchItemFailures": []}
    assert adapter._s3.cache_info().currsize == 1
