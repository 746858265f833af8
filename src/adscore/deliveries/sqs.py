"""One SQS message: an EventBridge event, an SNS envelope of one, or an S3 notification of CloudTrail files."""

from __future__ import annotations

from typing import Any

import orjson

from adscore.deliveries import Item, Provenance, Record, Unreadable
from adscore.deliveries.s3 import S3Object, is_s3_notification, unwrap_s3
from adscore.deliveries.sns import is_sns_envelope, unwrap_sns


def unwrap_sqs_message(index: int, message: Any) -> list[Item | S3Object]:
    """The items of SQS record ``index`` (``event["Records"][index]``), provenance ``sqs[index]``.

    Example
    -------
    >>> unwrap_sqs_message(0, {"messageId": "m1", "body": "not json"})[0].reason[:25]
    'message body is not JSON:'
    """
    message = message if isinstance(message, dict) else {}
    mid = message.get("messageId")
    where = Provenance(index, f"sqs[{index}]", message_id=str(mid) if mid else None)  # any shape: sniffed
    text = message.get("body")
    raw = text.encode("utf-8", "replace") if isinstance(text, str) else b""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return [Unreadable(raw, f"message body is not JSON: {exc}", where)]
    if not isinstance(body, dict):
        return [Unreadable(raw, f"message body is a JSON {type(body).__name__}, expected an object", where)]
    if is_s3_notification(body):
        return list(unwrap_s3(body, where))
    if is_sns_envelope(body):
        return list(unwrap_sns(body, where))
    return [Record(body, where, raw)]
