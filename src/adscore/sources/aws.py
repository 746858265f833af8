"""AWS log family: CloudTrail records and every envelope that carries them.

Shapes :func:`parse` accepts (already decoded from JSON):

- one CloudTrail record, or a list of them;
- a CloudTrail log file ``{"Records": [...]}`` (S3 delivery);
- an EventBridge event whose ``detail-type`` is ``AWS API Call via CloudTrail``,
  ``AWS Service Event via CloudTrail`` or ``AWS Console Sign In via CloudTrail``;
- a CloudWatch Logs subscription payload: the Lambda event
  ``{"awslogs": {"data": <base64 gzip>}}`` or the decoded ``DATA_MESSAGE`` /
  ``CONTROL_MESSAGE``. Each log event's message is a CloudTrail record or, in
  an EKS ``/aws/eks/<cluster>/cluster`` log group, a Kubernetes audit event
  (handed to :func:`adscore.sources.kubernetes.parse_audit_event` with the
  cluster and account).

Delivery helpers that do no I/O: :func:`unwrap_cwlogs`,
:func:`unwrap_s3_notification` / :func:`unwrap_s3_objects`,
:func:`is_cloudtrail_object`, and :func:`iter_cloudtrail_stream`, which reads
the records of a (gzipped) CloudTrail file from any object with ``read(n)``
without holding the whole file.

This is the hot path: the common record costs a handful of dict lookups, one
``fromisoformat`` and two object constructions. Anything per operation
(service name, action, resource extractor) is looked up once per distinct
operation in small bounded caches.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

import orjson

from adscore import actions
from adscore.events import UNKNOWN_PRINCIPAL, Event, Principal, RecordError, Resource
from adscore.sources.common import excerpt, parse_time
from adscore.sources.stream import Readable as _Readable
from adscore.sources.stream import Scanner, StreamError, iter_array, iter_members, iter_text

__all__ = [
    "CLOUDTRAIL_DETAIL_TYPES",
    "is_cloudtrail_object",
    "is_s3_notification",
    "iter_cloudtrail_stream",
    "parse",
    "parse_cloudtrail",
    "parse_cloudtrail_stream",
    "unwrap_cwlogs",
    "unwrap_s3_notification",
    "unwrap_s3_objects",
]

FAMILY = "cloudtrail"
SOURCE = "cloudtrail"

MAX_STR = 4096
MAX_UA = 1024
MAX_TAGS = 50
MAX_ITEMS = 1000
#: Largest decompressed CloudWatch Logs payload accepted (a real one is at most a few MB).
MAX_CWLOGS_BYTES = 32 << 20
#: Largest single record :func:`iter_cloudtrail_stream` will buffer (characters).

#: EventBridge detail-types whose ``detail`` is a CloudTrail record.
CLOUDTRAIL_DETAIL_TYPES: frozenset[str] = frozenset(
    {
        "AWS API Call via CloudTrail",
        "AWS Service Event via CloudTrail",
        "AWS Console Sign In via CloudTrail",
        "AWS Console Action via CloudTrail",
    }
)

_READ_PREFIXES = ("Describe", "Get", "List", "Head", "Lookup", "Search", "Scan", "Query", "BatchGet")


def _is_read_only(flag: object, name: str) -> bool:
    """CloudTrail's ``readOnly`` (a bool, or the string a few exporters write); else guessed from the name."""
    if flag is True or flag is False:
        return flag
    if type(flag) is str:
        return flag.lower() == "true"
    return name.startswith(_READ_PREFIXES)


_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "Client.UnauthorizedOperation",
        "UnauthorizedAccess",
        "Forbidden",
        "AuthorizationError",
    }
)
_DENIED_PARTS = ("accessdenied", "unauthorized", "notauthorized", "forbidden", "authorizationerror")

_CACHE_MAX = 4096




# ------------------------------------------------------------------------------------------
# small helpers
# ------------------------------------------------------------------------------------------


def _err(reason: str, location: str, obj: object = None, family: str = FAMILY) -> RecordError:
    return RecordError(
        family=family, reason=reason, location=location, excerpt=excerpt(obj) if obj is not None else ""
    )


def _s(v: object, n: int = MAX_STR) -> str | None:
    """A capped string of a scalar, or None (dicts, lists, None, empty strings)."""
    if type(v) is str:
        if not v:
            return None
        return v if len(v) <= n else v[:n]
    if isinstance(v, bool) or v is None or isinstance(v, dict | list):
        return None
    if isinstance(v, int | float):
        return str(v)[:n]
    return None


def _d(v: object) -> dict[str, Any]:
    return v if type(v) is dict else {}


def _items(v: object) -> list[Any]:
    """The elements of an EC2-style list: ``[...]``, ``{"items": [...]}`` or ``{"item": ...}``."""
    if type(v) is list:
        return v[:MAX_ITEMS]
    if type(v) is dict:
        inner = v.get("items", v.get("item"))
        if type(inner) is list:
            return inner[:MAX_ITEMS]
        if type(inner) is dict:
            return [inner]
    return []


def _get_ci(d: dict[str, Any], key: str) -> Any:
    """``d[key]``, else ``d[Key]`` (EC2 logs a few requests with capitalised members)."""
    v = d.get(key)
    if v is None:
        v = d.get(key[:1].upper() + key[1:])
    return v


def _unwrap_xmlish(d: dict[str, Any]) -> dict[str, Any]:
    """``{"CreateSnapshotsResponse": {...}}`` -> the inner dict (newer EC2 APIs log this form)."""
    if len(d) == 1:
        ((k, v),) = d.items()
        if type(v) is dict and (k.endswith("Response") or k.endswith("Request")):
            return v
    return d


def _time(v: object) -> datetime:
    if type(v) is str and len(v) == 20 and v[19] == "Z":
        try:
            return datetime.fromisoformat(v)
        except ValueError:
            pass
    return parse_time(v)


def _record_hash(rec: dict[str, Any]) -> str:
    try:
        data = orjson.dumps(rec, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        data = json.dumps(rec, sort_keys=True, default=str).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=12).hexdigest()


def _outcome(code: str) -> str:
    if code in _DENIED_CODES:
        return "denied"
    low = code.lower()
    for part in _DENIED_PARTS:
        if part in low:
            return "denied"
    return "failure"


def _record_outcome(rec: dict[str, Any]) -> tuple[str | None, str]:
    """A CloudTrail record's error code (None without one) and outcome: success, failure or denied."""
    if "errorCode" not in rec and "errorMessage" not in rec:  # rare: membership tests keep the common path cheap
        return None, "success"
    code = rec.get("errorCode")
    if code:
        error_code = _s(code)
        return error_code, _outcome(error_code) if error_code else "failure"
    return None, "failure" if rec.get("errorMessage") else "success"


def _role_arn_from_session_arn(arn: str) -> tuple[str | None, str | None, str | None]:
    """``arn:aws:sts::1:assumed-role/R/s`` -> (``arn:aws:iam::1:role/R``, ``R``, ``s``)."""
    parts = arn.split(":", 5)
    if len(parts) != 6:
        return None, None, None
    res = parts[5].split("/")
    if len(res) >= 3 and res[0] == "assumed-role":
        return f"arn:{parts[1]}:iam::{parts[4]}:role/{res[1]}", res[1], "/".join(res[2:])
    return None, None, None


# ------------------------------------------------------------------------------------------
# principal
# ------------------------------------------------------------------------------------------


def _principal(ui: dict[str, Any]) -> Principal:
    """The principal of a ``userIdentity`` block (ids built from parts are capped too)."""
    p = _principal_of(ui)
    if len(p.id) > MAX_STR or len(p.name) > MAX_STR or (p.session is not None and len(p.session) > MAX_STR):
        p = Principal(
            id=p.id[:MAX_STR],
            type=p.type,
            name=p.name[:MAX_STR],
            account=p.account,
            session=p.session[:MAX_STR] if p.session is not None else None,
            invoked_by=p.invoked_by,
        )
    return p


def _principal_of(ui: dict[str, Any]) -> Principal:
    t = ui.get("type")
    acct = _s(ui.get("accountId"))
    inv = _s(ui.get("invokedBy"))
    arn = _s(ui.get("arn"))
    if t == "AssumedRole":
        issuer = _d(_d(ui.get("sessionContext")).get("sessionIssuer"))
        rid = _s(issuer.get("arn"))
        rname = _s(issuer.get("userName"))
        session = None
        if arn:
            d_arn, d_name, session = _role_arn_from_session_arn(arn)
            rid = rid or d_arn
            rname = rname or d_name
        if session is None:
            pid = _s(ui.get("principalId"))
            if pid and ":" in pid:
                session = pid.split(":", 1)[1] or None
        if not rid:
            rid = arn or _s(ui.get("principalId")) or "unknown"
        return Principal(
            id=rid, type="role", name=rname or rid, account=acct, session=session, invoked_by=inv
        )
    if t == "IAMUser":
        name = _s(ui.get("userName"))
        pid = arn or (f"arn:aws:iam::{acct}:user/{name}" if acct and name else None)
        pid = pid or _s(ui.get("principalId")) or "unknown"
        return Principal(id=pid, type="user", name=name or pid, account=acct, invoked_by=inv)
    if t == "Root":
        pid = arn or (f"arn:aws:iam::{acct}:root" if acct else None) or _s(ui.get("principalId")) or "root"
        return Principal(id=pid, type="user", name="root", account=acct, invoked_by=inv)
    if t == "AWSService":
        pid = inv or _s(ui.get("principalId")) or "unknown"
        return Principal(id=pid, type="service", name=pid, account=acct, invoked_by=inv)
    if t == "AWSAccount" or (t is None and not arn and acct):
        pid = f"arn:aws:iam::{acct}:root" if acct else (_s(ui.get("principalId")) or "unknown")
        return Principal(id=pid, type="unknown", name=acct or pid, account=acct, invoked_by=inv)
    if t == "FederatedUser":
        issuer = _d(_d(ui.get("sessionContext")).get("sessionIssuer"))
        pid = _s(issuer.get("arn")) or arn or _s(ui.get("principalId")) or "unknown"
        session = arn.rsplit("/", 1)[1] if arn and "/" in arn else None
        return Principal(
            id=pid,
            type="user",
            name=_s(issuer.get("userName")) or pid,
            account=acct,
            session=session,
            invoked_by=inv,
        )
    if t == "IdentityCenterUser":
        uid = _s(_d(ui.get("onBehalfOf")).get("userId")) or _s(ui.get("principalId")) or arn or "unknown"
        return Principal(
            id=uid, type="user", name=_s(ui.get("userName")) or uid, account=acct, invoked_by=inv
        )
    # SAMLUser, WebIdentityUser, Directory, Unknown, or a record without a type
    pid = arn or _s(ui.get("principalId")) or _s(ui.get("userName"))
    if pid:
        typ = "user" if t in ("SAMLUser", "WebIdentityUser", "Directory") else "unknown"
        return Principal(id=pid, type=typ, name=_s(ui.get("userName")) or pid, account=acct, invoked_by=inv)
    if inv:
        return Principal(id=inv, type="service", name=inv, account=acct, invoked_by=inv)
    return UNKNOWN_PRINCIPAL


# ------------------------------------------------------------------------------------------
# resources, targets and request conditions, per operation
# ------------------------------------------------------------------------------------------

#: (resources, targets, condition holds)
_Extracted = tuple[list[Resource], list[str], bool]
#: extractor(record, requestParameters, responseElements, region, account)
_Extractor = Callable[
    [dict[str, Any], dict[str, Any], dict[str, Any], "str | None", "str | None"], _Extracted
]


def _short_rds(v: str, region: str | None, account: str | None) -> str:
    """An RDS ARN in the event's own region and account -> its identifier (as other calls log it)."""
    if v.startswith("arn:") and ":rds:" in v:
        parts = v.split(":", 6)
        if len(parts) == 7 and parts[3] == region and parts[4] == account:
            return parts[6]
    return v


def _add(
    out: list[Resource], typ: str, v: object, role: str, region: str | None, account: str | None
) -> None:
    s = _s(v)
    if s is None:
        return
    if typ.startswith("db-"):
        s = _short_rds(s, region, account)
    r = Resource(typ, s, role)
    if r not in out:
        out.append(r)


def _simple(*specs: tuple[str, str, str, str]) -> _Extractor:
    """Extractor from ``(section, key, resource type, role)``; section ``req`` or ``resp``."""

    def extract(
        rec: dict[str, Any],
        req: dict[str, Any],
        resp: dict[str, Any],
        region: str | None,
        account: str | None,
    ) -> _Extracted:
        out: list[Resource] = []
        for section, key, typ, role in specs:
            v = (req if section == "req" else resp).get(key)
            if type(v) is list:
                for x in v[:MAX_ITEMS]:
                    _add(out, typ, x, role, region, account)
            else:
                _add(out, typ, v, role, region, account)
        return out, [], True

    return extract


def _ec2_grants(perm: object, allow_org: bool) -> list[str]:
    """Accounts / groups added by a createVolumePermission or launchPermission block."""
    targets: list[str] = []
    for item in _items(_d(perm).get("add")):
        if type(item) is not dict:
            continue
        uid = _s(item.get("userId"))
        if uid:
            targets.append(uid)
        if item.get("group") == "all":
            targets.append("all")
        if allow_org:
            for k in ("organizationArn", "organizationalUnitArn"):
                v = _s(item.get(k))
                if v:
                    targets.append(v)
    return list(dict.fromkeys(targets))


def _ec2_operation_add(req: dict[str, Any]) -> list[str]:
    """The flat request form: ``operationType: add`` with ``userIds`` / ``groupNames``."""
    if str(req.get("operationType", "")).lower() != "add":
        return []
    targets: list[str] = []
    for key, item_key in (
        ("userIds", "userId"),
        ("userId", "userId"),
        ("groupNames", "group"),
        ("groups", "group"),
    ):
        for x in _items(req.get(key)):
            v = _s(x.get(item_key)) if type(x) is dict else _s(x)
            if v and (item_key == "userId" or v == "all"):
                targets.append(v)
    return list(dict.fromkeys(targets))


def _ex_modify_snapshot_attribute(
    rec: dict[str, Any], req: dict[str, Any], resp: dict[str, Any], region: str | None, account: str | None
) -> _Extracted:
    out: list[Resource] = []
    _add(out, "snapshot", req.get("snapshotId"), "target", region, account)
    targets = _ec2_grants(req.get("createVolumePermission"), False) or _ec2_operation_add(req)
    return out, targets, bool(targets)


def _ex_modify_image_attribute(
    rec: dict[str, Any], req: dict[str, Any], resp: dict[str, Any], region: str | None, account: str | None
) -> _Extracted:
    out: list[Resource] = []
    _add(out, "image", req.get("imageId"), "target", region, account)
    targets = _ec2_grants(req.get("launchPermission"), True)
    if not targets and str(req.get("attribute", req.get("attributeType", ""))).lower() in (
        "",
        "launchpermission",
    ):
        targets = _ec2_operation_add(req)
    return out, targets, bool(targets)


def _ex_create_volume(
    rec: dict[str, Any], req: dict[str, Any], resp: dict[str, Any], region: str | None, account: str | None
) -> _Extracted:
    out: list[Resource] = []
    _add(out, "snapshot", req.get("snapshotId"), "source", region, account)
    holds = bool(out)
    _add(out, "volume", resp.get("volumeId"), "created", region, account)
    return out, [], holds


def _ex_create_snapshots(
    rec: dict[str, Any], req: dict[str, Any], resp: dict[str, Any], region: str | None, account: str | None
) -> _Extracted:
    out: list[Resource] = []
    req = _unwrap_xmlish(req)
    resp = _unwrap_xmlish(resp)
    spec = _d(_get_ci(req, "instanceSpecification"))
    _add(out, "instance", _get_ci(spec, "instanceId"), "source", region, account)
    for item in _items(_get_ci(resp, "snapshotSet")):
        if type(item) is dict:
            _add(out, "snapshot", item.get("snapshotId"), "created", region, account)
            _add(out, "volume", item.get("volumeId"), "source", region, account)
    return out, [], True


def _ex_register_image(
    rec: dict[str, Any], req: dict[str, Any], resp: dict[str, Any], region: str | None, account: str | None
) -> _Extracted:
    out: list[Resource] = []
    for item in _items(req.get("blockDeviceMapping", req.get("blockDeviceMappings"))):
        if type(item) is dict:
            _add(out, "snapshot", _d(item.get("ebs")).get("snapshotId"), "source", region, account)
    _add(out, "image", resp.get("imageId"), "created", region, account)
    return out, [], True


def _ex_shared_snapshot(
    rec: dict[str, Any], req: dict[str, Any], resp: dict[str, Any], region: str | None, account: str | None
) -> _Extracted:
    out: list[Resource] = []
    details = _d(rec.get("serviceEventDetails"))
    _add(out, "snapshot", details.get("snapshotId") or req.get("snapshotId"), "target", region, account)
    copier = _s(_d(rec.get("userIdentity")).get("accountId"))
    return out, [copier] if copier else [], True


def _ex_rds_share(
    rec: dict[str, Any], req: dict[str, Any], resp: dict[str, Any], region: str | None, account: str | None
) -> _Extracted:
    out: list[Resource] = []
    _add(out, "db-snapshot", req.get("dBSnapshotIdentifier"), "target", region, account)
    _add(out, "db-cluster-snapshot", req.get("dBClusterSnapshotIdentifier"), "target", region, account)
    targets: list[str] = []
    if req.get("attributeName") == "restore":
        for v in _items(req.get("valuesToAdd")):
            s = _s(v)
            if s:
                targets.append(s)
    targets = list(dict.fromkeys(targets))
    return out, targets, bool(targets)


def _ex_rds_export(
    rec: dict[str, Any], req: dict[str, Any], resp: dict[str, Any], region: str | None, account: str | None
) -> _Extracted:
    out: list[Resource] = []
    arn = _s(req.get("sourceArn"))
    if arn:
        typ = (
            "db-cluster-snapshot"
            if ":cluster-snapshot:" in arn
            else ("db-cluster" if ":cluster:" in arn else "db-snapshot")
        )
        _add(out, typ, arn, "target", region, account)
    return out, [], True


def _ex_redshift_share(
    rec: dict[str, Any], req: dict[str, Any], resp: dict[str, Any], region: str | None, account: str | None
) -> _Extracted:
    out: list[Resource] = []
    _add(
        out,
        "cluster-snapshot",
        req.get("snapshotIdentifier") or req.get("snapshotArn"),
        "target",
        region,
        account,
    )
    acct = _s(req.get("accountWithRestoreAccess"))
    return out, [acct] if acct else [], True


def _ex_ecr_repository(
    rec: dict[str, Any], req: dict[str, Any], resp: dict[str, Any], region: str | None, account: str | None
) -> _Extracted:
    """ECR (and ECR Public) reads that name repositories: ``repositoryName`` or ``repositoryNames``.

    The repository is given as its ARN (registry id = the account that owns it), so the same
    name in two registries stays two repositories.
    """
    out: list[Resource] = []
    registry = _s(req.get("registryId")) or account or ""
    names = req.get("repositoryNames")
    values = names[:MAX_ITEMS] if type(names) is list else [req.get("repositoryName")]
    service = "ecr-public" if str(rec.get("eventSource") or "").startswith("ecr-public") else "ecr"
    for v in values:
        name = _s(v)
        if name:
            arn = f"arn:aws:{service}:{region or ''}:{registry}:repository/{name}"
            _add(out, "repository", arn, "target", region, account)
    return out, [], True


_EXTRACTORS: dict[str, _Extractor] = {
    # EC2 / EBS
    "ec2:createsnapshot": _simple(
        ("req", "volumeId", "volume", "source"), ("resp", "snapshotId", "snapshot", "created")
    ),
    "ec2:createsnapshots": _ex_create_snapshots,
    # ECR reads that name repositories (registry enumeration counts distinct repositories)
    **{
        f"{svc}:{op}": _ex_ecr_repository
        for svc in ("ecr", "ecr-public")
        for op in (
            "describeimages",
            "listimages",
            "describerepositories",
            "describeimagescanfindings",
            "getrepositorypolicy",
            "getlifecyclepolicy",
            "batchgetimage",
            "listtagsforresource",
        )
    },
    "ec2:copysnapshot": _simple(
        ("req", "sourceSnapshotId", "snapshot", "source"), ("resp", "snapshotId", "snapshot", "created")
    ),
    "ec2:createimage": _simple(
        ("req", "instanceId", "instance", "source"), ("resp", "imageId", "image", "created")
    ),
    "ec2:registerimage": _ex_register_image,
    "ec2:copyimage": _simple(
        ("req", "sourceImageId", "image", "source"), ("resp", "imageId", "image", "created")
    ),
    "ec2:createrestoreimagetask": _simple(("resp", "imageId", "image", "created")),
    "ec2:createstoreimagetask": _simple(("req", "imageId", "image", "target")),
    "ec2:exportimage": _simple(("req", "imageId", "image", "target")),
    "ec2:createinstanceexporttask": _simple(("req", "instanceId", "instance", "target")),
    "ec2:modifysnapshotattribute": _ex_modify_snapshot_attribute,
    "ec2:modifyimageattribute": _ex_modify_image_attribute,
    "ec2:createvolume": _ex_create_volume,
    "ec2:createreplacerootvolumetask": _simple(
        ("req", "instanceId", "instance", "target"),
        ("req", "snapshotId", "snapshot", "source"),
        ("req", "imageId", "image", "source"),
    ),
    "ec2:restoresnapshotfromrecyclebin": _simple(("req", "snapshotId", "snapshot", "target")),
    "ec2:restoreimagefromrecyclebin": _simple(("req", "imageId", "image", "target")),
    "ec2:deletesnapshot": _simple(("req", "snapshotId", "snapshot", "target")),
    "ec2:deregisterimage": _simple(("req", "imageId", "image", "target")),
    "ec2:sharedsnapshotcopyinitiated": _ex_shared_snapshot,
    "ec2:sharedsnapshotvolumecreated": _ex_shared_snapshot,
    "ebs:startsnapshot": _simple(
        ("req", "parentSnapshotId", "snapshot", "source"), ("resp", "snapshotId", "snapshot", "created")
    ),
    "ebs:listsnapshotblocks": _simple(("req", "snapshotId", "snapshot", "target")),
    "ebs:listchangedblocks": _simple(
        ("req", "firstSnapshotId", "snapshot", "target"), ("req", "secondSnapshotId", "snapshot", "target")
    ),
    # RDS (also Aurora, DocumentDB, Neptune)
    "rds:createdbsnapshot": _simple(
        ("req", "dBInstanceIdentifier", "db-instance", "source"),
        ("req", "dBSnapshotIdentifier", "db-snapshot", "created"),
    ),
    "rds:createdbclustersnapshot": _simple(
        ("req", "dBClusterIdentifier", "db-cluster", "source"),
        ("req", "dBClusterSnapshotIdentifier", "db-cluster-snapshot", "created"),
    ),
    "rds:copydbsnapshot": _simple(
        ("req", "sourceDBSnapshotIdentifier", "db-snapshot", "source"),
        ("req", "targetDBSnapshotIdentifier", "db-snapshot", "created"),
    ),
    "rds:copydbclustersnapshot": _simple(
        ("req", "sourceDBClusterSnapshotIdentifier", "db-cluster-snapshot", "source"),
        ("req", "targetDBClusterSnapshotIdentifier", "db-cluster-snapshot", "created"),
    ),
    "rds:modifydbsnapshotattribute": _ex_rds_share,
    "rds:modifydbclustersnapshotattribute": _ex_rds_share,
    "rds:startexporttask": _ex_rds_export,
    "rds:restoredbinstancefromdbsnapshot": _simple(
        ("req", "dBSnapshotIdentifier", "db-snapshot", "source"),
        ("req", "dBClusterSnapshotIdentifier", "db-cluster-snapshot", "source"),
        ("req", "dBInstanceIdentifier", "db-instance", "created"),
    ),
    "rds:restoredbclusterfromsnapshot": _simple(
        ("req", "snapshotIdentifier", "db-snapshot", "source"),
        ("req", "dBClusterIdentifier", "db-cluster", "created"),
    ),
    "rds:restoredbinstancetopointintime": _simple(
        ("req", "sourceDBInstanceIdentifier", "db-instance", "source"),
        ("req", "targetDBInstanceIdentifier", "db-instance", "created"),
    ),
    "rds:restoredbclustertopointintime": _simple(
        ("req", "sourceDBClusterIdentifier", "db-cluster", "source"),
        ("req", "dBClusterIdentifier", "db-cluster", "created"),
    ),
    "rds:restoredbinstancefroms3": _simple(("req", "dBInstanceIdentifier", "db-instance", "created")),
    "rds:deletedbsnapshot": _simple(("req", "dBSnapshotIdentifier", "db-snapshot", "target")),
    "rds:deletedbclustersnapshot": _simple(
        ("req", "dBClusterSnapshotIdentifier", "db-cluster-snapshot", "target")
    ),
    # Redshift
    "redshift:createclustersnapshot": _simple(
        ("req", "clusterIdentifier", "db-cluster", "source"),
        ("req", "snapshotIdentifier", "cluster-snapshot", "created"),
    ),
    "redshift:copyclustersnapshot": _simple(
        ("req", "sourceSnapshotIdentifier", "cluster-snapshot", "source"),
        ("req", "targetSnapshotIdentifier", "cluster-snapshot", "created"),
    ),
    "redshift:authorizesnapshotaccess": _ex_redshift_share,
    "redshift:restorefromclustersnapshot": _simple(
        ("req", "snapshotIdentifier", "cluster-snapshot", "source"),
        ("req", "clusterIdentifier", "db-cluster", "created"),
    ),
    "redshift:restoretablefromclustersnapshot": _simple(
        ("req", "snapshotIdentifier", "cluster-snapshot", "source"),
        ("req", "clusterIdentifier", "db-cluster", "target"),
    ),
    "redshift:deleteclustersnapshot": _simple(("req", "snapshotIdentifier", "cluster-snapshot", "target")),
    # Lightsail
    "lightsail:createinstancesnapshot": _simple(
        ("req", "instanceName", "instance", "source"), ("req", "instanceSnapshotName", "snapshot", "created")
    ),
    "lightsail:createdisksnapshot": _simple(
        ("req", "diskName", "disk", "source"),
        ("req", "instanceName", "instance", "source"),
        ("req", "diskSnapshotName", "snapshot", "created"),
    ),
    "lightsail:createrelationaldatabasesnapshot": _simple(
        ("req", "relationalDatabaseName", "db-instance", "source"),
        ("req", "relationalDatabaseSnapshotName", "db-snapshot", "created"),
    ),
    "lightsail:copysnapshot": _simple(
        ("req", "sourceSnapshotName", "snapshot", "source"),
        ("req", "targetSnapshotName", "snapshot", "created"),
    ),
    "lightsail:exportsnapshot": _simple(("req", "sourceSnapshotName", "snapshot", "target")),
    "lightsail:createinstancesfromsnapshot": _simple(
        ("req", "instanceSnapshotName", "snapshot", "source"), ("req", "instanceNames", "instance", "created")
    ),
    "lightsail:creatediskfromsnapshot": _simple(
        ("req", "diskSnapshotName", "snapshot", "source"), ("req", "diskName", "disk", "created")
    ),
    "lightsail:createrelationaldatabasefromsnapshot": _simple(
        ("req", "relationalDatabaseSnapshotName", "db-snapshot", "source"),
        ("req", "relationalDatabaseName", "db-instance", "created"),
    ),
    "lightsail:deleteinstancesnapshot": _simple(("req", "instanceSnapshotName", "snapshot", "target")),
    "lightsail:deletedisksnapshot": _simple(("req", "diskSnapshotName", "snapshot", "target")),
    "lightsail:deleterelationaldatabasesnapshot": _simple(
        ("req", "relationalDatabaseSnapshotName", "db-snapshot", "target")
    ),
    # ElastiCache and MemoryDB
    "elasticache:createsnapshot": _simple(
        ("req", "cacheClusterId", "db-cluster", "source"),
        ("req", "replicationGroupId", "db-cluster", "source"),
        ("req", "snapshotName", "snapshot", "created"),
    ),
    "elasticache:copysnapshot": _simple(
        ("req", "sourceSnapshotName", "snapshot", "source"),
        ("req", "targetSnapshotName", "snapshot", "created"),
    ),
    "elasticache:deletesnapshot": _simple(("req", "snapshotName", "snapshot", "target")),
    "memorydb:createsnapshot": _simple(
        ("req", "clusterName", "db-cluster", "source"), ("req", "snapshotName", "snapshot", "created")
    ),
    "memorydb:copysnapshot": _simple(
        ("req", "sourceSnapshotName", "snapshot", "source"),
        ("req", "targetSnapshotName", "snapshot", "created"),
    ),
}

#: Operations (lowercase keys) whose action depends on the request; the extractor decides.
CONDITION_CHECKED: frozenset[str] = frozenset(
    {
        "ec2:createvolume",
        "ec2:modifysnapshotattribute",
        "ec2:modifyimageattribute",
        "rds:modifydbsnapshotattribute",
        "rds:modifydbclustersnapshotattribute",
    }
)


def _tags(req: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    for spec in _items(req.get("tagSpecificationSet")) + _items(req.get("tagSpecifications")):
        if type(spec) is dict:
            _tag_list(spec.get("tags", spec.get("Tags")), pairs)
    _tag_list(req.get("tags"), pairs)
    _tag_list(req.get("tagSet"), pairs)
    return tuple(dict.fromkeys(pairs[:MAX_TAGS]))


def _tag_list(v: object, pairs: list[tuple[str, str]]) -> None:
    if type(v) is dict and "items" not in v and "item" not in v:
        for k, val in list(v.items())[:MAX_TAGS]:
            ks = _s(k, 256)
            if ks:
                pairs.append((ks, _s(val, 256) or ""))
        return
    for t in _items(v):
        if type(t) is dict:
            k = _s(t.get("key", t.get("Key")), 256)
            if k:
                pairs.append((k, _s(t.get("value", t.get("Value")), 256) or ""))


# ------------------------------------------------------------------------------------------
# per-operation info, cached (bounded)
# ------------------------------------------------------------------------------------------

# eventTime text -> datetime
_TIME_CACHE: dict[str, datetime] = {}
# eventSource -> (operation prefix, service)
_SOURCE_CACHE: dict[str, tuple[str, str]] = {}
# operation -> (action, extractor, condition checked here); one cache per read_only value
_OP_CACHE_RO: dict[str, tuple[str | None, _Extractor | None, bool]] = {}
_OP_CACHE_RW: dict[str, tuple[str | None, _Extractor | None, bool]] = {}


def _source_info(event_source: str) -> tuple[str, str]:
    info = _SOURCE_CACHE.get(event_source)
    if info is None:
        prefix = event_source[:-14] if event_source.endswith(".amazonaws.com") else event_source
        info = (prefix, prefix.lower())
        if len(_SOURCE_CACHE) >= _CACHE_MAX:
            _SOURCE_CACHE.clear()
        _SOURCE_CACHE[event_source] = info
    return info


def _op_info(op: str, read_only: bool) -> tuple[str | None, _Extractor | None, bool]:
    cache = _OP_CACHE_RO if read_only else _OP_CACHE_RW
    info = cache.get(op)
    if info is None:
        key = op.lower()
        conditional = actions.is_conditional("aws", op)
        info = (
            actions.classify("aws", op, read_only),
            _EXTRACTORS.get(key),
            conditional and key in CONDITION_CHECKED,
        )
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        cache[op] = info
    return info


# ------------------------------------------------------------------------------------------
# one CloudTrail record
# ------------------------------------------------------------------------------------------


_PRINCIPAL_CACHE: dict[tuple[Any, ...], Principal] = {}


def _cached_principal(ui: dict[str, Any]) -> Principal:
    """:func:`_principal`, memoised (bounded) for assumed roles, IAM users and root.

    The key holds every field :func:`_principal` reads for those types, so the
    result never depends on which records came before. Subscripts, not
    ``.get``, where the field is always there: this runs for every record.
    """
    try:
        t = ui["type"]
        if t == "AssumedRole":
            issuer = ui["sessionContext"]["sessionIssuer"]
            key: tuple[Any, ...] = (
                t,
                ui["arn"],
                ui["principalId"],
                ui.get("invokedBy"),
                ui["accountId"],
                issuer["arn"],
                issuer["userName"],
            )
        elif t == "IAMUser":
            key = (t, ui["arn"], ui["principalId"], ui.get("invokedBy"), ui["accountId"], ui["userName"])
        elif t == "Root":
            key = (t, ui["arn"], ui["principalId"], ui.get("invokedBy"), ui["accountId"])
        else:
            return _principal(ui)
        p = _PRINCIPAL_CACHE.get(key)
    except (KeyError, TypeError, AttributeError):  # an unusual shape: not worth caching
        return _principal(ui)
    if p is None:
        p = _principal(ui)
        if len(_PRINCIPAL_CACHE) >= _CACHE_MAX:
            _PRINCIPAL_CACHE.clear()
        _PRINCIPAL_CACHE[key] = p
    return p


#: Fields the fast path reads by subscript; a record missing one is re-read with these defaults.
_DEFAULTS: dict[str, Any] = dict.fromkeys(
    (
        "eventSource",
        "eventName",
        "eventTime",
        "userIdentity",
        "eventID",
        "readOnly",
        "recipientAccountId",
        "awsRegion",
        "requestParameters",
        "sourceIPAddress",
        "userAgent",
        "requestID",
    )
)


def _cloudtrail(
    rec: dict[str, Any], location: str, account: str | None = None, region: str | None = None
) -> Event | RecordError:
    try:
        try:
            return _normalize(rec, rec, location, account, region)
        except KeyError:
            return _normalize({**_DEFAULTS, **rec}, rec, location, account, region)
    except Exception as e:  # a record must never take the batch down
        return _err(f"unexpected {type(e).__name__}: {e}"[:500], location, rec)


def _normalize(
    r: dict[str, Any], rec: dict[str, Any], location: str, account: str | None, region: str | None
) -> Event | RecordError:
    """Build the Event; ``r`` is read by subscript (KeyError -> caller retries with defaults)."""
    src = r["eventSource"]
    name = r["eventName"]
    if type(src) is not str or not src:
        return _err("missing or invalid eventSource", location, rec)
    if type(name) is not str or not name:
        return _err("missing or invalid eventName", location, rec)
    if len(name) > MAX_STR:
        name = name[:MAX_STR]
    try:
        prefix, service = _SOURCE_CACHE[src]
    except KeyError:
        if src.startswith("aws:"):  # checked on a cache miss only: valid sources are cached
            return _err(
                f"{src[:40]} notification record, not a CloudTrail record "
                "(S3 notifications name files to read: see unwrap_s3_notification)",
                location,
                rec,
                family="input",
            )
        prefix, service = _source_info(src[:MAX_STR])
    et = r["eventTime"]
    try:
        when = _TIME_CACHE[et]
    except (KeyError, TypeError):
        try:
            when = _time(et)
        except ValueError as e:
            # Logstash / SIEM exports move eventTime into @timestamp (its date filter)
            stamp = rec.get("@timestamp")
            if stamp is None:
                return _err(f"eventTime: {e}", location, rec)
            try:
                when = _time(stamp)
            except ValueError as e2:
                return _err(f"eventTime: {e}; @timestamp: {e2}", location, rec)
        if type(et) is str:
            if len(_TIME_CACHE) >= _CACHE_MAX:
                _TIME_CACHE.clear()
            _TIME_CACHE[et] = when

    ui = r["userIdentity"]
    if type(ui) is dict:
        principal = _cached_principal(ui)
    elif ui is None:
        principal = UNKNOWN_PRINCIPAL
    else:
        return _err(f"userIdentity is {type(ui).__name__}, expected object", location, rec)

    op = f"{prefix}:{name}"
    if len(op) > MAX_STR:
        op = op[:MAX_STR]
    read_only = _is_read_only(r["readOnly"], name)
    try:
        action, extractor, checked = (_OP_CACHE_RO if read_only else _OP_CACHE_RW)[op]
    except KeyError:
        action, extractor, checked = _op_info(op, read_only)

    event_id = r["eventID"]
    if type(event_id) is not str or not event_id:
        event_id = _record_hash(rec)
    elif len(event_id) > MAX_STR:
        event_id = event_id[:MAX_STR]

    error_code, outcome = _record_outcome(r)

    acct = r["recipientAccountId"]
    if type(acct) is not str or not acct or len(acct) > MAX_STR:
        acct = _s(acct) or principal.account or account
    reg = r["awsRegion"]
    if type(reg) is not str or not reg or len(reg) > MAX_STR:
        reg = _s(reg) or region

    req = r["requestParameters"]
    resources: tuple[Resource, ...] = ()
    targets: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    if type(req) is not dict:
        req = {}
    elif (
        req
        and not read_only
        and ("tagSpecificationSet" in req or "tags" in req or "tagSpecifications" in req or "tagSet" in req)
    ):
        tags = _tags(req)
    if extractor is not None:
        resp = rec.get("responseElements")
        found, tgt, holds = extractor(rec, req, resp if type(resp) is dict else {}, reg, acct)
        resources = tuple(found)
        targets = tuple(tgt)
        if checked and not holds:
            action = None

    ip = r["sourceIPAddress"]
    if type(ip) is not str or len(ip) > MAX_UA:
        ip = _s(ip, MAX_UA)
    ua = r["userAgent"]
    if type(ua) is not str or len(ua) > MAX_UA:
        ua = _s(ua, MAX_UA)
    rid = r["requestID"]
    if type(rid) is not str or len(rid) > MAX_STR:
        rid = _s(rid)
    return Event(
        event_id=event_id,
        cloud="aws",
        source=SOURCE,
        time=when,
        operation=op,
        service=service,
        principal=principal,
        action=action,
        read_only=read_only,
        outcome=outcome,
        error_code=error_code,
        source_ip=ip or None,
        user_agent=ua or None,
        account=acct,
        region=reg,
        resources=resources,
        targets=targets,
        correlation_id=rid or None,
        tags=tags,
        raw=rec,
    )


def parse_cloudtrail(
    record: Any, location: str, *, account: str | None = None, region: str | None = None
) -> list[Event | RecordError]:
    """Parse one CloudTrail record.

    Parameters
    ----------
    record : Any
        The decoded record (anything: a non-object becomes a RecordError).
    location : str
        Where it came from, for error reports.
    account, region : str | None
        Fallbacks when the record lacks ``recipientAccountId`` / ``awsRegion``
        (an EventBridge envelope's ``account`` / ``region``).

    Returns
    -------
    list[Event | RecordError]
        Exactly one item.
    """
    if type(record) is not dict:
        return [_err(f"CloudTrail record is {type(record).__name__}, expected object", location, record)]
    return [_cloudtrail(record, location, account, region)]


# ------------------------------------------------------------------------------------------
# envelopes
# ------------------------------------------------------------------------------------------


def _is_cloudtrail(obj: dict[str, Any]) -> bool:
    return "eventName" in obj or "eventSource" in obj or "eventVersion" in obj


def _records(records: Any, location: str) -> list[Event | RecordError]:
    if type(records) is not list:
        return [_err(f"Records is {type(records).__name__}, expected array", location, records)]
    out: list[Event | RecordError] = []
    for i, rec in enumerate(records):
        loc = f"{location}#Records[{i}]"
        if type(rec) is not dict:
            out.append(_err(f"record is {type(rec).__name__}, expected object", loc, rec))
            continue
        out.append(_cloudtrail(rec, loc))
    return out


def _eventbridge(obj: dict[str, Any], location: str) -> list[Event | RecordError]:
    dt = obj.get("detail-type")
    if dt in CLOUDTRAIL_DETAIL_TYPES:
        detail = obj.get("detail")
        if type(detail) is not dict:
            return [
                _err(
                    f"EventBridge detail is {type(detail).__name__}, expected object",
                    location,
                    obj,
                    "eventbridge",
                )
            ]
        return [_cloudtrail(detail, location, _s(obj.get("account")), _s(obj.get("region")))]
    if dt == "Object Created":
        return [
            _err(
                "S3 Object Created event names a file to read, not a record: see unwrap_s3_notification",
                location,
                obj,
                "eventbridge",
            )
        ]
    return [_err(f"unsupported EventBridge detail-type {str(dt)[:100]!r}", location, obj, "eventbridge")]


def unwrap_cwlogs(obj: Any, location: str = "") -> dict[str, Any] | RecordError:
    """Decode a CloudWatch Logs subscription Lambda event.

    Parameters
    ----------
    obj : Any
        ``{"awslogs": {"data": "<base64 of gzip of JSON>"}}`` (or the already
        decoded ``DATA_MESSAGE`` / ``CONTROL_MESSAGE``, returned as is).
    location : str
        For error reports.

    Returns
    -------
    dict | RecordError
        The decoded message (``messageType``, ``owner``, ``logGroup``,
        ``logStream``, ``logEvents``...), or why it could not be decoded (bad
        base64, gzip, UTF-8 or JSON, or more than ``MAX_CWLOGS_BYTES``).

    Example
    -------
    >>> msg = unwrap_cwlogs(lambda_event)  # doctest: +SKIP
    """
    if type(obj) is not dict:
        return _err(
            f"CloudWatch Logs payload is {type(obj).__name__}, expected object", location, obj, "cwlogs"
        )
    if "messageType" in obj and "awslogs" not in obj:
        return obj
    data = _d(obj.get("awslogs")).get("data")
    if type(data) is str:
        try:
            raw = base64.b64decode(data.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError) as e:
            return _err(f"awslogs.data is not base64: {e}", location, data[:200], "cwlogs")
    elif isinstance(data, bytes | bytearray):
        raw = bytes(data)
    else:
        return _err("missing awslogs.data", location, obj, "cwlogs")
    try:
        d = zlib.decompressobj(47)  # gzip or zlib header, detected
        text = d.decompress(raw, MAX_CWLOGS_BYTES + 1)
    except zlib.error as e:
        return _err(f"awslogs.data is not gzip: {e}", location, raw[:200], "cwlogs")
    if len(text) > MAX_CWLOGS_BYTES:
        return _err(
            f"awslogs.data decompresses to more than {MAX_CWLOGS_BYTES} bytes", location, None, "cwlogs"
        )
    if not d.eof:
        return _err("awslogs.data is truncated gzip", location, raw[:200], "cwlogs")
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        return _err(f"awslogs.data is not JSON: {e}", location, text[:200], "cwlogs")
    if type(msg) is not dict:
        return _err(f"awslogs message is {type(msg).__name__}, expected object", location, msg, "cwlogs")
    return msg


def _eks_cluster(group: object) -> str | None:
    """``/aws/eks/<cluster>/cluster`` -> ``<cluster>``."""
    if type(group) is str and group.startswith("/aws/eks/") and group.endswith("/cluster"):
        name = group[9:-8]
        if name and "/" not in name:
            return name[:MAX_STR]
    return None


def _cwlogs(msg: dict[str, Any], location: str) -> list[Event | RecordError]:
    mt = msg.get("messageType")
    if mt == "CONTROL_MESSAGE":
        return []
    if mt != "DATA_MESSAGE":
        return [_err(f"unknown CloudWatch Logs messageType {str(mt)[:100]!r}", location, msg, "cwlogs")]
    log_events = msg.get("logEvents")
    if type(log_events) is not list:
        return [_err(f"logEvents is {type(log_events).__name__}, expected array", location, msg, "cwlogs")]
    owner = _s(msg.get("owner"))
    cluster = _eks_cluster(msg.get("logGroup"))
    out: list[Event | RecordError] = []
    for i, le in enumerate(log_events):
        loc = f"{location}#logEvents[{i}]"
        message = le.get("message") if type(le) is dict else None
        if type(message) is not str:
            out.append(_err("log event has no message string", loc, le, "cwlogs"))
            continue
        try:
            inner = orjson.loads(message)
        except orjson.JSONDecodeError as e:
            out.append(_err(f"log event message is not JSON: {e}", loc, message, "cwlogs"))
            continue
        if type(inner) is not dict:
            out.append(
                _err(f"log event message is {type(inner).__name__}, expected object", loc, inner, "cwlogs")
            )
            continue
        if inner.get("kind") == "Event" and str(inner.get("apiVersion", "")).startswith("audit.k8s.io"):
            out.extend(_k8s_audit(inner, loc, cluster, owner))
        elif _is_cloudtrail(inner):
            out.append(_cloudtrail(inner, loc, owner))
        else:
            from adscore.sources import parse_record  # lazy: the registry imports this module

            out.extend(parse_record(inner, loc))
    return out


def _k8s_audit(
    obj: dict[str, Any], location: str, cluster: str | None, owner: str | None
) -> list[Event | RecordError]:
    try:
        from adscore.sources.kubernetes import parse_audit_event
    except ImportError as e:
        return [_err(f"kubernetes parser unavailable: {e}", location, obj, "k8s_audit")]
    return parse_audit_event(
        obj, location, cluster=cluster, account=owner, source="eks_audit" if cluster else "k8s_audit"
    )


def _parse(obj: Any, location: str) -> list[Event | RecordError]:
    if type(obj) is dict and "eventSource" in obj and "Records" not in obj:  # the common case first
        return [_cloudtrail(obj, location)]
    if type(obj) is list:
        return _records(obj, location)
    if type(obj) is not dict:
        return [_err(f"AWS record is {type(obj).__name__}, expected object", location, obj, "input")]
    if "Records" in obj:
        return _records(obj["Records"], location)
    if "awslogs" in obj:
        msg = unwrap_cwlogs(obj, location)
        if isinstance(msg, RecordError):
            return [msg]
        return _cwlogs(msg, location)
    if "messageType" in obj:
        return _cwlogs(obj, location)
    if "detail-type" in obj:
        return _eventbridge(obj, location)
    if _is_cloudtrail(obj) or "userIdentity" in obj or "eventTime" in obj:
        return [_cloudtrail(obj, location)]
    keys = ",".join(sorted(str(k)[:40] for k in list(obj)[:12]))
    return [_err(f"unrecognised AWS record shape: keys {keys}", location, obj, "input")]


def parse(obj: Any, location: str) -> list[Event | RecordError]:
    """Parse any AWS shape into Events and RecordErrors; never raises.

    Parameters
    ----------
    obj : Any
        A CloudTrail record, a list of records, a CloudTrail file
        ``{"Records": [...]}``, an EventBridge CloudTrail event, or a
        CloudWatch Logs payload (``awslogs.data`` or decoded).
    location : str
        Where ``obj`` came from; inner records get ``#Records[i]`` /
        ``#logEvents[i]`` appended.

    Returns
    -------
    list[Event | RecordError]
        One Event or RecordError per record; nothing for a CloudWatch Logs
        ``CONTROL_MESSAGE``.

    Example
    -------
    >>> parse({"Records": []}, "s3://bucket/key")
    []
    """
    try:
        return _parse(obj, location)
    except Exception as e:  # the contract: never raise on any input
        return [_err(f"unexpected {type(e).__name__}: {e}"[:500], location, obj, "input")]


# ------------------------------------------------------------------------------------------
# S3 delivery
# ------------------------------------------------------------------------------------------


def is_cloudtrail_object(key: str, size: int | None) -> tuple[bool, str]:
    """Whether an S3 object is a CloudTrail log file worth reading.

    Parameters
    ----------
    key : str
        Object key (already URL-decoded).
    size : int | None
        Object size when known (S3 notifications carry it).

    Returns
    -------
    tuple[bool, str]
        ``(True, "cloudtrail")`` or ``(False, reason)`` with reason one of
        ``digest``, ``insight``, ``empty``, ``not_json_gz``: skipped by name and
        counted, never an error.

    Example
    -------
    >>> is_cloudtrail_object("AWSLogs/1/CloudTrail-Digest/us-east-1/x.json.gz", 10)
    (False, 'digest')
    """
    if type(key) is not str or not key:
        return False, "not_json_gz"
    k = "/" + key
    if "/CloudTrail-Digest/" in k:
        return False, "digest"
    if "/CloudTrail-Insight/" in k:
        return False, "insight"
    if size is not None and size <= 0:
        return False, "empty"
    if not key.endswith(".json.gz"):
        return False, "not_json_gz"
    return True, "cloudtrail"


def _is_cloudtrail_notification(body: dict[str, Any]) -> bool:
    """The message a trail publishes to its SNS topic when it delivers log files."""
    return "s3ObjectKey" in body and "s3Bucket" in body


def is_s3_notification(body: dict[str, Any]) -> bool:
    """Whether a delivery body announces S3 objects (any shape :func:`unwrap_s3_objects` reads), not a record.

    Example
    -------
    >>> is_s3_notification({"s3Bucket": "trail-bucket", "s3ObjectKey": ["AWSLogs/1/CloudTrail/x.json.gz"]})
    True
    """
    if body.get("Type") == "Notification" and isinstance(body.get("Message"), str):
        try:
            inner = orjson.loads(body["Message"])
        except orjson.JSONDecodeError:
            return False
        return isinstance(inner, dict) and is_s3_notification(inner)
    if body.get("Event") == "s3:TestEvent" or body.get("detail-type") == "Object Created":
        return True
    if _is_cloudtrail_notification(body):
        return True
    records = body.get("Records")
    return bool(
        isinstance(records, list)
        and records
        and isinstance(records[0], dict)
        and records[0].get("eventSource") == "aws:s3"
    )


def unwrap_s3_objects(body: Any, location: str = "") -> list[tuple[str, str, int | None] | RecordError]:
    """Return ``(bucket, key, size)`` of every object an S3 notification announces.

    Parameters
    ----------
    body : Any
        The notification (dict, or its JSON text as an SQS body): an S3 event
        notification ``{"Records": [{"eventSource": "aws:s3", "s3": ...}]}``
        (keys URL-decoded, ``+`` is a space), the same wrapped in an SNS
        notification, an EventBridge ``Object Created`` event (keys are
        not encoded there), or the notification a trail itself publishes to
        its SNS topic, ``{"s3Bucket": ..., "s3ObjectKey": [...]}`` (bare or
        in its SNS envelope; keys not encoded, no sizes). ``s3:TestEvent`` gives nothing; non-create S3
        events are ignored.
    location : str
        For error reports.

    Returns
    -------
    list[tuple[str, str, int | None] | RecordError]
    """
    try:
        return _s3_objects(body, location, 0)
    except Exception as e:  # never raise on a delivery body
        return [_err(f"unexpected {type(e).__name__}: {e}"[:500], location, body, "s3")]


def _cloudtrail_notification(
    body: dict[str, Any], location: str
) -> list[tuple[str, str, int | None] | RecordError]:
    """``{"s3Bucket": B, "s3ObjectKey": [K, ...]}``: the message a trail publishes to its SNS topic (keys not encoded)."""
    bucket, keys = body.get("s3Bucket"), body.get("s3ObjectKey")
    if type(bucket) is not str or not bucket or type(keys) is not list:
        return [_err("CloudTrail notification without s3Bucket or an s3ObjectKey list", location, body, "s3")]
    out: list[tuple[str, str, int | None] | RecordError] = []
    for i, key in enumerate(keys[:MAX_ITEMS]):
        if type(key) is str and key:
            out.append((bucket, key, None))
        else:
            out.append(
                _err(
                    "CloudTrail notification key is not a non-empty string",
                    f"{location}#s3ObjectKey[{i}]",
                    key,
                    "s3",
                )
            )
    return out


def _s3_objects(body: Any, location: str, depth: int) -> list[tuple[str, str, int | None] | RecordError]:
    if isinstance(body, str | bytes | bytearray):
        try:
            body = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            return [_err(f"notification is not JSON: {e}", location, body, "s3")]
    if type(body) is not dict:
        return [_err(f"notification is {type(body).__name__}, expected object", location, body, "s3")]
    if body.get("Event") == "s3:TestEvent":
        return []
    if body.get("Type") == "Notification" and "Message" in body and depth == 0:
        return _s3_objects(body["Message"], location, 1)
    if _is_cloudtrail_notification(body):
        return _cloudtrail_notification(body, location)
    if body.get("detail-type") == "Object Created":
        detail = _d(body.get("detail"))
        bucket = _s(_d(detail.get("bucket")).get("name"))
        obj = _d(detail.get("object"))
        key = obj.get("key")
        if not bucket or type(key) is not str or not key:
            return [_err("Object Created event without bucket name or object key", location, body, "s3")]
        size = obj.get("size")
        return [(bucket, key, size if type(size) is int else None)]
    records = body.get("Records")
    if type(records) is not list:
        return [_err("not an S3 event notification", location, body, "s3")]
    out: list[tuple[str, str, int | None] | RecordError] = []
    for i, rec in enumerate(records[:MAX_ITEMS]):
        loc = f"{location}#Records[{i}]"
        if type(rec) is not dict or rec.get("eventSource") != "aws:s3" or type(rec.get("s3")) is not dict:
            out.append(_err("not an S3 event notification record", loc, rec, "s3"))
            continue
        if not str(rec.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = rec["s3"]
        bucket = _s(_d(s3.get("bucket")).get("name"))
        obj = _d(s3.get("object"))
        key = obj.get("key")
        if not bucket or type(key) is not str or not key:
            out.append(_err("S3 record without bucket name or object key", loc, rec, "s3"))
            continue
        size = obj.get("size")
        out.append((bucket, unquote_plus(key), size if type(size) is int else None))
    return out


def unwrap_s3_notification(body: Any, location: str = "") -> list[tuple[str, str] | RecordError]:
    """Return ``(bucket, key)`` of every object an S3 notification announces.

    Same input as :func:`unwrap_s3_objects`, without the sizes.

    Example
    -------
    >>> unwrap_s3_notification({"Event": "s3:TestEvent"})
    []
    """
    out: list[tuple[str, str] | RecordError] = []
    for item in unwrap_s3_objects(body, location):
        out.append(item if isinstance(item, RecordError) else (item[0], item[1]))
    return out


# ------------------------------------------------------------------------------------------
# streaming a CloudTrail file (the JSON walking itself is adscore.sources.stream's)
# ------------------------------------------------------------------------------------------


def iter_cloudtrail_stream(fileobj: _Readable, location: str = "") -> Iterator[dict[str, Any] | RecordError]:
    """Yield the records of a CloudTrail log file one by one, without loading the file.

    The file may be gzipped (detected by its magic bytes) or plain JSON. The
    bytes are inflated in bounded pieces (``zlib`` with ``max_length``) and
    decoded incrementally; the top-level object is walked key by key and each
    element of its ``"Records"`` array is decoded as soon as it is complete:
    with orjson when the next record's start marks its end (CloudTrail's own
    compact layout, see :func:`_next_record_fast`), else with
    ``json.JSONDecoder.raw_decode``. Memory held at
    any time is about one read chunk (1 MiB compressed, at most 1 MiB
    inflated) plus the largest record, never the file. A top-level array of
    records is accepted too.

    Parameters
    ----------
    fileobj : object with ``read(n) -> bytes``
        An open file, ``io.BytesIO`` or an S3 ``StreamingBody``. Exceptions
        raised by ``read`` (network errors) propagate, so the platform retries.
    location : str
        For error reports: ``f"{location}#Records[{i}]"``.

    Yields
    ------
    dict | RecordError
        One item per array element (a record, or a RecordError for a
        non-object element), then, if the file is corrupt (bad gzip, UTF-8 or
        JSON; no ``Records`` array; a record over ``MAX_RECORD_CHARS``), one
        final RecordError: the records before the damage are still yielded.

    Example
    -------
    >>> with open("file.json.gz", "rb") as f:  # doctest: +SKIP
    ...     for rec in iter_cloudtrail_stream(f, "file.json.gz"):
    ...         ...
    """
    sc = Scanner(iter_text(fileobj))
    index = 0
    found = False
    try:
        c = sc.peek()
        if c == "[":
            sc.pos += 1
            found = True
            for item in _stream_records(sc, location):
                index += 1
                yield item
            return
        if c != "{":
            raise StreamError("not a JSON object" if c else "empty file")
        sc.pos += 1
        for key in iter_members(sc):
            if key == "Records" and sc.peek() == "[":
                sc.pos += 1
                found = True
                for item in _stream_records(sc, location):
                    index += 1
                    yield item
            elif key == "Records":
                raise StreamError("Records is not an array")
            else:
                sc.value()  # skip another top-level member
        if not found:
            yield _err("no Records array in the file", location, None)
    except (StreamError, json.JSONDecodeError, UnicodeDecodeError, zlib.error, RecursionError) as e:
        yield _err(
            f"unreadable CloudTrail file after {index} records: {type(e).__name__}: {e}"[:500], location, None
        )


def _stream_records(sc: Scanner, location: str) -> Iterator[dict[str, Any] | RecordError]:
    for i, v in enumerate(iter_array(sc)):
        if type(v) is dict:
            yield v
        else:
            yield _err(f"record is {type(v).__name__}, expected object", f"{location}#Records[{i}]", v)


def parse_cloudtrail_stream(fileobj: _Readable, location: str = "") -> Iterator[Event | RecordError]:
    """Parse a CloudTrail log file record by record (see :func:`iter_cloudtrail_stream`).

    Example
    -------
    >>> for item in parse_cloudtrail_stream(body, f"s3://{bucket}/{key}"):  # doctest: +SKIP
    ...     ...
    """
    for i, item in enumerate(iter_cloudtrail_stream(fileobj, location)):
        if isinstance(item, RecordError):
            yield item
        else:
            yield _cloudtrail(item, f"{location}#Records[{i}]")


# ------------------------------------------------------------------------------------------
# route before building
# ------------------------------------------------------------------------------------------


def probe(obj: Any) -> tuple[str, str | None, str, tuple[str, str, str, str]] | None:
    """What the engine routes by, read from one CloudTrail record without building its :class:`Event`.

    Returns ``(cloud, action, outcome, key)`` (``key`` is the engine's duplicate key: source, event
    id, operation, outcome), exactly as :func:`parse` would give them, for the common shape only: a
    CloudTrail record (bare, in an EventBridge event or in a CloudWatch Logs message of one log
    event, which may hold an EKS audit event instead: see :func:`adscore.sources.kubernetes.probe`)
    whose routing fields are well formed and whose operation has no resource extractor. Anything else returns None and is parsed in full, so
    a record :func:`parse` would refuse is never skipped here: it still reaches the error path.
    """
    if type(obj) is not dict:
        return None
    rec: Any
    if "eventSource" in obj:
        if "Records" in obj:
            return None
        rec = obj
    elif "Records" in obj or "awslogs" in obj:
        return None
    elif "messageType" in obj:
        return _probe_cwlogs(obj)
    elif obj.get("detail-type") in CLOUDTRAIL_DETAIL_TYPES:
        rec = obj.get("detail")
        if type(rec) is not dict:
            return None
    else:
        return None
    return _probe_cloudtrail(rec)


def _probe_cwlogs(msg: dict[str, Any]) -> tuple[str, str | None, str, tuple[str, str, str, str]] | None:
    """:func:`probe` for a decoded CloudWatch Logs message of one log event (as the delivery splits them)."""
    log_events = msg.get("logEvents")
    if msg.get("messageType") != "DATA_MESSAGE" or type(log_events) is not list or len(log_events) != 1:
        return None
    le = log_events[0]
    message = le.get("message") if type(le) is dict else None
    if type(message) is not str:
        return None
    inner = orjson.loads(message)  # a JSONDecodeError leaves the event to the parser
    if type(inner) is not dict:
        return None
    if inner.get("kind") == "Event" and str(inner.get("apiVersion", "")).startswith("audit.k8s.io"):
        from adscore.sources.kubernetes import probe_audit_event

        return probe_audit_event(inner, "eks_audit" if _eks_cluster(msg.get("logGroup")) else "k8s_audit")
    if _is_cloudtrail(inner):
        return _probe_cloudtrail(inner)
    return None  # another family carried over CloudWatch Logs: the registry's parser reads it


def _probe_cloudtrail(rec: dict[str, Any]) -> tuple[str, str | None, str, tuple[str, str, str, str]] | None:
    src = rec.get("eventSource")
    name = rec.get("eventName")
    if type(src) is not str or type(name) is not str or not name or len(name) > MAX_STR:
        return None
    try:
        prefix, _service = _SOURCE_CACHE[src]
    except KeyError:
        if not src or src.startswith("aws:"):
            return None  # the parser says what is wrong with it
        prefix, _service = _source_info(src[:MAX_STR])
    et = rec.get("eventTime")
    if et not in _TIME_CACHE:
        try:
            _time(et)
        except ValueError:
            return None  # the parser tries @timestamp, or says what is wrong
    ui = rec.get("userIdentity")
    if ui is not None and type(ui) is not dict:
        return None
    event_id = rec.get("eventID")
    if type(event_id) is not str or not event_id or len(event_id) > MAX_STR:
        return None
    read_only = _is_read_only(rec.get("readOnly"), name)
    op = f"{prefix}:{name}"
    if len(op) > MAX_STR:
        return None
    info = (_OP_CACHE_RO if read_only else _OP_CACHE_RW).get(op) or _op_info(op, read_only)
    if info[1] is not None:
        return None  # an operation whose resources decide its action (and whose extractor may refuse it)
    outcome = _record_outcome(rec)[1]
    return "aws", info[0], outcome, (SOURCE, event_id, op, outcome)
