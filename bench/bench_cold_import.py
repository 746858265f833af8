"""Cold import time of the Lambda handler module, beside a bare ``import boto3`` + Powertools Logger.

Run: ``.venv/bin/python bench/bench_cold_import.py [runs]``. Each measurement is
a fresh interpreter (``python -c``) timing its imports with ``perf_counter``;
the median of ``runs`` (default 5) is printed, in milliseconds:

- ``baseline``: ``import boto3`` and ``from aws_lambda_powertools import Logger``;
- ``handler import``: ``import handler`` from ``functions/aws`` (what Lambda's
  init phase does: Powertools Logger, Metrics and Tracer, the adapter, the
  AWS parser; the engine itself is built on the first invocation);
- ``handler + engine``: the import, then ``runtime.get_engine()`` with a
  DynamoDB state URL and an SNS sink (no request is made: clients only),
  which is the rest of a cold start's fixed cost.

Outside Lambda the Tracer is disabled, as in the handler's tests; in Lambda
it also patches botocore for X-Ray, which costs a few more milliseconds.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_AWS = ROOT / "functions" / "aws"

SNIPPETS = {
    "baseline (boto3 + Logger)": "import boto3\nfrom aws_lambda_powertools import Logger\n",
    "handler import": "import handler\n",
    "handler + engine": "import handler\nfrom adscore import runtime\nruntime.get_engine()\n",
}

_TEMPLATE = """
import sys, time
sys.path.insert(0, {path!r})
t0 = time.perf_counter()
{body}
print((time.perf_counter() - t0) * 1000)
"""


def measure(body: str, runs: int) -> list[float]:
    """Milliseconds for ``body`` in ``runs`` fresh interpreters."""
    env = {
        **os.environ,
        "ADSCORE_STATE": "dynamodb://adscore-bench",
        "ADSCORE_SINKS": "sns://arn:aws:sns:us-east-1:123456789012:adscore-alerts",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.pop("ADSCORE_CONFIG", None)
    times = []
    code = _TEMPLATE.format(path=str(FUNCTIONS_AWS), body=body)
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, cwd=ROOT
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return times


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    measure("pass", 1)  # warm the OS file cache and .pyc files, like a reused Lambda image
    print(f"cold import, median of {runs} fresh interpreters (ms); Python {sys.version.split()[0]}")
    for name, body in SNIPPETS.items():
        times = measure(body, runs)
        print(f"  {name:28s} {statistics.median(times):8.1f}   (min {min(times):.1f}, max {max(times):.1f})")


if __name__ == "__main__":
    main()
