"""An alert as an OCSF 1.1 Detection Finding (class 2004).

Field names follow the OCSF schema: base event (``class_uid``, ``category_uid``,
``activity_id``, ``type_uid = class_uid * 100 + activity_id``, ``severity_id``,
``time`` in epoch milliseconds, ``metadata``), the Finding class
(``finding_info``, ``status_id``, ``start_time``/``end_time``), the Detection
Finding class (``evidences``, ``resources``), and the Cloud profile (``cloud``,
``actor``). Values that have no OCSF attribute go in ``unmapped``.
"""

from __future__ import annotations

from copy import deepcopy
from typing import TYPE_CHECKING, Any

from adscore import __version__

if TYPE_CHECKING:
    from datetime import datetime

    from adscore.alerts import Alert

OCSF_VERSION = "1.1.0"
CLASS_UID = 2004
CATEGORY_UID = 2
ACTIVITY_CREATE = 1
TYPE_UID = CLASS_UID * 100 + ACTIVITY_CREATE

SEVERITY_ID = {"info": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
_SEVERITY_NAME = {1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}

# ATT&CK Enterprise tactics: name -> id.
TACTIC_UID = {
    "Reconnaissance": "TA0043",
    "Resource Development": "TA0042",
    "Initial Access": "TA0001",
    "Execution": "TA0002",
    "Persistence": "TA0003",
    "Privilege Escalation": "TA0004",
    "Defense Evasion": "TA0005",
    "Credential Access": "TA0006",
    "Discovery": "TA0007",
    "Lateral Movement": "TA0008",
    "Collection": "TA0009",
    "Command and Control": "TA0011",
    "Exfiltration": "TA0010",
    "Impact": "TA0040",
}

_PROVIDER = {"aws": "AWS", "azure": "Azure", "gcp": "GCP", "kubernetes": "Kubernetes", "docker": "Docker"}

# OCSF user.type_id: 0 Unknown, 1 User, 2 Admin, 3 System, 99 Other.
_USER_TYPE_ID = {
    "user": 1,
    "anonymous": 99,
    "role": 99,
    "service": 3,
    "service_account": 3,
    "system": 3,
    "host": 3,
    "unknown": 0,
}


# OCSF account.type_id: 5 GCP Account, 6 Azure AD Account, 10 AWS Account, 99 Other.
_ACCOUNT_TYPE = {"aws": (10, "AWS Account"), "gcp": (5, "GCP Account"), "azure": (6, "Azure AD Account")}


def _account(uid: str, cloud: str) -> dict[str, Any]:
    # The uid is all a log tells us; it is also the name OCSF recommends filling.
    type_id, type_name = _ACCOUNT_TYPE.get(cloud, (99, "Other"))
    return {"uid": uid, "name": uid, "type_id": type_id, "type": type_name}


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def to_ocsf(alert: Alert) -> dict[str, Any]:
    """Return the alert as an OCSF 1.1 Detection Finding (a JSON-ready dict).

    Parameters
    ----------
    alert : Alert

    Returns
    -------
    dict
        ``class_uid`` 2004, ``type_uid`` 200401 (Create), ``finding_info.uid`` the
        alert id, ``finding_info.analytic.uid`` the detection id, ATT&CK in
        ``finding_info.attacks``, evidence records in ``evidences[].data``.

    Examples
    --------
    >>> to_ocsf(alert)["type_uid"]  # doctest: +SKIP
    200401
    """
    severity_id = SEVERITY_ID.get(alert.severity, 0)
    p = alert.principal
    user = _drop_none(
        {
            "uid": p.get("id"),
            "name": p.get("name") or p.get("id"),
            "type": p.get("type"),
            "type_id": _USER_TYPE_ID.get(p.get("type") or "unknown", 99),
            "account": _account(str(p["account"]), alert.cloud) if p.get("account") else None,
        }
    )
    actor = {"user": user}
    tactic: dict[str, str] = {"name": alert.tactic}
    if alert.tactic in TACTIC_UID:
        tactic["uid"] = TACTIC_UID[alert.tactic]
    evidences: list[dict[str, Any]] = [
        {"actor": actor, "data": deepcopy(record)} for record in alert.evidence.records
    ]
    if not evidences:
        evidences = [{"actor": actor}]
    finding_info = _drop_none(
        {
            "uid": alert.id,
            "title": alert.title,
            "desc": alert.summary,
            "types": [alert.detection],
            "created_time": _ms(alert.last_seen),
            "first_seen_time": _ms(alert.first_seen),
            "last_seen_time": _ms(alert.last_seen),
            "analytic": {"uid": alert.detection, "name": alert.detection, "type_id": 1, "type": "Rule"},
            "attacks": [
                {
                    "technique": {"uid": alert.technique, "name": alert.technique_name},
                    "tactic": tactic,
                }
            ],
            "related_events": [{"uid": eid} for eid in alert.evidence.event_ids] or None,
            "src_url": alert.ads_url,
        }
    )
    return {
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "type_uid": TYPE_UID,
        "type_name": "Detection Finding: Create",
        "severity_id": severity_id,
        "severity": _SEVERITY_NAME.get(severity_id, "Unknown"),
        "status_id": 1,
        "status": "New",
        "time": _ms(alert.last_seen),
        "start_time": _ms(alert.first_seen),
        "end_time": _ms(alert.last_seen),
        "count": alert.count,
        "message": alert.title,
        "finding_info": finding_info,
        "actor": actor,
        "cloud": _drop_none(
            {
                "provider": _PROVIDER.get(alert.cloud, alert.cloud),
                "account": _account(alert.account, alert.cloud) if alert.account else None,
                "region": alert.region,
            }
        ),
        "resources": [
            _drop_none(
                {
                    "uid": r.get("id"),
                    "type": r.get("type"),
                    "region": alert.region,
                    "data": {"role": r.get("role")},
                }
            )
            for r in alert.resources
        ],
        "evidences": evidences,
        "metadata": {
            "version": OCSF_VERSION,
            "uid": alert.id,
            "profiles": ["cloud"],
            "product": {"name": "adscore", "vendor_name": "adscore", "version": __version__},
        },
        "unmapped": {
            "entity": alert.entity,
            "window_start": alert.window_start.isoformat().replace("+00:00", "Z"),
            "response": list(alert.response),
            "context": deepcopy(alert.context),
            "evidence_truncated": alert.evidence.truncated,
            "settings_version": alert.settings_version,
        },
    }
