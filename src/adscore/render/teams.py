"""An alert as a Microsoft Teams message carrying an Adaptive Card 1.4.

Every log-derived value is escaped with :func:`escape_teams` (markdown
specials and the ``[text](url)`` link syntax become look-alikes, line breaks
become spaces) and capped. Teams webhooks refuse messages over about 28 KB,
so the card shows no raw evidence: only counts and ids (the JSON sink carries
the records).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from adscore.render.escape import clean_text, escape_teams, fit_escaped

if TYPE_CHECKING:
    from adscore.alerts import Alert

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
MAX_BYTES = 27_000
"""Teams refuses webhook messages over about 28 KB; the card is shrunk to stay under this."""
_VALUE_LIMIT = 300
_MAX_RESOURCES_SHOWN = 5

_SEVERITY_COLOR = {
    "info": "Default",
    "low": "Accent",
    "medium": "Warning",
    "high": "Attention",
    "critical": "Attention",
}


def _esc(value: object, limit: int = _VALUE_LIMIT, scale: float = 1.0) -> str:
    limit = max(int(limit * scale), 8)
    return fit_escaped(clean_text(value, limit), limit, escape_teams) or "-"


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def to_teams(alert: Alert, *, max_bytes: int = MAX_BYTES) -> dict[str, Any]:
    """Return a Teams webhook message with one Adaptive Card attachment.

    Text limits shrink (to a half, then a quarter...) until the message's JSON is
    at most ``max_bytes`` long: multi-byte characters can make a capped card too big.

    Parameters
    ----------
    alert : Alert
    max_bytes : int
        Size budget of the UTF-8 JSON message.

    Returns
    -------
    dict
        ``{"type": "message", "attachments": [{"contentType":
        "application/vnd.microsoft.card.adaptive", "content": {...}}]}``.

    Examples
    --------
    >>> to_teams(alert)["attachments"][0]["content"]["version"]  # doctest: +SKIP
    '1.4'
    """
    scale = 1.0
    message = _message(alert, scale)
    while len(orjson.dumps(message)) > max_bytes and scale > 0.01:
        scale /= 2
        message = _message(alert, scale)
    return message


def _message(alert: Alert, scale: float) -> dict[str, Any]:
    def esc(value: object, limit: int = _VALUE_LIMIT) -> str:
        return _esc(value, limit, scale)

    p = alert.principal
    principal = esc(p.get("id"))
    if p.get("name") and p.get("name") != p.get("id"):
        principal = f"{esc(p.get('name'))} ({principal})"
    facts = [
        ("Detection", esc(alert.detection)),
        ("Technique", esc(f"{alert.technique} {alert.technique_name} ({alert.tactic})")),
        ("Principal", principal),
        ("Principal type", esc(p.get("type"))),
        ("Cloud / account", f"{esc(alert.cloud)} / {esc(alert.account or '-')}"),
        ("Region", esc(alert.region or "-")),
        ("Events", str(alert.count)),
        ("First seen", f"{alert.first_seen:%Y-%m-%d %H:%M:%S}Z"),
        ("Last seen", f"{alert.last_seen:%Y-%m-%d %H:%M:%S}Z"),
    ]
    shown = alert.resources[:_MAX_RESOURCES_SHOWN]
    for r in shown:
        facts.append(("Resource", f"{esc(r.get('type'), 64)} {esc(r.get('id'))} ({esc(r.get('role'), 32)})"))
    if len(alert.resources) > len(shown):
        facts.append(("Resources", f"… {len(alert.resources) - len(shown)} more"))
    body: list[dict[str, Any]] = [
        _text(
            escape_teams(
                clean_text(f"{alert.severity.upper()} · {alert.technique} {alert.technique_name}", 150)
            ),
            weight="Bolder",
            color=_SEVERITY_COLOR.get(alert.severity, "Default"),
        ),
        _text(esc(alert.title, 500), size="Large", weight="Bolder"),
        _text(esc(alert.summary, 2000)),
        {"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in facts]},
    ]
    if alert.response:
        body.append(_text("Response", weight="Bolder"))
        body.extend(_text(f"{i} · {esc(step, 500)}") for i, step in enumerate(alert.response, 1))
    note = f"alert {alert.id} · {len(alert.evidence.event_ids)} event ids"
    body.append(
        _text(note + (" (truncated)" if alert.evidence.truncated else ""), isSubtle=True, size="Small")
    )
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": CARD_SCHEMA,
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": body,
    }
    if alert.ads_url and alert.ads_url.startswith(("https://", "http://")):
        card["actions"] = [{"type": "Action.OpenUrl", "title": "ADS report", "url": alert.ads_url}]
    return {
        "type": "message",
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}],
    }
