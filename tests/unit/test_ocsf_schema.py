"""The OCSF Detection Finding rendering, validated by a maintained OCSF library.

``py-ocsf-models`` (pydantic models of the published OCSF schema, 1.5.0, kept
by the Prowler project; a ``[dev]`` dependency) checks what the schema requires
of a Detection Finding: required and recommended attributes, types and enum ids
(``class_uid``, ``activity_id``, ``type_uid``, ``severity_id``, ``status_id``,
account and analytic type ids). Its models ignore attributes they do not know,
so each finding is also dumped back and compared: every attribute we emit must
survive, except the ones listed in ``NOT_MODELLED`` (attributes of the OCSF
schema that the library's models do not carry), which are checked with the
library's object models instead. Real alerts come from the detection cases in
``tests/cases``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from py_ocsf_models.events.findings.detection_finding import DetectionFinding
from py_ocsf_models.objects.user import User

from adscore.render.ocsf import to_ocsf
from adscore.testing import case_paths, run_case
from tests.contract.test_alert_sink import alert

if TYPE_CHECKING:
    from adscore.alerts import Alert

CASES = Path(__file__).resolve().parents[1] / "cases"

#: Paths of OCSF attributes the library's models leave out: the event's ``actor``
#: and an evidence's ``actor`` (both in the published schema); checked with ``User``.
NOT_MODELLED = ("actor", "evidences[].actor")


def _lost(ours: Any, theirs: Any, path: str = "") -> list[str]:
    """Paths present in ``ours`` that the library's round trip dropped or changed."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        out: list[str] = []
        for key, value in ours.items():
            sub = f"{path}.{key}" if path else key
            if _generic(sub) in NOT_MODELLED:
                continue
            out += [sub] if key not in theirs else _lost(value, theirs[key], sub)
        return out
    if isinstance(ours, list) and isinstance(theirs, list):
        if len(ours) != len(theirs):
            return [path]
        return [
            p for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) for p in _lost(a, b, f"{path}[{i}]")
        ]
    return [] if ours == theirs else [path]


def _generic(path: str) -> str:
    return re.sub(r"\[\d+\]", "[]", path)


def check(a: Alert) -> dict[str, Any]:
    finding = to_ocsf(a)
    model = DetectionFinding.model_validate(finding)  # raises on a missing or mistyped attribute
    back = json.loads(model.model_dump_json(exclude_none=True))
    assert _lost(finding, back) == []
    for actor in [finding["actor"], *(e["actor"] for e in finding["evidences"])]:
        if "account" in actor["user"]:
            User.model_validate(actor["user"])
    return finding


def test_a_snapshot_alert_is_a_valid_detection_finding() -> None:
    f = check(alert(1, ads_url="https://ads.example.com/snapshot.shared_external"))
    assert (f["class_uid"], f["category_uid"], f["type_uid"]) == (2004, 2, 200401)


@pytest.mark.parametrize("severity", ["info", "low", "medium", "high", "critical"])
def test_every_severity_maps_to_a_schema_severity_id(severity: str) -> None:
    check(alert(1, severity=severity))


@pytest.mark.parametrize(
    "overrides",
    [
        {"cloud": "gcp", "account": "my-project", "region": "europe-west1"},
        {"cloud": "azure", "account": "00000000-0000-0000-0000-000000000001", "region": None},
        {"cloud": "kubernetes", "account": None, "region": None, "resources": []},
        {"cloud": "docker", "account": None, "records": [], "event_ids": [], "response": []},
    ],
    ids=["gcp", "azure", "kubernetes", "docker"],
)
def test_alerts_of_every_cloud_are_valid(overrides: dict[str, Any]) -> None:
    check(alert(1, **overrides))


@pytest.mark.parametrize(
    "path",
    [p for p in case_paths(CASES) if p.name.startswith("fire_")],
    ids=lambda p: f"{p.parent.name}/{p.stem}",
)
def test_every_alert_of_the_detection_cases_is_valid(path: Path) -> None:
    report = run_case(path).report
    assert report.alerts, "a fire case alerts"
    for a in report.alerts:
        check(a)


def test_the_check_catches_a_misspelt_attribute() -> None:
    # GIVEN a finding with an attribute the schema does not have, THEN the round trip loses it
    finding = to_ocsf(alert(1))
    finding["finding_info"]["titel"] = "x"
    back = json.loads(DetectionFinding.model_validate(finding).model_dump_json(exclude_none=True))
    assert _lost(finding, back) == ["finding_info.titel"]
