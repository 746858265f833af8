"""Kubernetes audit events (``audit.k8s.io`` Event / EventList) and GKE audit LogEntries.

Self-managed clusters send ``EventList`` batches to an audit webhook; EKS ships
each ``Event`` through CloudWatch Logs, AKS through the ``kube-audit``
diagnostic category, GKE as Cloud Audit ``LogEntry`` values with
``protoPayload.serviceName == "k8s.io"``. The AWS, Azure and GCP parsers call
:func:`parse_audit_event` and :func:`parse_gke_entry` for the last three.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

from adscore import actions
from adscore.events import UNKNOWN_PRINCIPAL, Event, Principal, RecordError, Resource
from adscore.sources.common import cap, excerpt, parse_time, record_hash

__all__ = ["k8s_principal", "parse", "parse_audit_event", "parse_gke_entry"]

FAMILY = "k8s_audit"
_CLOUD = "kubernetes"
_READ_VERBS = frozenset({"get", "list", "watch"})
#: Subresources whose "get" is no read: exec/attach over websockets, port-forward, proxy.
_ACTIVE_SUBRESOURCES = frozenset({"exec", "attach", "portforward", "proxy"})
_COMMAND_SUBRESOURCES = frozenset({"exec", "attach"})
_PENDING_STAGES = frozenset({"RequestReceived", "ResponseStarted"})
_DECISION = "authorization.k8s.io/decision"
_SNAPSHOT_GROUP = "snapshot.storage.k8s.io"
_MAX_ARGS = 256
_K8S_VERBS = frozenset(
    {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "connect", "proxy"}
)
#: google.rpc.Code names, for GKE status codes.
_RPC_CODES = {
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
_GOOGLE_AGENT_MARKERS = (
    "@cloudservices.gserviceaccount.com",
    "@compute-system.iam.gserviceaccount.com",
    "@container-engine-robot.iam.gserviceaccount.com",
    "@gcp-sa-",
)


def _err(reason: str, location: str, obj: object, family: str = FAMILY) -> RecordError:
    return RecordError(family=family, reason=reason, location=location, excerpt=excerpt(obj))


@lru_cache(maxsize=2048)
def _singular(resource: str) -> str:
    """Return a plain singular of a Kubernetes resource name (``pods`` -> ``pod``)."""
    if resource.endswith("ies"):
        return resource[:-3] + "y"
    if resource.endswith(("sses", "shes", "ches", "xes")):
        return resource[:-2]
    if resource.endswith("s") and not resource.endswith(("ss", "us")):
        return resource[:-1]
    return resource


def _str(v: object, n: int = 4096) -> str | None:
    """Return ``v`` capped if it is a non-empty string, else None."""
    if isinstance(v, str) and v:
        return v if len(v) <= n else v[:n]
    return None


def _dict(v: object) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _argv(values: object) -> tuple[str, ...]:
    """Return a capped argv tuple from a list of strings (other items dropped)."""
    if not isinstance(values, list):
        return ()
    out: list[str] = []
    for v in values[:_MAX_ARGS]:
        s = cap(v)
        if s is not None:
            out.append(s)
    return tuple(out)


def _command_from_uri(uri: str | None) -> tuple[str, ...]:
    """Return the repeated ``command=`` query parameters of an exec ``requestURI``, in order."""
    if not uri:
        return ()
    q = uri.find("?")
    if q < 0 or "command=" not in uri:
        return ()
    args = [v[:4096] for k, v in parse_qsl(uri[q + 1 :], keep_blank_values=True) if k == "command"]
    return tuple(args[:_MAX_ARGS])


def k8s_principal(
    username: str | None, *, impersonator: str | None = None, account: str | None = None
) -> Principal:
    """Return the principal of a Kubernetes username (rules in the parser contract).

    ``arn:aws:sts::<acct>:assumed-role/<role>/<session>`` usernames (EKS access
    entries) become the role ARN, with the session kept apart, as in CloudTrail.
    """
    if not username:
        if impersonator:
            return Principal(id="unknown", type="unknown", name="unknown", invoked_by=impersonator)
        return UNKNOWN_PRINCIPAL
    session = None
    if username.startswith("system:"):
        if username.startswith("system:serviceaccount:"):
            ptype = "service_account"
        elif username == "system:anonymous":
            ptype = "anonymous"
        else:
            ptype = "system"
        pid = username
    elif username.startswith("eks:"):
        # EKS control-plane components (eks:certificate-controller, eks:node-manager, ...)
        pid, ptype = username, "system"
    elif username.startswith("arn:aws:sts::") and ":assumed-role/" in username:
        # arn:aws:sts::123456789012:assumed-role/Role/session -> arn:aws:iam::123456789012:role/Role
        head, _, path = username.partition(":assumed-role/")
        role, _, session = path.partition("/")
        acct = head.rsplit(":", 1)[-1]
        partition = head.split(":", 2)[1] if head.count(":") >= 2 else "aws"
        pid = f"arn:{partition}:iam::{acct}:role/{role}"
        ptype = "role"
        account = account or acct or None
    elif username.startswith("arn:aws:iam::") and ":role/" in username:
        pid, ptype = username, "role"
    else:
        pid, ptype = username, "user"
    return Principal(
        id=pid, type=ptype, name=username, account=account, session=session or None, invoked_by=impersonator
    )


def _gke_principal(auth: dict[str, Any]) -> Principal:
    email = _str(auth.get("principalEmail"), 1024)
    if email is None:
        subject = _str(auth.get("principalSubject"), 1024)
        if subject is None:
            return UNKNOWN_PRINCIPAL
        return Principal(id=subject, type="unknown", name=subject)
    if "@" not in email:
        # Kubernetes-style identities (system:anonymous, system:serviceaccount:...)
        return k8s_principal(email)
    low = email.lower()
    if low.endswith(".gserviceaccount.com"):
        local, _, domain = low.partition("@")
        if local.startswith("service-") or any(m in low for m in _GOOGLE_AGENT_MARKERS):
            return Principal(id=low, type="service", name=email)
        project = (
            domain[: -len(".iam.gserviceaccount.com")]
            if domain.endswith(".iam.gserviceaccount.com")
            else None
        )
        return Principal(id=low, type="service_account", name=email, account=project)
    return Principal(id=low, type="user", name=email)


def _parse_times(obj: dict[str, Any], keys: tuple[str, ...]) -> tuple[Any, str | None]:
    """Return (datetime, None) for the first parseable key, else (None, reason)."""
    bad = None
    for k in keys:
        v = obj.get(k)
        if v is None:
            continue
        try:
            return parse_time(v), None
        except ValueError as e:
            bad = f"{k}: {e}"
    return None, (f"invalid time ({bad})" if bad else f"no time ({'/'.join(keys)} missing)")


def _resources(
    verb: str,
    resource: str | None,
    subresource: str | None,
    api_group: str | None,
    namespace: str | None,
    name: str | None,
    request_obj: dict[str, Any],
    response_obj: dict[str, Any],
) -> tuple[Resource, ...]:
    if resource is None:
        return ()
    if name is None and verb == "create" and subresource is None:
        name = _str(_dict(response_obj.get("metadata")).get("name"), 1024) or _str(
            _dict(request_obj.get("metadata")).get("name"), 1024
        )
    out: list[Resource] = []
    if name is not None:
        role = "created" if verb == "create" and subresource is None else "target"
        rid = f"{namespace}/{name}" if namespace and resource != "namespaces" else name
        out.append(Resource(_singular(resource), rid, role))
    if verb == "create" and subresource is None and (api_group in (None, "", _SNAPSHOT_GROUP)):
        if resource == "volumesnapshots":
            src = _dict(_dict(request_obj.get("spec")).get("source")) or _dict(
                _dict(response_obj.get("spec")).get("source")
            )
            pvc = _str(src.get("persistentVolumeClaimName"), 1024)
            if pvc is not None:
                out.append(
                    Resource("persistentvolumeclaim", f"{namespace}/{pvc}" if namespace else pvc, "source")
                )
            content = _str(src.get("volumeSnapshotContentName"), 1024)
            if content is not None:
                out.append(Resource("volumesnapshotcontent", content, "source"))
        elif resource == "volumesnapshotcontents":
            src = _dict(_dict(request_obj.get("spec")).get("source")) or _dict(
                _dict(response_obj.get("spec")).get("source")
            )
            handle = _str(src.get("volumeHandle"), 1024)
            if handle is not None:
                out.append(Resource("volume", handle, "source"))
            snap = _str(src.get("snapshotHandle"), 1024)
            if snap is not None:
                out.append(Resource("snapshot", snap, "source"))
    return tuple(out)


def _operation(verb: str, resource: str | None, subresource: str | None, path: str | None) -> tuple[str, bool]:
    """(operation, read-only) of a request: ``create pods/exec``, ``get /healthz``."""
    if resource is not None:
        operation = f"{verb} {resource}/{subresource}" if subresource else f"{verb} {resource}"
    else:
        operation = f"{verb} {path or '/'}"
    return operation, verb in _READ_VERBS and subresource not in _ACTIVE_SUBRESOURCES


def _build(
    raw: dict[str, Any],
    *,
    source: str,
    event_id: str,
    time: Any,
    verb: str,
    resource: str | None,
    subresource: str | None,
    api_group: str | None,
    namespace: str | None,
    name: str | None,
    path: str | None,
    principal: Principal,
    outcome: str,
    error_code: str | None,
    source_ip: str | None,
    user_agent: str | None,
    account: str | None,
    region: str | None,
    request_obj: dict[str, Any],
    response_obj: dict[str, Any],
    command: tuple[str, ...],
) -> Event:
    operation, read_only = _operation(verb, resource, subresource, path)
    service = f"k8s/{resource}" if resource is not None else "k8s/nonresource"
    if namespace is None and resource == "namespaces" and subresource is None:
        namespace = name
    return Event(
        event_id=event_id,
        cloud=_CLOUD,
        source=source,
        time=time,
        operation=operation[:4096],
        service=service[:4096],
        principal=principal,
        action=actions.classify(_CLOUD, operation, read_only),
        read_only=read_only,
        outcome=outcome,
        error_code=error_code,
        source_ip=source_ip,
        user_agent=user_agent,
        account=account,
        region=region,
        resources=_resources(
            verb, resource, subresource, api_group, namespace, name, request_obj, response_obj
        ),
        namespace=namespace,
        command=command,
        raw=raw,
    )


def parse(obj: Any, location: str) -> list[Event | RecordError]:
    """Parse an ``audit.k8s.io`` ``Event`` or ``EventList`` (v1 and v1beta1).

    Parameters
    ----------
    obj : Any
        The decoded JSON record.
    location : str
        Where it came from (``file:line``...); list items get ``#items[i]``.

    Returns
    -------
    list[Event | RecordError]
        Never raises.
    """
    try:
        if not isinstance(obj, dict):
            return [_err(f"not a Kubernetes audit event: {type(obj).__name__}", location, obj)]
        if obj.get("kind") == "EventList":
            items = obj.get("items")
            if items is None:
                return []
            if not isinstance(items, list):
                return [_err("EventList items is not a list", location, obj)]
            out: list[Event | RecordError] = []
            for i, item in enumerate(items):
                out.extend(parse_audit_event(item, f"{location}#items[{i}]"))
            return out
        return parse_audit_event(obj, location)
    except Exception as e:
        return [_err(f"unexpected {type(e).__name__}: {e}", location, obj)]


def parse_audit_event(
    obj: Any,
    location: str,
    *,
    cluster: str | None = None,
    account: str | None = None,
    source: str = "k8s_audit",
) -> list[Event | RecordError]:
    """Parse one ``audit.k8s.io`` ``Event``.

    Parameters
    ----------
    obj : Any
        The decoded audit event.
    location : str
        Where it came from.
    cluster : str | None
        Cluster name, when the delivery names it (EKS log group, AKS resource id);
        it becomes the event's ``account``.
    account : str | None
        Cloud account / subscription the cluster lives in: the event's ``account``
        when no cluster is given, and the principal's ``account``.
    source : str
        Log family recorded on the event (``k8s_audit``, ``eks_audit``, ``aks_audit``).

    Returns
    -------
    list[Event | RecordError]
        One event, or one error. Never raises.
    """
    try:
        return [_parse_audit_event(obj, cluster, account, source)]
    except _Bad as e:
        return [_err(str(e), location, obj)]
    except Exception as e:
        return [_err(f"unexpected {type(e).__name__}: {e}", location, obj)]


class _Bad(Exception):
    """A record that cannot be read (turned into a RecordError)."""


def _parse_audit_event(obj: Any, cluster: str | None, account: str | None, source: str) -> Event:
    if not isinstance(obj, dict):
        raise _Bad(f"audit event is not an object: {type(obj).__name__}")
    kind = obj.get("kind")
    if kind is not None and kind != "Event":
        raise _Bad(f"not an audit Event: kind={str(kind)[:64]!r}")
    verb = _str(obj.get("verb"), 64)
    if verb is None:
        raise _Bad("audit event has no verb")
    time, why = _parse_times(obj, ("stageTimestamp", "requestReceivedTimestamp", "timestamp"))
    if time is None:
        raise _Bad(f"audit event has {why}")

    ref = _dict(obj.get("objectRef"))
    resource = _str(ref.get("resource"), 256)
    subresource = _str(ref.get("subresource"), 256) if resource else None
    uri = _str(obj.get("requestURI"))
    path = None
    if resource is None:
        if uri is None:
            raise _Bad("audit event has neither objectRef.resource nor requestURI")
        path = uri.split("?", 1)[0] or "/"

    user = _dict(obj.get("user"))
    imp = _dict(obj.get("impersonatedUser"))
    username = _str(user.get("username"), 1024)
    if imp:
        principal = k8s_principal(_str(imp.get("username"), 1024), impersonator=username, account=account)
    else:
        principal = k8s_principal(username, account=account)

    outcome, error_code = _audit_outcome(obj)

    request_obj = _dict(obj.get("requestObject"))
    command: tuple[str, ...] = ()
    if subresource in _COMMAND_SUBRESOURCES:
        command = _command_from_uri(uri) or _argv(request_obj.get("command"))

    ips = obj.get("sourceIPs")
    source_ip = _str(ips[0], 1024) if isinstance(ips, list) and ips else None
    audit_id = _str(obj.get("auditID"), 256)
    return _build(
        obj,
        source=source,
        event_id=audit_id or record_hash(obj),
        time=time,
        verb=verb,
        resource=resource,
        subresource=subresource,
        api_group=_str(ref.get("apiGroup"), 256),
        namespace=_str(ref.get("namespace"), 256),
        name=_str(ref.get("name"), 1024),
        path=path,
        principal=principal,
        outcome=outcome,
        error_code=error_code,
        source_ip=source_ip,
        user_agent=_str(obj.get("userAgent"), 1024),
        account=cluster or account,
        region=None,
        request_obj=request_obj,
        response_obj=_dict(obj.get("responseObject")),
        command=command,
    )


def _audit_outcome(obj: dict[str, Any]) -> tuple[str, str | None]:
    """(outcome, error code) of an audit event: its response status, authorization decision and stage."""
    rs = obj.get("responseStatus")
    code = rs.get("code") if isinstance(rs, dict) else None
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    if not isinstance(code, int) or isinstance(code, bool):
        code = None
    annotations = obj.get("annotations")
    decision = annotations.get(_DECISION) if isinstance(annotations, dict) else None
    if decision == "forbid" or code in (401, 403):
        return "denied", (str(code) if code is not None else "forbid")
    if code is not None and code >= 400:
        return "failure", str(code)
    if code is None and obj.get("stage") in _PENDING_STAGES:
        return "pending", None
    if code is None and obj.get("stage") == "Panic":
        return "failure", "Panic"
    return "success", None


def _is_version(seg: str) -> bool:
    """Whether ``seg`` is an API version segment (``v1``, ``v1beta1``, ``v2alpha1``)."""
    if len(seg) < 2 or seg[0] != "v" or not seg[1].isdigit():
        return False
    rest = seg[1:].lstrip("0123456789")
    if not rest:
        return True
    return any(rest.startswith(tag) and rest[len(tag) :].isdigit() for tag in ("alpha", "beta"))


def _split_method(method: str) -> tuple[str, str | None, str | None, str | None]:
    """Split a GKE methodName into (verb, resource, subresource, api group).

    ``io.k8s.core.v1.pods.exec.create`` -> ("create", "pods", "exec", "core");
    non-resource methods (``io.k8s.readyz``) give resource None.
    """
    parts = method.split(".")
    rest = parts[2:] if len(parts) > 2 and parts[0] == "io" and parts[1] == "k8s" else parts
    for i, seg in enumerate(rest):
        if _is_version(seg):
            after = rest[i + 1 :]
            group = ".".join(rest[:i]) or None
            if len(after) >= 2:
                sub = "/".join(after[1:-1]) or None
                return after[-1], after[0], sub, group
            if len(after) == 1:
                return after[0], None, None, group
            break
    if len(rest) > 1 and rest[-1] in _K8S_VERBS:
        return rest[-1], None, None, None
    return "get", None, None, None


def _split_resource_name(rn: str | None, resource: str | None) -> tuple[str | None, str | None, str | None]:
    """Return (namespace, name, path) from a GKE resourceName.

    ``core/v1/namespaces/prod/pods/db/exec`` -> ("prod", "db", None);
    ``core/v1/secrets`` -> (None, None, None); a non-resource ``/readyz`` -> path.
    """
    if not rn:
        return None, None, None
    if resource is None:
        return None, None, (rn if rn.startswith("/") else "/" + rn)
    segs = rn.split("/")
    # drop "<group>/<version>" when present
    tail = segs[2:] if len(segs) >= 2 and _is_version(segs[1]) else segs
    ns = None
    if len(tail) >= 2 and tail[0] == "namespaces" and resource != "namespaces":
        ns = tail[1] or None
        tail = tail[2:]
    name = None
    if len(tail) >= 2 and tail[0] == resource:
        name = tail[1] or None
    return (ns[:256] if ns else None), (name[:1024] if name else None), None


def _gke_outcome(pp: dict[str, Any]) -> tuple[str, str | None]:
    """(outcome, error code) of a GKE audit entry: its google.rpc status and authorization checks."""
    status = _dict(pp.get("status"))
    code = status.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        code = None
    authz = pp.get("authorizationInfo")
    denied_authz = isinstance(authz, list) and any(isinstance(a, dict) and a.get("granted") is False for a in authz)
    if code in (7, 16) or (denied_authz and not code):
        return "denied", _RPC_CODES.get(code or 7, str(code))
    if code:
        return "failure", _RPC_CODES.get(code, str(code))
    return "success", None


def parse_gke_entry(entry: Any, location: str) -> list[Event | RecordError]:
    """Parse a GKE Kubernetes audit LogEntry (``protoPayload.serviceName == "k8s.io"``).

    Parameters
    ----------
    entry : Any
        The Cloud Logging LogEntry.
    location : str
        Where it came from.

    Returns
    -------
    list[Event | RecordError]
        One event, or one error. Never raises.
    """
    try:
        return [_parse_gke_entry(entry)]
    except _Bad as e:
        return [_err(str(e), location, entry, family="gke_audit")]
    except Exception as e:
        return [_err(f"unexpected {type(e).__name__}: {e}", location, entry, family="gke_audit")]


def _parse_gke_entry(entry: Any) -> Event:
    if not isinstance(entry, dict):
        raise _Bad(f"log entry is not an object: {type(entry).__name__}")
    pp = entry.get("protoPayload")
    if not isinstance(pp, dict):
        raise _Bad("log entry has no protoPayload")
    method = _str(pp.get("methodName"), 1024)
    if method is None:
        raise _Bad("GKE audit entry has no methodName")
    time, why = _parse_times(entry, ("timestamp", "receiveTimestamp"))
    if time is None:
        raise _Bad(f"GKE audit entry has {why}")

    verb, resource, subresource, group = _split_method(method)
    rn = _str(pp.get("resourceName"))
    namespace, name, path = _split_resource_name(rn, resource)
    if resource is None and path is None:
        path = "/" + method.removeprefix("io.k8s.").replace(".", "/")

    outcome, error_code = _gke_outcome(pp)

    request_obj = _dict(pp.get("request"))
    command: tuple[str, ...] = ()
    if subresource in _COMMAND_SUBRESOURCES:
        command = _argv(request_obj.get("command")) or _command_from_uri(_str(pp.get("requestURI")))

    meta = _dict(pp.get("requestMetadata"))
    labels = _dict(_dict(entry.get("resource")).get("labels"))
    project = _str(labels.get("project_id"), 256)
    if project is None:
        log_name = _str(entry.get("logName"), 1024)
        if log_name and log_name.startswith("projects/"):
            project = log_name.split("/", 2)[1] or None
    op = _dict(entry.get("operation"))
    op_id = _str(op.get("id"), 256)
    insert_id = _str(entry.get("insertId"), 256)
    event_id = f"op:{op_id}:{method}" if op_id else (insert_id or record_hash(entry))
    if group == "core":
        group = None
    elif group == "storage.snapshot":
        # GKE writes API groups reversed without ".k8s.io"
        group = _SNAPSHOT_GROUP
    return _build(
        entry,
        source="gke_audit",
        event_id=event_id,
        time=time,
        verb=verb,
        resource=resource,
        subresource=subresource,
        api_group=group,
        namespace=namespace,
        name=name,
        path=path,
        principal=_gke_principal(_dict(pp.get("authenticationInfo"))),
        outcome=outcome,
        error_code=error_code,
        source_ip=_str(meta.get("callerIp"), 1024) or _str(meta.get("callerIP"), 1024),
        user_agent=_str(meta.get("callerSuppliedUserAgent"), 1024),
        account=project,
        region=_str(labels.get("location"), 256),
        request_obj=request_obj,
        response_obj=_dict(pp.get("response")),
        command=command,
    )


# ------------------------------------------------------------------------------------------------
# route before building
# ------------------------------------------------------------------------------------------------
#: ``(cloud, action, outcome, duplicate key)`` of one record, as :func:`adscore.sources.probe_record` gives it.
Probed = tuple[str, str | None, str, tuple[str, str, str, str]]


def probe(obj: Any) -> Probed | None:
    """What the engine routes one audit ``Event`` by, read without building its :class:`Event`, or None.

    The answer is :func:`parse`'s for the common shape only (an ``Event`` with a verb, a readable time
    and an ``auditID``); an ``EventList``, an exec or attach (whose command is read), or anything the
    parser would refuse gives None, so the record is parsed in full.
    """
    return probe_audit_event(obj, "k8s_audit")


def probe_audit_event(obj: Any, source: str) -> Probed | None:
    """:func:`probe` for an audit event some other delivery carries (EKS, AKS), recorded as ``source``."""
    if type(obj) is not dict:
        return None
    kind = obj.get("kind")
    if kind is not None and kind != "Event":
        return None
    verb = _str(obj.get("verb"), 64)
    if verb is None:
        return None
    time, _why = _parse_times(obj, ("stageTimestamp", "requestReceivedTimestamp", "timestamp"))
    if time is None:
        return None
    ref = _dict(obj.get("objectRef"))
    resource = _str(ref.get("resource"), 256)
    subresource = _str(ref.get("subresource"), 256) if resource else None
    if subresource in _COMMAND_SUBRESOURCES:
        return None
    path = None
    if resource is None:
        uri = _str(obj.get("requestURI"))
        if uri is None:
            return None
        path = uri.split("?", 1)[0] or "/"
    audit_id = _str(obj.get("auditID"), 256)
    if audit_id is None:
        return None  # the id is a hash of the whole record: as dear as parsing it
    outcome, _code = _audit_outcome(obj)
    operation, read_only = _operation(verb, resource, subresource, path)
    op = operation[:4096]
    return _CLOUD, actions.classify(_CLOUD, operation, read_only), outcome, (source, audit_id, op, outcome)


def probe_gke_entry(entry: Any) -> Probed | None:
    """:func:`probe` for a GKE audit LogEntry (what :func:`parse_gke_entry` would route it by), or None."""
    if type(entry) is not dict:
        return None
    pp = entry.get("protoPayload")
    if not isinstance(pp, dict):
        return None
    method = _str(pp.get("methodName"), 1024)
    if method is None:
        return None
    time, _why = _parse_times(entry, ("timestamp", "receiveTimestamp"))
    if time is None:
        return None
    verb, resource, subresource, _group = _split_method(method)
    if subresource in _COMMAND_SUBRESOURCES:
        return None
    _ns, _name, path = _split_resource_name(_str(pp.get("resourceName")), resource)
    if resource is None and path is None:
        path = "/" + method.removeprefix("io.k8s.").replace(".", "/")
    outcome, _code = _gke_outcome(pp)
    op_id = _str(_dict(entry.get("operation")).get("id"), 256)
    event_id = f"op:{op_id}:{method}" if op_id else _str(entry.get("insertId"), 256)
    if event_id is None:
        return None
    operation, read_only = _operation(verb, resource, subresource, path)
    op = operation[:4096]
    return _CLOUD, actions.classify(_CLOUD, operation, read_only), outcome, ("gke_audit", event_id, op, outcome)
