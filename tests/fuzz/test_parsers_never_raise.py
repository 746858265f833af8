"""Property tests: whatever the input, parsing returns Events and RecordErrors and never raises.

Random JSON-like values, real records (the golden inputs of every family) with values
mutated or removed, and hostile cases: truncated JSON, a wrong type at every key,
10 MB strings, 500-deep nesting, non-UTF-8 bytes and lone surrogates.
"""

from __future__ import annotations

import copy
import io
import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adscore.events import Event, RecordError
from adscore.sources import parse_record, parse_records
from adscore.sources.files import read_inputs

if TYPE_CHECKING:
    from collections.abc import Iterator

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
FAST = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

Path_ = tuple[str | int, ...]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(
        ["", "Event", "audit.k8s.io/v1", "2024-01-01T00:00:00Z", "create", "pods", "exec", "Records"]
    ),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(
            st.one_of(
                st.text(max_size=12),
                st.sampled_from(
                    [
                        "kind",
                        "verb",
                        "objectRef",
                        "Records",
                        "records",
                        "protoPayload",
                        "Type",
                        "Action",
                        "Actor",
                        "eventSource",
                        "eventName",
                        "detail",
                        "detail-type",
                        "data",
                        "message",
                        "time",
                    ]
                ),
            ),
            inner,
            max_size=6,
        ),
    ),
    max_leaves=30,
)


def check(result: Any) -> list[Event | RecordError]:
    """Assert the parser contract on one result and return it."""
    assert isinstance(result, list)
    for r in result:
        assert isinstance(r, Event | RecordError), type(r)
        if isinstance(r, RecordError):
            assert isinstance(r.reason, str) and r.reason
            assert isinstance(r.location, str) and isinstance(r.excerpt, str)
            assert len(r.excerpt) <= 200
        else:
            assert r.time.tzinfo is not None
            json.dumps(r.to_dict())
    return result


@cache
def golden_records() -> tuple[Any, ...]:
    return tuple(json.loads(p.read_text(encoding="utf-8")) for p in sorted(GOLDEN.glob("*/*.input.json")))


def paths(obj: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    """Every key/index path inside ``obj`` (strings inside JSON strings are not followed)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield (*prefix, k)
            yield from paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:5]):
            yield (*prefix, i)
            yield from paths(v, (*prefix, i))


def replaced(obj: Any, path: Path_, value: Any, delete: bool = False) -> Any:
    """Return ``obj`` with the value at ``path`` replaced (or deleted); only the containers on the path are copied."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    new = copy.copy(obj)
    if rest:
        new[head] = replaced(obj[head], rest, value, delete)
    elif delete and isinstance(new, dict):
        del new[head]
    else:
        new[head] = value
    return new


# --------------------------------------------------------------------------------------------
# properties
# --------------------------------------------------------------------------------------------
@FAST
@given(json_values)
def test_random_values_never_raise(value: Any) -> None:
    check(parse_record(value, "fuzz"))


@FAST
@given(st.data())
def test_mutated_real_records_never_raise(data: st.DataObject) -> None:
    records = golden_records()
    record = data.draw(st.sampled_from(records))
    all_paths = list(paths(record))
    if not all_paths:
        return
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        path = data.draw(st.sampled_from(all_paths))
        try:
            record = replaced(record, path, data.draw(json_values), delete=data.draw(st.booleans()))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced the parent
    check(parse_record(record, "fuzz"))


@settings(max_examples=60, deadline=None, database=None)
@given(st.data())
def test_truncated_json_never_raises(data: st.DataObject) -> None:
    files = sorted(GOLDEN.glob("*/*.input.json"))
    raw = data.draw(st.sampled_from(files)).read_bytes()
    cut = data.draw(st.integers(min_value=0, max_value=max(0, len(raw) - 1)))
    for item in check(list(parse_records(read_inputs(["-"], stdin=io.BytesIO(raw[:cut]))))):
        assert isinstance(item, RecordError | Event)


@settings(max_examples=60, deadline=None, database=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(blob: bytes) -> None:
    check(list(parse_records(read_inputs(["-"], stdin=io.BytesIO(blob)))))


# --------------------------------------------------------------------------------------------
# targeted hostile cases
# --------------------------------------------------------------------------------------------
WRONG = [None, 0, 10**30, float("nan"), True, "", "x", [], {"a": None}, [[]]]


def test_wrong_type_at_every_key_of_every_golden_record() -> None:
    n = 0
    for record in golden_records():
        for path in paths(record):
            for value in WRONG:
                check(parse_record(replaced(record, path, value), "wrong-type"))
                n += 1
            check(parse_record(replaced(record, path, None, delete=True), "deleted"))
    assert n > 1000


def value_at(obj: Any, path: Path_) -> Any:
    for k in path:
        obj = obj[k]
    return obj


def _strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


def test_ten_megabyte_strings_are_capped() -> None:
    huge = "A" * (10 * 1024 * 1024)
    for record in golden_records():
        for path in paths(record):
            if not isinstance(value_at(record, path), str):
                continue
            result = check(parse_record(replaced(record, path, huge), "huge"))
            for r in result:
                if isinstance(r, Event):
                    longest = max(len(s) for s in _strings(r.to_dict()))
                    assert longest <= 4096, (path, r.source, longest)


def _deep(n: int, leaf: Any) -> Any:
    for i in range(n):
        leaf = {"a": leaf} if i % 2 else [leaf]
    return leaf


def test_deep_nesting() -> None:
    deep = _deep(500, "x")
    check(parse_record(deep, "deep"))
    check(parse_record({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": deep}, "deep"))
    for record in golden_records():
        for path in list(paths(record))[:40]:
            check(parse_record(replaced(record, path, deep), "deep"))
    # and through the reader: orjson refuses very deep documents, which must be a RecordError
    line = ("[" * 2000 + "]" * 2000).encode()
    out = check(list(parse_records(read_inputs(["-"], stdin=io.BytesIO(b'{"a": 1}\n' + line + b"\n")))))
    assert any(isinstance(r, RecordError) and r.location == "<stdin>:2" for r in out)


def test_non_utf8_and_surrogates() -> None:
    data = b'{"kind": "Event", "verb": "\xff\xfe"}\n\xc3\x28\n{"Type": "container", "Action": "st\x80art"}\n'
    out = check(list(parse_records(read_inputs(["-"], stdin=io.BytesIO(data)))))
    assert [r.location for r in out if isinstance(r, RecordError)] == ["<stdin>:1", "<stdin>:2", "<stdin>:3"]
    assert all("invalid UTF-8" in r.reason for r in out if isinstance(r, RecordError))
    for record in golden_records():
        for path in list(paths(record))[:40]:
            check(parse_record(replaced(record, path, "\ud800bad\udfff"), "surrogate"))
