"""Regular expressions over attacker-controlled text, compiled by RE2: matching time is linear.

Python's :mod:`re` backtracks: a pattern such as ``tar\\s+(?:--?[\\w-]+\\s+)*x`` takes exponential
time on ``tar --a --a … !``, and a command line is attacker text. Every pattern that a detection
matches against log text, built-in or from the settings, is compiled here by RE2 (``google-re2``),
whose automaton runs in time linear in the text whatever the pattern. RE2 has no lookaround and no
backreference: a settings pattern that uses them is rejected when the settings load, with the
setting's name (:func:`check_linear` raises ``ValueError`` inside a pydantic validator).

Example
-------
>>> compile_linear(r"tar\\s+(?:-\\w+\\s+)*-?\\w*c\\w*f\\s+-").search("tar -czf - /data").group(0)
'tar -czf -'
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Protocol

import re2

_SURROGATE = re.compile("[\ud800-\udfff]")
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # the error is raised (and named) here; RE2 would also print it on stderr


class Match(Protocol):
    """The part of a match object the detections use."""

    def group(self, index: int = 0, /) -> str: ...


class LinearPattern(Protocol):
    """A compiled RE2 pattern (the subset of :class:`re.Pattern` the detections use)."""

    pattern: str

    def search(self, text: str) -> Match | None: ...


def _readable(exc: Exception) -> str:
    detail = exc.args[0] if exc.args else exc
    return detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)


def check_linear(pattern: str) -> str:
    """Return ``pattern`` if RE2 compiles it, else raise ``ValueError`` saying why.

    Raises
    ------
    ValueError
        Invalid syntax, or a feature a linear-time engine cannot offer (lookahead, lookbehind,
        backreferences, possessive or atomic groups).
    """
    try:
        _compile(pattern)
    except re2.error as exc:
        raise ValueError(
            f"{pattern!r} is not a pattern the linear-time engine (RE2) accepts: {_readable(exc)} "
            "(lookaround, backreferences and atomic groups are not supported)"
        ) from exc
    return pattern


@lru_cache(maxsize=256)
def _compile(pattern: str) -> Any:
    return re2.compile(pattern, options=_OPTIONS)


def compile_linear(pattern: str) -> LinearPattern:
    """Compile ``pattern`` with RE2 (cached); see :func:`check_linear` for what it rejects."""
    compiled: LinearPattern = _compile(check_linear(pattern))
    return compiled


class GlobMatcher:
    """Globs (``fnmatch`` syntax, case-sensitive) compiled into one RE2 pattern: ``match(text)`` is
    true when any glob matches the whole text, in time linear in the text.

    The translation is :func:`fnmatch.translate`'s, with its atomic groups (``(?>.*?x)``, the
    standard library's guard against backtracking) written as plain groups: RE2 does not backtrack,
    and for a glob both forms accept the same texts.

    Example
    -------
    >>> GlobMatcher(("arn:aws:iam::*:role/backup-*",)).match("arn:aws:iam::1:role/backup-x")
    True
    """

    __slots__ = ("_rx",)

    def __init__(self, globs: tuple[str, ...]) -> None:
        import fnmatch

        parts = []
        for glob in globs:
            rx = fnmatch.translate(glob).replace("(?>.*?", "(?:.*?").replace("(?!)", r"\b\B")
            parts.append(f"(?:{rx.removesuffix(chr(92) + 'Z')})")
        self._rx: Any = _compile(r"(?:" + "|".join(parts) + r")\z") if parts else None

    def match(self, text: str) -> bool:
        """Whether any glob matches all of ``text``."""
        return self._rx is not None and self._rx.match(matchable(text)) is not None


@lru_cache(maxsize=1024)
def glob_matcher(globs: tuple[str, ...]) -> GlobMatcher:
    """The :class:`GlobMatcher` of ``globs``, compiled once per distinct tuple."""
    return GlobMatcher(globs)


def matchable(text: str) -> str:
    """``text`` as RE2 can take it: lone surrogates (which no UTF-8 encoder accepts) become U+FFFD."""
    if text.isascii():
        return text
    return _SURROGATE.sub("\ufffd", text)  # one character for one: "?" in a glob still counts right
