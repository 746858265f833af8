"""`adscore replay s3://bucket/prefix` against moto in server mode: the same alerts as the files on disk."""

from __future__ import annotations

import gzip
import json
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
