"""AWS Security Lake: CloudTrail management events as OCSF API Activity, in JSON and in Parquet.

``to_ocsf`` writes a CloudTrail record the way Security Lake stores it, following AWS's published
CloudTrail -> OCSF 1.1.0 mapping (the OCSF examples' "Amazon CloudTrail Generic API Activity"
dossier: ``api.operation`` = eventName, ``actor.user.uid`` = userIdentity.arn,
``actor.user.uid_alt`` = principalId, ``api.request.data`` = requestParameters, ``time`` in epoch
milliseconds, ``unmapped`` for the rest). The 1.0 layout (Security Lake v1: ``actor.user.uuid`` =
the ARN, ``actor.user.account_uid``) is read too.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from adscore.cli import main
from adscore.events import Event, RecordError
from adscore.sources import parse_record

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples" / "aws"
COMPARED = ("cloud", "source", "time", "action", "operation", "service", "read_only", "outcome", "error_code",
            "principal", "source_ip", "user_agent", "account", "region", "resources", "targets", "event_id")
_MAPPED = {"eventName", "eventSource", "eventID", "eventType", "eventVersion", "awsRegion", "sourceIPAddress",
           "userAgent", "requestID", "errorCode", "errorMessage", "requestParameters", "responseElements",
           "userIdentity", "eventTime", "vpcEndpointId", "resources"}


def to_ocsf(record: dict[str, Any], *, version: str = "1.1.0", json_data: bool = True) -> dict[str, Any]:
    """A CloudTrail record as an OCSF API Activity record of Security Lake."""
    ui = record.get("userIdentity") or {}
    when = datetime.fromisoformat(record["eventTime"].replace("Z", "+00:00"))
    v11 = version.startswith("1.1")
    user: dict[str, Any] = {"type": ui.get("type"), "name": ui.get("userName"), "credential_uid": ui.get("accessKeyId")}
    if v11:
        user |= {"uid": ui.get("arn"), "uid_alt": ui.get("principalId"), "account": {"uid": ui.get("accountId")}}
    else:
        user |= {"uid": ui.get("principalId"), "uuid": ui.get("arn"), "account_uid": ui.get("accountId")}
    issuer = ((ui.get("sessionContext") or {}).get("sessionIssuer") or {}).get("arn")
    data = (lambda v: json.dumps(v) if v is not None else None) if json_data else (lambda v: v)
    out: dict[str, Any] = {
        "class_uid": 6003, "class_name": "API Activity", "category_uid": 6, "severity_id": 1,
        "activity_id": 99, "type_uid": 600399,
        "time": int(when.timestamp() * 1000),
        "metadata": {"product": {"name": "CloudTrail", "vendor_name": "AWS", "version": record.get("eventVersion")},
                     "uid": record.get("eventID"), "event_code": record.get("eventType"), "version": version,
                     "profiles": ["cloud", "datetime"]},
        "cloud": {"provider": "AWS", "region": record.get("awsRegion"),
                  **({"account": {"uid": record.get("recipientAccountId")}} if v11
                     else {"account_uid": record.get("recipientAccountId")})},
        "actor": {"user": user, "invoked_by": ui.get("invokedBy"),
                  **({"session": {"issuer": issuer}} if issuer else {})},
        "api": {"operation": record["eventName"], "service": {"name": record["eventSource"]},
                "request": {"uid": record.get("requestID"), "data": data(record.get("requestParameters"))},
                "response": {"error": record.get("errorCode"), "message": record.get("errorMessage"),
                             "data": data(record.get("responseElements"))}},
        "src_endpoint": {"ip": record.get("sourceIPAddress")} if "." in str(record.get("sourceIPAddress"))
        or ":" in str(record.get("sourceIPAddress")) else {"domain": record.get("sourceIPAddress")},
        "http_request": {"user_agent": record.get("userAgent")},
        "status": "Failure" if record.get("errorCode") else "Success",
        "unmapped": {k: json.dumps(v) if isinstance(v, dict | list) else str(v).lower() if isinstance(v, bool)
                     else str(v) for k, v in record.items() if k not in _MAPPED and v is not None},
    }
    if v11:
        out["time_dt"] = when.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return out


def _records() -> list[dict[str, Any]]:
    return [json.loads(line) for f in sorted(EXAMPLES.glob("*.jsonl")) for line in f.read_text().splitlines()
            if line.strip()]


def _view(obj: Any) -> list[dict[str, Any]]:
    out = parse_record(obj, "t")
    assert not [r for r in out if isinstance(r, RecordError)], out
    return [{k: e.to_dict()[k] for k in COMPARED} for e in out if isinstance(e, Event)]


@pytest.mark.parametrize("version", ["1.1.0", "1.0.0-rc.2"])
@pytest.mark.parametrize("json_data", [True, False], ids=["data as JSON text", "data as objects"])
def test_every_example_record_reads_the_same_from_ocsf(version: str, json_data: bool) -> None:
    records = _records()
    assert len(records) > 100
    for record in records:
        assert _view(to_ocsf(record, version=version, json_data=json_data)) == _view(record), record["eventID"]


def test_ocsf_of_another_product_is_not_taken_for_cloudtrail() -> None:
    record = to_ocsf(_records()[0])
    record["metadata"]["product"]["name"] = "Route 53"
    (result,) = parse_record(record, "t")
    assert isinstance(result, RecordError)


def _write_parquet(path: Path, rows: list[dict[str, Any]], row_group_size: int = 100) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    for row in rows:  # as Security Lake types them: unmapped a map<string,string>, time_dt a timestamp
        row["time_dt"] = datetime.fromtimestamp(row["time"] / 1000, UTC)
    table = pa.Table.from_pylist(rows)
    schema = table.schema.set(
        table.schema.get_field_index("unmapped"), pa.field("unmapped", pa.map_(pa.string(), pa.string()))
    )
    table = pa.Table.from_pylist([{**r, "unmapped": list(r["unmapped"].items())} for r in rows], schema=schema)
    pq.write_table(table, path, row_group_size=row_group_size)


def test_replay_of_a_security_lake_parquet_file_gives_the_native_alerts(tmp_path: Path) -> None:
    # GIVEN the AWS examples as native CloudTrail, and as one Security Lake Parquet file (several row groups)
    records = _records()
    native = tmp_path / "native.jsonl"
    native.write_text("".join(json.dumps(r) + "\n" for r in records))
    lake = tmp_path / "region=eu-west-1" / "part-0000.parquet"
    lake.parent.mkdir()
    _write_parquet(lake, [to_ocsf(r) for r in records], row_group_size=64)
    config = REPO / "examples" / "config.yaml"

    def alerts(path: Path) -> set[tuple[str, str]]:
        result = CliRunner().invoke(main, ["replay", str(path), "--config", str(config), "--output", "jsonl"])
        assert result.exit_code == 0, result.stderr
        assert " 0 errors" in result.stderr
        return {(a["detection"], a["id"]) for a in map(json.loads, result.stdout.splitlines())}

    # WHEN both are replayed THEN they raise the same alerts (the directory is found by suffix too)
    expected = alerts(native)
    assert len({d for d, _ in expected}) >= 8
    assert alerts(lake) == expected
    assert alerts(lake.parent) == expected


def test_a_damaged_parquet_file_is_an_error_not_a_crash(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    result = CliRunner().invoke(main, ["events", str(bad)])
    assert "unreadable Parquet file" in result.stderr
