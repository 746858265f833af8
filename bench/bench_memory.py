"""Peak memory of `adscore replay` as the input grows: it must stay flat.

Run: ``.venv/bin/python bench/bench_memory.py [--records N] [--alerts N] [--work DIR]``
(default 1,000,000 records and 100,000 alerts, in ``bench/data/memory``; the inputs are written
once and reused). Each case runs ``adscore replay PATH --output jsonl --no-progress`` under
``/usr/bin/time -f '%M %e'`` and prints its peak resident set size and wall time:

- ``one .json.gz``: the records as one gzipped CloudTrail file ``{"Records": [...]}``;
- ``1,000 files``: the same records as 1,000 gzipped CloudTrail files in a directory;
- ``JSON array``: the same records as one plain ``[...]`` file;
- ``alerts``: ``--alerts`` snapshots each shared with an outside account, so each raises its own
  ``snapshot.shared_external`` alert (alerts stream to stdout, which goes to /dev/null).

The target is under 300 MB peak RSS for each, whatever ``--records``.
"""

from __future__ import annotations

import argparse
import gzip
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from generate_cloudtrail import generate  # noqa: E402


def _write_inputs(work: Path, records: int) -> dict[str, Path]:
    paths = {
        "one .json.gz": work / f"trail-{records}.json.gz",
        "1,000 files": work / f"trail-{records}-files",
        "JSON array": work / f"array-{records}.json",
    }
    if all(p.exists() for p in paths.values()):
        return paths
    work.mkdir(parents=True, exist_ok=True)
    files_dir = paths["1,000 files"]
    files_dir.mkdir(exist_ok=True)
    per_file = max(1, records // 1000)
    one = gzip.open(paths["one .json.gz"], "wb", compresslevel=1)  # noqa: SIM115 - written across the loop, closed below
    array = paths["JSON array"].open("wb")
    one.write(b'{"Records":[')
    array.write(b"[")
    part: list[bytes] = []
    n_file = 0
    for i, rec in enumerate(generate(records)):
        data = orjson.dumps(rec)
        sep = b"," if i else b""
        one.write(sep + data)
        array.write(sep + b"\n" + data)
        part.append(data)
        if len(part) == per_file:
            _flush(files_dir, n_file, part)
            n_file += 1
            part = []
    if part:
        _flush(files_dir, n_file, part)
    one.write(b"]}")
    one.close()
    array.write(b"\n]\n")
    array.close()
    return paths


def _flush(folder: Path, n: int, records: list[bytes]) -> None:
    with gzip.open(folder / f"111122223333_CloudTrail_us-east-1_{n:05d}.json.gz", "wb", compresslevel=1) as f:
        f.write(b'{"Records":[' + b",".join(records) + b"]}")


def _write_alerts(work: Path, alerts: int) -> Path:
    path = work / f"shares-{alerts}.jsonl"
    if path.exists():
        return path
    work.mkdir(parents=True, exist_ok=True)
    start = datetime(2024, 5, 6, 10, 0, tzinfo=UTC)
    with path.open("wb") as f:
        for i in range(alerts):
            t = (start + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
            rec = {
                "eventVersion": "1.09",
                "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/mallory",
                                 "accountId": "111122223333", "userName": "mallory"},
                "eventTime": t, "eventSource": "ec2.amazonaws.com", "eventName": "ModifySnapshotAttribute",
                "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.7", "userAgent": "aws-cli/2.15.30",
                "requestParameters": {"snapshotId": f"snap-{i:017x}", "attributeType": "CREATE_VOLUME_PERMISSION",
                                      "createVolumePermission": {"add": {"items": [{"userId": "999988887777"}]}}},
                "responseElements": {"_return": True}, "eventID": f"share-{i}", "readOnly": False,
                "eventType": "AwsApiCall", "recipientAccountId": "111122223333",
            }  # fmt: skip
            f.write(orjson.dumps(rec) + b"\n")
    return path


def _measure(path: Path) -> tuple[float, float, str]:
    """(peak RSS in MB, seconds, the replay's summary line) of one replay of ``path``."""
    adscore = Path(sys.executable).parent / "adscore"
    cmd = ["/usr/bin/time", "-f", "%M %e", str(adscore), "replay", str(path), "--output", "jsonl", "--no-progress"]
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    lines = proc.stderr.strip().splitlines()
    rss_kb, seconds = lines[-1].split()
    summary = next((line for line in lines if line.startswith("adscore replay:")), lines[-2] if len(lines) > 1 else "")
    return int(rss_kb) / 1024, float(seconds), summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "data" / "memory")
    args = parser.parse_args()
    cases = _write_inputs(args.work, args.records)
    cases[f"{args.alerts:,} alerts"] = _write_alerts(args.work, args.alerts)
    print(f"adscore replay --output jsonl, {args.records:,} records; peak RSS and wall time per input")
    print(f"{'input':<16} {'peak RSS':>10} {'seconds':>8}  summary")
    for name, path in cases.items():
        rss, seconds, summary = _measure(path)
        print(f"{name:<16} {rss:>7.0f} MB {seconds:>8.1f}  {summary.removeprefix('adscore replay: ')}")


if __name__ == "__main__":
    main()
