"""Allowlists, named suppressions and maintenance windows, compiled once per settings (pure).

Globs are compiled into one RE2 pattern per list (:class:`~adscore.patterns.GlobMatcher`: linear
time on attacker text, whatever the glob), the rules that apply
to a detection are chosen once per detection, and principal matches are
cached per principal, so the check costs little on the hot path.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from dataclasses import dataclass
from datetime import UTC
from functools import lru_cache
from typing import TYPE_CHECKING

from adscore.calendar import in_maintenance
from adscore.patterns import GlobMatcher

if TYPE_CHECKING:
    from adscore.events import Event
    from adscore.settings import Settings, Suppression

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_CACHE_MAX = 65_536


def compile_globs(globs: tuple[str, ...]) -> GlobMatcher:
    """One case-sensitive RE2 pattern matching any of ``globs`` (``fnmatch`` syntax); never matches when empty."""
    return GlobMatcher(globs)


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


def _any(values: tuple[str, ...], pattern: GlobMatcher) -> bool:
    return any(pattern.match(v) for v in values if v)


def principal_names(event: Event) -> tuple[str, ...]:
    """The strings a principal glob is matched against: id, display name and acting service."""
    p = event.principal
    return tuple(x for x in (p.id, p.name, p.invoked_by) if x)


@dataclass(frozen=True)
class _Rule:
    rule: Suppression
    principals: GlobMatcher
    namespaces: GlobMatcher
    user_agents: GlobMatcher
    operations: GlobMatcher
    nets: tuple[Network, ...]


def _compile_rule(r: Suppression) -> _Rule:
    return _Rule(
        r,
        compile_globs(r.principals),
        compile_globs(r.namespaces),
        compile_globs(r.user_agents),
        compile_globs(r.operations),
        _networks(r.source_cidrs),
    )


class Suppressor:
    """Decides whether an event is silenced for a detection, and why.

    Example
    -------
    >>> Suppressor(settings).reason(event, "snapshot.burst")  # doctest: +SKIP
    'allowlist.services'
    """

    def __init__(self, settings: Settings) -> None:
        a = settings.allowlists
        self._principals = compile_globs(a.principals)
        self._services = frozenset(s.lower() for s in a.services)
        self._nets = _networks(a.source_cidrs)
        self._agents = compile_globs(a.user_agents)
        self._tags = a.resource_tags
        self._rules = tuple(_compile_rule(r) for r in settings.suppressions)
        self._maintenance = settings.calendar.maintenance
        self._by_detection: dict[str, tuple[_Rule, ...]] = {}
        self._principal_cache: dict[tuple[str, ...], bool] = {}
        self._candidate_cache: dict[tuple[str, tuple[str, ...], str], tuple[_Rule, ...]] = {}

    def _rules_for(self, detection_id: str) -> tuple[_Rule, ...]:
        rules = self._by_detection.get(detection_id)
        if rules is None:
            rules = tuple(
                r for r in self._rules if any(fnmatch.fnmatchcase(detection_id, d) for d in r.rule.detections)
            )
            self._by_detection[detection_id] = rules
        return rules

    def class_of(self, detection_id: str) -> tuple[int, ...]:
        """A key shared by detections that the same rules apply to: their answer for an event is the same."""
        rules = self._rules_for(detection_id)
        windows = tuple(
            i
            for i, w in enumerate(self._maintenance)
            if not w.detections or any(fnmatch.fnmatchcase(detection_id, d) for d in w.detections)
        )
        return (*(id(r) for r in rules), -1, *windows)

    def _allowlisted(self, names: tuple[str, ...]) -> bool:
        hit = self._principal_cache.get(names)
        if hit is None:
            if len(self._principal_cache) > _CACHE_MAX:
                self._principal_cache.clear()
            hit = _any(names, self._principals)
            self._principal_cache[names] = hit
        return hit

    def reason(self, event: Event, detection_id: str) -> str | None:
        """Return why ``event`` must not count for ``detection_id``, or None."""
        names = principal_names(event)
        return self.allowlist_reason(event, names) or self.rule_reason(event, detection_id, names)

    def allowlist_reason(self, event: Event, names: tuple[str, ...] | None = None) -> str | None:
        """The global allowlists' verdict (the same for every detection): the reason, or None."""
        p = event.principal
        if p.invoked_by and p.invoked_by.lower() in self._services:
            return "allowlist.services"
        if p.type == "service" and p.id.lower() in self._services:
            return "allowlist.services"
        if self._allowlisted(names if names is not None else principal_names(event)):
            return "allowlist.principals"
        if self._nets and _ip_in(event.source_ip, self._nets):
            return "allowlist.source_cidrs"
        if event.user_agent and self._agents.match(event.user_agent):
            return "allowlist.user_agents"
        if self._tags and event.tags and self._tag_match(event):
            return "allowlist.resource_tags"
        return None

    def rule_reason(self, event: Event, detection_id: str, names: tuple[str, ...] | None = None) -> str | None:
        """The named suppressions' and maintenance windows' verdict for ``detection_id``: the reason, or None."""
        if names is None:
            names = principal_names(event)
        for r in self._candidates(detection_id, names, event.principal.type):
            if self._rule_matches(r, event):
                return f"suppression.{r.rule.name}"
        if self._maintenance:
            w = in_maintenance(self._maintenance, event.time, event.account, names, detection_id)
            if w is not None:
                return f"maintenance.{w.name}"
        return None

    def _candidates(self, detection_id: str, names: tuple[str, ...], principal_type: str) -> tuple[_Rule, ...]:
        """The rules for ``detection_id`` whose principal globs and types accept the principal (cached per principal)."""
        key = (detection_id, names, principal_type)
        hit = self._candidate_cache.get(key)
        if hit is None:
            if len(self._candidate_cache) > _CACHE_MAX:
                self._candidate_cache.clear()
            hit = tuple(
                r
                for r in self._rules_for(detection_id)
                if (not r.rule.principals or _any(names, r.principals))
                and (not r.rule.principal_types or principal_type in r.rule.principal_types)
            )
            self._candidate_cache[key] = hit
        return hit

    def _tag_match(self, event: Event) -> bool:
        for spec in self._tags:
            key, sep, value = spec.partition("=")
            for k, v in event.tags:
                if k == key and (not sep or v == value):
                    return True
        return False

    def _rule_matches(self, r: _Rule, event: Event) -> bool:
        """The rule's conditions other than principals and their types (:meth:`_candidates` checked those)."""
        s = r.rule
        if s.until is not None and event.time >= s.until:
            return False
        if s.utc_hours and event.time.astimezone(UTC).hour not in s.utc_hours:
            return False
        if s.accounts and (event.account is None or event.account not in s.accounts):
            return False
        if s.namespaces and not (event.namespace and r.namespaces.match(event.namespace)):
            return False
        if s.user_agents and not (event.user_agent and r.user_agents.match(event.user_agent)):
            return False
        if s.source_cidrs and not _ip_in(event.source_ip, r.nets):
            return False
        return not (s.operations and not r.operations.match(event.operation))
