"""Azure log parsers: Activity Log, Entra / Microsoft Graph logs, AKS audit records, Event Grid.

Shapes, detected per record:

- diagnostic-settings records (``{"records": [...]}``, as Event Hub delivers them), by ``category``:
  Activity Log (``Administrative``, ``Write``, ``Delete``, ``Action``, ``Security``, ``Policy``, ...),
  AKS ``kube-audit`` / ``kube-audit-admin`` (handed to :mod:`adscore.sources.kubernetes`),
  ``MicrosoftGraphActivityLogs``, Entra sign-in logs and Entra ``AuditLogs``;
- Key Vault ``AuditEvent`` and Storage ``StorageRead``/``StorageWrite``/``StorageDelete`` resource
  logs: data-plane calls (``SecretList``, ``ListBlobs``...), reads of which count as discovery;
- the Activity Log REST / portal export shape (``operationName: {"value": ...}``, ``status``,
  ``caller``, ``claims``, ``eventTimestamp``);
- Event Grid resource events (``Microsoft.Resources.Resource*``) in the Event Grid schema
  (``eventType``, ``eventTime``, ``data``) and in the CloudEvents 1.0 schema (``specversion``,
  ``type``, ``time``, ``data``), alone or in a JSON array;
- Log Analytics rows (``TimeGenerated``, ``Type``) of the ``AzureActivity``,
  ``MicrosoftGraphActivityLogs`` and sign-in tables, as a workspace query returns them
  (``az monitor log-analytics query``, Sentinel exports), read as the records they came from.

The Started and Succeeded records of one ARM operation, and the Event Grid copy of it, share one
``event_id``: a hash of correlation id, lowercased operation name and lowercased resource id.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from adscore import actions
from adscore.events import Event, Principal, RecordError, Resource
from adscore.sources.common import cap, excerpt, get_path, get_str, parse_time, short_hash

if TYPE_CHECKING:
    from datetime import datetime

__all__ = ["graph_path", "parse"]

FAMILY = "azure"
CLOUD = "azure"

#: Largest JSON string (properties.log, requestbody, statusMessage) we decode.
MAX_EMBEDDED_JSON = 4 * 1024 * 1024
#: Most targets / tags / sources kept from one request.
MAX_ITEMS = 100
MAX_RECORDS = 100_000

OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
UPN = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"
NAME = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
TID = "http://schemas.microsoft.com/identity/claims/tenantid"

ACTIVITY_CATEGORIES = frozenset(
    {
        "administrative",
        "write",
        "delete",
        "action",
        "security",
        "policy",
        "servicehealth",
        "resourcehealth",
        "alert",
        "autoscale",
        "recommendation",
    }
)
KUBE_AUDIT_CATEGORIES = frozenset({"kube-audit", "kube-audit-admin"})
SIGNIN_CATEGORIES = frozenset(
    {
        "signinlogs",
        "noninteractiveusersigninlogs",
        "serviceprincipalsigninlogs",
        "managedidentitysigninlogs",
    }
)
GRAPH_CATEGORY = "microsoftgraphactivitylogs"
ENTRA_AUDIT_CATEGORY = "auditlogs"
#: Data-plane resource logs: Key Vault's ``AuditEvent`` and Storage's ``StorageRead``/``Write``/``Delete``.
KEYVAULT_CATEGORY = "auditevent"
STORAGE_CATEGORIES = frozenset({"storageread", "storagewrite", "storagedelete"})

#: Log Analytics tables (a workspace query's rows, e.g. ``az monitor log-analytics query`` or a
#: Sentinel export) -> the diagnostic-settings category their rows are read as.
LOG_ANALYTICS_TABLES: dict[str, str] = {
    "AzureActivity": "Administrative",
    "MicrosoftGraphActivityLogs": "MicrosoftGraphActivityLogs",
    "SigninLogs": "SignInLogs",
    "AADNonInteractiveUserSignInLogs": "NonInteractiveUserSignInLogs",
    "AADServicePrincipalSignInLogs": "ServicePrincipalSignInLogs",
    "AADManagedIdentitySignInLogs": "ManagedIdentitySignInLogs",
}

_PENDING = frozenset({"started", "start", "inprogress", "in progress"})
_FAILED = frozenset({"failed", "failure", "error", "canceled", "cancelled"})
_DENIED_WORDS = ("authorizationfailed", "forbidden", "unauthorized", "notauthorized", "403", "401")

_RESOURCE_TYPES: dict[str, str] = {
    "microsoft.compute/snapshots": "snapshot",
    "microsoft.compute/disks": "disk",
    "microsoft.compute/images": "image",
    "microsoft.compute/galleries": "gallery",
    "microsoft.compute/galleries/images": "gallery-image",
    "microsoft.compute/galleries/images/versions": "gallery-image-version",
    "microsoft.compute/restorepointcollections": "restore-point",
    "microsoft.compute/restorepointcollections/restorepoints": "restore-point",
    "microsoft.compute/restorepointcollections/restorepoints/diskrestorepoints": "restore-point",
    "microsoft.compute/virtualmachines": "instance",
    "microsoft.containerservice/managedclusters": "cluster",
}
_CREATING = frozenset(
    {actions.SNAPSHOT_CREATE, actions.IMAGE_CREATE, actions.SNAPSHOT_COPY, actions.SNAPSHOT_RESTORE}
)
_EXPORT_TARGETS = ("sas",)


# ------------------------------------------------------------------------------------------------
# entry point
# ------------------------------------------------------------------------------------------------
def parse(obj: Any, location: str) -> list[Event | RecordError]:
    """Parse any Azure record or envelope into Events and RecordErrors.

    Parameters
    ----------
    obj : Any
        A decoded JSON value: ``{"records": [...]}``, one diagnostic or Activity Log record,
        an Event Grid / CloudEvents event, or a list of any of these.
    location : str
        Where ``obj`` came from, for error reports.

    Returns
    -------
    list[Event | RecordError]
        Never raises: unreadable records become :class:`RecordError`.

    Example
    -------
    >>> parse({"records": []}, "eventhub:1")
    []
    """
    try:
        if isinstance(obj, list):
            out: list[Event | RecordError] = []
            for i, item in enumerate(obj[:MAX_RECORDS]):
                loc = f"{location}[{i}]"
                if isinstance(item, dict):
                    out.extend(_parse_object(item, loc))
                else:
                    out.append(_err("array item is not a JSON object", loc, item))
            if len(obj) > MAX_RECORDS:
                out.append(_err(f"array holds {len(obj)} items; only {MAX_RECORDS} read", location, ""))
            return out
        if isinstance(obj, dict):
            return _parse_object(obj, location)
        return [_err(f"expected a JSON object, got {type(obj).__name__}", location, obj)]
    except Exception as e:  # never raise on input
        return [_err(f"unexpected {type(e).__name__}: {str(e)[:300]}", location, obj)]


def _parse_object(obj: dict[str, Any], location: str) -> list[Event | RecordError]:
    records = obj.get("records")
    if records is not None:
        if not isinstance(records, list):
            return [_err("'records' is not an array", location, obj)]
        out: list[Event | RecordError] = []
        for i, rec in enumerate(records[:MAX_RECORDS]):
            loc = f"{location}#records[{i}]"
            if isinstance(rec, dict):
                out.extend(_guard(_parse_record, rec, loc))
            else:
                out.append(_err("record is not a JSON object", loc, rec))
        if len(records) > MAX_RECORDS:
            out.append(_err(f"'records' holds {len(records)} items; only {MAX_RECORDS} read", location, ""))
        return out
    if "eventType" in obj and "data" in obj:
        return _guard(_parse_eventgrid, obj, location)
    if "specversion" in obj:
        return _guard(_parse_cloudevent, obj, location)
    if "TimeGenerated" in obj and obj.get("Type") in LOG_ANALYTICS_TABLES:
        return _guard(_parse_log_analytics, obj, location)
    return _parse_record(obj, location)


def _guard(fn: Any, obj: dict[str, Any], location: str) -> list[Event | RecordError]:
    """Run one record's parser so a surprise spoils that record only, not its batch."""
    try:
        result: list[Event | RecordError] = fn(obj, location)
        return result
    except Exception as e:
        return [_err(f"unexpected {type(e).__name__}: {str(e)[:300]}", location, obj)]


def _parse_record(rec: dict[str, Any], loc: str) -> list[Event | RecordError]:
    category = _value(rec.get("category"))
    cat = category.lower() if isinstance(category, str) else None
    if cat in KUBE_AUDIT_CATEGORIES:
        return _parse_kube_audit(rec, loc)
    if cat == GRAPH_CATEGORY:
        return _parse_graph(rec, loc)
    if cat in SIGNIN_CATEGORIES:
        return _parse_signin(rec, loc)
    if cat == ENTRA_AUDIT_CATEGORY:
        return _parse_entra_audit(rec, loc)
    if cat == KEYVAULT_CATEGORY or cat in STORAGE_CATEGORIES:
        return _parse_data_plane(rec, loc, "keyvault" if cat == KEYVAULT_CATEGORY else "storage")
    if cat in ACTIVITY_CATEGORIES or (cat is None and "operationName" in rec and "resourceId" in rec):
        return _parse_activity(rec, loc)
    if category is None:
        keys = ",".join(sorted(str(k) for k in rec)[:12])
        return [_err(f"unrecognised Azure record: no category (keys {keys[:200]})", loc, rec)]
    return [_err(f"unsupported Azure log category {cap(category, 100)!r}", loc, rec)]


# ------------------------------------------------------------------------------------------------
# Activity Log (diagnostic-settings and REST shapes)
# ------------------------------------------------------------------------------------------------
def _parse_activity(rec: dict[str, Any], loc: str) -> list[Event | RecordError]:
    op = cap(_value(rec.get("operationName")))
    if not op:
        return [_err("missing operationName", loc, rec)]
    t = rec.get("time") or rec.get("eventTimestamp")
    when = _time_of(t, loc, rec)
    if isinstance(when, RecordError):
        return [when]
    resource_id = get_str(rec, "resourceId") or ""
    props = rec.get("properties")
    if not isinstance(props, dict):
        props = {}
    identity = rec.get("identity")
    if isinstance(identity, dict):
        claims, authz = identity.get("claims"), identity.get("authorization")
    else:
        claims, authz = rec.get("claims"), rec.get("authorization")
    outcome, error_code = _activity_outcome(rec, props)
    ip = (
        get_str(rec, "callerIpAddress", n=1024)
        or get_str(rec, "httpRequest", "clientIpAddress", n=1024)
        or get_str(_as_dict(claims), "ipaddr", n=1024)
    )
    body = _json_dict(props.get("requestbody") or props.get("requestBody"))
    if not _body_sources(body):
        # the REST API / `az monitor activity-log list` (and some exports) keep the created resource,
        # with the creationData it was made from, only in the response body
        response = _json_dict(props.get("responseBody") or props.get("responsebody"))
        if _body_sources(response):
            body = response
    tenant = get_str(rec, "tenantId")
    return [
        _arm_event(
            source="azure_activity",
            raw=rec,
            when=when,
            op=op,
            resource_id=resource_id,
            correlation_id=get_str(rec, "correlationId"),
            outcome=outcome,
            error_code=error_code,
            claims=claims,
            authz=authz,
            caller=get_str(rec, "caller"),
            ip=ip,
            subscription=get_str(rec, "subscriptionId"),
            tenant=tenant,
            region=_region(get_str(rec, "location")),
            body=body,
        )
    ]


def _arm_event(
    *,
    source: str,
    raw: dict[str, Any],
    when: datetime,
    op: str,
    resource_id: str,
    correlation_id: str | None,
    outcome: str,
    error_code: str | None,
    claims: Any,
    authz: Any,
    caller: str | None,
    ip: str | None,
    subscription: str | None,
    tenant: str | None,
    region: str | None,
    body: dict[str, Any] | None,
) -> Event:
    """Build the Event of one ARM operation (shared by the Activity Log and Event Grid)."""
    op_l = op.lower()
    rid_l = resource_id.lower()
    if correlation_id:
        event_id = short_hash(correlation_id, op_l, rid_l)
    else:
        event_id = _record_hash(raw)
    read_only = _is_read(op_l)
    action = actions.classify(CLOUD, op, read_only)
    sources = _body_sources(body)
    if action is not None and actions.is_conditional(CLOUD, op) and not _restores_from_copy(body, sources):
        action = None
    resources: list[Resource] = []
    targets: tuple[str, ...] = ()
    if rid_l:
        rtype = _resource_type(rid_l)
        if action in _CREATING:
            resources.append(Resource(rtype, rid_l, "created"))
        elif op_l.endswith("/capture/action"):
            resources.append(Resource(rtype, rid_l, "source"))
        else:
            resources.append(Resource(rtype, rid_l, "target"))
    if action in _CREATING or op_l.endswith("/capture/action"):
        for s in sources:
            s_l = s.lower()
            if s_l != rid_l:
                resources.append(Resource(_resource_type(s_l), s_l, "source"))
    if action == actions.SNAPSHOT_EXPORT and op_l.endswith("/begingetaccess/action"):
        targets = _EXPORT_TARGETS
    elif action == actions.SNAPSHOT_SHARE:
        targets = _gallery_share_targets(body)
    if op_l.count("/") and op_l.startswith("microsoft."):
        service = op_l.split("/", 1)[0]
    else:
        service = _provider(rid_l) or "azure"
    return Event(
        event_id=event_id,
        cloud=CLOUD,
        source=source,
        time=when,
        operation=op,
        service=service,
        principal=_principal(claims, authz, caller, tenant),
        action=action,
        read_only=read_only,
        outcome=outcome,
        error_code=error_code,
        source_ip=ip,
        user_agent=None,
        account=_subscription(rid_l) or subscription,
        region=region,
        resources=tuple(resources),
        targets=targets,
        correlation_id=correlation_id,
        tags=_tags(body),
        raw=raw,
    )


def _activity_outcome(rec: dict[str, Any], props: dict[str, Any]) -> tuple[str, str | None]:
    """(outcome, error code) of an Activity Log record (diagnostic-settings or REST field names)."""
    status = _value(rec.get("resultType"))
    if status is None:
        status = _value(rec.get("status"))
    sub_status = _value(rec.get("resultSignature"))
    if sub_status is None:
        sub_status = _value(rec.get("subStatus"))
    return _outcome(status, sub_status, props)


def _outcome(status: Any, sub_status: Any, props: dict[str, Any]) -> tuple[str, str | None]:
    """Map an ARM status (+ sub-status, status code, error body) to (outcome, error_code)."""
    s = status.strip().lower() if isinstance(status, str) else ""
    if s in _PENDING:
        return "pending", None
    if s not in _FAILED:
        return "success", None
    inner = _inner_error_code(props)
    code = cap(props.get("statusCode"), 200)
    sub = cap(sub_status, 200)
    if sub and "." in sub:  # "Failed.Forbidden" -> "Forbidden"
        sub = sub.rsplit(".", 1)[1] or None
    if s in ("canceled", "cancelled"):
        return "failure", inner or code or sub or "Canceled"
    error_code = inner or code or sub or (cap(status, 200) if isinstance(status, str) else None)
    probe = " ".join(x for x in (inner, code, sub) if x).lower()
    denied = any(w in probe for w in _DENIED_WORDS)
    return ("denied" if denied else "failure"), error_code


def _inner_error_code(props: dict[str, Any]) -> str | None:
    """Return ``error.code`` from an Activity Log ``statusMessage`` / ``responseBody``, if any."""
    for key in ("statusMessage", "responseBody"):
        v = props.get(key)
        if isinstance(v, dict):
            d: dict[str, Any] | None = v
        elif isinstance(v, str) and v:
            d = _json_dict(v)
            if d is None and "AuthorizationFailed" in v[:4096]:
                return "AuthorizationFailed"
        else:
            continue
        code = get_str(d, "error", "code", n=200) or get_str(d, "code", n=200)
        if code:
            return code
    return None


def _is_read(op_l: str) -> bool:
    if op_l.endswith("/read"):
        return True
    if op_l.endswith("/action"):
        verb = op_l[: -len("/action")].rsplit("/", 1)[-1]
        if verb.startswith("list"):
            return True
        return actions.lookup(CLOUD, op_l) in actions.DISCOVERY_ACTIONS
    return False


def _body_sources(body: dict[str, Any] | None) -> list[str]:
    """ARM ids a new snapshot, disk, image or image version is made from (request body)."""
    if not body:
        return []
    props = body.get("properties")
    if not isinstance(props, dict):
        return []
    found: list[str] = []
    for path in (
        ("creationData", "sourceResourceId"),
        ("creationData", "galleryImageReference", "id"),
        ("creationData", "imageReference", "id"),
        ("sourceVirtualMachine", "id"),
        ("storageProfile", "source", "id"),
        ("storageProfile", "source", "virtualMachineId"),
        ("storageProfile", "osDiskImage", "source", "id"),
        ("storageProfile", "osDisk", "snapshot", "id"),
        ("storageProfile", "osDisk", "managedDisk", "id"),
    ):
        v = get_str(props, *path)
        if v and v not in found:
            found.append(v)
    return found


def _restores_from_copy(body: dict[str, Any] | None, sources: list[str]) -> bool:
    """Condition of ``disks/write``: the disk is made from a snapshot, restore point or image.

    Marketplace images (``.../Publishers/...``) are ordinary VM builds, not restores.
    """
    for s in sources:
        s_l = s.lower()
        if "/publishers/" in s_l:
            continue
        if "/snapshots/" in s_l or "/restorepoints/" in s_l or "/images/" in s_l or "/galleries/" in s_l:
            return True
    return False


def _gallery_share_targets(body: dict[str, Any] | None) -> tuple[str, ...]:
    """Subscriptions / tenants a gallery is shared with, or ``community``."""
    if not body:
        return ()
    op_type = get_str(body, "operationType", n=100) or ""
    if op_type.lower() == "enablecommunity":
        return ("community",)
    if op_type and op_type.lower() != "add":
        return ()
    out: list[str] = []
    groups = body.get("groups")
    if isinstance(groups, list):
        for g in groups[:MAX_ITEMS]:
            ids = g.get("ids") if isinstance(g, dict) else None
            if isinstance(ids, list):
                for i in ids[:MAX_ITEMS]:
                    s = cap(i)
                    if s and s not in out:
                        out.append(s)
    return tuple(out[:MAX_ITEMS])


def _tags(body: dict[str, Any] | None) -> tuple[tuple[str, str], ...]:
    tags = body.get("tags") if body else None
    if not isinstance(tags, dict):
        return ()
    out: list[tuple[str, str]] = []
    for k, v in list(tags.items())[:MAX_ITEMS]:
        ks, vs = cap(k, 512), cap(v)
        if ks is not None:
            out.append((ks, vs or ""))
    return tuple(out)


# ------------------------------------------------------------------------------------------------
# principals
# ------------------------------------------------------------------------------------------------
def _principal(claims: Any, authz: Any, caller: str | None, tenant: str | None) -> Principal:
    """Principal from JWT claims (objectidentifier / upn / appid / idtyp), else the caller."""
    c = _as_dict(claims)
    oid = _claim(c, OID) or _claim(c, "oid")
    upn = _claim(c, UPN) or _claim(c, "upn")
    name = upn or _claim(c, NAME) or _claim(c, "unique_name") or _claim(c, "email")
    display = _claim(c, "name")
    appid = _claim(c, "appid") or _claim(c, "azp")
    mirid = _claim(c, "xms_mirid")
    idtyp = (_claim(c, "idtyp") or "").lower()
    tenant = tenant or _claim(c, TID) or _claim(c, "tid")
    evidence_type = (get_str(_as_dict(authz), "evidence", "principalType", n=100) or "").lower()
    ident = oid or name or display or caller or appid
    if not ident:
        return Principal(id="unknown", type="unknown", name="unknown", account=tenant)
    if idtyp == "app" or mirid or evidence_type == "serviceprincipal" or (not upn and appid and not name):
        ptype = "service"
    elif idtyp == "user" or upn or name or display or evidence_type == "user" or (caller and "@" in caller):
        ptype = "user"
    elif caller and _is_guid(caller):
        ptype = "service"
    else:
        ptype = "unknown"
    shown = name or (mirid if ptype == "service" else None) or display or caller or appid or ident
    # A service principal's token names its application (appid): for Microsoft's first-party services
    # (Azure Backup's "Backup Management Service", ...) a documented id no tenant can register, which
    # suppressions can match where display names and resource names could be chosen by an attacker.
    acting_app = appid.lower() if ptype == "service" and appid else None
    return Principal(id=ident.lower(), type=ptype, name=shown, account=tenant, invoked_by=acting_app)


def _claim(c: dict[str, Any], key: str) -> str | None:
    v = c.get(key)
    if isinstance(v, str):
        v = v.strip()
        return v[:1024] if v else None
    return None


# ------------------------------------------------------------------------------------------------
# Event Grid (Event Grid schema and CloudEvents 1.0 schema)
# ------------------------------------------------------------------------------------------------
def _parse_eventgrid(ev: dict[str, Any], loc: str) -> list[Event | RecordError]:
    return _resource_event(ev, loc, get_str(ev, "eventType", n=300), ev.get("eventTime"))


def _parse_cloudevent(ev: dict[str, Any], loc: str) -> list[Event | RecordError]:
    etype = get_str(ev, "type", n=300)
    if etype and not etype.startswith("Microsoft."):
        return [_err(f"CloudEvent type {etype!r} is not an Azure event", loc, ev)]
    return _resource_event(ev, loc, etype, ev.get("time"))


def _resource_event(ev: dict[str, Any], loc: str, etype: str | None, t: Any) -> list[Event | RecordError]:
    if not etype:
        return [_err("missing event type", loc, ev)]
    if etype == "Microsoft.EventGrid.SubscriptionValidationEvent":
        return [_err("Event Grid subscription validation event (answer it in the handler)", loc, ev)]
    if not etype.startswith("Microsoft.Resources.Resource"):
        return [_err(f"unsupported Event Grid event type {etype!r}", loc, ev)]
    data = ev.get("data")
    if not isinstance(data, dict):
        return [_err("Event Grid 'data' is not a JSON object", loc, ev)]
    if t is None:
        return [_err("missing time", loc, ev)]
    try:
        when = parse_time(t)
    except ValueError as e:
        return [_err(str(e), loc, ev)]
    op = get_str(data, "operationName") or get_str(_as_dict(data.get("authorization")), "action")
    if not op:
        return [_err("missing data.operationName", loc, ev)]
    resource_id = get_str(data, "resourceUri") or get_str(ev, "subject") or ""
    if etype.endswith("Success"):
        status = "Succeeded"
    elif etype.endswith("Cancel"):
        status = "Canceled"
    else:
        status = "Failed"
    outcome, error_code = _outcome(status, get_str(data, "status"), data)
    claims = data.get("claims")
    return [
        _arm_event(
            source="azure_eventgrid",
            raw=ev,
            when=when,
            op=op,
            resource_id=resource_id,
            correlation_id=get_str(data, "correlationId"),
            outcome=outcome,
            error_code=error_code,
            claims=claims,
            authz=data.get("authorization"),
            caller=None,
            ip=get_str(_as_dict(data.get("httpRequest")), "clientIpAddress", n=1024)
            or get_str(_as_dict(claims), "ipaddr", n=1024),
            subscription=get_str(data, "subscriptionId"),
            tenant=get_str(data, "tenantId"),
            region=None,
            body=None,  # Event Grid carries no request body
        )
    ]


# ------------------------------------------------------------------------------------------------
# AKS kube-audit
# ------------------------------------------------------------------------------------------------
def _parse_kube_audit(rec: dict[str, Any], loc: str) -> list[Event | RecordError]:
    props = rec.get("properties")
    if not isinstance(props, dict):
        return [_err("kube-audit record has no 'properties' object", loc, rec)]
    log = props.get("log")
    if isinstance(log, str):
        if len(log) > MAX_EMBEDDED_JSON:
            return [_err(f"properties.log is too large ({len(log)} characters)", loc, rec)]
        try:
            event = json.loads(log)
        except (ValueError, RecursionError) as e:
            return [_err(f"properties.log is not valid JSON: {str(e)[:200]}", loc, rec)]
    elif isinstance(log, dict):
        event = log
    else:
        return [_err("kube-audit record has no properties.log", loc, rec)]
    if not isinstance(event, dict):
        return [_err("properties.log is not a JSON object", loc, rec)]
    rid_l = (get_str(rec, "resourceId") or "").lower()
    cluster = None
    marker = "/managedclusters/"
    i = rid_l.find(marker)
    if i >= 0:
        cluster = rid_l[i + len(marker) :].split("/", 1)[0] or None
    from adscore.sources import kubernetes

    result: list[Event | RecordError] = kubernetes.parse_audit_event(
        event, loc, cluster=cluster, account=_subscription(rid_l), source="aks_audit"
    )
    return result


# ------------------------------------------------------------------------------------------------
# Microsoft Graph activity logs
# ------------------------------------------------------------------------------------------------
def _parse_graph(rec: dict[str, Any], loc: str) -> list[Event | RecordError]:
    props = rec.get("properties")
    if not isinstance(props, dict):
        return [_err("Graph activity record has no 'properties' object", loc, rec)]
    t = rec.get("time") or props.get("timeGenerated")
    when = _time_of(t, loc, rec)
    if isinstance(when, RecordError):
        return [when]
    method = (get_str(props, "requestMethod", n=16) or "").upper()
    uri = get_str(props, "requestUri", n=8192)
    if not method or not uri:
        return [_err("Graph activity record lacks requestMethod or requestUri", loc, rec)]
    path, collection = graph_path(uri)
    outcome, error_code = _graph_outcome(rec, props)
    read_only = method in ("GET", "HEAD")
    operation = f"{method} {path}"
    tenant = get_str(props, "tenantId") or get_str(rec, "tenantId")
    user_id = get_str(props, "userId", n=256)
    sp_id = get_str(props, "servicePrincipalId", n=256)
    app_id = get_str(props, "appId", n=256)
    idtyp = (get_str(props, "C_Idtyp", n=16) or "").lower()
    if user_id and idtyp != "app":
        principal = Principal(id=user_id.lower(), type="user", name=user_id, account=tenant)
    elif sp_id:
        principal = Principal(id=sp_id.lower(), type="service", name=app_id or sp_id, account=tenant)
    elif app_id:
        principal = Principal(id=app_id.lower(), type="service", name=app_id, account=tenant)
    else:
        principal = Principal(id="unknown", type="unknown", name="unknown", account=tenant)
    request_id = _graph_request_id(rec, props)
    event_id = short_hash("graph", request_id, method, uri) if request_id else _record_hash(rec)
    return [
        Event(
            event_id=event_id,
            cloud=CLOUD,
            source="azure_graph",
            time=when,
            operation=operation,
            service=f"graph/{collection}" if collection else "graph",
            principal=principal,
            action=actions.classify(CLOUD, operation, read_only),
            read_only=read_only,
            outcome=outcome,
            error_code=error_code,
            source_ip=get_str(props, "ipAddress", n=1024) or get_str(rec, "callerIpAddress", n=1024),
            user_agent=get_str(props, "userAgent", n=1024),
            account=tenant,
            region=get_str(props, "location", n=100) or get_str(rec, "location", n=100),
            correlation_id=get_str(props, "operationId") or request_id,
            raw=rec,
        )
    ]


def _graph_outcome(rec: dict[str, Any], props: dict[str, Any]) -> tuple[str, str | None]:
    """(outcome, error code) of a Graph activity record, from its HTTP status."""
    status = _int(props.get("responseStatusCode"))
    if status is None:
        status = _int(rec.get("resultSignature"))
    if status is None or status < 400:
        return "success", None
    return ("denied" if status in (401, 403) else "failure"), str(status)


def _graph_request_id(rec: dict[str, Any], props: dict[str, Any]) -> str | None:
    return get_str(props, "requestId") or get_str(rec, "correlationId")


# ------------------------------------------------------------------------------------------------
# Data plane: Key Vault AuditEvent and Storage resource logs
# ------------------------------------------------------------------------------------------------
#: Data-plane operation names that read: Key Vault's ``VaultGet``, ``SecretList``, ``KeyGet``...
#: and Storage's ``ListContainers``, ``ListBlobs``, ``GetContainerProperties``, ``QueryEntities``...
_DATA_READ_PREFIXES = ("list", "get", "query")
_DATA_READ_SUFFIXES = ("get", "list", "listversions", "listdeleted", "getdeleted")


def _data_plane_read(service: str, op_l: str) -> bool:
    if service == "keyvault":
        return op_l.endswith(_DATA_READ_SUFFIXES)
    return op_l.startswith(_DATA_READ_PREFIXES)


def _data_plane_principal(rec: dict[str, Any], service: str, account_name: str | None) -> Principal:
    """Key Vault: the token's claims (``identity.claim``). Storage: the OAuth requester, else the key or SAS."""
    identity = _as_dict(rec.get("identity"))
    if service == "keyvault":
        claims = identity.get("claim") or identity.get("claims")
        return _principal(claims, None, None, get_str(rec, "tenantId"))
    requester = _as_dict(identity.get("requester"))
    tenant = get_str(requester, "tenantId")
    kind = (get_str(identity, "type", n=32) or "").lower()
    upn = get_str(requester, "upn", n=256)
    oid = get_str(requester, "objectId", n=256)
    app = get_str(requester, "appId", n=256)
    if kind == "oauth" and (upn or oid or app):
        ident = (oid or upn or app or "").lower()
        ptype = "user" if upn else "service"
        return Principal(id=ident, type=ptype, name=upn or app or ident, account=tenant,
                         invoked_by=app.lower() if app and not upn else None)  # fmt: skip
    token = get_str(identity, "tokenHash", n=256)
    if kind in ("accountkey", "sas") and account_name:
        # a shared key or SAS names no person: whoever holds it, per account (and SAS token)
        ident = f"{kind}:{account_name.lower()}" + (f":{token[:24]}" if kind == "sas" and token else "")
        return Principal(id=ident, type="service", name=ident, account=tenant)
    if kind == "anonymous":
        return Principal(id="anonymous", type="anonymous", name="anonymous", account=tenant)
    return Principal(id="unknown", type="unknown", name="unknown", account=tenant)


def _parse_data_plane(rec: dict[str, Any], loc: str, service: str) -> list[Event | RecordError]:
    t = rec.get("time")
    when = _time_of(t, loc, rec)
    if isinstance(when, RecordError):
        return [when]
    op = get_str(rec, "operationName", n=200)
    if not op:
        return [_err(f"{service} log record has no operationName", loc, rec)]
    props = _as_dict(rec.get("properties"))
    resource_id = (get_str(rec, "resourceId", n=2048) or "").lower()
    account_name = get_str(props, "accountName", n=256)
    if service == "storage":
        kind = (get_str(props, "serviceType", n=32) or _storage_service(resource_id)).lower()
        svc = f"storage/{kind}" if kind else "storage"
    else:
        svc = "keyvault"
    status = _int(rec.get("statusCode")) or _int(props.get("httpStatusCode")) or _int(rec.get("resultSignature"))
    signature = (get_str(rec, "resultSignature", n=64) or get_str(rec, "statusText", n=64) or "").lower()
    if status in (401, 403) or signature in ("forbidden", "unauthorized", "authorizationerror"):
        outcome, error_code = "denied", str(status or signature)
    elif (status is not None and status >= 400) or (get_str(rec, "resultType", n=32) or "").lower() == "failure":
        outcome, error_code = "failure", str(status or signature or "failure")
    else:
        outcome, error_code = "success", None
    read_only = _data_plane_read(service, op.lower())
    operation = f"{svc}:{op}"
    principal = _data_plane_principal(rec, service, account_name)
    correlation = get_str(rec, "correlationId", n=256)
    ip = get_str(rec, "callerIpAddress", n=1024)
    if ip and service == "storage" and ip.count(":") == 1:  # storage logs write "address:port"
        ip = ip.rsplit(":", 1)[0]
    target = get_str(props, "objectKey", n=1024) or get_str(props, "id", n=1024) or resource_id or None
    return [
        Event(
            event_id=short_hash(service, correlation, op, target or "", str(t)) if correlation else _record_hash(rec),
            cloud=CLOUD,
            source=f"azure_{service}",
            time=when,
            operation=operation,
            service=svc,
            principal=principal,
            action=actions.classify(CLOUD, operation, read_only),
            read_only=read_only,
            outcome=outcome,
            error_code=error_code,
            source_ip=ip,
            user_agent=get_str(props, "userAgentHeader", n=1024) or get_str(props, "clientInfo", n=1024),
            account=_subscription(resource_id),
            region=_region(get_str(rec, "location")),
            resources=(Resource(_resource_type(resource_id), resource_id, "target"),) if resource_id else (),
            correlation_id=correlation,
            raw=rec,
        )
    ]


def _storage_service(rid_l: str) -> str:
    for kind in ("blob", "table", "queue", "file"):
        if f"/{kind}services/" in rid_l:
            return kind
    return ""


def graph_path(uri: str) -> tuple[str, str]:
    """Return (path with ids replaced by ``{id}``, lowercased collection) of a Graph request URI.

    The host, version prefix (``v1.0``, ``beta``) and query string are dropped; GUIDs, UPNs and
    e-mail addresses, numbers, long opaque keys and quoted keys become ``{id}``.

    Example
    -------
    >>> graph_path("https://graph.microsoft.com/v1.0/users/a@b.com/memberOf?$top=5")
    ('/users/{id}/memberOf', 'users')
    """
    s = uri
    i = s.find("://")
    if i >= 0:
        j = s.find("/", i + 3)
        s = s[j:] if j >= 0 else "/"
    for ch in "?#":
        k = s.find(ch)
        if k >= 0:
            s = s[:k]
    segs = [seg for seg in s.split("/") if seg][:64]
    if segs and segs[0].lower() in ("v1.0", "beta"):
        segs = segs[1:]
    out = [_graph_segment(unquote(seg)) for seg in segs]
    collection = ""
    if out:
        first = out[0]
        p = first.find("(")
        collection = (first[:p] if p > 0 else first).lower()
        if collection == "{id}":
            collection = ""
    return "/" + "/".join(out), collection[:100]


def _graph_segment(seg: str) -> str:
    if not seg or seg[0] == "$":
        return seg[:200]
    p = seg.find("(")
    if p > 0 and seg.endswith(")"):
        return seg[:p][:200] + ("({id})" if p + 1 < len(seg) - 1 else "()")
    if (
        "@" in seg
        or seg.isdigit()
        or _is_guid(seg)
        or seg[0] in "'\""
        or ":" in seg
        or (len(seg) >= 20 and any(c.isdigit() for c in seg))
    ):
        return "{id}"
    return seg[:200]


# ------------------------------------------------------------------------------------------------
# Log Analytics rows (PascalCase columns; dynamic columns as objects or as JSON text)
# ------------------------------------------------------------------------------------------------
def _dyn(row: dict[str, Any], *names: str) -> Any:
    """The first present dynamic column: an object as is, JSON object text decoded, else the value."""
    for name in names:
        v = row.get(name)
        if v is None or v == "":
            continue
        return _json_dict(v) if isinstance(v, str) and v.lstrip().startswith("{") else v
    return None


def _present(columns: dict[str, Any]) -> dict[str, Any]:
    """The columns that hold a value (Log Analytics gives empty strings for absent ones)."""
    return {k: v for k, v in columns.items() if v not in (None, "")}


def _parse_log_analytics(row: dict[str, Any], loc: str) -> list[Event | RecordError]:
    """A Log Analytics row read as the diagnostic-settings record it was ingested from."""
    table = str(row.get("Type"))
    category = LOG_ANALYTICS_TABLES[table]
    rec: dict[str, Any]
    if table == "AzureActivity":
        rec = {
            "time": row.get("TimeGenerated"),
            "operationName": row.get("OperationNameValue") or row.get("OperationName"),
            "category": row.get("CategoryValue") or category,
            "resourceId": row.get("_ResourceId") or row.get("ResourceId"),
            "resultType": row.get("ActivityStatusValue") or row.get("ActivityStatus"),
            "resultSignature": row.get("ActivitySubstatusValue") or row.get("ActivitySubstatus"),
            "callerIpAddress": row.get("CallerIpAddress"),
            "correlationId": row.get("CorrelationId"),
            "caller": row.get("Caller"),
            "claims": _dyn(row, "Claims_d", "Claims"),
            "authorization": _dyn(row, "Authorization_d", "Authorization"),
            "properties": _dyn(row, "Properties_d", "Properties") or {},
            "subscriptionId": row.get("SubscriptionId"),
            "tenantId": row.get("TenantId"),
        }
        return _parse_activity(rec, loc)
    if table == "MicrosoftGraphActivityLogs":
        props = {
            "requestUri": row.get("RequestUri"),
            "requestMethod": row.get("RequestMethod"),
            "responseStatusCode": row.get("ResponseStatusCode"),
            "userId": row.get("UserId"),
            "servicePrincipalId": row.get("ServicePrincipalId"),
            "appId": row.get("AppId"),
            "ipAddress": row.get("IPAddress") or row.get("IpAddress"),
            "userAgent": row.get("UserAgent"),
            "tenantId": row.get("AadTenantId") or row.get("TenantId"),
            "requestId": row.get("RequestId"),
            "operationId": row.get("OperationId"),
            "C_Idtyp": row.get("C_Idtyp"),
        }
        rec = {
            "time": row.get("TimeGenerated"),
            "category": category,
            "callerIpAddress": props["ipAddress"],
            "location": row.get("Location"),
            "properties": _present(props),
        }
        return _parse_graph(rec, loc)
    props = {
        "id": row.get("Id"),
        "userPrincipalName": row.get("UserPrincipalName"),
        "userId": row.get("UserId"),
        "servicePrincipalId": row.get("ServicePrincipalId"),
        "servicePrincipalName": row.get("ServicePrincipalName"),
        "appId": row.get("AppId"),
        "appDisplayName": row.get("AppDisplayName"),
        "ipAddress": row.get("IPAddress"),
        "userAgent": row.get("UserAgent"),
        "status": _dyn(row, "Status"),
    }
    rec = {
        "time": row.get("TimeGenerated"),
        "category": category,
        "operationName": row.get("OperationName"),
        "resultType": row.get("ResultType"),
        "correlationId": row.get("CorrelationId"),
        "callerIpAddress": row.get("IPAddress"),
        "tenantId": row.get("AADTenantId") or row.get("TenantId"),
        "properties": _present(props),
    }
    return _parse_signin(rec, loc)


# ------------------------------------------------------------------------------------------------
# Entra sign-in and audit logs
# ------------------------------------------------------------------------------------------------
def _parse_signin(rec: dict[str, Any], loc: str) -> list[Event | RecordError]:
    props = rec.get("properties")
    if not isinstance(props, dict):
        props = {}
    t = rec.get("time") or props.get("createdDateTime")
    when = _time_of(t, loc, rec)
    if isinstance(when, RecordError):
        return [when]
    result = rec.get("resultType")
    if result is None:
        result = get_path(props, "status", "errorCode")
    result_s = cap(result, 100)
    if result_s in (None, "", "0"):
        outcome, error_code = "success", None
    else:
        outcome, error_code = "failure", result_s
    tenant = get_str(rec, "tenantId") or get_str(props, "tenantId")
    user_id = get_str(props, "userId", n=256)
    upn = get_str(props, "userPrincipalName", n=1024)
    sp_id = get_str(props, "servicePrincipalId", n=256)
    if user_id or upn:
        ident = (user_id or upn or "").lower()
        principal = Principal(id=ident, type="user", name=upn or user_id or ident, account=tenant)
    elif sp_id:
        sp_name = get_str(props, "servicePrincipalName", n=1024) or get_str(props, "appDisplayName", n=1024)
        principal = Principal(id=sp_id.lower(), type="service", name=sp_name or sp_id, account=tenant)
    else:
        principal = Principal(id="unknown", type="unknown", name="unknown", account=tenant)
    natural = get_str(props, "id") or get_str(rec, "correlationId")
    return [
        Event(
            event_id=short_hash("signin", natural) if natural else _record_hash(rec),
            cloud=CLOUD,
            source="azure_signin",
            time=when,
            operation=get_str(rec, "operationName", n=200) or "Sign-in activity",
            service="entra/signin",
            principal=principal,
            action=actions.IDENTITY_SIGNIN,
            read_only=False,
            outcome=outcome,
            error_code=error_code,
            source_ip=get_str(rec, "callerIpAddress", n=1024) or get_str(props, "ipAddress", n=1024),
            user_agent=get_str(props, "userAgent", n=1024),
            account=tenant,
            region=None,
            correlation_id=get_str(rec, "correlationId"),
            raw=rec,
        )
    ]


def _parse_entra_audit(rec: dict[str, Any], loc: str) -> list[Event | RecordError]:
    props = rec.get("properties")
    if not isinstance(props, dict):
        props = {}
    t = rec.get("time") or props.get("activityDateTime")
    when = _time_of(t, loc, rec)
    if isinstance(when, RecordError):
        return [when]
    op = get_str(rec, "operationName", n=300) or get_str(props, "activityDisplayName", n=300)
    if not op:
        return [_err("missing operationName", loc, rec)]
    tenant = get_str(rec, "tenantId") or get_str(props, "tenantId")
    user = get_path(props, "initiatedBy", "user")
    app = get_path(props, "initiatedBy", "app")
    principal = Principal(id="unknown", type="unknown", name="unknown", account=tenant)
    if isinstance(user, dict) and (get_str(user, "id") or get_str(user, "userPrincipalName")):
        upn = get_str(user, "userPrincipalName", n=1024)
        ident = get_str(user, "id", n=256) or upn or "unknown"
        principal = Principal(id=ident.lower(), type="user", name=upn or ident, account=tenant)
    elif isinstance(app, dict) and (get_str(app, "servicePrincipalId") or get_str(app, "appId")):
        ident = get_str(app, "servicePrincipalId", n=256) or get_str(app, "appId", n=256) or "unknown"
        shown = get_str(app, "displayName", n=1024) or get_str(app, "servicePrincipalName", n=1024) or ident
        principal = Principal(id=ident.lower(), type="service", name=shown, account=tenant)
    result = (get_str(props, "result", n=50) or "success").lower()
    outcome = "success" if result in ("success", "") else "failure"
    natural = get_str(props, "id")
    service = (get_str(props, "loggedByService", n=100) or "audit").lower().replace(" ", "")
    ip = get_str(rec, "callerIpAddress", n=1024) or get_str(user, "ipAddress", n=1024)
    return [
        Event(
            event_id=short_hash("entra-audit", natural) if natural else _record_hash(rec),
            cloud=CLOUD,
            source="azure_audit",
            time=when,
            operation=op,
            service=f"entra/{service}",
            principal=principal,
            action=None,
            read_only=False,
            outcome=outcome,
            error_code=None if outcome == "success" else (get_str(props, "resultReason", n=200) or result),
            source_ip=ip,
            account=tenant,
            correlation_id=get_str(rec, "correlationId"),
            raw=rec,
        )
    ]


# ------------------------------------------------------------------------------------------------
# small helpers
# ------------------------------------------------------------------------------------------------
def _time_of(t: Any, loc: str, rec: Any) -> datetime | RecordError:
    """A record's time, or the RecordError that says why it has none."""
    if t is None:
        return _err("missing time", loc, rec)
    try:
        return parse_time(t)
    except ValueError as e:
        return _err(str(e), loc, rec)


def _err(reason: str, location: str, obj: Any) -> RecordError:
    return RecordError(family=FAMILY, reason=reason, location=location, excerpt=excerpt(obj))


def _value(v: Any) -> Any:
    """REST-shape fields are ``{"value": ..., "localizedValue": ...}``; return the value."""
    if isinstance(v, dict):
        return v.get("value")
    return v


def _as_dict(v: Any) -> dict[str, Any]:
    """A dict as is; a JSON object string (older Event Grid claims) decoded; else ``{}``."""
    if isinstance(v, dict):
        return v
    if isinstance(v, str) and v.startswith("{"):
        return _json_dict(v) or {}
    return {}


def _json_dict(v: Any) -> dict[str, Any] | None:
    """Decode a JSON object embedded as a string (capped); None if it is not one."""
    if isinstance(v, dict):
        return v
    if not isinstance(v, str) or not v or len(v) > MAX_EMBEDDED_JSON:
        return None
    s = v.lstrip()
    if not s.startswith("{"):
        return None
    try:
        d = json.loads(s)
    except (ValueError, RecursionError):
        return None
    return d if isinstance(d, dict) else None


def _int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str) and v.strip().isdigit() and len(v) < 10:
        return int(v)
    return None


def _is_guid(s: str) -> bool:
    if len(s) != 36 or s[8] != "-" or s[13] != "-" or s[18] != "-" or s[23] != "-":
        return False
    return all(c in "0123456789abcdefABCDEF" for c in s.replace("-", ""))


def _subscription(rid_l: str) -> str | None:
    i = rid_l.find("/subscriptions/")
    if i < 0:
        return None
    sub = rid_l[i + 15 :].split("/", 1)[0]
    return sub[:200] or None


def _provider(rid_l: str) -> str | None:
    i = rid_l.rfind("/providers/")
    if i < 0:
        return None
    return rid_l[i + 11 :].split("/", 1)[0][:200] or None


def _resource_type(rid_l: str) -> str:
    i = rid_l.rfind("/providers/")
    if i < 0:
        if "/resourcegroups/" in rid_l:
            return "resource-group"
        return "subscription" if rid_l.startswith("/subscriptions/") else "resource"
    parts = rid_l[i + 11 :].split("/")
    types = parts[1::2]
    if not types:
        return "resource"
    arm_type = parts[0] + "/" + "/".join(types)
    return _RESOURCE_TYPES.get(arm_type) or types[-1][:100]


def _region(location: str | None) -> str | None:
    if not location or location.lower() == "global":
        return None
    return location[:100]


def _record_hash(rec: dict[str, Any]) -> str:
    """A stable id for a record without a natural one."""
    try:
        text = json.dumps(rec, sort_keys=True, default=str)
    except (ValueError, TypeError, RecursionError):
        text = "|".join(sorted(str(k) for k in rec)) + "|" + excerpt(rec, 2000)
    return short_hash("azure-record", text)


# ------------------------------------------------------------------------------------------------
# route before building
# ------------------------------------------------------------------------------------------------
Probed = tuple[str, str | None, str, tuple[str, str, str, str]]


def probe(obj: Any) -> Probed | None:
    """What the engine routes one Azure record by, read without building its :class:`Event`, or None.

    :func:`parse`'s answer for one diagnostic-settings record (as an Event Hub delivery carries it) of
    the Activity Log, Microsoft Graph activity logs or AKS ``kube-audit``; a ``{"records": [...]}``
    document, an Event Grid or CloudEvents event, a Log Analytics row, another category, a record
    without a correlation or request id (its id is a hash of the whole record), an operation whose
    request body decides its action, or anything the parser would refuse gives None.
    """
    if type(obj) is not dict:
        return None
    if obj.get("records") is not None or ("eventType" in obj and "data" in obj) or "specversion" in obj:
        return None
    if "TimeGenerated" in obj and obj.get("Type") in LOG_ANALYTICS_TABLES:
        return None
    category = _value(obj.get("category"))
    cat = category.lower() if isinstance(category, str) else None
    if cat in KUBE_AUDIT_CATEGORIES:
        return _probe_kube_audit(obj)
    if cat == GRAPH_CATEGORY:
        return _probe_graph(obj)
    if cat in ACTIVITY_CATEGORIES or (cat is None and "operationName" in obj and "resourceId" in obj):
        return _probe_activity(obj)
    return None


def _probe_activity(rec: dict[str, Any]) -> Probed | None:
    op = cap(_value(rec.get("operationName")))
    if not op:
        return None
    t = rec.get("time") or rec.get("eventTimestamp")
    if t is None:
        return None
    parse_time(t)  # a ValueError leaves the record to the parser, which says what is wrong
    correlation_id = get_str(rec, "correlationId")
    if not correlation_id:
        return None
    op_l = op.lower()
    read_only = _is_read(op_l)
    action = actions.classify(CLOUD, op, read_only)
    if action is not None and actions.is_conditional(CLOUD, op):
        return None  # whether it restores from a copy is in the request body
    props = rec.get("properties")
    outcome, _code = _activity_outcome(rec, props if isinstance(props, dict) else {})
    rid_l = (get_str(rec, "resourceId") or "").lower()
    event_id = short_hash(correlation_id, op_l, rid_l)
    return CLOUD, action, outcome, ("azure_activity", event_id, op, outcome)


def _probe_graph(rec: dict[str, Any]) -> Probed | None:
    props = rec.get("properties")
    if not isinstance(props, dict):
        return None
    t = rec.get("time") or props.get("timeGenerated")
    if t is None:
        return None
    parse_time(t)
    method = (get_str(props, "requestMethod", n=16) or "").upper()
    uri = get_str(props, "requestUri", n=8192)
    request_id = _graph_request_id(rec, props)
    if not method or not uri or not request_id:
        return None
    operation = f"{method} {graph_path(uri)[0]}"
    outcome, _code = _graph_outcome(rec, props)
    action = actions.classify(CLOUD, operation, method in ("GET", "HEAD"))
    return CLOUD, action, outcome, ("azure_graph", short_hash("graph", request_id, method, uri), operation, outcome)


def _probe_kube_audit(rec: dict[str, Any]) -> Probed | None:
    props = rec.get("properties")
    log = props.get("log") if isinstance(props, dict) else None
    if isinstance(log, str):
        if len(log) > MAX_EMBEDDED_JSON:
            return None
        event = json.loads(log)  # a ValueError leaves the record to the parser
    else:
        event = log
    from adscore.sources import kubernetes

    return kubernetes.probe_audit_event(event, "aks_audit")
