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


#: Longest text field a parked event keeps (see :func:`park_event`).
_PARKED_TEXT = 400
#: A parked event stays under this many characters (the state store's value limit is 8,192).
_PARKED_MAX = 8000


def _clip(text: str | None) -> str | None:
    """Clipped, and storable: a lone surrogate (which no UTF-8 encoder takes) becomes ``?``."""
    if text is None:
        return None
    text = text[:_PARKED_TEXT]
    return text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8")


def park_event(event: Event) -> str:
    """A compact JSON form of ``event`` for the state store, read back by :func:`unpark_event`.

    A sequence detection parks the half that arrives first (a restore before its snapshot's
    creation, a snapshot before the discovery that precedes it in time), so the half that arrives
    second can complete the sequence with the first half's principal, resources and time. The raw
    record is left out; text fields are clipped and lists shortened so the form stays under the
    store's value limit.
    """
    import orjson

    def form(resources: int, targets: int) -> dict[str, Any]:
        return {
            "event_id": _clip(event.event_id),
            "cloud": event.cloud,
            "source": _clip(event.source),
            "time": event.time.isoformat(),
            "action": event.action,
            "operation": _clip(event.operation),
            "service": _clip(event.service),
            "read_only": event.read_only,
            "outcome": event.outcome,
            "error_code": _clip(event.error_code),
            "principal": {k: _clip(v) for k, v in event.principal.to_dict().items()},
            "source_ip": _clip(event.source_ip),
            "user_agent": _clip(event.user_agent),
            "account": _clip(event.account),
            "region": _clip(event.region),
            "resources": [
                {"type": _clip(r.type), "id": _clip(r.id), "role": r.role} for r in event.resources[:resources]
            ],
            "targets": [_clip(t) for t in event.targets[:targets]],
            "namespace": _clip(event.namespace),
        }

    text = orjson.dumps(form(8, 10), option=orjson.OPT_NON_STR_KEYS).decode("utf-8", "replace")
    if len(text) > _PARKED_MAX:
        text = orjson.dumps(form(2, 2)).decode("utf-8", "replace")[:_PARKED_MAX]
    return text


def unpark_event(text: str | None) -> Event | None:
    """The event :func:`park_event` stored (without its raw record), or None if unreadable."""
    if not text:
        return None
    import orjson

    try:
        d = orjson.loads(text)
        p = d["principal"]
        return Event(
            event_id=str(d["event_id"]),
            cloud=str(d["cloud"]),
            source=str(d["source"]),
            time=utc(datetime.fromisoformat(str(d["time"]))),
            operation=str(d["operation"]),
            service=str(d["service"]),
            principal=Principal(
                id=str(p["id"]),
                type=str(p.get("type") or "unknown"),
                name=str(p.get("name") or ""),
                account=p.get("account"),
                session=p.get("session"),
                invoked_by=p.get("invoked_by"),
            ),
            action=d.get("action"),
            read_only=bool(d.get("read_only")),
            outcome=str(d.get("outcome") or "success"),
            error_code=d.get("error_code"),
            source_ip=d.get("source_ip"),
            user_agent=d.get("user_agent"),
            account=d.get("account"),
            region=d.get("region"),
            resources=tuple(Resource(str(r["type"]), str(r["id"]), str(r.get("role") or "target")) for r in d["resources"]),
            targets=tuple(str(t) for t in d.get("targets") or ()),
            namespace=d.get("namespace"),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return None
