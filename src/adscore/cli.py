"""The ``adscore`` command line: events, replay, backfill, detections, ads, state, package, emulate, forward."""

from __future__ import annotations

import re
import sys
import tempfile
from itertools import islice
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click
import orjson

from adscore import __version__
from adscore.errors import AdscoreError, ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from datetime import datetime

    from adscore.engine import BatchReport, Engine
    from adscore.events import RecordError


def _err(msg: str) -> None:
    """Print one line on stderr, with every escape sequence and control character (CR, LF) removed.

    Record locations, reasons, excerpts and error messages quote the logs: an ANSI or OSC sequence
    in them would retitle or clear the terminal, a line break would forge a line of the report.
    """
    from adscore.render.escape import strip_control

    click.echo(strip_control(msg), err=True)


def _fail(exc: AdscoreError) -> None:
    _err(f"adscore: {exc}")
    sys.exit(2)


def _check_inputs(command: str, paths: Sequence[str]) -> None:
    """Exit 2 with a clear message when an input path does not exist (before any work is done)."""
    import os

    from adscore.sources.objects import SCHEMES, is_object_url

    missing = [p for p in paths if p != "-" and not is_object_url(p) and not os.path.exists(p)]
    for path in missing:
        hint = f" (object storage URLs read: {', '.join(SCHEMES)})" if "://" in path else ""
        _err(f"adscore {command}: no such file or directory: {path!r}{hint}")
    if missing:
        sys.exit(2)


_DAY_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"]

def _detections_option(f: Any) -> Any:
    """``--detections DIR`` and ``--sigma DIR`` (both repeatable): the user's detections and Sigma rules."""
    f = click.option(
        "--sigma", "sigma_dirs", multiple=True, type=click.Path(exists=True),
        help="A folder (or file) of Sigma rules (repeatable; setting sigma_paths).",
    )(f)
    return click.option(
        "--detections", "detection_dirs", multiple=True, type=click.Path(file_okay=False),
        help="A folder of your own detection modules (repeatable; setting detection_paths).",
    )(f)


def _extra(detection_dirs: tuple[str, ...], sigma_dirs: tuple[str, ...]) -> dict[str, Any]:
    """Settings overrides for the --detections and --sigma flags given."""
    return {"detection_paths": detection_dirs or None, "sigma_paths": sigma_dirs or None}


def _catalogue(config: str | None, detection_dirs: tuple[str, ...], sigma_dirs: tuple[str, ...] = ()) -> Any:
    """Built-in, user and Sigma detections for these settings; exit 2 naming the bad setting or file."""
    from adscore.detections import catalogue_for
    from adscore.settings import load_settings

    try:
        return catalogue_for(load_settings(config, **_extra(detection_dirs, sigma_dirs)))
    except ConfigError as exc:
        _fail(exc)
        raise  # unreachable: _fail exits


def _utc(value: datetime | None) -> datetime | None:
    """A naive command-line time is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    from datetime import UTC

    return value.replace(tzinfo=UTC)


def _no_records(command: str, paths: Sequence[str]) -> None:
    """Exit 2: the inputs exist but hold no record (an empty file, a folder with no log files)."""
    _err(f"adscore {command}: no readable records in {', '.join(repr(p) for p in paths)}")
    sys.exit(2)


# JSON leaves DEL, the C1 controls (U+0080..U+009F: CSI, OSC in 8-bit form), line and paragraph
# separators and bidirectional overrides unescaped; a terminal may act on them. Written as \uXXXX
# escapes, the JSON means the same and prints inert.
_TERMINAL_UNSAFE = re.compile(rb"\x7f|\xc2[\x80-\x9f]|\xe2\x80[\xa8-\xae]|\xe2\x81[\xa6-\xa9]")


def _inert_json(line: bytes) -> bytes:
    """JSON bytes with every character a terminal could act on written as a ``\\uXXXX`` escape."""
    if line.isascii() and b"\x7f" not in line:
        return line
    return _TERMINAL_UNSAFE.sub(lambda m: b"\\u%04x" % ord(m.group(0).decode("utf-8")), line)


def _location(err: RecordError) -> str:
    return err.location or err.family


def _chunks(it: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while True:
        chunk = list(islice(it, size))
        if not chunk:
            return
        yield chunk


def _deliveries(items: Iterator[Any], size: int, engine: Engine, source: str) -> Iterator[BatchReport]:
    """Run ``items`` through ``engine`` in deliveries of ``size``; yield each report, its unreadable records printed.

    The collector is paused while a chunk is decoded and run: decoding allocates as much as evaluating.
    """
    from adscore.engine import paused_gc
    from adscore.runtime import run_delivery

    chunks = _chunks(items, size)
    while True:
        with paused_gc():
            chunk = next(chunks, None)
            if chunk is None:
                return
            report = run_delivery(chunk, source=source, engine=engine).report
        _report_errors(report.errors)
        yield report


class _Progress:
    """Progress on stderr when it is a terminal (rich), silent otherwise.

    Shows the records read and their rate, and, for local inputs whose size is known, the bytes
    read of the total with the transfer rate and the time left.
    """

    def __init__(self, paths: Sequence[str], enabled: bool) -> None:
        self._progress: Any = None
        self._task: Any = None
        self._records = 0
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        from adscore.sources.files import count_hint

        total = count_hint(paths)
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.fields[records]:,} records ({task.fields[rate]:,.0f}/s)"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._progress.add_task("replay", total=total or None, records=0, rate=0.0)
        self._progress.start()

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more records."""
        if self._progress is None:
            return
        self._records += n
        if self._records % 500 == 0:
            elapsed = self._progress.tasks[0].elapsed or 0.0
            rate = self._records / elapsed if elapsed > 0 else 0.0
            self._progress.update(self._task, records=self._records, rate=rate)

    def bytes_read(self, n: int) -> None:
        """Count ``n`` more bytes read from the inputs (``read_inputs(on_bytes=...)``)."""
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def _report_errors(errors: Sequence[RecordError]) -> None:
    from adscore.redact import redact_text
    from adscore.render.escape import clean_text

    for e in errors:
        excerpt = f" [{clean_text(redact_text(e.excerpt), 120)}]" if e.excerpt else ""
        _err(f"{clean_text(_location(e), 300)}: {clean_text(e.reason, 600)}{excerpt}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="adscore")
def main() -> None:
    """adscore: detections for T1578.001 Create Snapshot and T1526 Cloud Service Discovery."""


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--strict", is_flag=True, help="Exit with status 2 if any record cannot be read.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on when stderr is a terminal).")
def events(paths: tuple[str, ...], strict: bool, progress: bool | None) -> None:
    """Print the normalized events of PATHS (files, directories, - for stdin) as JSON Lines."""
    from adscore.events import RecordError
    from adscore.sources import parse_record
    from adscore.sources.files import read_inputs

    _check_inputs("events", paths)
    out = sys.stdout.buffer
    n_records = n_events = 0
    errors: list[RecordError] = []
    bar = _Progress(paths, progress if progress is not None else sys.stderr.isatty())
    try:
        for item in read_inputs(list(paths), on_bytes=bar.bytes_read):
            n_records += 1
            bar.advance()
            if isinstance(item, RecordError):
                errors.append(item)
                _report_errors([item])
                continue
            ref, raw = item
            for ev in parse_record(raw, ref):
                if isinstance(ev, RecordError):
                    errors.append(ev)
                    _report_errors([ev])
                else:
                    n_events += 1
                    out.write(_inert_json(orjson.dumps(ev.to_dict())) + b"\n")
    finally:
        bar.stop()
        out.flush()
    _err(f"adscore events: {n_records} records, {n_events} events, {len(errors)} errors")
    if n_records == 0:
        _no_records("events", paths)
    if strict and errors:
        sys.exit(2)


def _emit(alerts: Sequence[Any], output: str, stream: IO[str]) -> None:
    if output == "jsonl":
        from adscore.render.text import to_jsonl

        for a in alerts:
            stream.write(to_jsonl(a) + "\n")
    elif output == "ocsf":
        from adscore.render.ocsf import to_ocsf

        for a in alerts:
            stream.write(orjson.dumps(to_ocsf(a)).decode() + "\n")
    else:
        from rich.console import Console
        from rich.text import Text

        from adscore.render.text import summary, view

        console = Console(file=stream, soft_wrap=False)
        console.print(view(list(alerts), console.width))
        for line in summary(alerts):
            console.print(Text(line, overflow="ellipsis"))


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--config", "config", type=str, default=None, help="Settings YAML (default $ADSCORE_CONFIG).")
@click.option("--state", "state", type=str, default=None, help="State URL (default: a fresh SQLite database per run).")
@click.option(
    "--output",
    type=click.Choice(["table", "jsonl", "ocsf"]),
    default=None,
    help="Alert format (default: table on a terminal, jsonl otherwise).",
)
@click.option("--sink", "sinks", multiple=True, help="Also send alerts to this sink URL (repeatable).")
@click.option("--strict", is_flag=True, help="Exit with status 2 if any record cannot be read.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on when stderr is a terminal).")
@click.option("--since", type=click.DateTime(_DAY_FORMATS), default=None,
              help="s3:// inputs: only objects whose key names this day (UTC) or a later one.")
@click.option("--until", type=click.DateTime(_DAY_FORMATS), default=None,
              help="s3:// inputs: only objects whose key names this day (UTC) or an earlier one.")
@_detections_option
def replay(
    paths: tuple[str, ...],
    config: str | None,
    state: str | None,
    output: str | None,
    sinks: tuple[str, ...],
    strict: bool,
    progress: bool | None,
    since: datetime | None,
    until: datetime | None,
    detection_dirs: tuple[str, ...],
    sigma_dirs: tuple[str, ...],
) -> None:
    """Run every detection over PATHS (files, directories, -, s3://bucket/prefix) and print the alerts.

    A summary goes to stderr.
    """
    from collections import Counter

    from adscore.deliveries.files import unwrap_files
    from adscore.runtime import build_engine
    from adscore.settings import load_settings

    _check_inputs("replay", paths)
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if state is None:
        tmp = tempfile.TemporaryDirectory(prefix="adscore-")
        state = f"sqlite:///{Path(tmp.name) / 'state.db'}"
    try:
        settings = load_settings(config, state=state, **_extra(detection_dirs, sigma_dirs))
        all_sinks = list(settings.sinks) + list(sinks)
        engine = build_engine(settings, sinks=all_sinks)
    except AdscoreError as exc:
        _fail(exc)
        return
    fmt = output or ("table" if sys.stdout.isatty() else "jsonl")
    # counts only: alerts stream out per batch, errors are printed as they come, so memory stays flat
    counts: Counter[str] = Counter()
    by_detection: Counter[str] = Counter()
    table: list[Any] = []
    sink_error: Exception | None = None
    errors = sent = 0
    unprocessed: list[str] = []  # why records were not fully processed (not unreadable ones)
    bar = _Progress(paths, progress if progress is not None else sys.stderr.isatty())

    def items() -> Iterator[Any]:
        for item in unwrap_files(paths, since=_utc(since), until=_utc(until), on_bytes=bar.bytes_read):
            bar.advance()
            yield item

    try:
        for report in _deliveries(items(), settings.batch_size, engine, "cli.replay"):
            errors += len(report.errors)
            sent += len(report.sent)
            unprocessed.extend(r for r in report.failed.values() if not r.startswith("unreadable"))
            counts.update(report.counts)
            by_detection.update(report.by_detection)
            sink_error = sink_error or report.sink_error
            if fmt == "table":
                table.extend(report.sent)
            else:
                _emit(report.sent, fmt, sys.stdout)
                sys.stdout.flush()
    finally:
        bar.stop()
        engine.store.close()
        if tmp is not None:
            tmp.cleanup()
    if fmt == "table":
        _emit(table, fmt, sys.stdout)
    c, readable = counts, counts.get("records", 0)  # records the reader could not decode are "undecoded"
    _err(
        f"adscore replay: {readable + c.get('undecoded', 0)} records, {c.get('events', 0)} events, "
        f"{c.get('errors', 0)} errors, {c.get('suppressed', 0)} suppressed, "
        f"{sent} alerts ({c.get('deduplicated', 0)} already sent)"
    )
    if by_detection:
        _err("  by detection: " + ", ".join(f"{k}={v}" for k, v in sorted(by_detection.items())))
    if sink_error:
        _err(f"adscore replay: alerts not delivered: {sink_error}")
        sys.exit(1)
    if readable == 0:  # nothing read (a missing bucket, an empty prefix, only unreadable files)
        _no_records("replay", paths)
    if unprocessed:  # a detection raised on a record, or its state was not saved: its alerts may be missing
        _err(f"adscore replay: {len(unprocessed)} records not fully processed (first: {unprocessed[0]})")
        sys.exit(1)
    if strict and errors:
        sys.exit(2)


def _period_end(until: datetime | None) -> datetime | None:
    """``--until DAY`` (midnight) means the end of that day; a time means that instant (UTC)."""
    until = _utc(until)
    if until is None or until.time() != until.min.time():
        return until
    from datetime import timedelta

    return until + timedelta(days=1) - timedelta(microseconds=1)


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--config", "config", type=str, default=None, help="Settings YAML (default $ADSCORE_CONFIG).")
@click.option("--since", type=click.DateTime(_DAY_FORMATS), default=None,
              help="Only events of this day (UTC) or time, or later (s3:// inputs: only objects of this day or later).")
@click.option("--until", type=click.DateTime(_DAY_FORMATS), default=None,
              help="Only events up to the end of this day (UTC), or up to this time (s3:// inputs: objects of this day or earlier).")
@click.option("--write", "write", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the proposals as a settings YAML fragment (for review; `adscore validate-settings --config FILE` accepts it).")
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout instead of tables.")
@click.option("--top", type=click.IntRange(1, 100), default=5, show_default=True,
              help="Principals and accounts shown per detection.")
@click.option("--min-days", type=click.IntRange(2, 3660), default=2, show_default=True,
              help="Distinct alerting days (and at least half the period's days) before a suppression is proposed.")
@click.option("--expiry-days", type=click.IntRange(1, 3660), default=90, show_default=True,
              help="Proposed suppressions expire this many days from now.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on when stderr is a terminal).")
@_detections_option
def tune(
    paths: tuple[str, ...],
    config: str | None,
    since: datetime | None,
    until: datetime | None,
    write: Path | None,
    as_json: bool,
    top: int,
    min_days: int,
    expiry_days: int,
    progress: bool | None,
    detection_dirs: tuple[str, ...],
    sigma_dirs: tuple[str, ...],
) -> None:
    """Replay PATHS over a period without sending, and propose the settings that would quiet its regular noise.

    Prints, per detection, the alerts per day and the principals and accounts raising them, and
    proposes: a suppression (with a reason and an expiry) for a principal that alerts on several
    days of the period, a business-hours change for an account whose off-hours alerts cluster
    next to its working hours, and threshold advice. A principal that alerts on one day only is
    never proposed. State is a temporary database; no alert is sent and nothing is dead-lettered.
    """
    from adscore.deliveries import Record
    from adscore.deliveries.files import unwrap_files
    from adscore.engine import Engine
    from adscore.events import Event
    from adscore.settings import load_settings
    from adscore.sources import parse_record
    from adscore.state import open_store
    from adscore.tune import Policy, Tally, propose, to_yaml

    _check_inputs("tune", paths)
    since_t, until_t = _utc(since), _period_end(until)
    if since_t is not None and until_t is not None and until_t < since_t:
        _err("adscore tune: --until is before --since")
        sys.exit(2)
    tmp = tempfile.TemporaryDirectory(prefix="adscore-tune-")
    url = f"sqlite:///{Path(tmp.name) / 'state.db'}"
    try:
        settings = load_settings(config, state=url, **_extra(detection_dirs, sigma_dirs))
        # never the user's sinks or dead-letter store: tune only looks
        settings = settings.model_copy(update={"sinks": (), "deadletter": None, "deadletter_topic": None})
        engine = Engine(settings, open_store(url), None)
    except AdscoreError as exc:
        tmp.cleanup()
        _fail(exc)
        return
    tally = Tally(settings, since_t, until_t)
    bar = _Progress(paths, progress if progress is not None else sys.stderr.isatty())
    readable = skipped = errors = 0
    unprocessed: list[str] = []

    def items() -> Iterator[Any]:
        nonlocal skipped
        for item in unwrap_files(paths, since=since_t, until=until_t, on_bytes=bar.bytes_read):
            bar.advance()
            if isinstance(item, Record):
                events = [e for e in parse_record(item.raw, item.where.location) if isinstance(e, Event)]
                inside = [e for e in events if tally.in_period(e.time)]
                if events and not inside:
                    skipped += 1
                    continue
                for e in inside:  # the days of the period, and what each principal did on which day
                    tally.add_event(e)
            yield item

    try:
        for report in _deliveries(items(), settings.batch_size, engine, "cli.tune"):
            errors += len(report.errors)
            readable += report.counts.get("records", 0)
            unprocessed.extend(r for r in report.failed.values() if not r.startswith("unreadable"))
            for alert in report.sent:
                tally.add(alert)
    finally:
        bar.stop()
        engine.store.close()
        tmp.cleanup()
    if readable + skipped == 0:
        _no_records("tune", paths)
    result = propose(tally, Policy(top=top, min_days=min_days, expiry_days=expiry_days))
    if as_json:
        click.echo(orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2).decode())
    else:
        from adscore.render.tune import print_tune

        print_tune(result, sys.stdout, top)
    if write is not None:
        try:
            write.write_text(to_yaml(result), encoding="utf-8")
        except OSError as exc:
            _err(f"adscore tune: cannot write {write}: {exc.strerror or exc}")
            sys.exit(2)
        _err(f"adscore tune: wrote {len(result.proposals)} proposals to {write} (review, then merge into your settings)")
    _err(
        f"adscore tune: {readable} records in the period ({skipped} outside it), {errors} errors, "
        f"{result.alerts} alerts over {len(result.days)} days, {len(result.proposals)} proposals, "
        f"{len(result.held)} held back"
    )
    if unprocessed:
        _err(f"adscore tune: {len(unprocessed)} records not fully processed (first: {unprocessed[0]})")
        sys.exit(1)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.option("--config", "config", type=str, default=None, help="Settings YAML (its detection_paths are listed too).")
@_detections_option
def detections(as_json: bool, config: str | None, detection_dirs: tuple[str, ...], sigma_dirs: tuple[str, ...]) -> None:
    """List every detection (built-in, yours and Sigma rules) with its technique, severity and the actions it watches."""
    cat = _catalogue(config, detection_dirs, sigma_dirs)
    if as_json:
        for d in cat:
            click.echo(
                orjson.dumps(
                    {
                        "id": d.id,
                        "technique": d.meta.technique,
                        "tactic": d.meta.tactic,
                        "severity": d.meta.severity,
                        "actions": sorted(d.actions),
                        "title": d.meta.title,
                    }
                ).decode()
            )
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    wide = console.width >= 140  # room for the tactic and the actions; ids are never cut or split
    t = Table(title="adscore detections", box=box.SIMPLE_HEAD, pad_edge=False)
    t.add_column("id", no_wrap=True, min_width=max(len(d.id) for d in cat))
    t.add_column("technique", no_wrap=True)
    if wide:
        t.add_column("tactic", no_wrap=True)
    t.add_column("severity", no_wrap=True)
    t.add_column("summary", overflow="ellipsis", ratio=1)
    if wide:
        t.add_column("actions", overflow="ellipsis", ratio=1)
    for d in cat:
        row: list[str | Text] = [d.id, d.meta.technique, *([d.meta.tactic] if wide else []), d.meta.severity]
        row.append(Text(d.meta.title, overflow="ellipsis"))
        if wide:
            row.append(Text(", ".join(sorted(d.actions)), overflow="ellipsis"))
        t.add_row(*row)
    console.print(t)


@main.command()
@click.argument("detection_id", required=False)
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write one <id>.md per detection into this directory.")
@click.option("--config", "config", type=str, default=None, help="Settings YAML (its detection_paths too).")
@_detections_option
def ads(
    detection_id: str | None, out: Path | None, config: str | None, detection_dirs: tuple[str, ...],
    sigma_dirs: tuple[str, ...],
) -> None:
    """Render each detection's ADS report in Markdown (built-in, yours and Sigma rules)."""
    from adscore.ads import render_ads

    cat = _catalogue(config, detection_dirs, sigma_dirs)
    chosen = [d for d in cat if detection_id in (None, d.id, d.module_name)]
    if not chosen:
        _err(f"adscore ads: no detection {detection_id!r}; see `adscore detections`")
        sys.exit(2)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        for d in chosen:
            (out / f"{d.id}.md").write_text(render_ads(d), encoding="utf-8")
        _err(f"adscore ads: wrote {len(chosen)} reports to {out}")
        return
    click.echo("\n\n---\n\n".join(render_ads(d) for d in chosen))


@main.command("test")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--config", "config", type=str, default=None, help="Settings YAML every case starts from.")
@_detections_option
def test_cases(
    paths: tuple[str, ...], config: str | None, detection_dirs: tuple[str, ...], sigma_dirs: tuple[str, ...]
) -> None:
    """Run detection case files (fire_*.yaml, quiet_*.yaml; folders searched) and print pass or fail.

    A case holds records (or files) and the alerts that must fire, or the detections that must stay
    quiet (the format of the project's tests/cases/). Built-in and your detections run, over the
    settings of --config and each case's own. Exit 1 when any case fails, 2 when none is found.
    """
    from adscore.testing import case_paths, run_case

    cases: list[Path] = []
    for p in map(Path, paths):
        cases.extend(case_paths(p) if p.is_dir() else [p])
    if not cases:
        _err(f"adscore test: no fire_*.yaml or quiet_*.yaml case in {', '.join(paths)}")
        sys.exit(2)
    failed = 0
    for path in cases:
        try:
            result = run_case(path, config=config, detection_paths=detection_dirs, sigma_paths=sigma_dirs)
            problems = result.problems
        except (AdscoreError, ValueError, OSError) as exc:
            problems = [f"cannot run: {exc}"]
        status = "PASS" if not problems else "FAIL"
        failed += bool(problems)
        click.echo(f"{status}  {path}")
        for problem in problems:
            click.echo(f"      - {problem}")
    click.echo(f"{len(cases) - failed} passed, {failed} failed")
    if failed:
        sys.exit(1)


@main.command("validate-settings")
@click.option("--config", "config", type=str, default=None)
@_detections_option
def validate_settings(config: str | None, detection_dirs: tuple[str, ...], sigma_dirs: tuple[str, ...]) -> None:
    """Check a settings file (and ADSCORE_* variables, and user detections); exit 2 naming the first bad setting."""
    from adscore.engine import Engine
    from adscore.runtime import check_settings
    from adscore.settings import load_settings
    from adscore.state.memory import MemoryStateStore

    try:
        s = load_settings(config, **_extra(detection_dirs, sigma_dirs))
        check_settings(s)
        Engine(s, MemoryStateStore())
    except ConfigError as exc:
        _fail(exc)
        return
    click.echo(f"settings OK: state={s.state.split('://')[0]}://…, {len(s.sinks)} sinks, {len(s.suppressions)} suppressions")


@main.group()
def sigma() -> None:
    """Sigma rules: check which load (setting sigma_paths, --sigma DIR on replay, test, detections)."""


@sigma.command("check")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
def sigma_check(paths: tuple[str, ...]) -> None:
    """Report, per rule under PATHS, whether it loads, or why not (unsupported rules never stop the others)."""
    from adscore.sigma import check_rules

    try:
        reports = check_rules(list(paths))
    except ConfigError as exc:
        _fail(exc)
        return
    if not reports:
        _err(f"adscore sigma check: no Sigma rules in {', '.join(paths)}")
        sys.exit(2)
    for r in reports:
        status = "loaded" if r.loaded else "unsupported"
        detail = f": {r.reason}" if r.reason else ""
        click.echo(f"{status:<12} {r.kind:<12} {r.title} ({r.rule_id or 'no id'}) [{r.path}]{detail}")
    loaded = sum(r.loaded for r in reports)
    click.echo(f"{loaded} loaded, {len(reports) - loaded} unsupported")


@main.group()
def state() -> None:
    """State store administration."""


@state.command("init")
@click.argument("url")
def state_init(url: str) -> None:
    """Create the table or collection URL names, with the schema and TTL the backend expects (idempotent)."""
    from adscore.state import init_store

    try:
        info = init_store(url)
    except AdscoreError as exc:
        _fail(exc)
        return
    click.echo(orjson.dumps(info, option=orjson.OPT_INDENT_2).decode())


@main.command()
@click.argument("cloud", type=click.Choice(["aws", "azure", "gcp"]))
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=Path("dist"))
@click.option("--arch", type=click.Choice(["x86_64", "arm64"]), default="x86_64", help="AWS Lambda architecture.")
@click.option("--python", "python_version", type=click.Choice(["3.11", "3.12", "3.13"]), default="3.11",
              help="AWS Lambda Python runtime (the Terraform module's python_runtime).")
@_detections_option
def package(
    cloud: str, out: Path, arch: str, python_version: str, detection_dirs: tuple[str, ...], sigma_dirs: tuple[str, ...]
) -> None:
    """Build the deployment zip for CLOUD's function (for the Terraform modules), from the locked versions.

    --detections copies your detection modules into the zip's detections/ folder; point
    ADSCORE_DETECTION_PATHS at it (/var/task/detections, /home/site/wwwroot/detections, /workspace/detections).
    """
    from importlib import import_module

    mod = import_module(f"adscore.packaging.{cloud}")
    folders = [Path(d) for d in detection_dirs]
    try:
        if cloud == "aws":
            path: Path = mod.build(out, arch, python_version=python_version, detections=folders)
        else:
            path = mod.build(out, detections=folders)
    except AdscoreError as exc:
        _fail(exc)
        return
    click.echo(f"{path} {path.stat().st_size / 1_048_576:.1f} MiB")


@main.command()
@click.argument("cloud", type=click.Choice(["aws", "azure", "gcp"]))
@click.argument("source")
@click.option("--since", type=click.DateTime(_DAY_FORMATS), default=None, help="Only objects of this day (UTC) or later.")
@click.option("--until", type=click.DateTime(_DAY_FORMATS), default=None, help="Only objects of this day (UTC) or earlier.")
@click.option("--queue", default=None, help="AWS: the queue URL or name (default: <name-prefix>-cloudtrail-files).")
@click.option("--name-prefix", default="adscore", show_default=True, help="The Terraform module's name_prefix.")
def backfill(
    cloud: str, source: str, since: datetime | None, until: datetime | None, queue: str | None, name_prefix: str
) -> None:
    """Hand an archive (SOURCE: s3://bucket/prefix) to CLOUD's deployed function, which processes it in parallel.

    AWS: every CloudTrail object under the prefix is announced to the function's SQS queue as the S3
    notification S3 sends for a new object, so the deployed sqs function reads it as a live file.
    """
    if cloud != "aws":
        _err(f"adscore backfill {cloud}: not available yet (aws is); replay the archive with `adscore replay`")
        sys.exit(2)
    from adscore.backfill import backfill_aws

    try:
        result = backfill_aws(
            source, queue=queue, name_prefix=name_prefix, since=_utc(since), until=_utc(until),
            progress=sys.stderr.isatty(),
        )  # fmt: skip
    except AdscoreError as exc:
        _fail(exc)
        return
    _err(
        f"adscore backfill aws: {result.objects} objects ({result.bytes / 2**20:.1f} MiB) announced to the "
        f"function's queue, {len(result.failed)} failed"
    )
    if result.failed or result.objects == 0:
        if result.objects == 0:
            _err(f"adscore backfill aws: no log objects under {source!r} in that range")
        sys.exit(2)


@main.command()
@click.argument("cloud", type=click.Choice(["aws", "azure", "gcp"]))
@click.argument("paths", nargs=-1)
@click.option("--config", "config", type=str, default=None,
              help="Settings YAML the functions load (default with the bundled examples: examples/config.yaml).")
@click.option("--keep", is_flag=True, help="Leave the emulators up and print their endpoints; Ctrl-C stops them.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines on stdout: alerts, state items, summary.")
def emulate(cloud: str, paths: tuple[str, ...], config: str | None, keep: bool, as_json: bool) -> None:
    """Run CLOUD's function locally against emulators and send PATHS (default: the bundled examples) through it.

    Starts the emulators on free loopback ports, creates the resources the Terraform module creates,
    delivers each record the way the cloud would (AWS: gzipped CloudTrail file in S3 -> SQS ->
    sqs_handler, EventBridge, CloudWatch Logs; Azure: Event Grid, Event Hub; GCP: Pub/Sub
    CloudEvents to functions-framework) and prints the alerts as they arrive, the state items and a summary.
    """
    from importlib import import_module

    from adscore.emulate import Reporter, default_paths, repo_root

    reporter = Reporter(sys.stdout, sys.stderr, as_json=as_json)
    try:
        inputs = list(paths) or default_paths(cloud)
        root = repo_root()
        if not paths and config is None and root is not None and (root / "examples" / "config.yaml").is_file():
            config = str(root / "examples" / "config.yaml")  # the settings the examples are written for
        result = import_module(f"adscore.emulate.{cloud}").run(inputs, config=config, keep=keep, reporter=reporter)
    except AdscoreError as exc:
        _fail(exc)
        return
    if result.failed or result.unverified:
        sys.exit(1)


@main.group()
def forward() -> None:
    """Forwarders that ship host logs to the deployed ingest endpoint."""


@forward.command("docker")
@click.option("--endpoint", required=True, envvar="ADSCORE_FORWARD_ENDPOINT",
              help="The ingest endpoint URL (https; http only to loopback). Default $ADSCORE_FORWARD_ENDPOINT.")
@click.option("--socket", "socket_path", default="/var/run/docker.sock", show_default=True,
              help="The Docker engine's unix socket.")
@click.option("--spool", "spool_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("/var/lib/adscore-forward"), show_default=True,
              help="Spool directory: batches waiting to be posted, rejected batches, the stream cursor.")
@click.option("--secret-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File holding the whsec_ signing secret (default: $ADSCORE_FORWARD_SECRET).")
@click.option("--batch-size", type=int, default=100, show_default=True, help="Most events per batch.")
@click.option("--flush-seconds", type=float, default=5.0, show_default=True,
              help="Post a partial batch this long after its first event.")
@click.option("--max-batch-bytes", type=int, default=1_048_576, show_default=True,
              help="Largest batch body (keep it under the endpoint's ingest_max_bytes).")
@click.option("--spool-max-batches", type=int, default=1000, show_default=True,
              help="Spool cap in batches; beyond it the OLDEST batches are dropped (logged and counted).")
@click.option("--spool-max-bytes", type=int, default=64 * 1_048_576, show_default=True,
              help="Spool cap in bytes (same policy).")
@click.option("--audit-log", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="auditd log to name who ran docker (e.g. /var/log/audit/audit.log; off by default).")
@click.option("--cloud-metadata/--no-cloud-metadata", default=True, show_default=True,
              help="Ask the EC2 / Azure / GCE metadata service for this host's instance id.")
@click.option("--once", is_flag=True,
              help="Post spooled batches and the events the engine still holds, print counts as JSON, exit.")
def forward_docker(
    endpoint: str, socket_path: str, spool_dir: Path, secret_file: Path | None, batch_size: int,
    flush_seconds: float, max_batch_bytes: int, spool_max_batches: int, spool_max_bytes: int,
    audit_log: Path | None, cloud_metadata: bool, once: bool,
) -> None:
    """Follow the Docker engine's events (commit, export, save) and post them, signed, to ENDPOINT.

    Batches are written to the spool before they are posted and deleted once the endpoint accepts
    them; a restart posts what the spool holds first and resumes the event stream where it stopped.
    See deploy/docker-forwarder/README.md.
    """
    import logging
    import os
    import signal

    from adscore.forward.docker import DockerForwarder, ForwardOptions, check_secret
    from adscore.forward.identity import host_identity

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    try:
        if secret_file is not None:
            try:
                secret = secret_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError("--secret-file", f"cannot read it ({exc.strerror or type(exc).__name__})") from None
            check_secret(secret, "--secret-file")  # the endpoint's rule, naming where the secret came from
        else:
            secret = os.environ.get("ADSCORE_FORWARD_SECRET", "").strip()
            if not secret:
                raise ConfigError("ADSCORE_FORWARD_SECRET", "no signing secret: give --secret-file or set it")
        options = ForwardOptions(
            endpoint=endpoint, secret=secret, spool_dir=spool_dir, socket_path=socket_path, batch_size=batch_size,
            flush_seconds=flush_seconds, max_batch_bytes=max_batch_bytes, spool_max_batches=spool_max_batches,
            spool_max_bytes=spool_max_bytes, audit_log=audit_log,
        )
        forwarder = DockerForwarder(options, host_identity(metadata=cloud_metadata))
    except AdscoreError as exc:
        _fail(exc)
        return
    except OSError as exc:
        _err(f"adscore forward docker: cannot use the spool {str(spool_dir)!r}: {exc.strerror or exc}")
        sys.exit(2)
    if not once:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: forwarder.stop())
    try:
        stats = forwarder.run(once=once)
    finally:
        forwarder.close()
    summary = stats.to_dict()
    logging.getLogger("adscore.forward.docker").info("adscore forward docker stopped: %s", summary)
    if once:
        click.echo(orjson.dumps({**summary, "read_error": forwarder.read_error}).decode())
        if stats.pending_batches or forwarder.read_error:
            sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
