"""Read log archives straight from object storage: ``s3://bucket/prefix``.

Every object under the prefix is listed (boto3's paginator, the standard credential chain and
``AWS_ENDPOINT_URL``), filtered by the day its key names when ``since`` / ``until`` are given,
and streamed record by record like a local file (:func:`adscore.sources.files.stream_document`:
gzip by its magic bytes, bounded memory whatever the object's size). CloudTrail's digest and
Insight files and zero-byte objects are skipped by name, as the Lambda's S3 path skips them.

Keys are dated by the standard layouts: CloudTrail ``AWSLogs/[o-org/]<account>/CloudTrail/<region>/
YYYY/MM/DD/``, Azure diagnostic containers ``.../y=YYYY/m=MM/d=DD/...``, GCS log sinks
``.../YYYY/MM/DD/...``. A key with no date in it is always read.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from adscore.events import RecordError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["SCHEMES", "is_object_url", "key_day", "list_objects", "read_objects"]

SCHEMES = ("s3://",)
"""Object-store URL schemes ``adscore replay`` reads."""
_DAY = re.compile(r"/(?:y=)?(\d{4})/(?:m=)?(\d{2})/(?:d=)?(\d{2})(?:/|$)")
_SKIPPED = ("/CloudTrail-Digest/", "/CloudTrail-Insight/")


def is_object_url(path: str) -> bool:
    """True for a URL this module reads."""
    return path.startswith(SCHEMES)


def key_day(key: str) -> date | None:
    """The day a standard log layout puts in an object key, or None.

    Example
    -------
    >>> key_day("AWSLogs/111122223333/CloudTrail/eu-west-1/2024/05/06/x.json.gz")
    datetime.date(2024, 5, 6)
    >>> key_day("insights-activity-logs/resourceId=/SUBSCRIPTIONS/S/y=2024/m=05/d=06/h=10/m=00/PT1H.json")
    datetime.date(2024, 5, 6)
    """
    m = _DAY.search("/" + key)
    if m is None:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def _in_range(key: str, since: datetime | None, until: datetime | None) -> bool:
    day = key_day(key)
    if day is None:
        return True
    return not ((since is not None and day < since.date()) or (until is not None and day > until.date()))


def _error(location: str, reason: str) -> RecordError:
    return RecordError(family="input", reason=reason[:1024], location=location, excerpt="")


def list_objects(
    url: str, *, since: datetime | None = None, until: datetime | None = None
) -> Iterator[tuple[str, str, int, str] | str]:
    """``(bucket, key, size, region)`` of every log object under ``url`` in the day range, or an error text.

    CloudTrail's digest and Insight files, zero-byte objects and folder markers are left out.
    """
    if not url.startswith("s3://"):
        yield f"unsupported object store URL {url!r} (supported: {', '.join(SCHEMES)})"
        return
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        yield "reading s3:// needs boto3: pip install 'adscore[aws]'"
        return
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not bucket:
        yield "no bucket in the URL (s3://BUCKET/PREFIX)"
        return
    client = _s3_client()
    region = str(client.meta.region_name or "us-east-1")
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", ()):
                key = obj["Key"]
                if not obj.get("Size") or any(s in f"/{key}" for s in _SKIPPED) or key.endswith("/"):
                    continue
                if _in_range(key, since, until):
                    yield bucket, key, int(obj["Size"]), region
    except (ClientError, BotoCoreError) as e:
        yield f"cannot list {url}: {_reason(e)}"


def _s3_client() -> Any:
    import boto3

    return boto3.client("s3")


def read_objects(
    url: str, *, since: datetime | None = None, until: datetime | None = None
) -> Iterator[tuple[str, Any] | RecordError]:
    """Yield ``(location, record)`` for every record of every object under ``url``, or RecordErrors.

    A bucket or prefix that cannot be listed, and an object that cannot be read, are RecordErrors
    (with the service's error code), never exceptions; an object that fails part-way keeps the
    records read before the failure.
    """
    from adscore.sources.files import stream_document

    client = None
    for item in list_objects(url, since=since, until=until):
        if isinstance(item, str):
            yield _error(url, item)
            continue
        from botocore.exceptions import BotoCoreError, ClientError  # there: list_objects found boto3

        bucket, key, _size, _region = item
        location = f"s3://{bucket}/{key}"
        client = client or _s3_client()
        try:
            body = client.get_object(Bucket=bucket, Key=key)["Body"]
            try:
                yield from stream_document(body, location)
            finally:
                body.close()
        except (ClientError, BotoCoreError, OSError) as e:
            yield _error(location, f"cannot read the object: {_reason(e)}")


def _reason(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error") or {}
        return f"{err.get('Code', type(exc).__name__)}: {str(err.get('Message', ''))[:200]}"
    return f"{type(exc).__name__}: {str(exc)[:200]}"
