"""The forwarder's pure parts: line splitting of the event stream, salvage of oversized events, the
changes summary and the cursor, on arbitrary input."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from adscore.forward.docker import Oversized, _bounded_lines, salvage, sensitive_category, summarize_changes
from adscore.forward.spool import Cursor


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40).filter(lambda b: b"\n" not in b), max_size=20), st.data())
def test_lines_survive_any_chunking(lines: list[bytes], data: st.DataObject) -> None:
    stream = b"\n".join(lines) + b"\n"
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    got = list(_bounded_lines(iter(chunks), 30))
    expected = [ln if len(ln) <= 30 else "over" for ln in lines if ln.strip() or len(ln) > 30]
    assert [g if isinstance(g, bytes) else "over" for g in got] == expected
    for g, ln in zip([g for g in got if isinstance(g, Oversized)], [ln for ln in lines if len(ln) > 30], strict=True):
        assert ln.startswith(g.head) and ln.endswith(g.tail)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.binary(max_size=600))
def test_salvage_never_raises(head: bytes, tail: bytes) -> None:
    out = salvage(Oversized(head, tail))
    assert out is None or (out["truncated"] is True and out["timeNano"] >= 0)


def test_salvage_reads_a_go_encoded_event() -> None:
    line = orjson.dumps({"Type": "container", "Action": "commit", "Actor": {"ID": "c1", "Attributes": {"pad": "x" * 9000}},
                         "scope": "local", "time": 1773656100, "timeNano": 1773656100000000001})
    out = salvage(Oversized(line[:4096], line[-512:]))
    assert out == {"Type": "container", "Action": "commit", "Actor": {"ID": "c1", "Attributes": {}}, "scope": "local",
                   "time": 1773656100, "timeNano": 1773656100000000001, "truncated": True}


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=30),
                    lambda c: st.lists(c, max_size=5) | st.dictionaries(st.sampled_from(["Path", "Kind", "x"]), c, max_size=3),
                    max_leaves=20))
def test_changes_summary_never_raises(changes: object) -> None:
    out = summarize_changes(changes)
    assert out["total"] == out["added"] + out["changed"] + out["deleted"] and out["sensitive"] >= len(out["sensitive_paths"])


def test_sensitive_locations() -> None:
    assert [sensitive_category(p) for p in (
        "/etc/shadow", "/home/bob/.ssh/authorized_keys", "/app/config/db-secret.yaml", "/backup/x.tar.gz",
        "/var/lib/postgresql/data/PG_VERSION", "/var/lib/dpkg/status", "/tmp/x", "/usr/bin/python3",
    )] == ["secret", "secret", "secret", "backup", "data", None, None, None]


def test_cursor_admits_only_what_is_new() -> None:
    c = Cursor(100, ["a"])
    assert not c.admits(99, "z") and not c.admits(100, "a") and c.admits(100, "b") and c.admits(101, "a")
    assert c.advance(100, "b").seen == ["a", "b"] and c.advance(101, "c") == Cursor(101, ["c"])
    assert Cursor(1_773_656_100_000_000_001).since() == "1773656100.000000001"
