"""Allowlists, named suppressions and maintenance windows, compiled once per settings (pure)."""

from __future__ import annotations

import fnmatch
import ipaddress
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from adscore.calendar import in_maintenance

if TYPE_CHECKING:
    from adscore.events import Event
    from adscore.settings import Settings, Suppression

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


@lru_cache(maxsize=4096)
def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return None


def _ip_in(value: str | None, nets: tuple[Network, ...]) -> bool:
    if not value or not nets:
        return False
    ip = _ip(value)
    return ip is not None and any(ip in n for n in nets)


def _any_glob(values: tuple[str, ...], globs: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(v, g) for v in values if v for g in globs)


def principal_names(event: Event) -> tuple[str, ...]:
    """The strings a principal glob is matched against: id, display name and acting service."""
    p = event.principal
    return tuple(x for x in (p.id, p.name, p.invoked_by) if x)


@dataclass(frozen=True)
class _Rule:
    rule: Suppression
    nets: tuple[Network, ...]


class Suppressor:
    """Decides whether an event is silenced for a detection, and why.

    Example
    -------
    >>> Suppressor(settings).reason(event, "snapshot.burst")  # doctest: +SKIP
    'allowlist.services'
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        a = settings.allowlists
        self._principals = a.principals
        self._services = frozenset(s.lower() for s in a.services)
        self._nets = _networks(a.source_cidrs)
        self._agents = a.user_agents
        self._tags = a.resource_tags
        self._rules = tuple(_Rule(r, _networks(r.source_cidrs)) for r in settings.suppressions)
        self._maintenance = settings.calendar.maintenance

    def reason(self, event: Event, detection_id: str) -> str | None:
        """Return why ``event`` must not count for ``detection_id``, or None."""
        names = principal_names(event)
        p = event.principal
        if p.invoked_by and p.invoked_by.lower() in self._services:
            return "allowlist.services"
        if p.type == "service" and p.id.lower() in self._services:
            return "allowlist.services"
        if self._principals and _any_glob(names, self._principals):
            return "allowlist.principals"
        if self._nets and _ip_in(event.source_ip, self._nets):
            return "allowlist.source_cidrs"
        if self._agents and event.user_agent and _any_glob((event.user_agent,), self._agents):
            return "allowlist.user_agents"
        if self._tags and event.tags and self._tag_match(event):
            return "allowlist.resource_tags"
        for r in self._rules:
            if self._rule_matches(r, event, names, detection_id):
                return f"suppression.{r.rule.name}"
        if self._maintenance:
            w = in_maintenance(self._maintenance, event.time, event.account, names, detection_id)
            if w is not None:
                return f"maintenance.{w.name}"
        return None

    def _tag_match(self, event: Event) -> bool:
        for spec in self._tags:
            key, sep, value = spec.partition("=")
            for k, v in event.tags:
                if k == key and (not sep or v == value):
                    return True
        return False

    @staticmethod
    def _rule_matches(r: _Rule, event: Event, names: tuple[str, ...], detection_id: str) -> bool:
        s = r.rule
        if s.until is not None and event.time >= s.until:
            return False
        if not any(fnmatch.fnmatchcase(detection_id, d) for d in s.detections):
            return False
        if s.principals and not _any_glob(names, s.principals):
            return False
        if s.principal_types and event.principal.type not in s.principal_types:
            return False
        if s.accounts and (event.account is None or event.account not in s.accounts):
            return False
        if s.namespaces and not (event.namespace and _any_glob((event.namespace,), s.namespaces)):
            return False
        if s.user_agents and not (event.user_agent and _any_glob((event.user_agent,), s.user_agents)):
            return False
        if s.source_cidrs and not _ip_in(event.source_ip, r.nets):
            return False
        return not (s.operations and not _any_glob((event.operation,), s.operations))
