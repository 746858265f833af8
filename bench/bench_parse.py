"""CloudTrail parse throughput: orjson alone vs orjson + adscore.sources.aws.parse.

Usage::

    python bench/bench_parse.py [--file bench/data/cloudtrail-200k.jsonl] [--records 200000] [--repeat 3] [--stream]

Generates the file with ``generate_cloudtrail.py`` if it is missing, reads all
lines into memory (so disk speed is not measured), then prints records/s for

(a) ``orjson.loads`` of each line only,
(b) ``orjson.loads`` + ``aws.parse`` (normalize to Events),

and the ratio b/a (1.0 would mean normalizing is free). ``--stream`` adds
(c): the same records as one gzipped CloudTrail file read with
``aws.parse_cloudtrail_stream`` (inflate + incremental JSON + normalize), the
S3 delivery path. Best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import io
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate_cloudtrail
from adscore.events import RecordError
from adscore.sources import aws


def _best(fn: object, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="CloudTrail parse throughput")
    ap.add_argument("--file", type=Path, default=Path("bench/data/cloudtrail-200k.jsonl"))
    ap.add_argument("--records", type=int, default=200_000, help="records to generate if the file is missing")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--stream", action="store_true", help="also time the gzipped-file streaming path")
    args = ap.parse_args(argv)

    if not args.file.exists():
        print(f"generating {args.file} ...", file=sys.stderr)
        generate_cloudtrail.write(args.file, args.records, args.seed)
    lines = args.file.read_bytes().splitlines()
    n = len(lines)
    loads = orjson.loads
    parse = aws.parse

    def only_load() -> None:
        for line in lines:
            loads(line)

    errors = 0

    def load_parse() -> None:
        nonlocal errors
        errors = 0
        for i, line in enumerate(lines):
            for item in parse(loads(line), f"line:{i}"):
                if isinstance(item, RecordError):
                    errors += 1

    rows: list[tuple[str, float]] = []
    t_a = _best(only_load, args.repeat)
    rows.append(("(a) orjson.loads only", n / t_a))
    t_b = _best(load_parse, args.repeat)
    rows.append(("(b) orjson.loads + aws.parse", n / t_b))

    if args.stream:
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=6) as gz:
            gz.write(b'{"Records":[' + b",".join(lines) + b"]}")
        blob = buf.getvalue()

        def stream() -> None:
            for _ in aws.parse_cloudtrail_stream(io.BytesIO(blob), "bench.json.gz"):
                pass

        t_c = _best(stream, args.repeat)
        rows.append((f"(c) gzip file stream + parse ({len(blob) / 1e6:.0f} MB gz)", n / t_c))

    width = max(len(r[0]) for r in rows)
    print(
        f"file: {args.file}  records: {n}  size: {sum(map(len, lines)) / 1e6:.0f} MB  best of {args.repeat}"
    )
    print(f"{'measure':<{width}}  {'records/s':>12}  {'us/record':>10}")
    for label, rate in rows:
        print(f"{label:<{width}}  {rate:>12,.0f}  {1e6 / rate:>10.2f}")
    print(f"{'ratio b/a':<{width}}  {rows[1][1] / rows[0][1]:>12.2f}")
    print(f"parse-only cost: {(t_b - t_a) / n * 1e6:.2f} us/record; record errors: {errors}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
