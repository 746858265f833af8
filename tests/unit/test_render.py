"""Renderings: hostile log values stay inert in Slack, Teams and the terminal; OCSF is well formed."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adscore import __version__
from adscore.alerts import Alert, make_alert
from adscore.events import Principal, Resource
from adscore.render.escape import (
    cap,
    clean_text,
    escape_slack,
    escape_teams,
    fit_escaped,
    slack_code,
    strip_control,
)
from adscore.render.ocsf import to_ocsf
from adscore.render.slack import to_slack
from adscore.render.teams import to_teams
from adscore.render.text import table, table_text, to_jsonl

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

HOSTILE = [
    "<!channel>",
    "<!here|here>",
    "<@U024BE7LH>",
    "<#C024BE7LH>",
    "<!subteam^S123>",
    "<http://evil.example|click here>",
    "<!date^1392734382^{date}|x>",
    "*bold* _italic_ ~strike~ `code`",
    "```block```",
    "[link=http://x]y[/link]",
    "[bold red]alarm[/bold red]",
    "[click](http://evil.example)",
    "![img](http://evil.example/p.png)",
    "\x1b[31mred\x1b[0m",
    "a & b > c < d",
    ":skull: # heading | pipe",
]


def build(value: str = "alice", **overrides: Any) -> Alert:
    """An alert with ``value`` in every log-derived field."""
    fields: dict[str, Any] = {
        "detection": "discovery.api_burst",
        "entity": value,
        "window_start": T0,
        "technique": "T1526",
        "technique_name": "Cloud Service Discovery",
        "tactic": "Discovery",
        "severity": "medium",
        "title": f"Burst of discovery calls by {value}",
        "summary": f"{value} called 40 distinct services",
        "principal": Principal(id=f"id-{value}", type="user", name=value, account=f"acct-{value}"),
        "cloud": "aws",
        "account": f"acct-{value}",
        "region": f"region-{value}",
        "resources": [Resource("iam.role", f"res-{value}", "target")],
        "first_seen": T0,
        "last_seen": T0 + timedelta(minutes=5),
        "count": 40,
        "event_ids": ["e-1", "e-2", "e-3"],
        "records": [{"eventName": "ListBuckets", "userAgent": value}],
        "response": ["Check who owns the identity", "Rotate its keys"],
        "context": {"threshold": 20, "distinct_services": 40, "note": value},
    }
    fields.update(overrides)
    return make_alert(**fields)


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


# --- escape helpers -----------------------------------------------------------------------


def test_cap_and_strip_control() -> None:
    assert cap("abcdef", 4) == "abc…"
    assert cap("abc", 3) == "abc"
    assert strip_control("a\x1b[1;31mb\x1b[0m\x00") == "ab\ufffd"
    assert strip_control("l1\r\nl2\tx", keep_newlines=True) == "l1\nl2\tx"
    assert strip_control("l1\r\nl2\tx") == "l1  l2 x"
    assert clean_text(None, 5) == ""
    assert clean_text(12345678, 5) == "1234…"


def _by_the_patterns(text: str, keep_newlines: bool) -> str:
    """strip_control without its printable-ASCII shortcut: the regular expressions only."""
    from adscore.render import escape

    if keep_newlines:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    else:
        text = escape._WHITESPACE_CONTROL.sub(" ", text)
    return escape._CONTROL.sub(escape.REPLACEMENT, escape._ANSI.sub("", text))


@pytest.mark.parametrize("keep_newlines", [False, True])
@pytest.mark.parametrize(
    "text", ["plain ascii", "x\x7fy", "tab\there", "cr\rlf\n", "esc\x1b[31m", "", " ~!@#$%^&*()_+{}|"]
)
def test_strip_control_ascii_shortcut_changes_nothing(text: str, keep_newlines: bool) -> None:
    """Printable ASCII is returned as is; ASCII with any control character still goes through the patterns."""
    assert strip_control(text, keep_newlines=keep_newlines) == _by_the_patterns(text, keep_newlines)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x7F)), st.booleans())
def test_strip_control_on_any_ascii_matches_the_patterns(text: str, keep_newlines: bool) -> None:
    assert strip_control(text, keep_newlines=keep_newlines) == _by_the_patterns(text, keep_newlines)


def test_escape_slack_neutralises_control_sequences() -> None:
    assert escape_slack("<!channel>") == "&lt;!channel&gt;"
    assert escape_slack("<http://evil|click>") == "&lt;http://evil|click&gt;"
    assert escape_slack("a & b") == "a &amp; b"
    assert escape_slack("*b* ~s~ `c`") == "\u2217b\u2217 \u223cs\u223c \u02cbc\u02cb"
    assert escape_slack("_i_") == "\uff3fi\uff3f"
    assert escape_slack("svc_backup_role") == "svc_backup_role"  # intra-word underscores cannot format


def test_slack_code_keeps_identifiers_exact_and_on_one_line() -> None:
    assert slack_code("arn:aws:iam::1:role/svc_*") == "`arn:aws:iam::1:role/svc_*`"
    assert slack_code("a`b\nc<d>") == "`a\u02cbb c&lt;d&gt;`"
    assert slack_code("") == "`-`"


def test_escape_teams_strips_link_syntax_and_markdown() -> None:
    out = escape_teams("[click](http://evil) **b** _i_ # h\nnext")
    assert "[" not in out and "]" not in out and "*" not in out and "#" not in out
    assert "\n" not in out
    assert "\uff3fi\uff3f" in out
    assert escape_teams("svc_backup") == "svc_backup"


def test_fit_escaped_never_splits_an_entity() -> None:
    for limit in range(1, 40):
        out = fit_escaped("&" * 50, limit, escape_slack)
        assert len(out) <= limit
        assert re.fullmatch(r"(&amp;)*…?", out), out


# --- Slack -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", HOSTILE)
def test_slack_message_has_no_live_markup_from_logs(value: str) -> None:
    message = to_slack(build(value))
    texts = strings(message)
    joined = "\n".join(texts)
    # No raw angle bracket anywhere except our own ADS link (none here): no mention, broadcast or link.
    assert "<" not in joined and ">" not in joined
    for t in texts:
        # Outside inline code spans (identifiers), no formatting character from the log survives.
        prose = re.sub(r"`[^`]*`", "", t)
        prose = re.sub(r"^\*[A-Za-z /]+\*\n", "", prose)  # our own field labels
        prose = prose.replace("*Response*", "")
        if t.startswith("*Burst"):
            prose = prose[1:].replace("*\n", "\n", 1)  # our bold title wrapper
        assert not re.search(r"[*~`]", prose), (value, t)
    assert "\x1b" not in joined


def test_slack_message_structure_and_limits() -> None:
    alert = build("x" * 300, response=["do this " * 100] * 20)
    message = to_slack(alert)
    blocks = message["blocks"]
    assert blocks[0]["type"] == "header"
    assert blocks[0]["text"]["type"] == "plain_text"
    assert blocks[0]["text"]["text"].endswith("MEDIUM: T1526 Cloud Service Discovery")
    assert len(blocks[0]["text"]["text"]) <= 150
    fields = next(b for b in blocks if "fields" in b)["fields"]
    assert 1 <= len(fields) <= 10
    assert all(len(f["text"]) <= 2000 for f in fields)
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section" and "text" in b)
    assert blocks[-1]["type"] == "context"
    assert alert.id in blocks[-1]["elements"][0]["text"]
    assert message["text"].startswith("[MEDIUM] Burst of discovery calls by")
    assert any(f["text"] == "*Events*\n40" for f in fields)


def test_slack_ads_link_is_the_only_link() -> None:
    message = to_slack(build("<http://evil|x>", ads_url="https://docs.example/ads#discovery.api_burst"))
    links = re.findall(r"<([^>]*)>", json.dumps(message))
    assert links == ["https://docs.example/ads#discovery.api_burst|ADS"]


# --- Teams -------------------------------------------------------------------------------


def card(alert: Alert) -> dict[str, Any]:
    message = to_teams(alert)
    assert message["type"] == "message"
    (attachment,) = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    content: dict[str, Any] = attachment["content"]
    return content


@pytest.mark.parametrize("value", HOSTILE)
def test_teams_card_has_no_markdown_or_links_from_logs(value: str) -> None:
    content = card(build(value))
    assert content["type"] == "AdaptiveCard" and content["version"] == "1.4"
    for t in strings(content["body"]):
        assert not re.search(r"[\[\]<>*`#|~]", t), (value, t)
        assert "](" not in t
        assert "\x1b" not in t and "\n" not in t
        assert not re.search(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])", t), (value, t)
    assert "actions" not in content


def test_teams_card_content() -> None:
    alert = build("alice", ads_url="https://docs.example/ads")
    content = card(alert)
    facts = {
        f["title"]: f["value"] for f in next(b for b in content["body"] if b["type"] == "FactSet")["facts"]
    }
    assert facts["Detection"] == "discovery.api\uff3fburst" or facts["Detection"] == "discovery.api_burst"
    assert facts["Principal"] == "alice (id-alice)"
    assert facts["Events"] == "40"
    assert facts["Resource"] == "iam.role res-alice (target)"
    assert content["actions"] == [
        {"type": "Action.OpenUrl", "title": "ADS report", "url": "https://docs.example/ads"}
    ]
    texts = strings(content["body"])
    assert "Burst of discovery calls by alice" in texts
    assert any(alert.id in t for t in texts)


@pytest.mark.parametrize("char", ["e", "\u00e9", "\U0001f600"])
def test_teams_message_stays_under_the_webhook_size_limit(char: str) -> None:
    # GIVEN every value at its cap, in 1-, 2- and 4-byte UTF-8 characters
    alert = build(
        char * 100_000, resources=[Resource(char * 300, char * 600)] * 50, response=[char * 2000] * 20
    )
    message = to_teams(alert)
    assert len(orjson.dumps(message)) <= 27_000
    assert card(alert)["body"][1]["text"].startswith("Burst of discovery calls by " + char)


# --- terminal ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["[link=http://x]y[/link]", "[bold red]alarm[/bold red]", ":skull:", "\x1b[31mred\x1b[0m"]
)
def test_rich_table_shows_markup_literally_and_strips_ansi(value: str) -> None:
    alert = build(value)
    out = table_text([alert], width=400)
    assert "\x1b" not in out
    expected = strip_control(value)
    assert expected in out  # rendered literally, brackets and all
    coloured = table_text([alert], width=400, color=True)
    assert "\x1b]8;" not in coloured  # no hyperlink escape was produced
    assert "[31m" not in strip_control(value) or "\x1b[31mred" not in coloured


def test_table_has_the_columns_and_a_row_per_alert() -> None:
    alerts = [build("alice"), build("bob", severity="critical")]
    t = table(alerts)
    assert [c.header for c in t.columns] == [
        "severity",
        "detection",
        "principal",
        "account",
        "count",
        "first seen",
        "title",
        "id",
    ]
    assert t.row_count == 2
    out = table_text(alerts, width=300)
    assert "critical" in out and "bob" in out and "acct-alice" in out and "2024-05-01 12:00:00Z" in out


def test_to_jsonl_is_one_line_of_the_alert_json() -> None:
    alert = build("multi\nline")
    line = to_jsonl(alert)
    assert "\n" not in line
    assert json.loads(line) == json.loads(alert.to_json())


# --- OCSF --------------------------------------------------------------------------------


def test_ocsf_detection_finding_required_fields() -> None:
    alert = build("alice", severity="high", ads_url="https://docs.example/ads")
    f = to_ocsf(alert)
    assert f["class_uid"] == 2004
    assert f["category_uid"] == 2
    assert f["activity_id"] == 1
    assert f["type_uid"] == 200401
    assert f["severity_id"] == 4 and f["severity"] == "High"
    assert f["status_id"] == 1
    assert f["time"] == int((T0 + timedelta(minutes=5)).timestamp() * 1000)
    assert f["metadata"]["version"] == "1.1.0"
    assert f["metadata"]["product"] == {"name": "adscore", "vendor_name": "adscore", "version": __version__}
    info = f["finding_info"]
    assert info["uid"] == alert.id
    assert info["title"] == alert.title and info["desc"] == alert.summary
    assert info["first_seen_time"] == int(T0.timestamp() * 1000)
    assert info["last_seen_time"] == f["time"] == info["created_time"]
    assert info["analytic"] == {
        "uid": "discovery.api_burst",
        "name": "discovery.api_burst",
        "type_id": 1,
        "type": "Rule",
    }
    assert info["attacks"] == [
        {
            "technique": {"uid": "T1526", "name": "Cloud Service Discovery"},
            "tactic": {"name": "Discovery", "uid": "TA0007"},
        }
    ]
    assert [e["uid"] for e in info["related_events"]] == ["e-1", "e-2", "e-3"]
    assert f["actor"]["user"] == {
        "uid": "id-alice",
        "name": "alice",
        "type": "user",
        "type_id": 1,
        "account": {"uid": "acct-alice", "name": "acct-alice", "type_id": 10, "type": "AWS Account"},
    }
    assert f["cloud"] == {
        "provider": "AWS",
        "account": {"uid": "acct-alice", "name": "acct-alice", "type_id": 10, "type": "AWS Account"},
        "region": "region-alice",
    }
    assert f["resources"] == [
        {"uid": "res-alice", "type": "iam.role", "region": "region-alice", "data": {"role": "target"}}
    ]
    assert f["evidences"][0]["data"] == {"eventName": "ListBuckets", "userAgent": "alice"}
    assert f["unmapped"]["context"] == {"threshold": 20, "distinct_services": 40, "note": "alice"}
    assert f["count"] == 40
    json.dumps(f)  # JSON-ready


@pytest.mark.parametrize(
    ("severity", "severity_id"), [("info", 1), ("low", 2), ("medium", 3), ("critical", 5)]
)
def test_ocsf_severity_ids(severity: str, severity_id: int) -> None:
    assert to_ocsf(build(severity=severity))["severity_id"] == severity_id


def test_ocsf_defense_evasion_tactic_and_evidence_without_records() -> None:
    alert = build(
        tactic="Defense Evasion", technique="T1578.001", technique_name="Create Snapshot", records=[]
    )
    f = to_ocsf(alert)
    assert f["finding_info"]["attacks"][0]["tactic"] == {"name": "Defense Evasion", "uid": "TA0005"}
    assert f["evidences"] == [{"actor": f["actor"]}]


def test_ocsf_output_does_not_share_state_with_the_alert() -> None:
    alert = build()
    f = to_ocsf(alert)
    f["unmapped"]["context"]["note"] = "changed"
    f["evidences"][0]["data"]["eventName"] = "changed"
    assert alert.context["note"] == "alice"
    assert alert.evidence.records[0]["eventName"] == "ListBuckets"
