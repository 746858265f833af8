"""Docker engine events, as ``docker events --format '{{json .}}'`` prints them.

Current form (API >= 1.22)::

    {"status": "...", "id": "...", "from": "...", "Type": "container", "Action": "commit",
     "Actor": {"ID": "...", "Attributes": {...}}, "scope": "local", "time": 1700000000,
     "timeNano": 1700000000123456789}

Old form (before ``Type``): ``{"status": "start", "id": "...", "from": "image", "time": ...}``.
Engine events carry no user: the principal is the host (``host``/``hostname`` added by a
log shipper) or ``local``.

``adscore forward docker`` adds top-level keys: ``hostname``, ``host_id`` (cloud instance id),
``user`` (who ran the command, from the host's audit log, when it can tell) and, for a container
commit or export, ``changes`` (a summary of the container's filesystem changes against its image).
With a ``user`` the principal is that user on the host (``docker-user:<host>/<user>``, acting
through ``docker-host:<host>``, so allowlists of hosts still match); the instance id and the
change summary become ``docker.*`` tags (:data:`CHANGE_TAGS`, ``docker.changes.path.<i>`` =
``"<A|C|D> <category> <path>"``).
"""

from __future__ import annotations

from typing import Any

from adscore import actions
from adscore.events import Event, Principal, RecordError, Resource
from adscore.sources.common import excerpt, parse_epoch, short_hash

__all__ = ["parse", "probe"]

FAMILY = "docker"
_MAX_ARGS = 256
#: Old-format statuses (no ``Type``, no ``from``) that belong to images.
_OLD_IMAGE_STATUSES = frozenset({"untag", "delete", "pull", "push", "tag", "import", "save", "load"})
#: Resource types the contract knows, by Docker event Type.
_RESOURCE_TYPES = {"container": "container", "image": "image", "volume": "volume"}
#: Counts of the forwarder's ``changes`` summary, as tags ``docker.changes.<name>``.
CHANGE_TAGS = ("added", "changed", "deleted", "total", "sensitive")
MAX_CHANGE_PATHS = 20
_MAX_COUNT = 1_000_000_000
_KINDS = frozenset({"A", "C", "D"})
_CATEGORIES = frozenset({"data", "backup", "secret"})


def _count(v: object) -> int | None:
    if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
        return min(v, _MAX_COUNT)
    return None


def _change_tags(changes: object) -> list[tuple[str, str]]:
    """The forwarder's ``changes`` summary as tags; an unreadable summary gives none."""
    if not isinstance(changes, dict):
        return []
    counts = {name: _count(changes.get(name)) for name in CHANGE_TAGS}
    if any(c is None for c in counts.values()):
        return []
    tags = [(f"docker.changes.{name}", str(c)) for name, c in counts.items()]
    paths = changes.get("sensitive_paths")
    kept = 0
    for item in paths if isinstance(paths, list) else []:
        if kept >= MAX_CHANGE_PATHS:
            break
        if not isinstance(item, dict):
            continue
        kind, category, path = item.get("kind"), item.get("category"), _str(item.get("path"), 512)
        if not isinstance(kind, str) or not isinstance(category, str):  # a list or an object is unhashable
            continue
        if kind in _KINDS and category in _CATEGORIES and path is not None:
            tags.append((f"docker.changes.path.{kept}", f"{kind} {category} {path}"))
            kept += 1
    truncated = changes.get("truncated") is True or kept < (counts["sensitive"] or 0)
    tags.append(("docker.changes.truncated", "true" if truncated else "false"))
    return tags


def _str(v: object, n: int = 4096) -> str | None:
    if isinstance(v, str) and v:
        return v if len(v) <= n else v[:n]
    return None


def _err(reason: str, location: str, obj: object) -> RecordError:
    return RecordError(family=FAMILY, reason=reason, location=location, excerpt=excerpt(obj))


def _time(obj: dict[str, Any]) -> Any:
    """Return the event time from ``timeNano`` (ns), else ``time`` (s); raise ValueError."""
    bad = None
    for key, unit in (("timeNano", "ns"), ("time", "s")):
        v = obj.get(key)
        if v is None:
            continue
        try:
            return parse_epoch(v, unit)
        except ValueError as e:
            bad = f"{key}: {e}"
    raise ValueError(f"invalid time ({bad})" if bad else "no time (timeNano/time missing)")


def parse(obj: Any, location: str) -> list[Event | RecordError]:
    """Parse one Docker engine event.

    Parameters
    ----------
    obj : Any
        The decoded event (current or old form).
    location : str
        Where it came from.

    Returns
    -------
    list[Event | RecordError]
        One event, or one error. Never raises.

    Example
    -------
    >>> ev = parse({"Type": "container", "Action": "commit", "Actor": {"ID": "c1", "Attributes":
    ...     {"imageID": "sha256:ab"}}, "time": 1700000000}, "x")[0]
    >>> ev.action, [r.role for r in ev.resources]
    ('container.commit', ['source', 'created'])
    """
    try:
        return [_parse(obj, location)]
    except Exception as e:
        return [_err(f"unexpected {type(e).__name__}: {e}", location, obj)]


def _head(obj: dict[str, Any]) -> tuple[str, str, str, str, str] | str:
    """(raw action, base action, separator, suffix, event type) of an event, or why it has none."""
    raw_action = _str(obj.get("Action"), 4096) or _str(obj.get("status"), 4096)
    if raw_action is None:
        return "Docker event has no Action or status"
    base, sep, suffix = raw_action.partition(": ")
    base = base.strip()[:256]
    if not base:
        return "Docker event has an empty Action"
    etype = _str(obj.get("Type"), 64)
    if etype is None:
        etype = "image" if "from" not in obj and base in _OLD_IMAGE_STATUSES else "container"
    return raw_action, base, sep, suffix, etype


def _event_id(obj: dict[str, Any], actor_id: str | None, raw_action: str) -> str:
    stamp = obj.get("timeNano") if obj.get("timeNano") is not None else obj.get("time")
    return short_hash(actor_id or "", raw_action, str(stamp)[:64])


def _parse(obj: Any, location: str) -> Event | RecordError:
    if not isinstance(obj, dict):
        return _err(f"not a Docker event: {type(obj).__name__}", location, obj)
    actor = obj.get("Actor")
    actor = actor if isinstance(actor, dict) else {}
    attrs = actor.get("Attributes")
    attrs = attrs if isinstance(attrs, dict) else {}

    head = _head(obj)
    if isinstance(head, str):
        return _err(head, location, obj)
    raw_action, base, sep, suffix, etype = head

    try:
        time = _time(obj)
    except ValueError as e:
        return _err(f"Docker event has {e}", location, obj)

    actor_id = _str(actor.get("ID"), 1024) or _str(obj.get("id"), 1024)
    host = _str(obj.get("host"), 256) or _str(obj.get("hostname"), 256) or "local"
    operation = f"{etype} {base}"
    command: tuple[str, ...] = ()
    if sep and base.startswith("exec_"):
        command = tuple(a[:4096] for a in suffix.split()[:_MAX_ARGS])

    resources: list[Resource] = []
    if actor_id is not None:
        rtype = _RESOURCE_TYPES.get(etype, etype)
        if operation in ("container commit", "container export"):
            resources.append(Resource("container", actor_id, "source"))
        else:
            resources.append(Resource(rtype, actor_id, "target"))
    if operation == "container commit":
        image = _str(attrs.get("imageID"), 1024) or _str(attrs.get("imageRef"), 1024)
        if image is not None:
            resources.append(Resource("image", image, "created"))

    user = _str(obj.get("user"), 128)
    if user is not None:
        principal = Principal(
            id=f"docker-user:{host}/{user}", type="user", name=user, invoked_by=f"docker-host:{host}"
        )
    else:
        principal = Principal(id=f"docker-host:{host}", type="host", name=host)
    tags: list[tuple[str, str]] = []
    host_id = _str(obj.get("host_id"), 128)
    if host_id is not None:
        tags.append(("docker.host_id", host_id))
    if operation in ("container commit", "container export"):
        tags.extend(_change_tags(obj.get("changes")))
    return Event(
        event_id=_event_id(obj, actor_id, raw_action),
        cloud="docker",
        source=FAMILY,
        time=time,
        operation=operation,
        service="docker",
        principal=principal,
        action=actions.classify("docker", operation, False),
        read_only=False,
        outcome="success",
        resources=tuple(resources),
        namespace=_str(attrs.get("io.kubernetes.pod.namespace"), 256),
        command=command,
        tags=tuple(tags),
        raw=obj,
    )


def probe(obj: Any) -> tuple[str, str | None, str, tuple[str, str, str, str]] | None:
    """What the engine routes one Docker event by (see :func:`adscore.sources.probe_record`), or None.

    :func:`parse`'s answer without its principal, resources and tags; an event it would refuse gives None.
    """
    if not isinstance(obj, dict):
        return None
    head = _head(obj)
    if isinstance(head, str):
        return None
    raw_action, base, _sep, _suffix, etype = head
    _time(obj)  # a ValueError (no readable time) leaves the event to the parser, which says so
    actor = obj.get("Actor")
    actor_id = (_str(actor.get("ID"), 1024) if isinstance(actor, dict) else None) or _str(obj.get("id"), 1024)
    operation = f"{etype} {base}"
    if operation in ("container commit", "container export"):
        return None  # the forwarder's change summary is read too
    key = (FAMILY, _event_id(obj, actor_id, raw_action), operation, "success")
    return "docker", actions.classify("docker", operation, False), "success", key
