"""Decoders for one CloudTrail record per line, side by side: what a typed decode would save.

Usage::

    python bench/bench_decode.py [--file bench/data/mix-200k.jsonl] [--repeat 3]

Rows (best of ``--repeat``, CPU time per record): ``orjson.loads`` (the floor the engine starts from
today), ``json.loads``, and, when msgspec is installed (it is not a dependency of adscore; install
it in a scratch environment to run these rows), ``msgspec.json.decode`` untyped and typed into a
``Struct`` holding only what routing and the detections read, with ``requestParameters``,
``responseElements`` and ``userIdentity`` kept as undecoded bytes (``msgspec.Raw``). A typed decode
refuses a record whose fields have the wrong types; the row counts those, which would have to take
the untyped path (the parser's errors) instead.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path
from typing import Any

import orjson

try:
    import msgspec
except ImportError:  # not a dependency of adscore: install it in a scratch environment for these rows
    msgspec = None


def _best(fn: Any, lines: list[bytes], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        gc.disable()  # as the engine runs a batch: the collector paused
        try:
            t0 = time.process_time()
            fn(lines)
            best = min(best, time.process_time() - t0)
        finally:
            gc.enable()
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", type=Path, default=Path(__file__).parent / "data" / "mix-200k.jsonl")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    lines = [line for line in args.file.read_bytes().splitlines() if line.strip()]
    n = len(lines)
    rows: dict[str, Any] = {
        "orjson.loads": lambda ls: [orjson.loads(x) for x in ls],
        "json.loads": lambda ls: [json.loads(x) for x in ls],
    }
    refused = 0
    if msgspec is not None:

        class Routed(msgspec.Struct, rename="camel"):  # type: ignore[call-arg]
            event_source: str
            event_name: str
            event_time: str
            event_id: str = msgspec.field(name="eventID", default="")
            read_only: bool | str | None = None
            error_code: str | None = None
            aws_region: str | None = None
            recipient_account_id: str | None = None
            source_ip_address: str | None = msgspec.field(name="sourceIPAddress", default=None)
            user_agent: str | None = None
            request_id: str | None = msgspec.field(name="requestID", default=None)
            user_identity: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)
            request_parameters: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)
            response_elements: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)

        typed = msgspec.json.Decoder(Routed)
        untyped = msgspec.json.Decoder()

        def _typed(ls: list[bytes]) -> None:
            nonlocal refused
            refused = 0
            for x in ls:
                try:
                    typed.decode(x)
                except msgspec.ValidationError:
                    refused += 1

        rows["msgspec.json.decode (untyped)"] = lambda ls: [untyped.decode(x) for x in ls]
        rows["msgspec typed Struct, raw sub-objects"] = _typed
    floor = None
    print(f"{args.file} ({n} records), best of {args.repeat}, CPU time")
    for name, fn in rows.items():
        s = _best(fn, lines, args.repeat)
        floor = floor or s
        print(f"  {name:<40}{1e6 * s / n:>8.2f} µs/record {floor / s:>8.0%} of orjson's rate")
    if msgspec is not None:
        print(f"  typed decode refused {refused} records (would take the untyped path)")


if __name__ == "__main__":
    main()
