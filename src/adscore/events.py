"""The normalized model every detection reads.

Parsers in :mod:`adscore.sources` turn one raw log record into zero or more
:class:`Event` values, or a :class:`RecordError` when the record cannot be
read. Detections read only these types, never the raw record (apart from
copying ``raw`` into an alert's evidence).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from adscore.redact import redact_text
from adscore.render.escape import clean_text

Cloud = Literal["aws", "azure", "gcp", "kubernetes", "docker"]
Outcome = Literal["success", "failure", "denied", "pending"]

EMPTY: dict[str, Any] = {}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who acted.

    Attributes
    ----------
    id : str
        Stable identity: an assumed-role session and its role share the role
        ARN; a GCP or Azure principal is its email / object id; a Kubernetes
        user its username.
    type : str
        ``user``, ``role``, ``service``, ``service_account``, ``system``,
        ``anonymous``, ``host`` or ``unknown``.
    name : str
        Display name (user name, role name, UPN, ...).
    account : str | None
        Account, tenant or project the principal belongs to.
    session : str | None
        Session name of an assumed role (kept apart from ``id``).
    invoked_by : str | None
        The service that acted on the principal's behalf
        (``backup.amazonaws.com``, ``dlm.amazonaws.com``, ...).
    """

    id: str
    type: str = "unknown"
    name: str = ""
    account: str | None = None
    session: str | None = None
    invoked_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "name": self.name,
            "account": self.account,
            "session": self.session,
            "invoked_by": self.invoked_by,
        }


UNKNOWN_PRINCIPAL = Principal(id="unknown", type="unknown", name="unknown")


@dataclass(frozen=True, slots=True)
class Resource:
    """A resource an event touches.

    ``role`` says how: ``target`` (acted on), ``source`` (what a snapshot,
    copy or restore comes from) or ``created`` (the new snapshot, image,
    volume or instance).
    """

    type: str
    id: str
    role: str = "target"

    def to_dict(self) -> dict[str, str]:
        return {"type": self.type, "id": self.id, "role": self.role}


@dataclass(frozen=True, slots=True)
class Event:
    """One normalized audit event.

    Attributes
    ----------
    event_id : str
        Unique id of the operation in its log (CloudTrail ``eventID``, GCP
        ``insertId``, Azure correlation id + operation, K8s ``auditID``).
        Redelivered records keep the same id, so set-based counting is
        idempotent.
    cloud, source : str
        Cloud (``aws|azure|gcp|kubernetes|docker``) and log family
        (``cloudtrail``, ``azure_activity``, ``azure_eventgrid``,
        ``azure_graph``, ``azure_signin``, ``gcp_audit``, ``k8s_audit``,
        ``docker``).
    time : datetime
        Timezone-aware UTC time of the event.
    operation : str
        The provider's own name (``ec2:CreateSnapshot``,
        ``Microsoft.Compute/snapshots/write``,
        ``v1.compute.snapshots.insert``, ``create pods/exec``,
        ``container commit``).
    service : str
        Service the operation belongs to, used for distinct-service counts
        (``ec2``, ``microsoft.compute``, ``graph/users``, ``compute``,
        ``k8s/secrets``, ``docker``).
    action : str | None
        Semantic action from :mod:`adscore.actions`, or None.
    read_only : bool
        Whether the operation only reads.
    outcome : str
        ``success``, ``failure``, ``denied`` or ``pending`` (an Azure
        ``Started`` record).
    error_code : str | None
        Provider error code or HTTP status for failures and denials.
    principal : Principal
    source_ip, user_agent : str | None
        Both attacker-controlled.
    account, region : str | None
        Account / subscription / project and region the event happened in.
    resources : tuple[Resource, ...]
    targets : tuple[str, ...]
        Accounts, members or groups a snapshot or image is shared with;
        ``all`` / ``allUsers`` / ``allAuthenticatedUsers`` / ``public`` for
        public grants.
    namespace : str | None
        Kubernetes namespace.
    command : tuple[str, ...]
        Kubernetes exec command, or Docker command, as argv.
    correlation_id : str | None
        Azure correlation id, AWS request id, GCP operation id.
    tags : tuple[tuple[str, str], ...]
        Tags or labels given in the request.
    raw : dict
        The original record, for evidence only.
    """

    event_id: str
    cloud: str
    source: str
    time: datetime
    operation: str
    service: str
    principal: Principal
    action: str | None = None
    read_only: bool = False
    outcome: str = "success"
    error_code: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    account: str | None = None
    region: str | None = None
    resources: tuple[Resource, ...] = ()
    targets: tuple[str, ...] = ()
    namespace: str | None = None
    command: tuple[str, ...] = ()
    correlation_id: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def resources_by_role(self, role: str) -> tuple[Resource, ...]:
        """Return the resources with the given ``role``."""
        return tuple(r for r in self.resources if r.role == role)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form ``adscore events`` prints."""
        return {
            "event_id": self.event_id,
            "cloud": self.cloud,
            "source": self.source,
            "time": self.time.isoformat().replace("+00:00", "Z"),
            "action": self.action,
            "operation": self.operation,
            "service": self.service,
            "read_only": self.read_only,
            "outcome": self.outcome,
            "error_code": self.error_code,
            "principal": self.principal.to_dict(),
            "source_ip": self.source_ip,
            "user_agent": self.user_agent,
            "account": self.account,
            "region": self.region,
            "resources": [r.to_dict() for r in self.resources],
            "targets": list(self.targets),
            "namespace": self.namespace,
            "command": list(self.command),
            "correlation_id": self.correlation_id,
            "tags": dict(self.tags),
        }


@dataclass(frozen=True, slots=True)
class RecordError:
    """A record that could not be read: a value, never an exception in flight.

    Attributes
    ----------
    family : str
        Log family or delivery that was being read (``cloudtrail``, ``input``...).
    reason : str
        Why it could not be read.
    location : str
        Where it came from: ``file:line``, ``sqs:<messageId>``, ``record[3]``.
    excerpt : str
        The first characters of the record (capped, for the report).
    """

    family: str
    reason: str
    location: str = ""
    excerpt: str = ""

    def __post_init__(self) -> None:
        # Reasons, locations and excerpts quote the record: they are printed and logged, so they are
        # made inert once, here (no escape or control character, credentials redacted), capped.
        for name, limit in (("reason", 1000), ("location", 500)):
            value = getattr(self, name)
            if not (value.isascii() and value.isprintable() and len(value) <= limit):
                object.__setattr__(self, name, clean_text(value, limit))
        if self.excerpt:
            object.__setattr__(self, "excerpt", clean_text(redact_text(self.excerpt), 200))

    def to_dict(self) -> dict[str, str]:
        return {"family": self.family, "reason": self.reason, "location": self.location, "excerpt": self.excerpt}


def utc(dt: datetime) -> datetime:
    """Return ``dt`` as timezone-aware UTC (naive values are taken as UTC)."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)
