"""Detection `acme.snapshot_copy_region`: a user detection, written to the same contract as the built-in ones.

Copies of a snapshot into a region the organisation does not run in are how data is carried off
inside the same account (T1578.001): a copy in an unused region escapes the usual monitoring.
Load it with ``adscore replay --detections examples/detections`` (or the setting
``detection_paths``); test it with ``adscore test examples/detections/cases --detections
examples/detections``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from adscore.actions import SNAPSHOT_COPY
from adscore.detection import AdsMeta, Detection, DetectionParams, Finding

if TYPE_CHECKING:
    from collections.abc import Iterable

    from adscore.detection import Context
    from adscore.events import Event

DETECTION_ID = "acme.snapshot_copy_region"


class Params(DetectionParams):
    """Tunable like any detection: ``detections: {acme.snapshot_copy_region: {regions: [...]}}``."""

    regions: tuple[str, ...] = Field(
        default=("eu-west-1", "eu-central-1"), description="regions the organisation runs in"
    )


def evaluate(event: Event, ctx: Context) -> Iterable[Finding]:
    """A snapshot copied into a region outside ``regions``."""
    p: Params = ctx.params
    if event.outcome != "success" or not event.region or event.region in p.regions:
        return ()
    who = event.principal.name or event.principal.id
    return (
        Finding(
            entity=f"{event.principal.id}|{event.region}",
            window_start=event.time,
            title=f"Snapshot copied into {event.region}, outside the organisation's regions, by {who}",
            summary=(
                f"{who} copied a snapshot into {event.region}; the organisation runs in {', '.join(p.regions)}. "
                "A copy in an unused region escapes regional monitoring and can be shared out from there."
            ),
            events=(event,),
            context={"region": event.region, "allowed_regions": list(p.regions)},
        ),
    )


DETECTION = Detection(
    id=DETECTION_ID,
    meta=AdsMeta(
        title="Snapshot copied into an unused region",
        goal="Detect snapshots copied into regions the organisation does not use (T1578.001).",
        technique="T1578.001",
        technique_name="Create Snapshot",
        tactic="Defense Evasion",
        severity="high",
        platforms=("IaaS",),
        strategy="Every successful snapshot copy whose destination region is not in `regions` alerts.",
        technical_context="CopySnapshot is recorded in the destination region's CloudTrail.",
        blind_spots=("Copies into an allowed region that an attacker also controls.",),
        false_positives=("A disaster-recovery copy into a new region before `regions` is updated.",),
        priority="High: an unused region is rarely watched.",
        validation=("aws ec2 copy-snapshot --source-region eu-west-1 --region ap-southeast-2 ...",),
        response=("Find who copied the snapshot and why; delete the copy if it is not expected.",),
        data_sources=("AWS CloudTrail",),
        references=("https://attack.mitre.org/techniques/T1578/001/",),
    ),
    actions=frozenset({SNAPSHOT_COPY}),
    evaluate=evaluate,
    params=Params,
    clouds=("aws",),
)
