"""An alert as an AWS Security Finding Format (ASFF) finding, for Security Hub.

:func:`to_asff` is pure (no SDK): :class:`~adscore.sinks.securityhub.SecurityHubSink`
sends what it returns through ``BatchImportFindings``.

- ``Id`` is the alert id, so a redelivery or a later update of the same alert
  (more events in the same window) updates the same finding.
- ``ProductArn`` is the account's own custom integration:
  ``arn:<partition>:securityhub:<region>:<account>:product/<account>/default``;
  ``AwsAccountId`` is that account (Security Hub requires the caller's account).
  The account the activity happened in is ``ProductFields["adscore/account"]``.
- ``Types`` are ``TTPs/<tactic>/<technique> <name>`` (``TTPs/Defense Evasion/...``,
  ``TTPs/Discovery/...``); ``Severity.Label`` is the alert's severity; both are
  repeated in ``FindingProviderFields`` (which providers use to update them).
- ``Remediation.Recommendation.Text`` is the ADS response, ``SourceUrl`` and
  ``Remediation.Recommendation.Url`` the ADS link when there is one.
- ``Resources`` are the alert's resources, then its principal (at least one is required).

Text from logs is plain text in ASFF (the console does not interpret markup),
so it is only capped to ASFF's documented lengths; it was already cleaned of
control characters when the alert was built.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from adscore import __version__
from adscore.render.escape import cap

if TYPE_CHECKING:
    from adscore.alerts import Alert

__all__ = ["MAX_FINDING_BYTES", "MAX_RESOURCES", "SCHEMA_VERSION", "SEVERITY_LABEL", "product_arn", "to_asff"]

SCHEMA_VERSION = "2018-10-08"
MAX_FINDING_BYTES = 240_000
"""Security Hub refuses a finding larger than 240 KB."""
MAX_RESOURCES = 32
MAX_PRODUCT_FIELDS = 50
TITLE_LIMIT, DESCRIPTION_LIMIT, RECOMMENDATION_LIMIT, ID_LIMIT = 256, 1024, 512, 512
TYPE_LIMIT, FIELD_KEY_LIMIT, FIELD_VALUE_LIMIT, URL_LIMIT = 128, 128, 2048, 512

SEVERITY_LABEL = {
    "info": "INFORMATIONAL",
    "low": "LOW",
    "medium": "MEDIUM",
    "high": "HIGH",
    "critical": "CRITICAL",
}

#: ASFF type categories of the ``TTPs`` namespace (ATT&CK tactics).
TTP_CATEGORIES = frozenset(
    {
        "Initial Access",
        "Execution",
        "Persistence",
        "Privilege Escalation",
        "Defense Evasion",
        "Credential Access",
        "Discovery",
        "Lateral Movement",
        "Collection",
        "Command and Control",
    }
)

#: Our AWS resource types -> ASFF resource types (anything else is ``Other``).
_RESOURCE_TYPE = {
    "volume": "AwsEc2Volume",
    "instance": "AwsEc2Instance",
    "db-instance": "AwsRdsDbInstance",
    "db-cluster": "AwsRdsDbCluster",
    "db-snapshot": "AwsRdsDbSnapshot",
    "db-cluster-snapshot": "AwsRdsDbClusterSnapshot",
}
_IAM_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(user|role)/")
_TYPE_UNSAFE = re.compile(r"[/\x00-\x1f]+")


def partition(region: str) -> str:
    """The AWS partition of a region (``aws``, ``aws-cn`` or ``aws-us-gov``)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def product_arn(region: str, account: str) -> str:
    """The product ARN of an account's own (custom) Security Hub integration.

    Examples
    --------
    >>> product_arn("eu-west-1", "111122223333")
    'arn:aws:securityhub:eu-west-1:111122223333:product/111122223333/default'
    """
    return f"arn:{partition(region)}:securityhub:{region}:{account}:product/{account}/default"


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def finding_type(alert: Alert) -> str:
    """``TTPs/<tactic>/<technique> <name>``; a tactic ASFF does not list falls back to ``Unusual Behaviors/User``."""
    classifier = _TYPE_UNSAFE.sub(" ", f"{alert.technique} {alert.technique_name}").strip()
    prefix = f"TTPs/{alert.tactic}/" if alert.tactic in TTP_CATEGORIES else "Unusual Behaviors/User/"
    return prefix + cap(classifier, TYPE_LIMIT - len(prefix))


def _resources(alert: Alert, region: str) -> list[dict[str, Any]]:
    on_aws = alert.cloud == "aws"
    res_region = (alert.region if on_aws and alert.region else region)[:16]
    out: list[dict[str, Any]] = []
    for r in alert.resources[: MAX_RESOURCES - 1]:
        typ = _RESOURCE_TYPE.get(r["type"], "Other") if on_aws else "Other"
        out.append(
            {
                "Type": typ,
                "Id": cap(r["id"] or "unknown", ID_LIMIT),
                "Partition": partition(region),
                "Region": res_region,
                "Details": {
                    "Other": {
                        "adscore/cloud": cap(alert.cloud, FIELD_VALUE_LIMIT),
                        "adscore/type": cap(r["type"], FIELD_VALUE_LIMIT),
                        "adscore/role": cap(r["role"], FIELD_VALUE_LIMIT),
                    }
                },
            }
        )
    pid = alert.principal.get("id") or "unknown"
    match = _IAM_ARN.match(pid) if on_aws else None
    out.append(
        {
            "Type": ("AwsIamUser" if match.group(1) == "user" else "AwsIamRole") if match else "Other",
            "Id": cap(pid, ID_LIMIT),
            "Partition": partition(region),
            "Region": res_region,
            "Details": {
                "Other": {
                    "adscore/cloud": cap(alert.cloud, FIELD_VALUE_LIMIT),
                    "adscore/type": cap(
                        f"principal:{alert.principal.get('type') or 'unknown'}", FIELD_VALUE_LIMIT
                    ),
                    "adscore/role": "actor",
                }
            },
        }
    )
    return out


def _recommendation(alert: Alert) -> dict[str, str]:
    steps = [s.strip() for s in alert.response if s.strip()]
    text = " ".join(f"{i}. {s}" for i, s in enumerate(steps, 1)) if len(steps) > 1 else "".join(steps)
    out = {
        "Text": cap(
            " ".join(text.split()) or "See the ADS report of " + alert.detection, RECOMMENDATION_LIMIT
        )
    }
    if (
        alert.ads_url
        and alert.ads_url.startswith(("https://", "http://"))
        and len(alert.ads_url) <= URL_LIMIT
    ):
        out["Url"] = alert.ads_url
    return out


def _product_fields(alert: Alert) -> dict[str, str]:
    fields = {
        "adscore/detection": alert.detection,
        "adscore/entity": alert.entity,
        "adscore/cloud": alert.cloud,
        "adscore/account": alert.account or "",
        "adscore/region": alert.region or "",
        "adscore/count": str(alert.count),
        "adscore/principal": alert.principal.get("id") or "",
        "adscore/principal_name": alert.principal.get("name") or "",
        "adscore/window_start": _iso(alert.window_start),
        "adscore/evidence_event_ids": " ".join(alert.evidence.event_ids[:20]),
        "adscore/evidence_truncated": str(
            alert.evidence.truncated or len(alert.evidence.event_ids) > 20
        ).lower(),
        "adscore/version": __version__,
        "adscore/settings_version": alert.settings_version or "",
        "ProviderName": "adscore",
        "ProviderVersion": __version__,
    }
    return {
        cap(k, FIELD_KEY_LIMIT): cap(v, FIELD_VALUE_LIMIT)
        for k, v in list(fields.items())[:MAX_PRODUCT_FIELDS]
        if v
    }


def to_asff(alert: Alert, *, account: str, region: str, updated_at: datetime) -> dict[str, Any]:
    """Return the alert as one ASFF finding (a dict ready for ``BatchImportFindings``).

    Parameters
    ----------
    alert : Alert
    account : str
        The 12-digit account that calls ``BatchImportFindings`` (``AwsAccountId``
        and the custom product ARN).
    region : str
        The Security Hub region.
    updated_at : datetime
        ``UpdatedAt`` (the send time: later deliveries of the same alert are
        later updates). ``CreatedAt`` is the alert's ``first_seen``, the same on
        every delivery.

    Returns
    -------
    dict
        The finding; its ``Id`` is ``alert.id``.

    Examples
    --------
    >>> to_asff(alert, account="111122223333", region="eu-west-1", updated_at=now)["Id"] == alert.id
    ... # doctest: +SKIP
    """
    label = SEVERITY_LABEL.get(alert.severity, "INFORMATIONAL")
    types = [finding_type(alert)]
    created = _iso(alert.first_seen)
    updated = _iso(max(updated_at.astimezone(UTC), alert.last_seen))
    finding: dict[str, Any] = {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": alert.id,
        "ProductArn": product_arn(region, account),
        "ProductName": "adscore",
        "CompanyName": "adscore",
        "GeneratorId": cap(f"adscore/{alert.detection}", ID_LIMIT),
        "AwsAccountId": account,
        "Region": region,
        "Types": types,
        "FirstObservedAt": created,
        "LastObservedAt": _iso(alert.last_seen),
        "CreatedAt": created,
        "UpdatedAt": updated,
        "Severity": {"Label": label, "Original": alert.severity},
        "Title": cap(alert.title or alert.detection, TITLE_LIMIT),
        "Description": cap(alert.summary or alert.title or alert.detection, DESCRIPTION_LIMIT),
        "Remediation": {"Recommendation": _recommendation(alert)},
        "ProductFields": _product_fields(alert),
        "Resources": _resources(alert, region),
        "RecordState": "ACTIVE",
        "FindingProviderFields": {
            "Severity": {"Label": label, "Original": alert.severity},
            "Types": list(types),
        },
    }
    if (
        alert.ads_url
        and alert.ads_url.startswith(("https://", "http://"))
        and len(alert.ads_url) <= URL_LIMIT
    ):
        finding["SourceUrl"] = alert.ads_url
    return finding
