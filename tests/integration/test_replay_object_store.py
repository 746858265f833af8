"""`adscore replay s3://bucket/prefix` against moto in server mode: the same alerts as the files on disk."""

from __future__ import annotations

import gzip
import json
import uuid
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from adscore.cli import main
from tests.integration import moto_server as _moto

if TYPE_CHECKING:
    from tests.integration.moto_server import MotoServer

moto_server, aws_env = _moto.moto_server, _moto.aws_env  # fixtures

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "examples" / "config.yaml")
BUCKET = "org-trail"
PREFIX = "AWSLogs/o-abc123/111122223333/CloudTrail/eu-west-1"


def _trail_files(tmp_path: Path) -> dict[str, bytes]:
    """The AWS examples as CloudTrail log files: one gzipped file per example and day, keyed as CloudTrail names them."""
    files: dict[str, bytes] = {}
    for source in sorted((REPO / "examples" / "aws").glob("*.jsonl")):
        by_day: dict[str, list[dict[str, object]]] = defaultdict(list)
        for line in source.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                by_day[str(rec["eventTime"])[:10]].append(rec)
        for day, records in by_day.items():
            y, m, d = day.split("-")
            key = f"{PREFIX}/{y}/{m}/{d}/111122223333_CloudTrail_eu-west-1_{day.replace('-', '')}T0000Z_{source.stem}.json.gz"
            files[key] = gzip.compress(json.dumps({"Records": records}).encode())
    local = tmp_path / "local"
    for key, data in files.items():
        (local / key).parent.mkdir(parents=True, exist_ok=True)
        (local / key).write_bytes(data)
    return files


def _alerts(*args: str) -> tuple[int, set[tuple[str, str]], str]:
    result = CliRunner().invoke(main, ["replay", *args, "--config", CONFIG, "--output", "jsonl", "--no-progress"])
    alerts = {(a["detection"], a["id"]) for a in map(json.loads, result.stdout.splitlines()) if a}
    return result.exit_code, alerts, result.stderr


def test_replay_from_s3_gives_the_alerts_of_the_same_files_on_disk(aws_env: MotoServer, tmp_path: Path) -> None:
    import boto3

    # GIVEN an organization trail's bucket holding the examples as CloudTrail files, plus what a
    # trail bucket also holds: a digest file and a zero-byte object
    files = _trail_files(tmp_path)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for key, data in files.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    s3.put_object(Bucket=BUCKET, Key="AWSLogs/o-abc123/111122223333/CloudTrail-Digest/eu-west-1/2026/03/14/d.json.gz",
                  Body=gzip.compress(b'{"digestStartTime": "x"}'))  # fmt: skip
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/2026/03/14/empty.json.gz", Body=b"")

    # WHEN the bucket prefix and the same files on disk are replayed
    code_disk, on_disk, _ = _alerts(str(tmp_path / "local"))
    code_s3, from_s3, stderr = _alerts(f"s3://{BUCKET}/AWSLogs/")

    # THEN the alerts are the same, and digest and empty objects were skipped, not errors
    assert code_disk == 0 and code_s3 == 0, stderr
    assert len({d for d, _ in on_disk}) >= 8
    assert from_s3 == on_disk
    assert " 0 errors" in stderr


def test_since_and_until_read_only_the_days_named_in_the_keys(aws_env: MotoServer, tmp_path: Path) -> None:
    import boto3

    files = _trail_files(tmp_path)
    assert len({tuple(key.split("/")[5:8]) for key in files}) >= 2, "the examples span several days"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for key, data in files.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    first_day = min(key.split("/")[5:8] for key in files)
    since = "-".join(first_day)
    code, alerts, stderr = _alerts(f"s3://{BUCKET}/AWSLogs/", "--since", since, "--until", since)
    assert "adscore replay: " in stderr, stderr
    records_read = int(stderr.split("adscore replay: ", 1)[1].split(" records", 1)[0])
    on_that_day = sum(len(json.loads(gzip.decompress(d))["Records"]) for k, d in files.items()
                      if k.split("/")[5:8] == first_day)  # fmt: skip
    assert code == 0, stderr
    assert records_read == on_that_day
    # a range that names no day of the archive reads nothing: a script must not take that for a clean run
    code, alerts, stderr = _alerts(f"s3://{BUCKET}/AWSLogs/", "--since", "2030-01-01")
    assert code == 2 and not alerts and "no readable records" in stderr


def test_an_empty_prefix_or_a_missing_bucket_exits_non_zero(aws_env: MotoServer) -> None:
    import boto3

    boto3.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    code, _, stderr = _alerts(f"s3://{BUCKET}/AWSLogs/nothing-here/")
    assert code == 2 and "no readable records" in stderr
    code, _, stderr = _alerts("s3://no-such-bucket/AWSLogs/")
    assert code == 2 and "NoSuchBucket" in stderr


# --------------------------------------------------------------------------- Azure Blob (Azurite)

from tests.integration import azurite as _azurite  # noqa: E402

azurite = _azurite.azurite  # the session fixture


def test_replay_from_azure_blob_reads_a_diagnostic_container_as_the_files_on_disk(
    azurite: _azurite.Azurite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.storage.blob import ContainerClient

    # GIVEN an Activity Log archive as diagnostic settings write it to a storage account: one
    # PT1H.json per hour (JSON Lines) under resourceId=/.../y=/m=/d=/h=/m=00/
    records = [json.loads(line) for f in sorted((REPO / "examples" / "azure").glob("*.jsonl"))
               for line in f.read_text().splitlines() if line.strip()]  # fmt: skip
    flat = []
    for r in records:
        flat.extend(r["records"] if isinstance(r, dict) and isinstance(r.get("records"), list) else [r])
    hours: dict[str, list[str]] = defaultdict(list)
    for r in flat:
        t = str(r.get("time") or r.get("eventTime") or "2026-03-14T00")
        hours[f"y={t[:4]}/m={t[5:7]}/d={t[8:10]}/h={t[11:13]}"].append(json.dumps(r))
    container = f"insights-logs-{uuid.uuid4().hex[:8]}"
    client = ContainerClient.from_connection_string(azurite.connection_string, container)
    client.create_container()
    local = tmp_path / "local"
    for hour, lines in hours.items():
        key = f"resourceId=/SUBSCRIPTIONS/00000000-1111-2222-3333-444444444444/{hour}/m=00/PT1H.json"
        client.upload_blob(key, ("\n".join(lines) + "\n").encode())
        (local / key).parent.mkdir(parents=True, exist_ok=True)
        (local / key).write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)

    # WHEN the container and the same files on disk are replayed THEN the alerts are the same
    code_disk, on_disk, err_disk = _alerts(str(local))
    code_az, from_az, err_az = _alerts(f"az://{container}/resourceId=/")
    assert code_disk == 0 and code_az == 0, err_az
    assert on_disk and from_az == on_disk
    assert err_az.split("adscore replay: ", 1)[1].split(",")[0] == err_disk.split("adscore replay: ", 1)[1].split(",")[0]
    # a container that does not exist names the service's error and exits non-zero
    code, _, stderr = _alerts("az://no-such-container/x")
    assert code == 2 and "ContainerNotFound" in stderr


# --------------------------------------------------------------------------- Cloud Storage (local JSON API server)


def test_replay_from_gcs_reads_a_log_sink_folder_as_the_files_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against tests/integration/gcs_fake.py: no GCS emulator runs here; it checks each request against the JSON API."""
    from tests.integration.gcs_fake import FakeGCS

    # GIVEN GCP audit log entries as a log sink writes them to Cloud Storage: JSON Lines per hour
    # under cloudaudit.googleapis.com/activity/YYYY/MM/DD/, one object big enough to be read in ranges
    entries = [json.loads(line) for f in sorted((REPO / "examples" / "gcp").glob("*.jsonl"))
               for line in f.read_text().splitlines() if line.strip()]  # fmt: skip
    by_day: dict[str, list[str]] = defaultdict(list)
    for e in entries:
        t = str(e.get("timestamp") or e.get("time") or "2026-03-14")
        by_day[t[:10].replace("-", "/")].append(json.dumps(e))
    local = tmp_path / "local"
    with FakeGCS() as gcs:
        for day, lines in by_day.items():
            key = f"cloudaudit.googleapis.com/activity/{day}/00:00:00_00:59:59_S0.json"
            data = ("\n".join(lines) + "\n").encode()
            gcs.put("org-audit-sink", key, data)
            (local / key).parent.mkdir(parents=True, exist_ok=True)
            (local / key).write_bytes(data)
        big = "\n".join(json.dumps(e) for e in entries * 40) + "\n"  # over a few MiB: ranged reads
        gcs.put("org-audit-sink", "cloudaudit.googleapis.com/data_access/2020/01/01/big.json", big.encode())
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.url)
        monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test-project")

        # WHEN the sink folder and the same files on disk are replayed THEN the alerts are the same
        code_disk, on_disk, _ = _alerts(str(local))
        code_gs, from_gs, err_gs = _alerts("gs://org-audit-sink/cloudaudit.googleapis.com/activity/")
        assert code_disk == 0 and code_gs == 0, err_gs
        assert on_disk and from_gs == on_disk
        # the big object is read in full, through ranges
        code, _, stderr = _alerts("gs://org-audit-sink/cloudaudit.googleapis.com/data_access/")
        assert code == 0 and f"adscore replay: {len(entries) * 40} records" in stderr, stderr
        # a bucket that does not exist is the API's 404, and exits non-zero
        code, _, stderr = _alerts("gs://no-such-bucket/x")
        assert code == 2 and "NotFound" in stderr and "no readable records" in stderr
        assert gcs.rejected == []
        big_reads = [r for path, r in gcs.requests if "big.json" in path and "/download/" in path]
        assert len(big_reads) > 1 and all(r and r.startswith("bytes=") for r in big_reads)  # ranged, not whole
