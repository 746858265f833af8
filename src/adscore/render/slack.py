"""An alert as a Slack Block Kit message (for an incoming webhook).

Every log-derived value is escaped for ``mrkdwn`` (:func:`escape_slack`:
``& < >`` as entities, so no mention, broadcast or disguised link can be formed;
formatting characters as look-alikes) or shown as an inline code span
(:func:`slack_code`, for identifiers), and capped to Slack's block limits. The
header is built only from the detection's own metadata.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adscore.render.escape import clean_text, escape_slack, fit_escaped, slack_code

if TYPE_CHECKING:
    from adscore.alerts import Alert

# Slack limits: header text 150, section text 3000, field text 2000, 10 fields,
# 10 context elements, 50 blocks.
HEADER_LIMIT = 150
SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
_VALUE_LIMIT = 300  # per identifier shown in a field
_MAX_RESOURCES_SHOWN = 5

_SEVERITY_MARK = {"info": "⚪", "low": "🔵", "medium": "🟡", "high": "🟠", "critical": "🔴"}


def _code(value: object, limit: int = _VALUE_LIMIT) -> str:
    return slack_code(clean_text(value, limit))


def _field(label: str, value_mrkdwn: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": (f"*{label}*\n{value_mrkdwn}")[:FIELD_LIMIT]}


def to_slack(alert: Alert) -> dict[str, Any]:
    """Return a Slack message (``text`` fallback and ``blocks``) for the alert.

    Parameters
    ----------
    alert : Alert

    Returns
    -------
    dict
        JSON-ready body for a Slack incoming webhook.

    Examples
    --------
    >>> to_slack(alert)["blocks"][0]["type"]  # doctest: +SKIP
    'header'
    """
    sev = alert.severity.upper()
    header = clean_text(
        f"{_SEVERITY_MARK.get(alert.severity, '')} {sev}: {alert.technique} {alert.technique_name}".strip(),
        HEADER_LIMIT,
    )
    title = fit_escaped(alert.title, 500, escape_slack)
    summary = fit_escaped(alert.summary, SECTION_LIMIT - len(title) - 8, escape_slack)
    p = alert.principal
    principal = _code(p.get("id"))
    if p.get("name") and p.get("name") != p.get("id"):
        principal = f"{_code(p.get('name'))} ({principal})"
    fields = [
        _field("Detection", _code(alert.detection)),
        _field("Severity", escape_slack(sev)),
        _field("Principal", principal),
        _field("Principal type", _code(p.get("type"))),
        _field("Cloud / account", f"{_code(alert.cloud)} {_code(alert.account or '-')}"),
        _field("Region", _code(alert.region or "-")),
        _field("Events", str(alert.count)),
        _field(
            "Window",
            f"{alert.first_seen:%Y-%m-%d %H:%M:%S}Z → {alert.last_seen:%Y-%m-%d %H:%M:%S}Z",
        ),
    ]
    if alert.resources:
        shown = alert.resources[:_MAX_RESOURCES_SHOWN]
        lines = [f"{_code(r.get('type'), 64)} {_code(r.get('id'))}" for r in shown]
        if len(alert.resources) > len(shown):
            lines.append(f"… {len(alert.resources) - len(shown)} more")
        fields.append(_field("Resources", "\n".join(lines)))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*\n{summary}"}},
        {"type": "section", "fields": fields[:10]},
    ]
    if alert.response:
        steps = "\n".join(f"• {fit_escaped(s, 400, escape_slack)}" for s in alert.response)
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _fit_block("*Response*\n" + steps)}}
        )
    context = [
        f"alert {_code(alert.id, 64)}",
        f"{len(alert.evidence.event_ids)} event ids" + (" (truncated)" if alert.evidence.truncated else ""),
    ]
    if alert.ads_url and alert.ads_url.startswith(("https://", "http://")):
        # From settings, not from a log; still escaped so it cannot close the link.
        context.append(f"<{escape_slack(alert.ads_url).replace('|', '%7C')}|ADS>")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]})
    return {"text": fit_escaped(f"[{sev}] {alert.title}", 500, escape_slack), "blocks": blocks}


def _fit_block(text: str) -> str:
    """Cap already-escaped section text at Slack's limit on a line boundary."""
    if len(text) <= SECTION_LIMIT:
        return text
    cut = text[: SECTION_LIMIT - 1]
    return cut[: cut.rfind("\n")] + "\n…" if "\n" in cut else cut + "…"
