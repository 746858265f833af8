"""Start-up and warm latency of the three cloud functions, each in fresh interpreters.

Usage::

    python bench/bench_start.py [--runs 3] [--root REPO] [--clouds aws,azure,gcp]

``--root`` names the checkout whose ``functions/`` and ``src/`` are measured (run it with that
checkout's own ``.venv/bin/python`` to measure an older commit). For each cloud, each row is the
median (and range) of ``--runs`` fresh interpreters, in milliseconds:

- ``baseline``: what the platform costs anyway (AWS: ``import boto3`` + Powertools ``Logger``;
  Azure: ``import azure.functions``; GCP: ``import functions_framework``);
- ``entry import``: importing the function's entry module (``handler``, ``function_app``, ``main``)
  as the platform's init does;
- ``first invocation``: the import, then one delivery of 10 CloudTrail records (the engine built
  on the way: settings, catalogue, state store, sink);
- ``warm, per record``: in the same process, five more deliveries of 1,000 records each; the
  median per record.

Modules are imported from compiled bytecode, as in the packages ``adscore package`` builds (a first,
uncounted run fills a bytecode cache outside the checkout, ``PYTHONPYCACHEPREFIX``). Each row is given as wall time and as the CPU time of the function's process (``process_time``):
on a shared machine the CPU time is the steadier figure, and for AWS it leaves out moto's own work
(moto runs in this parent process).

AWS calls ``handler.sqs_handler`` with an SQS batch of EventBridge events, its state in DynamoDB
and its sink SNS, both served by moto in server mode (started here). Azure and GCP run the
delivery through :func:`adscore.runtime.run_delivery` (what their triggers call) with SQLite state
and no sink. Tracing is off (``POWERTOOLS_TRACE_DISABLED=true``), as outside Lambda's active tracing.
The records' event times are on 2024-05-01; ``--recent`` puts them a week ago (DynamoDB's read cache
keeps no item whose event-time expiry is more than 30 days past: the table's TTL may delete it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent

_RECORDS = '''
import uuid, json
def _rec(i, n):
    return {"eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": f"AIDA{i % 50}", "arn": f"arn:aws:iam::111122223333:user/u{i % 50}",
                         "accountId": "111122223333", "accessKeyId": "AKIAEXAMPLE", "userName": f"u{i % 50}"},
        "eventTime": f"2024-05-01T12:{(n // 60) % 60:02d}:{n % 60:02d}Z", "eventSource": "ec2.amazonaws.com",
        "eventName": ["DescribeInstances", "DescribeVolumes", "RunInstances", "CreateSnapshot"][i % 4 if i % 97 == 0 else i % 3],
        "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.7", "userAgent": "aws-cli/2.15.0",
        "requestParameters": {"volumeId": "vol-0123456789abcdef0"}, "responseElements": None,
        "requestID": str(uuid.uuid4()), "eventID": str(uuid.uuid4()), "readOnly": i % 3 != 2,
        "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": "111122223333"}
def _eb(r):
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.ec2", "account": "111122223333", "time": r["eventTime"], "region": "us-east-1",
            "resources": [], "detail": r}
def batch(k, n):
    return [_eb(_rec(i, n * 1000 + i)) for i in range(k)]
'''

_AWS = '''
import sys, time, uuid, json
t0 = clock()
import boto3
from aws_lambda_powertools import Logger
t_base = clock()
sys.path.insert(0, {functions!r})
import handler
t_import = clock()
class Ctx:
    function_name = "adscore-sqs"; function_version = "$LATEST"; memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:adscore-sqs"
    log_group_name = "/aws/lambda/adscore-sqs"; log_stream_name = "x"
    def __init__(self): self.aws_request_id = str(uuid.uuid4())
    def get_remaining_time_in_millis(self): return 600_000
def sqs(events):
    return {{"Records": [{{"messageId": str(uuid.uuid4()), "receiptHandle": "h", "body": json.dumps(e),
                          "attributes": {{"ApproximateReceiveCount": "1"}}, "messageAttributes": {{}},
                          "eventSource": "aws:sqs", "awsRegion": "us-east-1",
                          "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:events"}} for e in events]}}
first = sqs(batch(10, 0))
t1 = clock()
out = handler.sqs_handler(first, Ctx())
t_first = clock()
assert out == {{"batchItemFailures": []}}, out
warm = []
for n in range(1, 6):
    ev = sqs(batch(1000, n))
    t = clock()
    out = handler.sqs_handler(ev, Ctx())
    warm.append(sub(clock(), t, 1000))
    assert out == {{"batchItemFailures": []}}, out
report(t0, t_base, t_import, t1, t_first, warm)
'''

_GENERIC = '''
import sys, time, json
t0 = clock()
{baseline}
t_base = clock()
sys.path.insert(0, {functions!r})
import {entry}
t_import = clock()
from adscore import runtime
from adscore.deliveries.eventbridge import unwrap_eventbridge
def items(events):
    return [it for i, e in enumerate(events) for it in unwrap_eventbridge(e, i)]
first = items(batch(10, 0))
t1 = clock()
res = runtime.run_delivery(first, source="bench")
t_first = clock()
assert not res.retry, res
warm = []
for n in range(1, 6):
    its = items(batch(1000, n))
    t = clock()
    res = runtime.run_delivery(its, source="bench")
    warm.append(sub(clock(), t, 1000))
report(t0, t_base, t_import, t1, t_first, warm)
'''

_MEDIAN = """
import json as _json, time as _time
def clock():
    return (_time.perf_counter(), _time.process_time())
def sub(a, b, n=1):
    return ((a[0] - b[0]) / n, (a[1] - b[1]) / n)
def report(t0, t_base, t_import, t1, t_first, warm):
    out = {}
    for i, kind in enumerate(("wall", "CPU")):
        w = sorted(x[i] for x in warm)
        out[f"baseline ({kind})"] = t_base[i] - t0[i]
        out[f"entry import ({kind})"] = t_import[i] - t_base[i]
        out[f"first invocation ({kind})"] = (t_import[i] - t_base[i]) + (t_first[i] - t1[i])
        out[f"warm, per record ({kind})"] = w[len(w) // 2]
    print(_json.dumps(out))
"""


def _run(code: str, env: dict[str, str], runs: int) -> dict[str, list[float]]:
    rows: dict[str, list[float]] = {}
    for _ in range(runs):
        records = _RECORDS.replace("2024-05-01", env["BENCH_EVENT_DAY"]) if "BENCH_EVENT_DAY" in env else _RECORDS
        proc = subprocess.run([sys.executable, "-c", _MEDIAN + records + code], capture_output=True, text=True, env=env)
        if proc.returncode:
            raise SystemExit(proc.stderr[-3000:])
        import json

        for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items():
            rows.setdefault(k, []).append(v * 1000)
    return rows


def _print(cloud: str, rows: dict[str, list[float]]) -> None:
    for name, values in rows.items():
        unit = "ms/record" if "per record" in name else "ms"
        print(
            f"  {cloud:<6}{name:<29}{statistics.median(values):>10.3f} {unit:<10}"
            f"(range {min(values):.3f} - {max(values):.3f})"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--root", type=Path, default=HERE.parent)
    ap.add_argument("--clouds", default="aws,azure,gcp")
    ap.add_argument("--pycache", type=Path, default=None, help="bytecode cache (PYTHONPYCACHEPREFIX); default in /tmp")
    ap.add_argument("--recent", action="store_true", help="event times a week ago instead of 2024-05-01")
    args = ap.parse_args()
    root = args.root.resolve()
    clouds = args.clouds.split(",")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ADSCORE_", "AWS_", "K_", "POWERTOOLS_"))}
    base.update(POWERTOOLS_TRACE_DISABLED="true", POWERTOOLS_SERVICE_NAME="adscore", ADSCORE_LOCAL="1")
    if args.recent:  # DynamoDB's TTL may delete items 30 days past their event-time expiry: the read cache keeps only recent ones
        base["BENCH_EVENT_DAY"] = (datetime.now(UTC) - timedelta(days=7)).strftime("%Y-%m-%d")
    # Deployed packages ship compiled bytecode (adscore package): measure with it, not with every module
    # compiled from source. The .pyc files go to a cache outside the checkout, filled by a first run.
    base.pop("PYTHONDONTWRITEBYTECODE", None)
    base["PYTHONPYCACHEPREFIX"] = str(args.pycache or Path(tempfile.gettempdir()) / f"adscore-bench-pyc-{abs(hash(str(root)))}")
    print(f"Python {sys.version.split()[0]}, {root}, {args.runs} fresh interpreters per cloud; load {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        if "aws" in clouds:
            from adscore.emulate.aws import MotoServer
            from adscore.state.dynamodb import init_table

            server = MotoServer().start()
            try:
                env = {**base, **server.env()}
                os.environ.update(server.env())
                rows: dict[str, list[float]] = {}
                for i in range(args.runs + 1):  # the first run fills the bytecode cache: not counted
                    init_table(f"adscore-bench-{i}", server.client("dynamodb"))
                    topic = server.client("sns").create_topic(Name=f"alerts-{i}")["TopicArn"]
                    run_env = {**env, "ADSCORE_STATE": f"dynamodb://adscore-bench-{i}", "ADSCORE_SINKS": f"sns://{topic}"}
                    for k, v in _run(_AWS.format(functions=str(root / "functions" / "aws")), run_env, 1).items():
                        rows.setdefault(k, []).extend(v if i else [])
                _print("aws", rows)
            finally:
                server.stop()
        for cloud, entry, baseline in (
            ("azure", "function_app", "import azure.functions"),
            ("gcp", "main", "import functions_framework"),
        ):
            if cloud not in clouds:
                continue
            rows = {}
            for i in range(args.runs + 1):  # the first run fills the bytecode cache: not counted
                env = {**base, "ADSCORE_STATE": f"sqlite:///{tmp}/{cloud}-{i}.db", "ADSCORE_SINKS": ""}
                code = _GENERIC.format(functions=str(root / "functions" / cloud), entry=entry, baseline=baseline)
                for k, v in _run(code, env, 1).items():
                    rows.setdefault(k, []).extend(v if i else [])
            _print(cloud, rows)


if __name__ == "__main__":
    main()
