"""Hand an archive to the deployed functions: ``adscore backfill aws s3://bucket/prefix``.

A local replay runs on one machine; a backfill lets the platform do the work. For AWS it sends,
for every CloudTrail object under the prefix (in the ``--since`` / ``--until`` days, digest,
Insight and empty objects left out, as the function itself skips them), the S3 event notification
S3 would have sent when the object was written, to the queue the Terraform module subscribes the
``sqs`` function to (``<name_prefix>-cloudtrail-files``). The event source mapping then runs the
function as many times in parallel as its concurrency allows, on the shared state, exactly as for
live files: nothing in the function knows it is a backfill.

Messages go in batches of 10 (``SendMessageBatch``), each announcing one object, so a failed
object is retried (and dead-lettered) alone. This module is part of the command line; functions
never import it.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

import orjson

from adscore.errors import AdscoreError
from adscore.sources.objects import list_objects

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["DEFAULT_NAME_PREFIX", "BackfillResult", "backfill_aws", "queue_name", "s3_notification"]

DEFAULT_NAME_PREFIX = "adscore"
"""The Terraform modules' default ``name_prefix``."""
_BATCH = 10


def queue_name(name_prefix: str = DEFAULT_NAME_PREFIX) -> str:
    """The CloudTrail-files queue ``infra/aws`` creates (``aws_sqs_queue.cloudtrail``)."""
    return f"{name_prefix}-cloudtrail-files"


def s3_notification(bucket: str, key: str, size: int, region: str, when: datetime | None = None) -> dict[str, Any]:
    """The ``ObjectCreated:Put`` event notification S3 sends for a new object (one record)."""
    stamp = (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": stamp,
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "adscore-backfill"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "adscore-backfill",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": quote_plus(key, safe="/"), "size": size},
                },
            }
        ]
    }


class BackfillResult:
    """What a backfill handed over: objects and bytes announced, and objects that could not be."""

    def __init__(self) -> None:
        self.objects = 0
        self.bytes = 0
        self.failed: list[str] = []


def backfill_aws(
    url: str,
    *,
    queue: str | None = None,
    name_prefix: str = DEFAULT_NAME_PREFIX,
    since: datetime | None = None,
    until: datetime | None = None,
    progress: bool = False,
) -> BackfillResult:
    """Announce every CloudTrail object under ``url`` to the deployed function's queue.

    Parameters
    ----------
    url : str
        ``s3://bucket/prefix`` of the trail's archive.
    queue : str, optional
        Queue URL or name; default the module's ``<name_prefix>-cloudtrail-files``.
    since, until : datetime, optional
        Only objects whose key names a day in this range.
    progress : bool
        Print a line per 1,000 objects on stderr.

    Raises
    ------
    AdscoreError
        boto3 missing, the URL is not ``s3://``, the bucket cannot be listed or the queue not found.
    """
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError as exc:
        raise AdscoreError("adscore backfill aws needs boto3: pip install 'adscore[aws]'") from exc
    sqs = boto3.client("sqs")
    try:
        queue_url = queue if queue and queue.startswith("https://") else sqs.get_queue_url(
            QueueName=queue or queue_name(name_prefix)
        )["QueueUrl"]
    except (ClientError, BotoCoreError) as exc:
        raise AdscoreError(f"backfill: the function's queue {queue or queue_name(name_prefix)!r} not found: {exc}") from exc
    result = BackfillResult()
    batch: list[tuple[str, str]] = []

    def flush() -> None:
        if not batch:
            return
        entries = [{"Id": str(i), "MessageBody": body} for i, (_, body) in enumerate(batch)]
        try:
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        except (ClientError, BotoCoreError) as exc:
            result.failed.extend(key for key, _ in batch)
            print(f"adscore backfill: a batch of {len(batch)} could not be sent: {exc}", file=sys.stderr)
        else:
            for failed in response.get("Failed", ()):
                result.failed.append(batch[int(failed["Id"])][0])
        batch.clear()

    for bucket, key, size, region in _objects(url, since, until):
        body = orjson.dumps(s3_notification(bucket, key, size, region)).decode()
        batch.append((key, body))
        result.objects += 1
        result.bytes += size
        if len(batch) == _BATCH:
            flush()
        if progress and result.objects % 1000 == 0:
            print(f"adscore backfill: {result.objects} objects, {result.bytes / 2**20:.1f} MiB", file=sys.stderr)
    flush()
    return result


def _objects(url: str, since: datetime | None, until: datetime | None) -> Iterator[tuple[str, str, int, str]]:
    for item in list_objects(url, since=since, until=until):
        if isinstance(item, str):
            raise AdscoreError(f"backfill: {item}")
        yield item
