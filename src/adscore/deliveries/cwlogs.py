"""A CloudWatch Logs subscription payload (``awslogs.data``, base64 gzip JSON): one record per payload.

The decoded message stays one record: the AWS parser reads its ``logEvents`` with the log group
(which names the EKS cluster of an audit log).
"""

from __future__ import annotations

from typing import Any

from adscore.deliveries import Item, Provenance, Record, Unreadable, as_bytes
from adscore.events import RecordError
from adscore.sources.aws import unwrap_cwlogs as decode_cwlogs


def unwrap_cwlogs(event: Any, message: int = 0) -> list[Item]:
    """The decoded subscription message as one record, or the payload as unreadable with why.

    Example
    -------
    >>> unwrap_cwlogs({"awslogs": {"data": "not base64"}})[0].reason[:26]
    'awslogs.data is not base64'
    """
    decoded = decode_cwlogs(event, "cwlogs")
    if isinstance(decoded, RecordError):
        return [Unreadable(as_bytes(event), decoded.reason, Provenance(message, "cwlogs"))]
    group, stream = str(decoded.get("logGroup", ""))[:256], str(decoded.get("logStream", ""))[:256]
    return [Record(decoded, Provenance(message, f"cwlogs:{group}:{stream}", family="aws"))]
