"""``snapshot.shared_external``: a snapshot or image shared outside the organisation, made public, or exported.

Sharing decides where the data can go: a snapshot shared with an unknown account
can be copied there in seconds, a public one by anyone. Exports (Azure SAS
download URLs, RDS export to S3, EC2 image exports, EBS direct block listing)
move the bytes themselves, and ``SharedSnapshotCopyInitiated`` /
``SharedSnapshotVolumeCreated`` in the owner's trail prove another account took a copy.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pydantic import Field

from adscore.actions import (
    COPIED_BY_ANOTHER_ACCOUNT,
    EXPORT_OPERATIONS,
    GUARDRAIL_OFF_OPERATIONS,
    SNAPSHOT_EXPORT,
    SNAPSHOT_SHARE,
)
from adscore.detection import AdsMeta, Detection, DetectionParams, Finding
from adscore.detections._shared import principal_label, short_id
from adscore.patterns import glob_matcher

if TYPE_CHECKING:
    from collections.abc import Iterable

    from adscore.detection import Context, Severity
    from adscore.events import Event

DETECTION_ID = "snapshot.shared_external"

PUBLIC_TARGETS = frozenset({"all", "allusers", "allauthenticatedusers", "public", "community"})
_AWS_ACCOUNT = re.compile(r"^\d{12}$")
_GCP_SA_PROJECT = re.compile(r"^[^@]+@([a-z][a-z0-9-]{4,28}[a-z0-9])\.iam\.gserviceaccount\.com$")

_COPY_PHRASES = {
    "ec2:sharedsnapshotcopyinitiated": "started a copy of",
    "ec2:sharedsnapshotvolumecreated": "created a volume from",
}


class Params(DetectionParams):
    """Parameters of ``snapshot.shared_external``.

    Attributes
    ----------
    trusted_accounts : tuple[str, ...]
        Globs of share targets that are not external besides ``settings.org_accounts``: account ids,
        organization or OU ARNs, Azure subscription or tenant ids, GCP project ids.
    org_domains : tuple[str, ...]
        The organisation's e-mail domains (GCP ``user:``, ``group:``, ``domain:`` members). Empty: a
        member is external when its domain differs from the granting principal's own domain.
    include_failed : bool
        Also alert on failed or denied share and export attempts.
    """

    trusted_accounts: tuple[str, ...] = Field(
        default=(),
        description="globs of share targets that are not external besides org_accounts (accounts, org/OU ARNs, "
        "subscriptions, tenants, projects)",
    )
    org_domains: tuple[str, ...] = Field(
        default=(),
        description="the organisation's e-mail domains for GCP members (empty: the granter's own domain)",
    )
    include_failed: bool = Field(
        default=False, description="also alert on failed or denied shares and exports"
    )




def _subject(event: Event) -> str:
    for role in ("target", "source", "created"):
        found = event.resources_by_role(role)
        if found:
            return found[0].id[:200]
    return event.resources[0].id[:200] if event.resources else "a snapshot"


def _domain(email: str) -> str:
    return email.rpartition("@")[2].lower()


def _known(value: str, known: frozenset[str], trusted: tuple[str, ...]) -> bool:
    v = value.lower()
    return v in known or (bool(trusted) and glob_matcher(tuple(g.lower() for g in trusted)).match(v))


def _classify(target: str, event: Event, ctx: Context, known: frozenset[str]) -> str | None:
    """Return ``public``, ``external`` or None (internal, or cannot tell) for one share target."""
    params: Params = ctx.params
    t = target.strip()
    low = t.lower()
    if low in PUBLIC_TARGETS:
        return "public"
    if low == "sas":
        return None  # handled as an export
    if low.startswith("deleted:") or _known(t, known, params.trusted_accounts):
        return None
    kind, sep, rest = t.partition(":")
    if sep and kind in ("user", "group", "domain", "serviceAccount"):
        if _known(rest, known, params.trusted_accounts):
            return None
        m = _GCP_SA_PROJECT.match(rest.lower()) if kind == "serviceAccount" else None
        if m is not None:
            return None if m.group(1) in known else "external"
        domain = rest.lower() if kind == "domain" else _domain(rest)
        if kind == "serviceAccount" and domain.endswith("gserviceaccount.com"):
            return None  # a Google-managed agent: its project cannot be told from the address
        if params.org_domains:
            org = tuple(d.lower().lstrip("@") for d in params.org_domains)
            inside = any(domain == d or domain.endswith("." + d) for d in org)
            return None if inside else "external"
        own = event.principal.id if "@" in event.principal.id else event.principal.name
        if "@" in own:
            return None if _domain(own) == domain else "external"
        return None
    if t.startswith(("principal://", "principalSet://")):
        return "external"
    if low.startswith("arn:aws:organizations::"):
        # organization / OU ARNs carry the management account id: ours when it is a known account
        owner = low.split(":", 5)[4] if low.count(":") >= 5 else ""
        return None if owner in known else "external"
    # an account id, Azure subscription or tenant id, or anything else not known to be ours
    return "external"


def evaluate(event: Event, ctx: Context) -> Iterable[Finding]:
    """Alert on public or external shares, and on exports of snapshot data.

    Parameters
    ----------
    event : Event
        A ``snapshot.share`` or ``snapshot.export`` event.
    ctx : Context
        Params (trusted accounts, org domains), settings (``org_accounts``) and event time.

    Returns
    -------
    Iterable[Finding]
        At most one finding per event.
    """
    params: Params = ctx.params
    if event.outcome in ("failure", "denied") and not params.include_failed:
        return
    p = event.principal
    account = event.account or "unknown"
    known = frozenset(a.lower() for a in (*ctx.settings.org_accounts, event.account) if a)
    op = event.operation.lower()
    subject = _subject(event)
    short = short_id(subject)
    hour = event.time.replace(minute=0, second=0, microsecond=0)
    entity = f"{p.id}|{subject}"
    base_ctx = {"operation": event.operation, "org_accounts": list(ctx.settings.org_accounts)[:20]}

    if op in COPIED_BY_ANOTHER_ACCOUNT:
        copier = p.account or (p.id if _AWS_ACCOUNT.match(p.id) else None) or "unknown"
        if _known(copier, known, params.trusted_accounts):
            return
        what, severity = EXPORT_OPERATIONS[op]
        yield Finding(
            entity=f"{copier}|{subject}",
            window_start=hour,
            title=f"Snapshot {short} {what} {copier} in {account}",
            summary=(
                f"{event.operation} in {account}'s trail: account {copier}, outside the organisation's known "
                f"accounts, {_COPY_PHRASES.get(op, 'copied')} snapshot {subject}. The snapshot was shared with "
                "it; its data has now left the organisation."
            ),
            events=(event,),
            severity=severity,
            context={**base_ctx, "copier_account": copier, "kind": "copied_out"},
        )
        return

    if event.action == SNAPSHOT_EXPORT or op in EXPORT_OPERATIONS:
        what, severity = EXPORT_OPERATIONS.get(op, ("exported", "high"))
        yield Finding(
            entity=entity,
            window_start=hour,
            title=f"Snapshot {short} {what} by {principal_label(p)} in {account}",
            summary=(
                f"{principal_label(p)} ran {event.operation} on {subject} in {account}: the snapshot's data was {what}. "
                "An export moves the bytes out of the snapshot service, beyond what sharing controls see; "
                "whoever holds the URL, bucket or copy holds the disk."
            ),
            events=(event,),
            severity=severity,
            context={**base_ctx, "kind": "export", "targets": list(event.targets)[:20]},
        )
        return

    if op in GUARDRAIL_OFF_OPERATIONS:
        yield Finding(
            entity=f"{p.id}|{account}|block-public-access",
            window_start=hour,
            title=f"Block public access for snapshots or images disabled by {principal_label(p)} in {account}",
            summary=(
                f"{principal_label(p)} ran {event.operation} in {account} ({event.region or 'unknown region'}): "
                "snapshots or AMIs there can now be made public, the usual step before a public share."
            ),
            events=(event,),
            severity="high",
            context={**base_ctx, "kind": "guardrail_disabled"},
        )
        return

    if p.account:
        known = known | {p.account.lower()}
    public: list[str] = []
    external: list[str] = []
    for target in event.targets[:100]:
        verdict = _classify(target, event, ctx, known)
        if verdict == "public":
            public.append(target[:200])
        elif verdict == "external":
            external.append(target[:200])
    if not public and not external:
        return
    if public:
        title = f"{short} made public by {principal_label(p)} in {account}"
        level: Severity = "critical"
    else:
        shown = ", ".join(external[:3]) + (f" (+{len(external) - 3})" if len(external) > 3 else "")
        title = f"{short} shared with external {shown} by {principal_label(p)} in {account}"
        level = "high"
    yield Finding(
        entity=entity,
        window_start=hour,
        title=title,
        summary=(
            f"{principal_label(p)} changed who may use {subject} ({event.operation}) in {account}: "
            + (f"public ({', '.join(public[:3])}); " if public else "")
            + (f"external {', '.join(external[:5])}; " if external else "")
            + "none of them is among the organisation's known accounts or domains. A shared snapshot can be "
            "copied or restored by its recipient in minutes, outside all of our logs."
        ),
        events=(event,),
        severity=level,
        context={
            **base_ctx,
            "kind": "public" if public else "external",
            "public": public[:20],
            "external": external[:20],
        },
    )


_RESPONSE = (
    "Revoke the share at once: AWS `aws ec2 modify-snapshot-attribute --snapshot-id <snap> "
    '--create-volume-permission "Remove=[{UserId=<account>}]"` (public: `"Remove=[{Group=all}]"`), '
    'AMIs `aws ec2 modify-image-attribute --image-id <ami> --launch-permission "Remove=[{UserId=<account>}]"`, '
    "RDS `aws rds modify-db-snapshot-attribute --attribute-name restore --values-to-remove <account|all>`; "
    "Azure `az snapshot revoke-access -n <snap> -g <rg>` (invalidates the SAS); GCP "
    "`gcloud compute snapshots remove-iam-policy-binding <snap> --member=<member> --role=<role>`.",
    "Re-enable guardrails: `aws ec2 enable-snapshot-block-public-access --state block-all-sharing`, "
    "`aws ec2 enable-image-block-public-access --image-block-public-access-state block-new-sharing`, GCP org policy "
    "constraints/compute.storageResourceUseRestrictions.",
    "Find out whether data already left: search the owner's trail for SharedSnapshotCopyInitiated and "
    "SharedSnapshotVolumeCreated with the snapshot id, RDS export tasks (`aws rds describe-export-tasks`), "
    "the S3 bucket of ec2 export tasks, Azure storage logs of the SAS download, GCS bucket of Cloud SQL exports.",
    "If a copy was taken, treat the data as exposed: rotate every secret on the disk or database "
    "(credentials, keys, certificates), and notify according to the data's classification.",
    "Isolate the principal and the source instance (disable keys, revoke sessions), preserve logs and the "
    "snapshot for forensic analysis, review access controls (who may share snapshots; SCP/Azure Policy denying external "
    "sharing), and update the IR plan.",
)

DETECTION = Detection(
    id=DETECTION_ID,
    meta=AdsMeta(
        title="Snapshot or image shared externally, made public or exported",
        goal=(
            "Detect snapshots and images shared with accounts outside the organisation, made public, or "
            "whose data is exported or copied out, the step that turns a snapshot into exfiltration."
        ),
        technique="T1578.001",
        technique_name="Create Snapshot",
        tactic="Defense Evasion",
        severity="high",
        platforms=("IaaS", "AWS", "Azure", "GCP"),
        strategy=(
            "Snapshot modification events from the ADS's 'snapshot activity logs': every share's targets "
            "(EC2 createVolumePermission/launchPermission, RDS restore attribute, Redshift snapshot access, "
            "GCP IAM bindings, Azure gallery sharing) are compared with settings.org_accounts, the "
            "trusted_accounts param and the org_domains param; public grants are critical. Exports (Azure SAS "
            "beginGetAccess, RDS StartExportTask, EC2 export and store-image tasks, Lightsail export, EBS "
            "direct block listing, Cloud SQL export) always alert; SharedSnapshotCopyInitiated/VolumeCreated "
            "by an account outside the organisation prove data left and are critical."
        ),
        technical_context=(
            "`aws ec2 modify-snapshot-attribute --snapshot-id snap-1 --attribute createVolumePermission "
            "--operation-type add --user-ids 999988887777` lets the attacker's account copy the disk; the "
            "copy then appears in the owner's trail as SharedSnapshotCopyInitiated (userIdentity.accountId = "
            "copier). Azure `az snapshot grant-access --duration-in-seconds 3600` returns a SAS URL anyone "
            "can download; GCP `gcloud compute snapshots add-iam-policy-binding --member=allUsers`."
        ),
        blind_spots=(
            "Copies made inside a trusted account that is itself compromised.",
            "Data read through the EBS direct GetSnapshotBlock data events only, when data events are off.",
            "GCP service agents whose project cannot be told from their address are treated as internal.",
            "Without org_domains, GCP members in the granter's own domain are treated as internal.",
            "Exfiltration over the network from a restored volume (network traffic analysis is not in scope).",
        ),
        false_positives=(
            "Disaster recovery copies to another organisation account: list it in org_accounts or "
            "trusted_accounts.",
            "Sharing AMIs or snapshots with a vendor or partner: add the account to trusted_accounts.",
            "Azure Backup and disk copy tools generating SAS URLs: silenced by the default Azure suppressions; "
            "allowlist other backup products' identities.",
            "Automated testing pipelines sharing images between test accounts: allowlist the CI role.",
        ),
        priority="High (above the ADS's medium): a share or export is the last step before data leaves.",
        validation=(
            "AWS: `aws ec2 modify-snapshot-attribute ... --user-ids 999988887777`, then the attacker account "
            "copies it (examples/aws/snapshot_shared_external.jsonl).",
            "Azure: `az snapshot grant-access -n snap -g rg --duration-in-seconds 3600` "
            "(examples/azure/snapshot_shared_external.jsonl).",
            "GCP: `gcloud compute snapshots add-iam-policy-binding s1 --member=allUsers "
            "--role=roles/compute.storageAdmin` (examples/gcp/snapshot_shared_external.jsonl).",
        ),
        response=_RESPONSE,
        data_sources=(
            "AWS CloudTrail management events (including AwsServiceEvent records)",
            "Azure Activity Log / Event Grid",
            "GCP Admin Activity audit logs",
        ),
        references=(
            "https://attack.mitre.org/techniques/T1578/001/",
            "https://docs.aws.amazon.com/ebs/latest/userguide/ebs-modifying-snapshot-permissions.html",
            "https://docs.aws.amazon.com/ebs/latest/userguide/logging-ebs-apis-using-cloudtrail.html",
            "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.html",
            "https://learn.microsoft.com/en-us/azure/virtual-machines/windows/download-vhd",
            "https://cloud.google.com/compute/docs/access/iam",
        ),
    ),
    actions=frozenset({SNAPSHOT_SHARE, SNAPSHOT_EXPORT}),
    evaluate=evaluate,
    params=Params,
    clouds=("aws", "azure", "gcp"),
)
