"""A batch from ``adscore forward docker``: ``{"kind": "DockerEventBatch", "host": {...}, "events": [...]}``.

The forwarder posts (``Content-Type: application/json``, signed with Standard Webhooks)::

    {"apiVersion": "adscore.dev/v1", "kind": "DockerEventBatch",
     "host": {"hostname": "build-07", "instance_id": "i-0abc", "cloud": "aws"},
     "events": [<Docker Engine API /events objects>, ...]}

Each element of ``events`` is one record for the Docker parser (family ``docker``), with its own
provenance (``docker-forward[i]``); an element that is not an object is unreadable on its own and
the rest of the batch is read. The batch's ``host`` fills ``hostname`` and ``host_id`` on an event
that does not carry them (the parser's principal is the host).
"""

from __future__ import annotations

from typing import Any

from adscore.deliveries import Item, Provenance, Record, Unreadable, as_bytes

__all__ = ["API_VERSION", "KIND", "MAX_EVENTS", "unwrap_docker_batch"]

API_VERSION = "adscore.dev/v1"
KIND = "DockerEventBatch"
MAX_EVENTS = 10_000
"""Most events one batch may hold; the rest of a longer batch is refused as one unreadable item."""
_MAX_HOST = 256


def _host_fields(host: Any) -> dict[str, str]:
    if not isinstance(host, dict):
        return {}
    out = {}
    for field, key in (("hostname", "hostname"), ("host_id", "instance_id")):
        value = host.get(key)
        if isinstance(value, str) and value.strip():
            out[field] = value.strip()[:_MAX_HOST]
    return out


def unwrap_docker_batch(body: bytes, decoded: Any) -> list[Item]:
    """The events of a forwarded batch as ``docker`` records, or the body as unreadable with why.

    Parameters
    ----------
    body : bytes
        The request body as received (dead-lettered as is when the batch cannot be read).
    decoded : Any
        Its JSON.

    Example
    -------
    >>> batch = {"apiVersion": "adscore.dev/v1", "kind": "DockerEventBatch", "host": {"hostname": "h1"},
    ...          "events": [{"Type": "container", "Action": "commit", "time": 1}, 7]}
    >>> [type(i).__name__ for i in unwrap_docker_batch(b"", batch)]
    ['Record', 'Unreadable']
    >>> unwrap_docker_batch(b"", batch)[0].raw["hostname"]
    'h1'
    """
    where = Provenance(0, "docker-forward", family="docker")
    if not isinstance(decoded, dict) or decoded.get("kind") != KIND:
        return [Unreadable(body, f"the body is not a {KIND}", where)]
    if decoded.get("apiVersion") != API_VERSION:
        version = str(decoded.get("apiVersion"))[:40]
        return [Unreadable(body, f"unsupported {KIND} apiVersion {version!r} (expected {API_VERSION})", where)]
    events = decoded.get("events")
    if not isinstance(events, list):
        return [Unreadable(body, f"the {KIND} has no events list", where)]
    host = _host_fields(decoded.get("host"))
    items: list[Item] = []
    for i, event in enumerate(events[:MAX_EVENTS]):
        at = Provenance(0, f"docker-forward[{i}]", line=i, family="docker")
        if not isinstance(event, dict):
            reason = f"event {i} is a JSON {type(event).__name__}, expected an object"
            items.append(Unreadable(as_bytes(event), reason, at))
            continue
        missing = {k: v for k, v in host.items() if k not in event and not (k == "hostname" and "host" in event)}
        items.append(Record({**event, **missing} if missing else event, at))
    if len(events) > MAX_EVENTS:
        reason = f"the batch holds {len(events)} events, more than {MAX_EVENTS}: the rest was not read"
        items.append(Unreadable(as_bytes(events[MAX_EVENTS:]), reason, Provenance(0, "docker-forward[rest]", family="docker")))
    return items
