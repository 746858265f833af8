"""Render each detection's Alerting & Detection Strategy report as Markdown."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adscore.detection import Detection

ATTACK_URL = "https://attack.mitre.org/techniques/{path}/"


def _bullets(items: tuple[str, ...]) -> str:
    return "\n".join(f"- {i}" for i in items) if items else "- None recorded."


def _numbered(items: tuple[str, ...]) -> str:
    return "\n".join(f"{n}. {i}" for n, i in enumerate(items, 1)) if items else "1. None recorded."


def _cell(value: object) -> str:
    """A Markdown table cell: pipes, backticks and newlines escaped."""
    text = repr(value) if not isinstance(value, str) else value
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`").replace("\n", " ")
    return text


def render_ads(det: Detection, params_doc: str = "") -> str:
    """Return the ADS report of ``det`` in Markdown, with the sections of the ADS framework.

    Sections: Goal, Categorization, Strategy Abstract, Technical Context, Blind
    Spots and Assumptions, False Positives, Priority, Validation, Response,
    Additional Resources.
    """
    m = det.meta
    url = ATTACK_URL.format(path=m.technique.replace(".", "/"))
    actions = ", ".join(f"`{a}`" for a in sorted(det.actions))
    fields = det.params.model_fields
    settings_rows = "\n".join(
        f"| `{name}` | {_cell(f.default)} | {_cell(f.description or '')} |" for name, f in fields.items()
    )
    return f"""# {m.title} (`{det.id}`)

## Goal
{m.goal}

## Categorization
- **MITRE ATT&CK Mapping:** {m.technique} - {m.technique_name}
- **Tactic / Kill Chain Phases:** {m.tactic}
- **Platforms:** {", ".join(m.platforms)}
- **Detection id:** `{det.id}`; subscribed actions: {actions}

For more details, refer to the [MITRE ATT&CK Reference]({url}).

## Strategy Abstract
{m.strategy}

### Data Sources
{_bullets(m.data_sources)}

## Technical Context
{m.technical_context}

### Settings
| setting | default | meaning |
| --- | --- | --- |
{settings_rows}

Override in the settings file under `detections: {{{det.id}: {{...}}}}` or with
`ADSCORE_DETECTIONS__{det.module_name.upper()}__<SETTING>`.{params_doc}

## Blind Spots and Assumptions
{_bullets(m.blind_spots)}

## False Positives
{_bullets(m.false_positives)}

## Priority
**Severity: {m.severity.capitalize()}**

{m.priority}

## Validation (Adversary Emulation)
{_numbered(m.validation)}

The recorded logs of these steps are in `examples/` (files named after `{det.module_name}`), and
`adscore replay examples/` shows this detection firing on them.

## Response
Upon alert firing:
{_numbered(m.response)}

## Additional Resources
{_bullets(m.references)}
"""
