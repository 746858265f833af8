"""Reading records from files, directories, gzip and stdin."""

from __future__ import annotations

import gzip
import io
import itertools
import json
from typing import TYPE_CHECKING, Any

from adscore.events import RecordError
from adscore.sources.files import count_hint, read_inputs

if TYPE_CHECKING:
    from pathlib import Path

A = {"a": 1}
B = {"b": [1, 2]}


def read(*paths: Path | str, stdin: Any = None) -> list[Any]:
    return list(read_inputs([str(p) for p in paths], stdin=stdin))


def ok(items: list[Any]) -> list[tuple[str, Any]]:
    return [i for i in items if not isinstance(i, RecordError)]


def errors(items: list[Any]) -> list[RecordError]:
    return [i for i in items if isinstance(i, RecordError)]


def test_json_object_and_array(tmp_path: Path) -> None:
    (tmp_path / "one.json").write_text(json.dumps(A, indent=2))
    (tmp_path / "many.json").write_text(json.dumps([A, B, "x"]))
    assert read(tmp_path / "one.json") == [(str(tmp_path / "one.json"), A)]
    many = str(tmp_path / "many.json")
    assert read(many) == [(f"{many}[0]", A), (f"{many}[1]", B), (f"{many}[2]", "x")]


def test_json_file_holding_json_lines_falls_back(tmp_path: Path) -> None:
    p = tmp_path / "lines.json"
    p.write_text(json.dumps(A) + "\n" + json.dumps(B) + "\n")
    assert read(p) == [(f"{p}:1", A), (f"{p}:2", B)]


def test_broken_json_document_is_one_error(tmp_path: Path) -> None:
    p = tmp_path / "bad.json"
    p.write_text('{\n  "a": 1,\n  "b": \n')
    [err] = read(p)
    assert isinstance(err, RecordError)
    assert err.family == "input" and err.location == str(p) and err.reason.startswith("invalid JSON")


def test_jsonl_bad_line_in_the_middle(tmp_path: Path) -> None:
    p = tmp_path / "x.jsonl"
    p.write_text(json.dumps(A) + "\n\n" + '{"broken": \n' + json.dumps(B) + "\n")
    items = read(p)
    assert ok(items) == [(f"{p}:1", A), (f"{p}:4", B)]
    [err] = errors(items)
    assert err.location == f"{p}:3"
    assert err.reason.startswith("invalid JSON: ")
    assert err.excerpt == '{"broken":'


def test_excerpt_is_capped(tmp_path: Path) -> None:
    p = tmp_path / "x.ndjson"
    p.write_text("{" + "x" * 5000 + "\n")
    [err] = read(p)
    assert isinstance(err, RecordError) and len(err.excerpt) == 200


def test_non_utf8_line_is_reported_not_replaced(tmp_path: Path) -> None:
    p = tmp_path / "x.log"
    p.write_bytes(json.dumps(A).encode() + b"\n" + b'{"name": "caf\xe9"}\n' + json.dumps(B).encode() + b"\n")
    items = read(p)
    assert ok(items) == [(f"{p}:1", A), (f"{p}:3", B)]
    [err] = errors(items)
    assert err.location == f"{p}:2"
    assert "invalid UTF-8" in err.reason and "\\xe9" in err.excerpt


def test_bom_is_ignored(tmp_path: Path) -> None:
    p = tmp_path / "bom.json"
    p.write_bytes(b"\xef\xbb\xbf" + json.dumps(A).encode())
    q = tmp_path / "bom.jsonl"
    q.write_bytes(b"\xef\xbb\xbf" + json.dumps(A).encode() + b"\n")
    assert read(p, q) == [(str(p), A), (f"{q}:1", A)]


def test_gzip_by_inner_name_and_by_content(tmp_path: Path) -> None:
    doc = tmp_path / "trail.json.gz"
    doc.write_bytes(gzip.compress(json.dumps({"Records": [A, B]}, indent=1).encode()))
    lines = tmp_path / "audit.jsonl.gz"
    lines.write_bytes(gzip.compress(b'{"a": 1}\nnot json\n{"b": [1, 2]}\n'))
    plain_lines = tmp_path / "plain.gz"
    plain_lines.write_bytes(gzip.compress(b'\n{"a": 1}\n{"b": [1, 2]}\n'))
    plain_doc = tmp_path / "pretty.gz"
    plain_doc.write_bytes(gzip.compress(json.dumps([A, B], indent=2).encode()))

    # a CloudTrail file is streamed record by record (bounded memory; batches count records)
    assert read(doc) == [(f"{doc}#Records[0]", A), (f"{doc}#Records[1]", B)]
    items = read(lines)
    assert ok(items) == [(f"{lines}:1", A), (f"{lines}:3", B)]
    assert [e.location for e in errors(items)] == [f"{lines}:2"]
    assert read(plain_lines) == [(f"{plain_lines}:2", A), (f"{plain_lines}:3", B)]
    assert read(plain_doc) == [(f"{plain_doc}[0]", A), (f"{plain_doc}[1]", B)]


def test_corrupt_gzip_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "x.jsonl.gz"
    p.write_bytes(b"this is not gzip at all")
    t = tmp_path / "t.json.gz"
    t.write_bytes(gzip.compress(json.dumps(A).encode() * 50)[:30])  # truncated
    [e1] = read(p)
    [e2] = read(t)
    assert isinstance(e1, RecordError) and "unreadable gzip" in e1.reason and e1.location == str(p)
    assert isinstance(e2, RecordError) and "gzip" in e2.reason


def test_directory_recursion_sorted_and_filtered(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "deep").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "b" / "2.jsonl").write_text('{"n": 2}\n')
    (tmp_path / "a" / "deep" / "1.json").write_text('{"n": 1}')
    (tmp_path / "a" / "0.ndjson").write_text('{"n": 0}\n')
    (tmp_path / "3.log").write_text('{"n": 3}\n')
    (tmp_path / "4.json.gz").write_bytes(gzip.compress(b'{"n": 4}'))
    (tmp_path / "notes.txt").write_text("meeting notes, not a log")
    (tmp_path / "README").write_text("# read me")
    (tmp_path / "export.txt").write_text('{\n  "n": "txt"\n}\n')  # a log by its content, not its name
    (tmp_path / ".secret.json").write_text('{"n": "hidden file"}')
    (tmp_path / ".hidden" / "x.json").write_text('{"n": "hidden dir"}')
    items = read(tmp_path)
    assert [obj["n"] for _, obj in items] == [3, 4, "txt", 0, 1, 2]
    assert items[3][0] == f"{tmp_path / 'a' / '0.ndjson'}:1"
    assert count_hint([str(tmp_path)]) == sum(
        p.stat().st_size
        for p in (
            tmp_path / "b" / "2.jsonl",
            tmp_path / "a" / "deep" / "1.json",
            tmp_path / "a" / "0.ndjson",
            tmp_path / "3.log",
            tmp_path / "4.json.gz",
            tmp_path / "export.txt",
        )
    )


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    [err] = read(tmp_path / "nope.json")
    assert isinstance(err, RecordError) and "no such file" in err.reason


def test_stdin_json_lines_bytes_and_text() -> None:
    data = '{"a": 1}\n\n{"b": [1, 2]}\n'
    assert read("-", stdin=io.BytesIO(data.encode())) == [("<stdin>:1", A), ("<stdin>:3", B)]
    assert read("-", stdin=io.StringIO(data)) == [("<stdin>:1", A), ("<stdin>:3", B)]


def test_stdin_document() -> None:
    assert read("-", stdin=io.BytesIO(json.dumps([A, B]).encode())) == [("<stdin>[0]", A), ("<stdin>[1]", B)]
    pretty = json.dumps(A, indent=2).encode()
    assert read("-", stdin=io.BytesIO(pretty)) == [("<stdin>", A)]
    assert read("-", stdin=io.BytesIO(b"   \n")) == []


def test_stdin_is_streamed() -> None:
    # GIVEN an endless stdin WHEN the first records are taken THEN reading has not needed the end
    class Endless(io.RawIOBase):
        lines = (b'{"i": %d}\n' % i for i in itertools.count())

        def readable(self) -> bool:
            return True

        def __iter__(self) -> Any:
            return self.lines

    first = list(itertools.islice(read_inputs(["-"], stdin=Endless()), 3))
    assert first == [("<stdin>:1", {"i": 0}), ("<stdin>:2", {"i": 1}), ("<stdin>:3", {"i": 2})]


def test_count_hint_none_for_stdin(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_text("{}")
    assert count_hint([str(p)]) == 2
    assert count_hint([str(p), "-"]) is None


def test_the_layout_is_recognised_from_the_content_whatever_the_name(tmp_path: Path) -> None:
    pretty = json.dumps({"records": [A, B]}, indent=2)
    cases = {
        "pretty.log": (pretty, [A, B]),  # a diagnostic-settings file: its records one by one
        "pretty-array.txt": (json.dumps([A, B], indent=2), [A, B]),
        "no-extension": (json.dumps(A, indent=4), [A]),
        "lines.json": (f"{json.dumps(A)}\n{json.dumps(B)}\n", [A, B]),
        "lines.txt": (f"{json.dumps(A)}\n{json.dumps(B)}\n", [A, B]),
        "pretty.jsonl": (pretty, [A, B]),
        "pretty-record.log": (json.dumps({"kind": "EventList", "items": [A]}, indent=2),
                              [{"kind": "EventList", "items": [A]}]),
    }
    for name, (text, expected) in cases.items():
        (tmp_path / name).write_text(text)
        items = read(tmp_path / name)
        assert not errors(items), (name, errors(items))
        assert [obj for _, obj in items] == expected, name
        gz = tmp_path / f"{name}.gz"
        gz.write_bytes(gzip.compress(text.encode()))
        assert [obj for _, obj in read(gz)] == expected, f"{name}.gz"


def test_json_lines_in_a_log_file_still_stream_with_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_text(f"{json.dumps(A)}\nnot json\n{json.dumps(B)}\n")
    items = read(path)
    assert [loc for loc, _ in ok(items)] == [f"{path}:1", f"{path}:3"]
    assert [e.location for e in errors(items)] == [f"{path}:2"]


class _CountingReader:
    """A byte stream that records how much of it has been read."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.read_bytes = 0

    def read(self, size: int = -1, /) -> bytes:
        out = self._data.read(size)
        self.read_bytes += len(out)
        return out


def test_a_large_records_file_or_array_is_read_record_by_record_not_whole() -> None:
    from adscore.sources.files import stream_document

    record = {"eventVersion": "1.09", "eventName": "DescribeInstances", "pad": "x" * 900}
    for doc in ({"Records": [record] * 12_000}, [record] * 12_000):
        raw = json.dumps(doc, separators=(",", ":")).encode()  # about 11 MB, CloudTrail's compact layout
        for data in (raw, gzip.compress(raw, 1)):
            reader = _CountingReader(data)
            items = stream_document(reader, "big")
            first = next(items)
            assert first[1] == record
            assert reader.read_bytes < 3 * 2**20, "the first record must come before the file is read"
            assert sum(1 for _ in items) == 12_000 - 1


def test_damage_in_a_streamed_file_costs_only_what_follows_it(tmp_path: Path) -> None:
    records = [{"eventName": f"E{i}", "eventVersion": "1.09"} for i in range(5000)]
    data = gzip.compress(json.dumps({"Records": records}).encode())
    p = tmp_path / "damaged.json.gz"
    p.write_bytes(data[: len(data) // 2])  # cut in the middle, as a failed copy leaves it
    items = read(p)
    good = ok(items)
    [err] = errors(items)
    assert 0 < len(good) < 5000 and [obj for _, obj in good] == records[: len(good)]
    assert good[1][0] == f"{p}#Records[1]"
    assert "gzip" in err.reason and f"after {len(good)} records" in err.reason


def test_content_after_the_top_level_array_is_reported(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_text(json.dumps([A]) + "\n}}}")
    items = read(p)
    assert ok(items) == [(f"{p}[0]", A)]
    [err] = errors(items)
    assert "after 1 records" in err.reason


def test_on_bytes_reports_every_byte_read_against_count_hint(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(json.dumps(A) + "\n" + json.dumps(B) + "\n")
    (tmp_path / "b.json.gz").write_bytes(gzip.compress(json.dumps({"Records": [A, B]}).encode()))
    (tmp_path / "c.log").write_text(json.dumps([A], indent=2))
    seen: list[int] = []
    items = list(read_inputs([str(tmp_path)], on_bytes=seen.append))
    assert len(ok(items)) == 5
    assert sum(seen) == count_hint([str(tmp_path)])  # the progress bar reaches its total
