"""The Alert model: what a detection reports, capped and ready for any sink.

An :class:`Alert` holds raw text (never escaped: that happens only in
:mod:`adscore.render`), but every string in it is capped and free of control
characters, because most of it comes from logs and logs are attacker-controlled.
The model's validators do the capping, so an Alert cannot exist uncapped, however
it was built (:func:`make_alert`, the constructor, or ``model_validate_json``).

Its ``id`` is deterministic (:func:`alert_id`): the same detection, entity and
window always give the same id, which is what makes dedup and redelivery safe.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from adscore.events import Principal, Resource, utc
from adscore.redact import redact_text, redact_value
from adscore.render.escape import CutFlag, clean_optional, clean_text, clean_value

Severity = Literal["info", "low", "medium", "high", "critical"]

SEVERITY_ORDER: dict[str, int] = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
"""Rank of each severity, lowest first."""

# Caps, in characters. Bytes are up to 4x this in UTF-8.
NAME_LIMIT = 256  # names, types, titles, regions, accounts
ID_LIMIT = 512  # ids, entity, resource ids (Azure resource ids and ARNs run long)
SUMMARY_LIMIT = 1024
CONTEXT_STR_LIMIT = 1024
EVIDENCE_STR_LIMIT = 2048
MAX_RESOURCES = 50
MAX_RESPONSE_STEPS = 20
MAX_EVENT_IDS = 200
MAX_EVIDENCE_RECORDS = 5
CONTEXT_MAX_ITEMS, CONTEXT_MAX_DEPTH = 50, 4
RECORD_MAX_ITEMS, RECORD_MAX_DEPTH = 100, 8

_PRINCIPAL_KEYS = ("id", "type", "name", "account")
#: Characters past a cap that redaction still reads, so a credential cut by the cap is still recognized.
_REDACT_MARGIN = 256


@lru_cache(maxsize=4096)
def alert_id(detection: str, entity: str, window_start: datetime) -> str:
    """Return the deterministic id of an alert.

    Parameters
    ----------
    detection : str
        Detection id, e.g. ``snapshot.shared_external``.
    entity : str
        What the alert is about (usually the principal's stable id), uncapped.
    window_start : datetime
        Start of the alert's window (naive values are taken as UTC).

    Returns
    -------
    str
        The first 32 hex characters of SHA-256 over
        ``detection \\x1f entity \\x1f window_start`` (ISO-8601 UTC ending in ``Z``).

    Examples
    --------
    >>> alert_id("snapshot.shared_external", "arn:aws:iam::1:user/a", datetime(2024, 1, 1))
    '...'  # doctest: +SKIP

    Results are cached (an entity over a threshold asks for the same id on each of its events).
    """
    key = "\x1f".join((detection, entity, _iso(window_start)))
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def max_severity(a: Severity, b: Severity) -> Severity:
    """Return the higher of two severities (``max_severity("low", "high") == "high"``)."""
    return a if SEVERITY_ORDER[a] >= SEVERITY_ORDER[b] else b


def _iso(dt: datetime) -> str:
    return utc(dt).isoformat().replace("+00:00", "Z")


# --- field cleaners (run by pydantic before validation) -------------------------------


def _text(limit: int, *, keep_newlines: bool = False) -> BeforeValidator:
    return BeforeValidator(lambda v: clean_text(v, limit, keep_newlines=keep_newlines))


def _quoting_text(limit: int, *, keep_newlines: bool = False) -> BeforeValidator:
    """Text that quotes logs (title, summary): credentials redacted, then capped and cleaned."""
    return BeforeValidator(
        lambda v: clean_text(
            redact_text(v[: limit + _REDACT_MARGIN]) if isinstance(v, str) else v, limit, keep_newlines=keep_newlines
        )
    )


def _optional(limit: int) -> BeforeValidator:
    return BeforeValidator(lambda v: clean_optional(v, limit))


def _principal(value: Any) -> dict[str, str | None]:
    if isinstance(value, Principal):
        value = value.to_dict()
    if not isinstance(value, Mapping):
        value = {"id": value}
    out: dict[str, str | None] = {
        "id": clean_text(value.get("id") or "unknown", ID_LIMIT),
        "type": clean_text(value.get("type") or "unknown", NAME_LIMIT),
        "name": clean_text(value.get("name"), NAME_LIMIT),
        "account": clean_optional(value.get("account"), NAME_LIMIT),
    }
    return out


def _resources(value: Any) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for item in list(value or ())[:MAX_RESOURCES]:
        r = item.to_dict() if isinstance(item, Resource) else item
        if not isinstance(r, Mapping):
            r = {"id": r}
        out.append(
            {
                "type": clean_text(r.get("type") or "unknown", NAME_LIMIT),
                "id": clean_text(r.get("id"), ID_LIMIT),
                "role": clean_text(r.get("role") or "target", NAME_LIMIT),
            }
        )
    return out


def _context(value: Any) -> dict[str, Any]:
    cleaned = clean_value(
        redact_value(
            dict(value or {}),
            max_len=CONTEXT_STR_LIMIT + _REDACT_MARGIN,
            max_items=CONTEXT_MAX_ITEMS,
            max_depth=CONTEXT_MAX_DEPTH + 1,
        ),
        str_limit=CONTEXT_STR_LIMIT,
        max_items=CONTEXT_MAX_ITEMS,
        max_depth=CONTEXT_MAX_DEPTH,
    )
    assert isinstance(cleaned, dict)
    return cleaned


def _response(value: Any) -> list[str]:
    steps = [value] if isinstance(value, str) else list(value or ())
    return [clean_text(s, SUMMARY_LIMIT, keep_newlines=True) for s in steps[:MAX_RESPONSE_STEPS]]


Name = Annotated[str, _text(NAME_LIMIT)]
Id = Annotated[str, _text(ID_LIMIT)]
OptionalName = Annotated[str | None, _optional(NAME_LIMIT)]
UtcDatetime = Annotated[datetime, AfterValidator(utc)]


class Evidence(BaseModel):
    """What an alert is based on.

    Attributes
    ----------
    event_ids : list[str]
        Ids of the events that made the alert (at most ``MAX_EVENT_IDS``).
    records : list[dict]
        A few raw records, cleaned (strings, lists and depth capped).
    truncated : bool
        True when anything given was dropped or shortened: ids or records beyond
        the caps, long strings, or evidence removed by :meth:`Alert.fit`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    event_ids: list[str] = Field(default_factory=list)
    records: list[dict[str, Any]] = Field(default_factory=list)
    truncated: bool = False

    @model_validator(mode="before")
    @classmethod
    def _cap(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        cut = CutFlag()
        ids = list(data.get("event_ids") or ())
        records = [r for r in (data.get("records") or ()) if isinstance(r, Mapping)]
        cut.cut = len(ids) > MAX_EVENT_IDS or len(records) > MAX_EVIDENCE_RECORDS
        cleaned_ids = []
        for i in ids[:MAX_EVENT_IDS]:
            text = i if isinstance(i, str) else str(i)
            cut.cut |= len(text) > ID_LIMIT
            cleaned_ids.append(clean_text(text, ID_LIMIT))
        cleaned_records = [
            clean_value(
                redact_value(
                    r,
                    max_len=EVIDENCE_STR_LIMIT + _REDACT_MARGIN,
                    max_items=RECORD_MAX_ITEMS,
                    max_depth=RECORD_MAX_DEPTH + 1,
                ),
                str_limit=EVIDENCE_STR_LIMIT,
                max_items=RECORD_MAX_ITEMS,
                max_depth=RECORD_MAX_DEPTH,
                report=cut,
            )
            for r in records[:MAX_EVIDENCE_RECORDS]
        ]
        return {
            "event_ids": cleaned_ids,
            "records": cleaned_records,
            "truncated": bool(data.get("truncated")) or cut.cut,
        }


class Alert(BaseModel):
    """One alert, as every sink receives it.

    Build it with :func:`make_alert`. All text fields are capped and cleaned on
    construction; renderers escape them for their medium.

    Attributes
    ----------
    id : str
        :func:`alert_id` of (detection, entity, window_start).
    detection, technique, technique_name, tactic : str
        Detection id, ATT&CK technique id and name, tactic name.
    severity : Severity
    title, summary : str
    principal : dict
        ``id``, ``type``, ``name``, ``account``.
    cloud, account, region : str | None
    resources : list[dict]
        Each ``{type, id, role}``.
    first_seen, last_seen : datetime
        UTC; JSON as ISO-8601 ending in ``Z``.
    count : int
        Number of events (or operations) the alert counts.
    evidence : Evidence
    response : list[str]
        The ADS response steps.
    context : dict
        Detection-specific values (thresholds, distinct services, ...).
    entity : str
        What the alert is about (the dedup key with detection and window).
    window_start : datetime
    ads_url : str | None
        Link to the ADS report.
    settings_version : str | None
        :meth:`adscore.settings.Settings.version` of the settings in force.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    detection: Name
    technique: Name
    technique_name: Name
    tactic: Name
    severity: Severity
    title: Annotated[str, _quoting_text(NAME_LIMIT)]
    summary: Annotated[str, _quoting_text(SUMMARY_LIMIT, keep_newlines=True)]
    principal: Annotated[dict[str, str | None], BeforeValidator(_principal)]
    cloud: Name
    account: OptionalName = None
    region: OptionalName = None
    resources: Annotated[list[dict[str, str]], BeforeValidator(_resources)] = Field(default_factory=list)
    first_seen: UtcDatetime
    last_seen: UtcDatetime
    count: Annotated[int, Field(ge=0)] = 1
    evidence: Evidence = Field(default_factory=Evidence)
    response: Annotated[list[str], BeforeValidator(_response)] = Field(default_factory=list)
    context: Annotated[dict[str, Any], BeforeValidator(_context)] = Field(default_factory=dict)
    entity: Id
    window_start: UtcDatetime
    ads_url: Annotated[str | None, _optional(1024)] = None
    settings_version: Annotated[str | None, _optional(64)] = None

    def to_json(self) -> bytes:
        """Return the alert as compact JSON bytes (datetimes as ISO-8601 with ``Z``)."""
        return orjson.dumps(self.model_dump(), option=orjson.OPT_UTC_Z)

    def fit(self, max_bytes: int) -> Alert:
        """Return an alert whose JSON is at most ``max_bytes`` long.

        Drops evidence records (last first), then event ids, then, as a last
        resort, the context (replaced by ``{"truncated": true}``), and marks
        ``evidence.truncated``. SNS and Lambda payloads stop at 256 KB, Event Grid
        events at 1 MB.

        Parameters
        ----------
        max_bytes : int
            Byte budget for :meth:`to_json`.

        Returns
        -------
        Alert
            ``self`` when it already fits, else a trimmed copy.

        Raises
        ------
        ValueError
            If even the alert without evidence and context does not fit.
        """
        if len(self.to_json()) <= max_bytes:
            return self
        ev = self.evidence
        records = list(ev.records)
        while records:
            records.pop()
            candidate = self._trimmed(ev.event_ids, records)
            if len(candidate.to_json()) <= max_bytes:
                return candidate
        # Largest number of event ids that fits: binary search, few serializations.
        lo, hi = 0, len(ev.event_ids)
        best: Alert | None = None
        while lo <= hi:
            mid = (lo + hi) // 2
            candidate = self._trimmed(ev.event_ids[:mid], [])
            if len(candidate.to_json()) <= max_bytes:
                best, lo = candidate, mid + 1
            else:
                hi = mid - 1
        if best is not None:
            return best
        bare = self._trimmed([], []).model_copy(update={"context": {"truncated": True}})
        if len(bare.to_json()) <= max_bytes:
            return bare
        raise ValueError(f"alert {self.id} does not fit in {max_bytes} bytes even without evidence")

    def _trimmed(self, event_ids: list[str], records: list[dict[str, Any]]) -> Alert:
        # Values are already clean: copy without re-validating.
        evidence = Evidence.model_construct(event_ids=list(event_ids), records=list(records), truncated=True)
        return self.model_copy(update={"evidence": evidence})


def make_alert(
    *,
    detection: str,
    entity: str,
    window_start: datetime,
    technique: str,
    technique_name: str,
    tactic: str,
    severity: Severity,
    title: str,
    summary: str,
    principal: Principal | Mapping[str, Any],
    cloud: str,
    first_seen: datetime,
    last_seen: datetime,
    account: str | None = None,
    region: str | None = None,
    resources: Iterable[Resource | Mapping[str, Any]] = (),
    count: int = 1,
    event_ids: Iterable[str] = (),
    records: Iterable[Mapping[str, Any]] = (),
    response: Iterable[str] = (),
    context: Mapping[str, Any] | None = None,
    ads_url: str | None = None,
    id: str | None = None,
    settings_version: str | None = None,
) -> Alert:
    """Build an :class:`Alert`, computing its id and capping every log-derived value.

    Parameters
    ----------
    detection, entity, window_start
        Identify the alert; its id is ``alert_id(detection, entity, window_start)``
        over the uncapped entity.
    technique, technique_name, tactic, severity
        From the detection's ADS metadata (severity may be raised by scoring).
    title, summary : str
        Rendered from the detection's templates (they may contain log values).
    principal : Principal | Mapping
        Who acted; only ``id``, ``type``, ``name`` and ``account`` are kept.
    cloud, account, region : str
    first_seen, last_seen : datetime
        Times of the first and last counted event.
    resources : Iterable[Resource | Mapping]
        At most ``MAX_RESOURCES`` are kept.
    count : int
        Events (or operations) counted.
    event_ids : Iterable[str]
        Evidence event ids (at most ``MAX_EVENT_IDS``).
    records : Iterable[Mapping]
        Raw records for evidence (at most ``MAX_EVIDENCE_RECORDS``, each cleaned).
    response : Iterable[str]
        The ADS response steps.
    context : Mapping | None
        Detection-specific values.
    ads_url : str | None
        Link to the ADS report.
    id : str | None
        The alert id when the caller already computed it with :func:`alert_id`
        (it must be computed that way); by default it is computed here.
    settings_version : str | None
        Version of the settings in force (:meth:`adscore.settings.Settings.version`).

    Returns
    -------
    Alert

    Examples
    --------
    >>> a = make_alert(detection="snapshot.shared_external", entity="p", window_start=t0, ...)
    ... # doctest: +SKIP
    """
    return Alert(
        id=id or alert_id(detection, entity, window_start),
        detection=detection,
        technique=technique,
        technique_name=technique_name,
        tactic=tactic,
        severity=severity,
        title=title,
        summary=summary,
        principal=principal,  # the validator accepts a Principal
        cloud=cloud,
        account=account,
        region=region,
        resources=resources,  # the validator accepts Resources
        first_seen=first_seen,
        last_seen=last_seen,
        count=count,
        evidence=Evidence(event_ids=list(event_ids), records=[dict(r) for r in records]),
        response=list(response),
        context=dict(context or {}),
        entity=entity,
        window_start=window_start,
        ads_url=ads_url,
        settings_version=settings_version,
    )
