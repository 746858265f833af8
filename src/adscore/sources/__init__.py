"""Log families -> normalized events.

:func:`parse_record` recognises a decoded record's family by a few cheap key
checks (:func:`sniff`) and hands it to that family's parser, imported on
first use from :data:`FAMILIES`. A record of no known family may be a log
pipeline's wrapper of one (:mod:`adscore.sources.exports`): the record inside
is read instead. Nothing here raises on bad input: a record
that cannot be read becomes a :class:`~adscore.events.RecordError`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from adscore.events import Event, RecordError
from adscore.sources.common import excerpt

__all__ = ["FAMILIES", "PROBES", "Hinted", "Parser", "parse_record", "parse_records", "probe_record", "sniff"]

Parser = Callable[[Any, str], list[Event | RecordError]]

#: Family name -> "module:function" of its parser, imported lazily.
FAMILIES: dict[str, str] = {
    "aws": "adscore.sources.aws:parse",
    "azure": "adscore.sources.azure:parse",
    "gcp": "adscore.sources.gcp:parse",
    "kubernetes": "adscore.sources.kubernetes:parse",
    "docker": "adscore.sources.docker:parse",
}

#: Family name -> "module:function" of its route probe (see :func:`probe_record`), imported lazily.
PROBES: dict[str, str] = {
    "aws": "adscore.sources.aws:probe",
    "azure": "adscore.sources.azure:probe",
    "gcp": "adscore.sources.gcp:probe",
    "kubernetes": "adscore.sources.kubernetes:probe",
    "docker": "adscore.sources.docker:probe",
}

#: ``(cloud, action, outcome, duplicate key)`` of a record, or None (see :func:`probe_record`).
Probe = Callable[[Any], tuple[str, str | None, str, tuple[str, str, str, str]] | None]

_loaded: dict[str, Parser] = {}
_probes: dict[str, Probe | None] = {}

_PUBSUB_CLOUDEVENT = "google.cloud.pubsub.topic.v1.messagePublished"


def _load(family: str) -> Parser:
    fn = _loaded.get(family)
    if fn is None:
        module, _, name = FAMILIES[family].partition(":")
        fn = getattr(importlib.import_module(module), name)
        _loaded[family] = fn
    return fn


def sniff(obj: Any) -> str | None:
    """Return the family of a decoded record by cheap key checks, or None.

    The checks run from the most to the least distinctive shape, so no record
    of one family can be taken for another's.

    Example
    -------
    >>> sniff({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "verb": "get"})
    'kubernetes'
    """
    if not isinstance(obj, dict):
        return None
    # Kubernetes audit: kind Event/EventList of audit.k8s.io (some shippers and test
    # suites drop apiVersion: then the audit fields must be there).
    kind = obj.get("kind")
    if kind == "Event" or kind == "EventList":
        api = obj.get("apiVersion")
        if isinstance(api, str):
            if api.startswith("audit.k8s.io"):
                return "kubernetes"
        elif api is None and (
            "auditID" in obj or "verb" in obj or "requestURI" in obj or "objectRef" in obj or "items" in obj
        ):
            return "kubernetes"
    # GCP LogEntry (GKE k8s.io entries too: the GCP parser hands them on)
    if "protoPayload" in obj:
        return "gcp"
    # AWS
    records = obj.get("Records")
    if isinstance(records, list):
        # a CloudTrail file; an S3 notification ("eventSource": "aws:s3") also goes to the
        # AWS parser, which says it must be fetched, not read
        return "aws"
    if "awslogs" in obj or ("logEvents" in obj and "messageType" in obj):
        return "aws"
    if "detail-type" in obj and "detail" in obj:
        return "aws"
    if "eventSource" in obj and "eventName" in obj:
        return "aws"
    # Azure
    if isinstance(obj.get("records"), list):
        return "azure"
    etype = obj.get("eventType")
    if isinstance(etype, str) and etype.startswith("Microsoft.") and "data" in obj:
        return "azure"
    ctype = obj.get("type")
    if "specversion" in obj and isinstance(ctype, str):
        if ctype.startswith("Microsoft."):
            return "azure"
        if ctype == _PUBSUB_CLOUDEVENT:
            return "gcp"
    if "operationName" in obj and ("category" in obj or "resourceId" in obj):
        return "azure"
    if "TimeGenerated" in obj and isinstance(obj.get("Type"), str):  # a Log Analytics row
        from adscore.sources.azure import LOG_ANALYTICS_TABLES

        if obj["Type"] in LOG_ANALYTICS_TABLES:
            return "azure"
    # GCP Pub/Sub push body and bare message
    msg = obj.get("message")
    if isinstance(msg, dict) and "data" in msg:
        return "gcp"
    if isinstance(obj.get("data"), str) and "messageId" in obj:
        return "gcp"
    # Docker
    if "Action" in obj and "Actor" in obj:
        return "docker"
    if "status" in obj and "id" in obj and "from" in obj and "time" in obj:
        return "docker"
    return None


class Hinted:
    """A record whose family its delivery knows (an EventBridge event is ``aws``): read without :func:`sniff`.

    :func:`adscore.runtime.run_delivery` wraps records this way; :func:`parse_record` unwraps them and
    hands them to that family's parser, whose errors then name what is wrong with the record.
    """

    __slots__ = ("family", "raw")

    def __init__(self, raw: Any, family: str) -> None:
        self.raw, self.family = raw, family


def _shape(obj: Any) -> str:
    if isinstance(obj, dict):
        keys = ",".join(str(k)[:64] for k in list(obj)[:8])
        more = ",..." if len(obj) > 8 else ""
        return f"keys: {keys}{more}" if keys else "an empty object"
    return f"a JSON {type(obj).__name__}"


def _parse_one(obj: Any, location: str, hint: str | None = None) -> list[Event | RecordError]:
    family = hint if hint in FAMILIES else None
    try:
        family = family or sniff(obj)
        if family is None:
            # a log pipeline's wrapper (Splunk _raw, ECS, Logstash, an Elasticsearch hit)
            from adscore.sources.exports import unwrap_export

            inner = unwrap_export(obj)
            if inner is not None:
                obj = inner
                family = sniff(obj)
        if family is None:
            return [
                RecordError(
                    family="input",
                    reason=f"unrecognised record shape ({_shape(obj)})",
                    location=location,
                    excerpt=excerpt(obj),
                )
            ]
        try:
            fn = _load(family)
        except (ImportError, AttributeError) as e:
            return [
                RecordError(
                    family=family,
                    reason=f"parser for {family} unavailable: {type(e).__name__}: {e}",
                    location=location,
                    excerpt=excerpt(obj),
                )
            ]
        result = fn(obj, location)
        return result if type(result) is list else list(result)
    except Exception as e:
        return [
            RecordError(
                family=family or "input",
                reason=f"unexpected {type(e).__name__}: {str(e)[:512]}",
                location=location,
                excerpt=excerpt(obj),
            )
        ]


def parse_record(obj: Any, location: str) -> list[Event | RecordError]:
    """Parse one decoded record (or a top-level JSON array of records).

    Parameters
    ----------
    obj : Any
        A decoded JSON value. A list is read element by element, each at
        ``f"{location}[{i}]"``.
    location : str
        Where it came from (``file:line``, ``sqs:<id>``...).

    Returns
    -------
    list[Event | RecordError]
        Never raises; an unknown shape gives a ``RecordError`` of family ``input``.
        A :class:`Hinted` record goes straight to its family's parser.
    """
    if type(obj) is Hinted:
        return _parse_one(obj.raw, location, obj.family)
    if isinstance(obj, list):
        out: list[Event | RecordError] = []
        for i, item in enumerate(obj):
            out.extend(_parse_one(item, f"{location}[{i}]"))
        return out
    return _parse_one(obj, location)


def parse_records(items: Iterable[tuple[str, Any] | RecordError]) -> Iterator[Event | RecordError]:
    """Parse ``(location, record)`` pairs, passing ``RecordError`` items through.

    Example
    -------
    >>> from adscore.sources.files import read_inputs
    >>> events = parse_records(read_inputs(["logs/"]))  # doctest: +SKIP
    """
    for item in items:
        if isinstance(item, RecordError):
            yield item
            continue
        location, obj = item
        yield from parse_record(obj, location)


def probe_record(obj: Any) -> tuple[str, str | None, str, tuple[str, str, str, str]] | None:
    """What the engine routes a record by, read without building its event, or None to parse it in full.

    Returns ``(cloud, action, outcome, duplicate key)`` exactly as :func:`parse_record` would give them
    for the one event the record holds. Only a family with a probe (:data:`PROBES`) answers, and only
    for a record it is sure of: anything unusual (a shape it does not know, a value the parser would
    refuse or has not seen yet) returns None, and the record takes the full path, errors included.
    The engine skips building the events no detection would read (:meth:`adscore.engine.Engine.run`).
    Never raises.
    """
    try:
        if type(obj) is Hinted:
            family: str | None = obj.family
            obj = obj.raw
        else:
            family = sniff(obj)
        if family is None:
            return None
        if family not in _probes:
            _probes[family] = _load_probe(family)
        fn = _probes[family]
        return None if fn is None else fn(obj)
    except Exception:  # a probe that cannot tell leaves the record to the parser
        return None


def _load_probe(family: str) -> Probe | None:
    target = PROBES.get(family)
    if target is None:
        return None
    module, _, name = target.partition(":")
    fn: Probe = getattr(importlib.import_module(module), name)
    return fn
