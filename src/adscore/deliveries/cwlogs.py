"""A CloudWatch Logs subscription payload (``awslogs.data``, base64 gzip JSON): one record per log event.

Each record is the subscription message narrowed to one of its ``logEvents``, so the AWS parser
still reads it with its log group (which names the EKS cluster of an audit log), and a log event
that cannot be read is dead-lettered alone, with its own text.
"""

from __future__ import annotations

from typing import Any

from adscore.deliveries import Item, Provenance, Record, Skipped, Unreadable, as_bytes
from adscore.events import RecordError
from adscore.sources.aws import unwrap_cwlogs as decode_cwlogs


def unwrap_cwlogs(event: Any, message: int = 0) -> list[Item]:
    """One record per log event (``cwlogs:<group>:<stream>#logEvents[i]``), or the payload as unreadable.

    Example
    -------
    >>> unwrap_cwlogs({"awslogs": {"data": "not base64"}})[0].reason[:26]
    'awslogs.data is not base64'
    """
    decoded = decode_cwlogs(event, "cwlogs")
    if isinstance(decoded, RecordError):
        return [Unreadable(as_bytes(event), decoded.reason, Provenance(message, "cwlogs"))]
    group, stream = str(decoded.get("logGroup", ""))[:256], str(decoded.get("logStream", ""))[:256]
    location = f"cwlogs:{group}:{stream}"
    log_events = decoded.get("logEvents")
    if decoded.get("messageType") == "CONTROL_MESSAGE":
        return [Skipped("control_message", Provenance(message, location))]
    if not isinstance(log_events, list):  # the parser says why
        return [Record(decoded, Provenance(message, location, family="aws"))]
    out: list[Item] = []
    for i, log_event in enumerate(log_events):
        text = log_event.get("message") if isinstance(log_event, dict) else None
        body = text.encode("utf-8", "replace") if isinstance(text, str) else as_bytes(log_event)
        where = Provenance(message, f"{location}#logEvents[{i}]", i, "aws")
        out.append(Record({**decoded, "logEvents": [log_event]}, where, body))
    return out
