"""Cold-start costs of the GCP function: module import, logging set-up on both paths, engine build.

Run: ``.venv/bin/python bench/bench_gcp_cold_import.py [runs]``. Each measurement is a fresh
interpreter (``python -c``) timing its statements with ``perf_counter``; the median and the
minimum of ``runs`` (default 7) are printed, in milliseconds:

- ``main import``: ``import main`` from ``functions/gcp`` (functions-framework, Flask and
  ``adscore.cloud.gcp``), what a Cloud Functions instance does before its first request;
- ``logging, local``: ``setup_logging()`` off GCP (stdlib JSON lines), after the import;
- ``logging, GCP``: ``setup_logging()`` with ``K_SERVICE`` set: imports ``google.cloud.logging``
  and builds its ``StructuredLogHandler`` (the cost kept out of every path but GCP's);
- ``engine, sqlite + webhook``: ``runtime.get_engine()`` with a SQLite state file and a webhook
  sink (the catalogue, settings and sinks; what the tests run);
- ``engine, firestore + pubsub``: the deployed configuration, plus the first use of each
  backend's SDK (``google.cloud.firestore`` and ``google.cloud.pubsub_v1`` imports; no request).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_GCP = ROOT / "functions" / "gcp"

_ENGINE = "from adscore import runtime\nruntime.get_engine()\n"
_SDKS = "import google.cloud.firestore\nfrom google.cloud import pubsub_v1\n"
CASES: dict[str, tuple[str, str, dict[str, str]]] = {
    # name: (setup, measured body, environment)
    "main import": ("", "import main\n", {"ADSCORE_LOCAL": "1"}),
    "logging, local (stdlib JSON)": (
        "import main\n",
        "from adscore.cloud import gcp\ngcp.setup_logging()\n",
        {"ADSCORE_LOCAL": "1"},
    ),
    "logging, GCP (StructuredLogHandler)": (
        "import main\n",
        "from adscore.cloud import gcp\ngcp.setup_logging()\n",
        {"K_SERVICE": "adscore-bench"},
    ),
    "engine, sqlite + webhook": ("import main\n", _ENGINE, {"ADSCORE_LOCAL": "1", "STATE": "sqlite"}),
    "engine, firestore + pubsub (+ SDK imports)": (
        "import main\n",
        _ENGINE + _SDKS,
        {"ADSCORE_LOCAL": "1", "STATE": "firestore"},
    ),
}

_TEMPLATE = """
import sys, time
sys.path.insert(0, {path!r})
{setup}
t0 = time.perf_counter()
{body}
print((time.perf_counter() - t0) * 1000)
"""


def measure(setup: str, body: str, extra: dict[str, str], runs: int, tmp: Path) -> list[float]:
    """Milliseconds for ``body`` (after ``setup``) in ``runs`` fresh interpreters."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ADSCORE_", "K_", "FUNCTION_"))}
    state = extra.pop("STATE", "sqlite") if "STATE" in extra else "sqlite"
    env.update(extra)
    if state == "firestore":
        env.update(
            {
                "ADSCORE_STATE": "firestore://adscore-bench",
                "ADSCORE_SINKS": "pubsub://projects/acme-bench/topics/alerts",
            }
        )
    else:
        env.update(
            {"ADSCORE_STATE": f"sqlite:///{tmp / 'bench.db'}", "ADSCORE_SINKS": "http://127.0.0.1:9/hook"}
        )
    code = _TEMPLATE.format(path=str(FUNCTIONS_GCP), setup=setup, body=body)
    out = []
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        out.append(float(proc.stdout.strip().splitlines()[-1]))
    return out


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    print(f"Python {sys.version.split()[0]}, {runs} fresh interpreters per row (ms)")
    print(f"{'measure':<46}{'median':>9}{'min':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (setup, body, extra) in CASES.items():
            times = measure(setup, body, dict(extra), runs, Path(tmp))
            print(f"{name:<46}{statistics.median(times):>9.1f}{min(times):>9.1f}")


if __name__ == "__main__":
    main()
