"""A Kubernetes API server audit webhook request: an ``audit.k8s.io`` ``EventList``."""

from __future__ import annotations

from typing import Any

from adscore.deliveries import Item, Provenance, Record, Unreadable


def unwrap_k8s_webhook(body: bytes, decoded: Any) -> list[Item]:
    """The EventList as one record (``k8s-audit-webhook``), or the body as unreadable.

    Parameters
    ----------
    body : bytes
        The request body as received.
    decoded : Any
        Its JSON (None when it is not JSON).

    Example
    -------
    >>> unwrap_k8s_webhook(b"[]", [])[0].reason
    'the audit webhook body is not a JSON object'
    """
    where = Provenance(0, "k8s-audit-webhook", family="kubernetes")
    if not isinstance(decoded, dict):
        return [Unreadable(body, "the audit webhook body is not a JSON object", where)]
    return [Record(decoded, where, body)]
