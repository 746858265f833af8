"""GCP log parsers: Cloud Audit Log entries, alone or in their Pub/Sub delivery envelopes.

Shapes:

- a Cloud Audit ``LogEntry`` (``protoPayload`` of type ``google.cloud.audit.AuditLog``): Admin
  Activity, Data Access, System Event and Policy Denied logs; GKE entries (``serviceName``
  ``k8s.io``) are handed to :func:`adscore.sources.kubernetes.parse_gke_entry`;
- a Pub/Sub push body (``{"message": {"data": <base64>, ...}, "subscription": ...}``), a Pub/Sub
  CloudEvent (``google.cloud.pubsub.topic.v1.messagePublished``), a bare Pub/Sub message
  (``{"data": <base64>, "messageId": ...}``) and the Eventarc audit-log CloudEvent
  (``google.cloud.audit.log.v1.written``, whose ``data`` is the LogEntry itself);
- a JSON array of any of these, or ``{"entries": [...]}`` (Logging API / exports).

Panther's copies of audit logs rename ``@type`` to ``at_sign_type`` and add lowercased
``insertid`` / ``logname`` keys; both spellings are read.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from adscore import actions
from adscore.events import Event, Principal, RecordError, Resource
from adscore.sources.common import cap, excerpt, get_path, get_str, parse_time, short_hash

__all__ = ["parse", "probe", "strip_version", "unwrap_pubsub"]

FAMILY = "gcp"
CLOUD = "gcp"

#: Pub/Sub messages stop at 10 MB; base64 text of that is ~13.4 MB.
MAX_PUBSUB_DATA = 14 * 1024 * 1024
MAX_ITEMS = 100
MAX_RECORDS = 100_000

AUDIT_LOG_TYPE = "type.googleapis.com/google.cloud.audit.AuditLog"
PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"
AUDIT_WRITTEN = "google.cloud.audit.log.v1.written"

_READ_PREFIXES = ("list", "get", "aggregatedlist", "search", "testiampermissions")
_READ_PERMISSION_TYPES = frozenset({"ADMIN_READ", "DATA_READ"})
_DENIED_CODES = frozenset({7, 16})  # PERMISSION_DENIED, UNAUTHENTICATED
_GRPC_CODES: dict[int, str] = {
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    11: "OUT_OF_RANGE",
    12: "UNIMPLEMENTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    15: "DATA_LOSS",
    16: "UNAUTHENTICATED",
}
_GRPC_NUMBERS: dict[str, int] = {name: code for code, name in _GRPC_CODES.items()}
_COLLECTION_TYPES: dict[str, str] = {
    "projects": "project",
    "family": "image",
    "snapshots": "snapshot",
    "instantsnapshots": "snapshot",
    "images": "image",
    "machineimages": "machine-image",
    "disks": "disk",
    "instances": "instance",
    "backupruns": "db-snapshot",
}
#: Domains of Google-managed service agents (not user-managed service accounts).
_AGENT_DOMAINS = frozenset(
    {
        "cloudservices.gserviceaccount.com",
        "system.gserviceaccount.com",
        "compute-system.iam.gserviceaccount.com",
        "container-engine-robot.iam.gserviceaccount.com",
        "gs-project-accounts.iam.gserviceaccount.com",
    }
)
_CREATES = frozenset(
    {actions.SNAPSHOT_CREATE, actions.IMAGE_CREATE, actions.SNAPSHOT_COPY, actions.SNAPSHOT_RESTORE}
)
_SOURCE_FIELDS = (
    "sourceDisk",
    "sourceSnapshot",
    "sourceInstantSnapshot",
    "sourceImage",
    "sourceMachineImage",
    "sourceInstance",
)


# ------------------------------------------------------------------------------------------------
# entry points
# ------------------------------------------------------------------------------------------------
def parse(obj: Any, location: str) -> list[Event | RecordError]:
    """Parse any GCP audit entry or Pub/Sub envelope into Events and RecordErrors.

    Parameters
    ----------
    obj : Any
        A decoded JSON value: a LogEntry, a Pub/Sub push body, message or CloudEvent,
        ``{"entries": [...]}``, or a list of these.
    location : str
        Where ``obj`` came from, for error reports.

    Returns
    -------
    list[Event | RecordError]
        Never raises: unreadable records become :class:`RecordError`.

    Example
    -------
    >>> parse([], "pubsub")
    []
    """
    try:
        return _parse_any(obj, location, nested=False)
    except Exception as e:  # never raise on input
        return [_err(f"unexpected {type(e).__name__}: {str(e)[:300]}", location, obj)]


def unwrap_pubsub(obj: Any, location: str = "pubsub") -> list[tuple[str, Any]] | RecordError:
    """Decode the payload of a Pub/Sub delivery.

    Accepts a push body (``{"message": {...}, "subscription": ...}``), a Pub/Sub CloudEvent
    (``type`` ``google.cloud.pubsub.topic.v1.messagePublished``, ``data.message``) and a bare
    message (``{"data": <base64>, "messageId": ...}``). Pure: no I/O.

    Parameters
    ----------
    obj : Any
        The decoded JSON delivery.
    location : str
        Prefix of the returned locations.

    Returns
    -------
    list[tuple[str, Any]] | RecordError
        ``[(location, decoded JSON payload)]``, or why it could not be decoded
        (bad base64, not JSON, no data).

    Example
    -------
    >>> unwrap_pubsub({"message": {"data": "e30=", "messageId": "1"}})
    [('pubsub#message:1', {})]
    """
    if not isinstance(obj, dict):
        return _err(f"Pub/Sub delivery is not a JSON object ({type(obj).__name__})", location, obj)
    msg: Any
    if "specversion" in obj:
        data = obj.get("data")
        msg = data.get("message") if isinstance(data, dict) else None
        if msg is None:
            return _err("Pub/Sub CloudEvent has no data.message", location, obj)
    elif "message" in obj:
        msg = obj.get("message")
    else:
        msg = obj
    if not isinstance(msg, dict):
        return _err("Pub/Sub message is not a JSON object", location, obj)
    mid = get_str(msg, "messageId", n=200) or get_str(msg, "message_id", n=200)
    loc = f"{location}#message:{mid}" if mid else f"{location}#message"
    data = msg.get("data")
    if data is None or data == "":
        return _err("Pub/Sub message has no data", loc, obj)
    if not isinstance(data, str):
        return _err(f"Pub/Sub message data is not a base64 string ({type(data).__name__})", loc, obj)
    if len(data) > MAX_PUBSUB_DATA:
        return _err(f"Pub/Sub message data is too large ({len(data)} characters)", loc, obj)
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        try:
            raw = base64.urlsafe_b64decode(data)
        except (binascii.Error, ValueError):
            return _err("Pub/Sub message data is not valid base64", loc, obj)
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        return _err(f"Pub/Sub message data is not JSON: {str(e)[:200]}", loc, obj)
    return [(loc, payload)]


# ------------------------------------------------------------------------------------------------
# dispatch
# ------------------------------------------------------------------------------------------------
def _parse_any(obj: Any, location: str, *, nested: bool) -> list[Event | RecordError]:
    if isinstance(obj, list):
        if nested:
            return [_err("nested array", location, obj)]
        out: list[Event | RecordError] = []
        for i, item in enumerate(obj[:MAX_RECORDS]):
            out.extend(_parse_any(item, f"{location}[{i}]", nested=True))
        if len(obj) > MAX_RECORDS:
            out.append(_err(f"array holds {len(obj)} items; only {MAX_RECORDS} read", location, ""))
        return out
    if not isinstance(obj, dict):
        return [_err(f"expected a JSON object, got {type(obj).__name__}", location, obj)]
    if "protoPayload" in obj:
        return _guard(obj, location)
    if "specversion" in obj:
        etype = get_str(obj, "type", n=300) or ""
        if etype == AUDIT_WRITTEN:
            data = obj.get("data")
            if not isinstance(data, dict):
                return [_err("audit-log CloudEvent 'data' is not a LogEntry object", location, obj)]
            return _guard(data, f"{location}#data")
        if etype != PUBSUB_PUBLISHED:
            return [_err(f"unsupported CloudEvent type {etype[:100]!r}", location, obj)]
        return _parse_pubsub(obj, location)
    if "message" in obj or ("data" in obj and _looks_like_message(obj)):
        return _parse_pubsub(obj, location)
    entries = obj.get("entries")
    if isinstance(entries, list) and not nested:
        return _parse_any(entries, f"{location}#entries", nested=False)
    keys = ",".join(sorted(str(k) for k in obj)[:12])
    return [_err(f"not a Cloud Audit LogEntry or Pub/Sub envelope (keys {keys[:200]})", location, obj)]


def _looks_like_message(obj: dict[str, Any]) -> bool:
    return any(k in obj for k in ("messageId", "message_id", "publishTime", "publish_time", "attributes"))


def _parse_pubsub(obj: dict[str, Any], location: str) -> list[Event | RecordError]:
    unwrapped = unwrap_pubsub(obj, location)
    if isinstance(unwrapped, RecordError):
        return [unwrapped]
    out: list[Event | RecordError] = []
    for loc, payload in unwrapped:
        if isinstance(payload, dict) and "protoPayload" in payload:
            out.extend(_guard(payload, loc))
        elif isinstance(payload, dict):
            # another family carried over Pub/Sub (a K8s audit event, ...): let the sniffer decide
            from adscore.sources import parse_record

            out.extend(parse_record(payload, loc))
        else:
            out.append(_err(f"Pub/Sub payload is not a JSON object ({type(payload).__name__})", loc, payload))
    return out


def _guard(entry: dict[str, Any], location: str) -> list[Event | RecordError]:
    """Parse one entry so a surprise spoils that entry only, not its batch."""
    try:
        return _parse_entry(entry, location)
    except Exception as e:
        return [_err(f"unexpected {type(e).__name__}: {str(e)[:300]}", location, entry)]


# ------------------------------------------------------------------------------------------------
# Cloud Audit LogEntry
# ------------------------------------------------------------------------------------------------
def _parse_entry(entry: dict[str, Any], loc: str) -> list[Event | RecordError]:
    pp = entry.get("protoPayload")
    if not isinstance(pp, dict):
        return [_err("protoPayload is not a JSON object", loc, entry)]
    service_name = _s(pp, "serviceName", 300) or ""
    method_raw = _s(pp, "methodName", 1024) or ""
    if _is_gke(entry, service_name, method_raw):
        from adscore.sources import kubernetes

        result: list[Event | RecordError] = kubernetes.parse_gke_entry(entry, loc)
        return result
    ptype = pp.get("@type") or pp.get("at_sign_type") or pp.get("at_type")
    if isinstance(ptype, str) and not ptype.endswith("google.cloud.audit.AuditLog"):
        return [_err(f"protoPayload is {ptype[:200]!r}, not an AuditLog", loc, entry)]
    if not method_raw:
        return [_err("missing protoPayload.methodName", loc, entry)]
    t = entry.get("timestamp") or entry.get("receiveTimestamp") or entry.get("receivetimestamp")
    if t is None:
        return [_err("missing timestamp", loc, entry)]
    try:
        when = parse_time(t)
    except ValueError as e:
        return [_err(str(e), loc, entry)]

    operation = strip_version(method_raw)
    service = service_name.removesuffix(".googleapis.com").lower() if service_name else _service_of(operation)
    log_name = _s(entry, "logName") or _s(entry, "logname") or ""
    authz = pp.get("authorizationInfo")
    authz_list: list[Any] = authz if isinstance(authz, list) else []
    read_only = _is_read(operation, log_name, authz_list)

    outcome, error_code = _outcome(pp, authz_list)

    resource = entry.get("resource")
    labels = resource.get("labels") if isinstance(resource, dict) else None
    if not isinstance(labels, dict):
        labels = {}
    raw_name = _s(pp, "resourceName") or ""
    project = _s(labels, "project_id", 200) or _project_of(log_name) or _project_of(raw_name)
    resource_name = _normalize_name(raw_name, project)
    request = pp.get("request")
    req: dict[str, Any] = request if isinstance(request, dict) else {}

    action = actions.classify(CLOUD, operation, read_only)
    targets: tuple[str, ...] = ()
    resources: list[Resource] = []
    if action == actions.SNAPSHOT_SHARE:
        targets = _added_members(pp, req)
        if not targets and actions.is_conditional(CLOUD, operation):
            action = None
    sources = _request_sources(operation, req, project)
    if action == actions.IMAGE_CREATE and not sources and get_str(req, "rawDisk", "source", n=2048):
        # `gcloud compute images create --source-uri gs://...` / `images import`: an upload, not a copy
        action = actions.IMAGE_IMPORT
    if (
        action is not None
        and action != actions.SNAPSHOT_SHARE
        and actions.is_conditional(CLOUD, operation)
        and not _restore_condition(operation, sources)
    ):
        action = None
    op_l = operation.lower()
    if op_l.endswith(".createsnapshot"):
        # resourceName is the disk; the new snapshot is named in the request
        if resource_name:
            resources.append(Resource(_type_of(resource_name), resource_name, "source"))
        name = _s(req, "name", 300)
        if name and project:
            resources.append(Resource("snapshot", f"projects/{project}/global/snapshots/{name}", "created"))
    else:
        if resource_name:
            role = "created" if action in _CREATES else "target"
            resources.append(Resource(_type_of(resource_name), resource_name, role))
        if action in _CREATES:
            for s in sources:
                if s != resource_name:
                    resources.append(Resource(_type_of(s), s, "source"))

    region = _s(labels, "zone", 100) or _s(labels, "region", 100) or _s(labels, "location", 100)
    if not region:
        region = get_str(pp, "resourceLocation", "currentLocations", 0, n=100)

    op_id, event_id = _ids(entry, operation)
    if event_id is None:
        event_id = _record_hash(entry)
    meta = pp.get("requestMetadata")
    if not isinstance(meta, dict):
        meta = {}
    return [
        Event(
            event_id=event_id,
            cloud=CLOUD,
            source="gcp_audit",
            time=when,
            operation=operation,
            service=service,
            principal=_principal(pp),
            action=action,
            read_only=read_only,
            outcome=outcome,
            error_code=error_code,
            source_ip=_s(meta, "callerIp", 1024) or _s(meta, "callerIP", 1024),
            user_agent=_s(meta, "callerSuppliedUserAgent", 1024),
            account=project,
            region=region,
            resources=tuple(resources),
            targets=targets,
            correlation_id=op_id,
            tags=_labels(req),
            raw=entry,
        )
    ]


def _is_gke(entry: dict[str, Any], service_name: str, method: str) -> bool:
    """Whether an entry is GKE's Kubernetes audit log (read by the Kubernetes parser)."""
    return (
        service_name == "k8s.io"
        or method.startswith("io.k8s.")
        or (not service_name and get_str(entry, "resource", "type") == "k8s_cluster")
    )


def _outcome(pp: dict[str, Any], authz_list: list[Any]) -> tuple[str, str | None]:
    """(outcome, error code) of an entry: its google.rpc status, else its authorization checks."""
    status = pp.get("status")
    code = _int(status.get("code")) if isinstance(status, dict) else None
    if not code:
        # a permission check logged as not granted is a denial even where the entry carries no status
        # (authorizationInfo[].granted: false; Google's docs: granted is "whether or not authorization
        # for resource and permission was granted")
        if any(isinstance(a, dict) and a.get("granted") is False for a in authz_list):
            return "denied", "PERMISSION_DENIED"
        return "success", None
    return ("denied" if code in _DENIED_CODES else "failure"), _GRPC_CODES.get(code, str(code))


def _ids(entry: dict[str, Any], operation: str) -> tuple[str | None, str | None]:
    """(operation id, event id) of an entry; the event id is None when only a hash of the entry would do."""
    operation_info = entry.get("operation")
    op_id = _s(operation_info, "id", 512) if isinstance(operation_info, dict) else None
    if op_id:
        return op_id, f"op:{op_id}:{operation}"
    return op_id, _s(entry, "insertId", 512) or _s(entry, "insertid", 512) or None


def strip_version(method: str) -> str:
    """Return ``method`` without its API version prefix (``v1.``, ``beta.``, ``alpha.``, ``v2beta1.``).

    Example
    -------
    >>> strip_version("v1.compute.snapshots.insert")
    'compute.snapshots.insert'
    """
    dot = method.find(".")
    if dot <= 0:
        return method
    head = method[:dot]
    if head in ("beta", "alpha") or (head[0] == "v" and head[1:2].isdigit()):
        return method[dot + 1 :]
    return method


def _service_of(operation: str) -> str:
    """Service of an entry without ``serviceName``: the method's first segment."""
    dot = operation.find(".")
    if dot <= 0:
        return "unknown"
    head = operation[:dot].lower()
    return "unknown" if head in ("google", "io") else head[:100]


def _is_read(operation: str, log_name: str, authz: list[Any]) -> bool:
    last = operation.rsplit(".", 1)[-1].lower()
    if last.startswith(_READ_PREFIXES):
        return True
    if not (log_name.endswith("%2Fdata_access") or log_name.endswith("/data_access")):
        return False
    for a in authz[:MAX_ITEMS]:
        if not isinstance(a, dict):
            continue
        ptype = a.get("permissionType")
        if isinstance(ptype, str):
            if ptype in _READ_PERMISSION_TYPES:
                return True
            continue
        perm = a.get("permission")
        if isinstance(perm, str) and perm.rsplit(".", 1)[-1].lower().startswith(_READ_PREFIXES):
            return True
    return False


def _principal(pp: dict[str, Any]) -> Principal:
    auth = pp.get("authenticationInfo")
    if not isinstance(auth, dict):
        return Principal(id="unknown", type="unknown", name="unknown")
    email = _s(auth, "principalEmail", 1024)
    if email:
        pid = email.lower()
        ptype, account = _principal_kind(pid)
        return Principal(id=pid, type=ptype, name=email, account=account)
    subject = _s(auth, "principalSubject", 1024)
    if subject:
        ptype = "service_account" if subject.startswith("serviceAccount:") else "user"
        return Principal(id=subject.lower(), type=ptype, name=subject)
    return Principal(id="unknown", type="unknown", name="unknown")


def _principal_kind(email: str) -> tuple[str, str | None]:
    """(type, project) of a lowercased principal e-mail."""
    local, at, domain = email.rpartition("@")
    if not at:
        return "user", None
    if not domain.endswith("gserviceaccount.com"):
        # Google's own system identity (system events, scheduled operations)
        return ("service" if email == "system@google.com" else "user"), None
    if (
        local.startswith("service-")
        or domain in _AGENT_DOMAINS
        or domain.startswith("gcp-sa-")
        or domain.endswith("-robot.iam.gserviceaccount.com")
    ):
        return "service", None
    if domain.endswith(".iam.gserviceaccount.com"):
        return "service_account", domain[: -len(".iam.gserviceaccount.com")] or None
    if domain == "appspot.gserviceaccount.com":
        return "service_account", local or None
    return "service_account", None


def _added_members(pp: dict[str, Any], req: dict[str, Any]) -> tuple[str, ...]:
    """Members a setIamPolicy added: bindingDeltas with action ADD, else the request's bindings."""
    deltas = get_path(pp, "serviceData", "policyDelta", "bindingDeltas")
    if not isinstance(deltas, list):
        deltas = get_path(pp, "metadata", "policyDelta", "bindingDeltas")
    out: list[str] = []
    if isinstance(deltas, list):
        for d in deltas[:MAX_ITEMS]:
            if isinstance(d, dict) and d.get("action") == "ADD":
                m = cap(d.get("member"), 1024)
                if m and m not in out:
                    out.append(m)
        return tuple(out)
    bindings = get_path(req, "policy", "bindings")
    if not isinstance(bindings, list):
        bindings = req.get("bindings")
    if isinstance(bindings, list):
        for b in bindings[:MAX_ITEMS]:
            members = b.get("members") if isinstance(b, dict) else None
            if isinstance(members, list):
                for m_raw in members[:MAX_ITEMS]:
                    m = cap(m_raw, 1024)
                    if m and m not in out:
                        out.append(m)
    return tuple(out[:MAX_ITEMS])


def _request_sources(operation: str, req: dict[str, Any], project: str | None) -> list[str]:
    """Resources named as the source of a new snapshot, image, disk or instance."""
    out: list[str] = []
    for f in _SOURCE_FIELDS:
        v = _s(req, f, 2048)
        if v:
            out.append(_normalize_name(v, project))
    if operation.lower().endswith("instances.insert"):
        disks = req.get("disks")
        if isinstance(disks, list):
            for d in disks[:MAX_ITEMS]:
                for f in ("sourceSnapshot", "sourceImage", "sourceInstantSnapshot"):
                    v = get_str(d, "initializeParams", f, n=2048)
                    if v:
                        out.append(_normalize_name(v, project))
    seen: list[str] = []
    for s in out:
        if s and s not in seen:
            seen.append(s)
    return seen


#: Google's public image projects (``gcloud compute images list`` shows their images to every project).
#: A disk built from one of them is an ordinary VM build, not a restore of anyone's data (as Azure
#: Marketplace images are skipped in sources/azure.py).
PUBLIC_IMAGE_PROJECTS = frozenset(
    {
        "almalinux-cloud",
        "centos-cloud",
        "cos-cloud",
        "debian-cloud",
        "deeplearning-platform-release",
        "fedora-cloud",
        "fedora-coreos-cloud",
        "freebsd-org-cloud-dev",
        "gke-node-images",
        "ml-images",
        "opensuse-cloud",
        "oracle-linux-cloud",
        "rhel-cloud",
        "rhel-sap-cloud",
        "rocky-linux-accelerator-cloud",
        "rocky-linux-cloud",
        "suse-cloud",
        "suse-sap-cloud",
        "ubuntu-os-accelerator-images",
        "ubuntu-os-cloud",
        "ubuntu-os-pro-cloud",
        "windows-cloud",
        "windows-sql-cloud",
    }
)


def _own_image(source: str) -> bool:
    """A ``projects/P/global/images/...`` source outside Google's public image projects."""
    if "/images/" not in source:
        return False
    project = source[len("projects/") :].split("/", 1)[0] if source.startswith("projects/") else ""
    return project.lower() not in PUBLIC_IMAGE_PROJECTS


def _restore_condition(operation: str, sources: list[str]) -> bool:
    """CONDITIONS of actions.py for disks / regionDisks / instances.insert."""
    op = operation.lower()
    if op == "compute.regiondisks.insert":
        return any("/snapshots/" in s for s in sources)
    if op == "compute.instances.insert":
        return any("/machineimages/" in s.lower() or "/snapshots/" in s for s in sources)
    return any(("/snapshots/" in s or "/instantsnapshots/" in s.lower() or _own_image(s)) for s in sources)


def _normalize_name(name: str, project: str | None) -> str:
    """``https://.../compute/v1/projects/p/...`` or ``global/snapshots/s`` -> ``projects/p/...``."""
    if not name:
        return ""
    i = name.find("projects/")
    if i > 0:
        return name[i:]
    if i == 0:
        return name
    if project and name.startswith(("global/", "zones/", "regions/")):
        return f"projects/{project}/{name}"
    return name


def _type_of(name: str) -> str:
    """Resource type from a GCP resource name (``.../snapshots/s``, ``.../zones/z/instances``)."""
    if "/images/family/" in name:
        return "image"
    parts = [p for p in name.split("/") if p and p != "global"]
    if len(parts) < 2:
        return "resource"
    # names alternate collection/id; an odd count ends on a collection (a list call)
    coll = (parts[-1] if len(parts) % 2 else parts[-2]).lower()
    if coll.startswith("region") and len(coll) > 6:
        coll = coll[6:]  # regionDisks -> disks
    return _COLLECTION_TYPES.get(coll) or coll[:100] or "resource"


def _project_of(name: str) -> str | None:
    i = name.find("projects/")
    if i < 0:
        return None
    p = name[i + 9 :].split("/", 1)[0]
    return p[:200] or None


def _labels(req: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    labels = req.get("labels")
    if not isinstance(labels, dict):
        return ()
    out: list[tuple[str, str]] = []
    for k, v in list(labels.items())[:MAX_ITEMS]:
        ks, vs = cap(k, 512), cap(v)
        if ks is not None:
            out.append((ks, vs or ""))
    return tuple(out)


def _int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.strip().isdigit() and len(v) < 10:
        return int(v)
    if isinstance(v, str) and v:
        return _GRPC_NUMBERS.get(v.strip().upper(), 2)
    return None


def _s(d: dict[str, Any], key: str, n: int = 4096) -> str | None:
    """``d[key]`` as a capped string (scalars converted), else None: the hot-path getter."""
    v = d.get(key)
    if type(v) is str:
        return v if len(v) <= n else v[:n]
    return None if v is None else cap(v, n)


def _err(reason: str, location: str, obj: Any) -> RecordError:
    return RecordError(family=FAMILY, reason=reason, location=location, excerpt=excerpt(obj))


def _record_hash(entry: dict[str, Any]) -> str:
    try:
        text = json.dumps(entry, sort_keys=True, default=str)
    except (ValueError, TypeError, RecursionError):
        text = "|".join(sorted(str(k) for k in entry)) + "|" + excerpt(entry, 2000)
    return short_hash("gcp-record", text)


# ------------------------------------------------------------------------------------------------
# route before building
# ------------------------------------------------------------------------------------------------
def probe(obj: Any) -> tuple[str, str | None, str, tuple[str, str, str, str]] | None:
    """What the engine routes one audit LogEntry by, read without building its :class:`Event`, or None.

    :func:`parse`'s answer for a bare LogEntry (or the Eventarc CloudEvent that carries one; a GKE
    entry is the Kubernetes probe's) whose action no request field decides: a share, an image
    creation and the conditional restores return None, as do Pub/Sub envelopes (their data is
    decoded by the parser), entries without an id and anything the parser would refuse.
    """
    if type(obj) is not dict:
        return None
    entry: Any = obj
    if "protoPayload" in obj:
        pass
    elif "specversion" in obj and get_str(obj, "type", n=300) == AUDIT_WRITTEN:
        entry = obj.get("data")
        if not isinstance(entry, dict) or "protoPayload" not in entry:
            return None
    else:
        return None
    pp = entry.get("protoPayload")
    if not isinstance(pp, dict):
        return None
    service_name = _s(pp, "serviceName", 300) or ""
    method_raw = _s(pp, "methodName", 1024) or ""
    if _is_gke(entry, service_name, method_raw):
        from adscore.sources import kubernetes

        return kubernetes.probe_gke_entry(entry)
    ptype = pp.get("@type") or pp.get("at_sign_type") or pp.get("at_type")
    if (isinstance(ptype, str) and not ptype.endswith("google.cloud.audit.AuditLog")) or not method_raw:
        return None
    t = entry.get("timestamp") or entry.get("receiveTimestamp") or entry.get("receivetimestamp")
    if t is None:
        return None
    parse_time(t)  # a ValueError leaves the entry to the parser, which says what is wrong
    operation = strip_version(method_raw)
    log_name = _s(entry, "logName") or _s(entry, "logname") or ""
    authz = pp.get("authorizationInfo")
    authz_list: list[Any] = authz if isinstance(authz, list) else []
    read_only = _is_read(operation, log_name, authz_list)
    action = actions.classify(CLOUD, operation, read_only)
    if action is not None and (
        action in (actions.SNAPSHOT_SHARE, actions.IMAGE_CREATE) or actions.is_conditional(CLOUD, operation)
    ):
        return None  # the request decides the action: left to the parser
    _op_id, event_id = _ids(entry, operation)
    if not event_id:
        return None
    outcome, _code = _outcome(pp, authz_list)
    return CLOUD, action, outcome, ("gcp_audit", event_id, operation, outcome)
