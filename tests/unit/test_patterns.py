"""Patterns over attacker text run on RE2 (linear time): globs agree with fnmatch, regexes RE2 cannot run are refused."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adscore.patterns import GlobMatcher, check_linear, compile_linear, matchable

ALPHABET = st.sampled_from(list("ab*?[]!-^\\.:/ \n(|)\u00e9"))


@settings(max_examples=500, deadline=None, database=None)
@given(globs=st.lists(st.text(ALPHABET, max_size=8), min_size=1, max_size=3), text=st.text(ALPHABET, max_size=12))
def test_globs_on_re2_accept_exactly_what_fnmatch_accepts(globs: list[str], text: str) -> None:
    expected = any(fnmatch.fnmatchcase(text, g) for g in globs)
    assert GlobMatcher(tuple(globs)).match(text) is expected


def test_no_glob_matches_nothing_and_lone_surrogates_are_read() -> None:
    assert GlobMatcher(()).match("") is False
    assert GlobMatcher(("alice?",)).match("alice\ud800") is True
    assert matchable("a\ud800b") == "a\ufffdb"


@pytest.mark.parametrize("pattern", [r"(a)\1", r"(?=x)y", r"(?<!x)y", r"(?>a+)", "(unclosed"])
def test_patterns_re2_cannot_run_are_refused_with_the_reason(pattern: str) -> None:
    with pytest.raises(ValueError, match="RE2"):
        check_linear(pattern)


def test_catastrophic_patterns_compile_to_an_automaton() -> None:
    rx = compile_linear("(a+)+$")
    assert rx.search("a" * 50_000 + "!") is None  # a backtracking engine would not return
