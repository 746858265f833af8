"""An S3 event notification: the CloudTrail objects to read (reading them is the caller's I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adscore.deliveries import Provenance, Skipped, Unreadable, as_bytes
from adscore.events import RecordError
from adscore.sources.aws import is_cloudtrail_object, is_s3_notification, unwrap_s3_objects

__all__ = ["S3Object", "is_s3_notification", "unwrap_s3"]


@dataclass(frozen=True, slots=True)
class S3Object:
    """A CloudTrail log file to stream, and where its notification came from."""

    bucket: str
    key: str
    size: int | None
    where: Provenance
    notification: bytes
    """The notification's bytes: what is dead-lettered when a record of the file cannot be read."""


def unwrap_s3(body: dict[str, Any], where: Provenance) -> list[S3Object | Skipped | Unreadable]:
    """The CloudTrail objects a notification names; digests and non-log keys skipped by reason.

    Example
    -------
    >>> [type(i).__name__ for i in unwrap_s3(notification, Provenance(0, "sqs[0]"))]  # doctest: +SKIP
    ['S3Object', 'Skipped']
    """
    out: list[S3Object | Skipped | Unreadable] = []
    for obj in unwrap_s3_objects(body, where.location):
        if isinstance(obj, RecordError):
            out.append(Unreadable(as_bytes(body), obj.reason, where))
            continue
        bucket, key, size = obj
        wanted, reason = is_cloudtrail_object(key, size)
        if wanted:
            out.append(S3Object(bucket, key, size, where, as_bytes(body)))
        else:
            out.append(Skipped(reason, where))
    return out
