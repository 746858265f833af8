"""CloudTrail as log pipelines store it (Logstash, Elastic ECS, Elasticsearch hits, Splunk) reads as the native record.

The wrappers are written from the documented formats: Logstash's event (``@timestamp``,
``@version``, ``message``), Filebeat's / the Elastic Agent's AWS CloudTrail fields
(``event.original``, ``aws.cloudtrail.*``, ``event.action``, ``event.provider``, ...), an
Elasticsearch search hit (``_index``, ``_id``, ``_source``) and Splunk's ``_raw`` event text
and search export (``{"preview": false, "result": {...}}``).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from adscore.events import Event, RecordError
from adscore.sources import parse_record
from adscore.sources.exports import unwrap_export

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
NATIVE = json.loads((GOLDEN / "aws_cloudtrail" / "copy_snapshot.input.json").read_text())
DENIED = json.loads((GOLDEN / "aws_cloudtrail" / "access_denied_read.input.json").read_text())
#: What a detection reads; ``raw`` (the record as stored) and the ids derived from it may differ.
COMPARED = ("cloud", "source", "time", "action", "operation", "service", "read_only", "outcome",
            "error_code", "principal", "source_ip", "user_agent", "account", "region", "resources",
            "targets")


def _events(obj: Any) -> list[Event]:
    out = parse_record(obj, "t")
    errors = [r for r in out if isinstance(r, RecordError)]
    assert not errors, errors
    return [e for e in out if isinstance(e, Event)]


def _view(event: Event) -> dict[str, Any]:
    d = event.to_dict()
    return {k: d[k] for k in COMPARED if k in d}


def _ecs(record: dict[str, Any], *, keep_original: bool, flattened: bool = False) -> dict[str, Any]:
    """The document Filebeat's aws module / the Elastic Agent AWS integration indexes for a CloudTrail record."""
    ui = record["userIdentity"]
    issuer = ui.get("sessionContext", {}).get("sessionIssuer", {})
    doc: dict[str, Any] = {
        "@timestamp": record["eventTime"].replace("Z", ".000Z"),
        "ecs": {"version": "8.11.0"},
        "event": {
            "action": record["eventName"],
            "provider": record["eventSource"],
            "id": record["eventID"],
            "kind": "event",
            "outcome": "failure" if "errorCode" in record else "success",
            "type": ["info"],
        },
        "cloud": {"region": record["awsRegion"], "account": {"id": ui["accountId"]}, "provider": "aws"},
        "source": {"address": record["sourceIPAddress"], "ip": record["sourceIPAddress"]},
        "user_agent": {"original": record["userAgent"]},
        "user": {"id": ui.get("principalId"), "name": ui.get("userName")},
        "aws": {
            "cloudtrail": {
                "event_version": record["eventVersion"],
                "event_type": record["eventType"],
                "request_id": record["requestID"],
                "recipient_account_id": record["recipientAccountId"],
                "user_identity": {
                    "type": ui["type"],
                    "arn": ui["arn"],
                    "access_key_id": ui.get("accessKeyId"),
                    "session_context": {"session_issuer": {
                        "type": issuer.get("type"), "arn": issuer.get("arn"),
                        "principal_id": issuer.get("principalId"), "account_id": issuer.get("accountId"),
                    }} if issuer else None,
                },
                "request_parameters": json.dumps(record.get("requestParameters")),
                "flattened": {
                    "request_parameters": record.get("requestParameters"),
                    "response_elements": record.get("responseElements"),
                },
                **({"error_code": record["errorCode"], "error_message": record.get("errorMessage")}
                   if "errorCode" in record else {}),
            }
        },
    }
    if keep_original:
        doc["event"]["original"] = json.dumps(record)
    if flattened:
        return _flatten(doc)
    return doc


def _flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in doc.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and not key.endswith(("request_parameters", "response_elements")):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _logstash_decorated(record: dict[str, Any]) -> dict[str, Any]:
    # the date filter moved eventTime into @timestamp and removed it
    out = {k: v for k, v in record.items() if k != "eventTime"}
    return {**out, "@timestamp": record["eventTime"].replace("Z", ".000Z"), "@version": "1",
            "host": {"name": "logstash-01"}, "tags": ["cloudtrail"]}


SHAPES = {
    "logstash decorated (eventTime moved to @timestamp)": _logstash_decorated,
    "logstash message": lambda r: {"@timestamp": "2026-01-01T00:00:00.000Z", "@version": "1",
                                   "message": json.dumps(r)},
    "ecs with event.original": lambda r: _ecs(r, keep_original=True),
    "ecs without the original": lambda r: _ecs(r, keep_original=False),
    "ecs with dotted keys, in an elasticsearch hit": lambda r: {
        "_index": ".ds-logs-aws.cloudtrail-default-2024.05.06-000001", "_id": "x1", "_score": None,
        "_source": _ecs(r, keep_original=False, flattened=True),
    },
    "splunk event": lambda r: {"_raw": json.dumps(r), "_time": "1714990500", "sourcetype": "aws:cloudtrail",
                               "source": "s3://trail/AWSLogs/x.json.gz", "host": "splunk-hf"},
    "splunk search export": lambda r: {"preview": False, "offset": 0,
                                       "result": {"_raw": json.dumps(r), "sourcetype": "aws:cloudtrail"}},
}


@pytest.mark.parametrize("record", [NATIVE, DENIED], ids=["copy_snapshot", "access_denied"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_pipeline_shape_reads_as_the_native_record(shape: str, record: dict[str, Any]) -> None:
    (native,) = _events(copy.deepcopy(record))
    (exported,) = _events(SHAPES[shape](copy.deepcopy(record)))
    assert _view(exported) == _view(native)


def test_a_wrapper_with_text_that_is_not_a_record_stays_an_unrecognised_shape() -> None:
    for obj in ({"_raw": "Jan 1 host sshd[1]: not json"}, {"@timestamp": "x", "message": "plain text"},
                {"event": {"original": "[1, 2]"}}, {"_raw": "{" * 100}):
        (result,) = parse_record(obj, "t")
        assert isinstance(result, RecordError) and "unrecognised record shape" in result.reason


def test_wrappers_inside_wrappers_are_followed_a_bounded_depth() -> None:
    inner: dict[str, Any] = copy.deepcopy(NATIVE)
    for _ in range(3):
        inner = {"_raw": json.dumps(inner)}
    assert unwrap_export(inner) == NATIVE
    too_deep: dict[str, Any] = {"_raw": json.dumps(inner)}
    assert unwrap_export(too_deep) != NATIVE  # the fourth wrapper is not opened


def test_a_native_record_is_not_an_export() -> None:
    assert unwrap_export(NATIVE) is None
