"""Recover the original log record from the shapes log pipelines turn it into.

Users hold logs in the form their pipeline stored them, not as the cloud delivered them.
:func:`unwrap_export` recognises these wrappers and returns the record inside, which the
family parsers then read as if it had come straight from the cloud:

- **Splunk**: an event as ``{"_raw": "<the JSON record>", "_time": ..., "sourcetype": ...}``,
  or a search export line ``{"preview": false, "result": {"_raw": ...}}``;
- **Elasticsearch / OpenSearch** hits as exported (``{"_index": ..., "_source": {...}}``);
- **Elastic ECS** documents (Filebeat's ``aws`` module, the Elastic Agent AWS integration)
  carrying the original under ``event.original`` (a JSON string), or, where the original was
  not kept, the CloudTrail fields under ``aws.cloudtrail.*`` plus the ECS fields
  (``event.action``, ``event.provider``, ``@timestamp``...), from which a CloudTrail record is
  rebuilt;
- **Logstash**: ``{"@timestamp": ..., "@version": "1", "message": "<the JSON record>"}``;
- **AWS Security Lake / OCSF**: CloudTrail management events as OCSF API Activity (``class_uid``
  6003, ``metadata.product.name`` CloudTrail), in the field names of OCSF 1.1 (Security Lake v2)
  and 1.0 (v1), from JSON or from Parquet rows (:mod:`adscore.sources.files`). The CloudTrail record
  is rebuilt by AWS's published mapping (``api.operation`` = eventName, ``actor.user.uid`` = the ARN,
  ``api.request.data`` = requestParameters, ...), so the events are those of the native record.

CloudTrail records that Logstash *decorated* in place (``@timestamp`` and ``@version`` added,
``eventTime`` moved into ``@timestamp``) are read by the AWS parser itself, which takes the
time from ``@timestamp`` when ``eventTime`` is missing.

Only documented field names are read; nothing here raises (a wrapper whose inner text is not a
JSON object is left for the caller to report as an unrecognised shape).
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["MAX_DEPTH", "unwrap_export"]

MAX_DEPTH = 3
"""Wrappers inside wrappers (a Splunk export of a Logstash event) are followed this deep."""
_MAX_TEXT = 1_048_576


def _loads(text: object) -> dict[str, Any] | None:
    if not isinstance(text, str | bytes) or not 1 < len(text) <= _MAX_TEXT:
        return None
    head = text.lstrip()[:1]
    if head not in ("{", b"{"):
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _field(doc: dict[str, Any], path: str) -> Any:
    """``a.b.c`` read nested (``{"a": {"b": {"c": ...}}}``) or flattened (``{"a.b.c": ...}``) or mixed."""
    if path in doc:
        return doc[path]
    head, dot, rest = path.partition(".")
    while dot:
        child = doc.get(head)
        if isinstance(child, dict):
            found = _field(child, rest)
            if found is not None:
                return found
        nxt, dot, rest = rest.partition(".")
        head = f"{head}.{nxt}"
    return None


def _json_or_none(value: Any) -> Any:
    """A CloudTrail element ECS stores as a JSON string (request_parameters...), decoded; objects as they are."""
    if isinstance(value, dict | list):
        return value
    return _loads(value)


#: CloudTrail userIdentity key -> ECS field that holds it.
_IDENTITY = {
    "type": "aws.cloudtrail.user_identity.type",
    "arn": "aws.cloudtrail.user_identity.arn",
    "accessKeyId": "aws.cloudtrail.user_identity.access_key_id",
    "invokedBy": "aws.cloudtrail.user_identity.invoked_by",
    "userName": "user.name",
    "principalId": "user.id",
}
_ISSUER = {
    "type": "aws.cloudtrail.user_identity.session_context.session_issuer.type",
    "arn": "aws.cloudtrail.user_identity.session_context.session_issuer.arn",
    "principalId": "aws.cloudtrail.user_identity.session_context.session_issuer.principal_id",
    "accountId": "aws.cloudtrail.user_identity.session_context.session_issuer.account_id",
    "userName": "aws.cloudtrail.user_identity.session_context.session_issuer.user_name",
}
#: CloudTrail top-level key -> ECS field(s), first present wins.
_TOP = {
    "eventName": ("event.action",),
    "eventSource": ("event.provider",),
    "eventID": ("event.id",),
    "eventTime": ("@timestamp",),
    "awsRegion": ("cloud.region",),
    "sourceIPAddress": ("source.address", "source.ip"),
    "userAgent": ("user_agent.original",),
    "errorCode": ("aws.cloudtrail.error_code",),
    "errorMessage": ("aws.cloudtrail.error_message",),
    "recipientAccountId": ("aws.cloudtrail.recipient_account_id",),
    "eventType": ("aws.cloudtrail.event_type",),
    "requestID": ("aws.cloudtrail.request_id",),
    "eventVersion": ("aws.cloudtrail.event_version",),
    "readOnly": ("aws.cloudtrail.read_only",),
    "sharedEventID": ("aws.cloudtrail.shared_event_id",),
}
_ELEMENTS = {
    "requestParameters": ("aws.cloudtrail.flattened.request_parameters", "aws.cloudtrail.request_parameters"),
    "responseElements": ("aws.cloudtrail.flattened.response_elements", "aws.cloudtrail.response_elements"),
    "additionalEventData": (
        "aws.cloudtrail.flattened.additional_eventdata",
        "aws.cloudtrail.additional_eventdata",
    ),
}


def _first(doc: dict[str, Any], paths: tuple[str, ...]) -> Any:
    for path in paths:
        value = _field(doc, path)
        if value is not None:
            return value
    return None


def _cloudtrail_from_ecs(doc: dict[str, Any]) -> dict[str, Any] | None:
    """A CloudTrail record rebuilt from an ECS document's ``aws.cloudtrail.*`` and ECS fields."""
    if not isinstance(_field(doc, "event.action"), str) or not isinstance(_field(doc, "event.provider"), str):
        return None
    record: dict[str, Any] = {}
    for key, paths in _TOP.items():
        value = _first(doc, paths)
        if value is not None:
            record[key] = value
    identity = {k: v for k, p in _IDENTITY.items() if (v := _field(doc, p)) is not None}
    account = _field(doc, "cloud.account.id")
    if account is not None:
        identity["accountId"] = account
        record.setdefault("recipientAccountId", account)
    issuer = {k: v for k, p in _ISSUER.items() if (v := _field(doc, p)) is not None}
    if issuer:
        identity["sessionContext"] = {"sessionIssuer": issuer}
    record["userIdentity"] = identity
    for key, paths in _ELEMENTS.items():
        for path in paths:
            value = _json_or_none(_field(doc, path))
            if value is not None:
                record[key] = value
                break
    return record


def _iso(value: Any) -> Any:
    """OCSF ``time`` (epoch milliseconds) or ``time_dt`` (text, or a datetime from Parquet) as CloudTrail text."""
    from datetime import UTC, datetime

    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        except (OverflowError, OSError, ValueError):
            return None
    return value


#: CloudTrail top-level key -> OCSF API Activity field(s) (AWS's CloudTrail mapping, OCSF 1.1 then 1.0).
_OCSF_TOP = {
    "eventName": ("api.operation",),
    "eventSource": ("api.service.name",),
    "eventID": ("metadata.uid",),
    "eventType": ("metadata.event_code",),
    "eventVersion": ("metadata.product.version",),
    "awsRegion": ("cloud.region",),
    "recipientAccountId": ("cloud.account.uid", "cloud.account_uid"),
    "sourceIPAddress": ("src_endpoint.ip", "src_endpoint.domain"),
    "userAgent": ("http_request.user_agent",),
    "requestID": ("api.request.uid",),
    "errorCode": ("api.response.error",),
    "errorMessage": ("api.response.message",),
    "vpcEndpointId": ("src_endpoint.uid",),
}


def _is_arn(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("arn:")


def _cloudtrail_from_ocsf(doc: dict[str, Any]) -> dict[str, Any] | None:
    """A CloudTrail record rebuilt from a Security Lake OCSF API Activity record."""
    if not isinstance(_field(doc, "api.operation"), str) or not isinstance(_field(doc, "api.service.name"), str):
        return None
    # `unmapped` (a map<string,string> in the lake) keeps the other CloudTrail members, objects as JSON text
    unmapped = doc.get("unmapped")
    record: dict[str, Any] = {}
    for key, value in (unmapped.items() if isinstance(unmapped, dict) else ()):
        decoded = _loads(value) if isinstance(value, str) else None
        record[str(key)] = decoded if decoded is not None else value
    for key, paths in _OCSF_TOP.items():
        value = _first(doc, paths)
        if value is not None:
            record[key] = value
    record["eventTime"] = _iso(_first(doc, ("time_dt", "time")))
    uid, uid_alt, uuid = (_field(doc, f"actor.user.{k}") for k in ("uid", "uid_alt", "uuid"))
    arn = next((v for v in (uid, uuid) if _is_arn(v)), None)  # 1.1: uid is the ARN; 1.0: uuid
    principal_id = uid_alt if uid_alt is not None else (uid if not _is_arn(uid) else None)
    identity = {
        k: v
        for k, v in (
            ("type", _field(doc, "actor.user.type")),
            ("arn", arn),
            ("principalId", principal_id),
            ("accountId", _first(doc, ("actor.user.account.uid", "actor.user.account_uid"))),
            ("accessKeyId", _field(doc, "actor.user.credential_uid")),
            ("userName", _field(doc, "actor.user.name")),
            ("invokedBy", _field(doc, "actor.invoked_by")),
        )
        if v is not None
    }
    issuer = _field(doc, "actor.session.issuer")
    if _is_arn(issuer):
        identity["sessionContext"] = {
            "sessionIssuer": {"type": "Role", "arn": issuer, "userName": issuer.rsplit("/", 1)[-1]}
        }
    record["userIdentity"] = {**_as_dict(record.get("userIdentity")), **identity}
    for key, path in (("requestParameters", "api.request.data"), ("responseElements", "api.response.data")):
        value = _json_or_none(_field(doc, path))
        if value is not None:
            record[key] = value
    resources = _field(doc, "resources")
    if isinstance(resources, list) and "resources" not in record:
        record["resources"] = [
            {"ARN": r.get("uid"), "type": r.get("type"), "accountId": _field(r, "owner.account.uid")}
            for r in resources
            if isinstance(r, dict)
        ]
    return record


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _is_ocsf_cloudtrail(obj: dict[str, Any]) -> bool:
    """OCSF API Activity (class 6003) of CloudTrail, as AWS Security Lake stores it."""
    if obj.get("class_uid") != 6003:
        return False
    product = _field(obj, "metadata.product.name")
    return product is None or str(product).lower() == "cloudtrail"


def _unwrap_once(obj: dict[str, Any]) -> dict[str, Any] | None:
    # Splunk: an event's raw text, or a search export line holding one
    result = obj.get("result")
    if isinstance(result, dict) and "_raw" in result:
        obj = result
    if "_raw" in obj:
        return _loads(obj["_raw"])
    # AWS Security Lake: OCSF API Activity of CloudTrail
    if _is_ocsf_cloudtrail(obj):
        return _cloudtrail_from_ocsf(obj)
    # Elasticsearch / OpenSearch hit
    source = obj.get("_source")
    if isinstance(source, dict) and ("_index" in obj or "_id" in obj):
        return source
    # ECS: the original kept as text, else the CloudTrail fields it was mapped to
    original = _loads(_field(obj, "event.original"))
    if original is not None:
        return original
    if isinstance(_field(obj, "aws.cloudtrail"), dict) or any(k.startswith("aws.cloudtrail.") for k in obj):
        return _cloudtrail_from_ecs(obj)
    # Logstash: the record kept as its message text
    if "@timestamp" in obj or "@version" in obj:
        return _loads(obj.get("message"))
    return None


def unwrap_export(obj: Any) -> dict[str, Any] | None:
    """The original record inside a log pipeline's wrapper, or None when ``obj`` is not one.

    Example
    -------
    >>> unwrap_export({"_raw": '{"eventSource": "ec2.amazonaws.com", "eventName": "CreateSnapshot"}'})
    {'eventSource': 'ec2.amazonaws.com', 'eventName': 'CreateSnapshot'}
    >>> unwrap_export({"eventSource": "ec2.amazonaws.com"}) is None
    True
    """
    if not isinstance(obj, dict):
        return None
    found = None
    for _ in range(MAX_DEPTH):
        inner = _unwrap_once(obj)
        if inner is None:
            break
        found = obj = inner
    return found
