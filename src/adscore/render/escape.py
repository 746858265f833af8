"""Pure helpers that cap and clean attacker-controlled text, and escape it for a medium.

Everything an alert carries that came from a log is attacker-controlled. Two
kinds of helper live here:

- *cleaning* (:func:`clean_text`, :func:`clean_value`): applied once when an
  :class:`~adscore.alerts.Alert` is built. It caps lengths, removes ANSI escape
  sequences, replaces control characters and lone surrogates, and makes nested
  values JSON-safe. The result is still raw text, not escaped for any medium.
- *escaping* (:func:`escape_slack`, :func:`escape_teams`, :func:`fit_escaped`):
  applied only by the renderers in :mod:`adscore.render`, each for its medium.

Nothing here imports anything beyond the standard library.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

ELLIPSIS = "…"
"""Appended to text that was cut."""

REPLACEMENT = "\ufffd"
"""Stands in for a control character, so a reader sees that something was there."""

# ANSI / VT100: CSI sequences (ESC [ ... final), OSC sequences (ESC ] ... BEL or ST),
# and the two-character ESC sequences. Removed whole, so no "[31m" debris is left.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")
# C0 controls except TAB and LF, DEL, C1 controls, bidirectional overrides and
# isolates (text spoofing), line/paragraph separators, and lone surrogates (which
# no UTF-8 encoder accepts: orjson would raise).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_WHITESPACE_CONTROL = re.compile("[\t\n\r]")

_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1  # orjson refuses integers outside this range


def cap(text: str, limit: int) -> str:
    """Return ``text`` cut to at most ``limit`` characters, ending in "…" when cut.

    Parameters
    ----------
    text : str
        Any text.
    limit : int
        Maximum length in characters (at least 1).

    Returns
    -------
    str
        ``text`` itself when it fits, else its first ``limit - 1`` characters and "…".

    Examples
    --------
    >>> cap("abcdef", 4)
    'abc…'
    """
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + ELLIPSIS


def strip_control(text: str, *, keep_newlines: bool = False) -> str:
    """Remove ANSI escape sequences and replace control characters.

    Parameters
    ----------
    text : str
        Any text.
    keep_newlines : bool
        Keep line feeds and tabs (``\\r\\n`` and ``\\r`` become ``\\n``); otherwise
        tabs, carriage returns and line feeds become spaces.

    Returns
    -------
    str
        The text with ESC sequences removed, and every other control character,
        bidirectional override and lone surrogate replaced by U+FFFD.

    Examples
    --------
    >>> strip_control("a\\x1b[31mred\\x00")
    'ared\\ufffd'
    """
    if text.isascii() and text.isprintable():  # the common case: nothing to replace
        return text
    if keep_newlines:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    else:
        text = _WHITESPACE_CONTROL.sub(" ", text)
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    return _CONTROL.sub(REPLACEMENT, text)


def clean_text(value: object, limit: int, *, keep_newlines: bool = False) -> str:
    """Return ``value`` as text that is capped and free of control characters.

    Idempotent: cleaning a cleaned text returns it unchanged.

    Parameters
    ----------
    value : object
        A string, or anything else (turned into ``str``; ``None`` becomes ``""``).
    limit : int
        Maximum length in characters.
    keep_newlines : bool
        See :func:`strip_control`.

    Returns
    -------
    str

    Examples
    --------
    >>> clean_text("x" * 10_000_000, 8)
    'xxxxxxx…'
    """
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    # Cut first (cheap on a 10 MB string), then clean: cleaning never lengthens.
    return strip_control(cap(text, limit), keep_newlines=keep_newlines)


def clean_optional(value: object, limit: int) -> str | None:
    """Like :func:`clean_text` but keep ``None`` (and the empty string) as ``None``."""
    if value is None or value == "":
        return None
    return clean_text(value, limit)


class CutFlag:
    """Records whether :func:`clean_value` dropped or shortened anything."""

    __slots__ = ("cut",)

    def __init__(self) -> None:
        self.cut = False


def clean_value(
    value: Any,
    *,
    str_limit: int,
    max_items: int,
    max_depth: int,
    key_limit: int = 256,
    keep_newlines: bool = True,
    report: CutFlag | None = None,
) -> Any:
    """Return a JSON-safe copy of ``value`` with every string, list and depth capped.

    Dicts keep at most ``max_items`` keys (the last one becomes ``"…": "<n> more"``),
    lists and tuples at most ``max_items`` items (the last one becomes
    ``"… <n> more"``), containers deeper than ``max_depth`` become ``"…"``. Keys
    become capped strings, sets become lists, integers outside 64 bits and any
    other type become strings. Idempotent.

    Parameters
    ----------
    value : Any
        Usually a raw log record (``dict``) or a detection's context.
    str_limit : int
        Maximum length of each string.
    max_items : int
        Maximum number of items in each dict or list (at least 2).
    max_depth : int
        Maximum nesting depth; the top level is depth 1.
    key_limit : int
        Maximum length of each dict key.
    keep_newlines : bool
        See :func:`strip_control`.
    report : CutFlag | None
        Set to ``cut = True`` when anything was dropped or shortened.

    Returns
    -------
    Any

    Examples
    --------
    >>> clean_value({"a": ["x" * 9, 2**70]}, str_limit=4, max_items=10, max_depth=3)
    {'a': ['xxx…', '1180591620717411303424']}
    """
    rep = report if report is not None else CutFlag()

    def text(v: str, limit: int) -> str:
        out = clean_text(v, limit, keep_newlines=keep_newlines)
        if len(v) > limit:
            rep.cut = True
        return out

    def walk(v: Any, depth: int) -> Any:
        if v is None or isinstance(v, bool | float):
            return v
        if isinstance(v, int):
            return v if _INT_MIN <= v <= _INT_MAX else text(str(v), str_limit)
        if isinstance(v, str):
            return text(v, str_limit)
        if isinstance(v, Mapping | list | tuple | set | frozenset):
            if depth >= max_depth:
                rep.cut = True
                return ELLIPSIS
            if isinstance(v, Mapping):
                out: dict[str, Any] = {}
                items = list(v.items())
                keep = items if len(items) <= max_items else items[: max_items - 1]
                for k, item in keep:
                    out[text(k if isinstance(k, str) else str(k), key_limit)] = walk(item, depth + 1)
                if len(keep) < len(items):
                    rep.cut = True
                    out[ELLIPSIS] = f"{len(items) - len(keep)} more"
                return out
            seq = sorted(v, key=repr) if isinstance(v, set | frozenset) else list(v)
            if len(seq) <= max_items:
                return [walk(item, depth + 1) for item in seq]
            rep.cut = True
            kept = [walk(item, depth + 1) for item in seq[: max_items - 1]]
            kept.append(f"{ELLIPSIS} {len(seq) - len(kept)} more")
            return kept
        if isinstance(v, datetime | date):
            return v.isoformat()
        return text(str(v), str_limit)

    return walk(value, 0)


# --- escaping for chat media -------------------------------------------------------

# Neither Slack mrkdwn nor Adaptive Card markdown has a reliable escape for its
# formatting characters (Teams mobile clients show backslash escapes literally), so
# formatting characters become look-alikes that no parser treats as markup. The
# exact text is always in the alert's JSON.
_LOOKALIKE = {
    "*": "\u2217",  # asterisk operator
    "_": "\uff3f",  # fullwidth low line
    "~": "\u223c",  # tilde operator
    "`": "\u02cb",  # modifier letter grave accent
    "[": "\uff3b",  # fullwidth left square bracket
    "]": "\uff3d",  # fullwidth right square bracket
    "<": "\u2039",  # single left-pointing angle quotation mark
    ">": "\u203a",  # single right-pointing angle quotation mark
    "#": "\uff03",  # fullwidth number sign
    "|": "\u2223",  # divides
}
# An underscore between two word characters ("svc_backup") never opens or closes
# emphasis in either medium: keep it, so identifiers stay copyable.
_EDGE_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
_SLACK_FORMAT = re.compile(r"[*~`]")
_TEAMS_FORMAT = re.compile(r"[*~`\[\]<>#|]")


def _lookalike(match: re.Match[str]) -> str:
    return _LOOKALIKE[match.group(0)]


def escape_slack(text: str) -> str:
    """Escape attacker-controlled text for a Slack ``mrkdwn`` text object.

    ``&``, ``<`` and ``>`` become ``&amp;``, ``&lt;`` and ``&gt;`` (so ``<!channel>``,
    ``<@U123>``, ``<http://x|y>`` and ``<!date^...>`` are shown, not parsed); ``*``,
    ``~``, backticks and underscores at word edges become look-alike characters,
    so no bold, italic, strike or code span can be opened.

    Parameters
    ----------
    text : str
        Cleaned text (see :func:`clean_text`).

    Returns
    -------
    str

    Examples
    --------
    >>> escape_slack("<!channel> *hi*") == "&lt;!channel&gt; \u2217hi\u2217"
    True
    """
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _SLACK_FORMAT.sub(_lookalike, text)
    return _EDGE_UNDERSCORE.sub(_LOOKALIKE["_"], text)


def slack_code(text: str) -> str:
    """Return ``text`` as a Slack inline code span: escaped, one line, no backticks.

    Used for identifiers (principal, account, resource ids), which stay exact
    apart from backticks and the three HTML-escaped characters.

    Examples
    --------
    >>> slack_code("arn:aws:iam::1:role/a_b")
    '`arn:aws:iam::1:role/a_b`'
    """
    text = " ".join(text.split()) or "-"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "`" + text.replace("`", _LOOKALIKE["`"]) + "`"


def escape_teams(text: str) -> str:
    """Escape attacker-controlled text for Adaptive Card (Teams) markdown.

    Markdown specials (``*``, edge ``_``, ``~``, backticks, ``#``, ``|``) and the
    link syntax characters ``[``, ``]``, ``<``, ``>`` become look-alikes, so no
    emphasis, list-free heading, or ``[text](url)`` link that hides its target
    can be formed. Line breaks become spaces.

    Parameters
    ----------
    text : str
        Cleaned text (see :func:`clean_text`).

    Returns
    -------
    str

    Examples
    --------
    >>> escape_teams("[click](http://evil)") == "\uff3bclick\uff3d(http://evil)"
    True
    """
    text = " ".join(text.split("\n"))
    text = _TEAMS_FORMAT.sub(_lookalike, text)
    return _EDGE_UNDERSCORE.sub(_LOOKALIKE["_"], text)


def fit_escaped(text: str, limit: int, escape: Callable[[str], str]) -> str:
    """Escape ``text`` and cap the *escaped* result at ``limit`` characters.

    Cutting after escaping could split an entity (``&am``); this cuts the raw
    text instead, until its escaped form plus "…" fits.

    Parameters
    ----------
    text : str
        Raw (cleaned) text.
    limit : int
        Maximum length of the escaped result.
    escape : Callable[[str], str]
        The medium's escape function.

    Returns
    -------
    str

    Examples
    --------
    >>> fit_escaped("a&b&c", 9, escape_slack)
    'a&amp;b…'
    """
    out = escape(text)
    if len(out) <= limit:
        return out
    n = min(len(text), limit)
    while n > 0:
        out = escape(text[:n])
        over = len(out) + len(ELLIPSIS) - limit
        if over <= 0:
            return out + ELLIPSIS
        n -= max(over // 5, 1)  # an escaped character is at most 5 characters long
    return ELLIPSIS[:limit]
