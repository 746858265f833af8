"""One dispatcher per Sigma log source: an event is evaluated only by the rules it can match.

Each rule's condition tree gives a *requirement*: a set of ``(field, value)`` pairs such that the rule
cannot match a record unless the record holds, at one of those fields, a value equal (casefolded, as
Sigma's string equality is case-insensitive) to the paired value. Read off the tree soundly:

* an equality with a plain string (no wildcard, no ``|re``, no placeholder; ``|cased`` too, since
  equal strings are equal casefolded) requires itself;
* AND: any child's requirement is enough; the most selective is kept (a value of a field with ``n``
  distinct values, in the rules or as known for the log source, counts as 1/n of the events, so
  ``eventName`` wins over ``eventSource``);
* OR (and a rule's several conditions): every child must have one; their union;
* NOT, wildcards, modifiers that are not plain equality, numbers, booleans, null, ``|exists``,
  ``|fieldref`` and keywords: no requirement.

Rules with a requirement are indexed by field and casefolded value; those without one are in the
always-evaluate list. For an event the dispatcher reads each indexed field (with the same dotted-path
and list fan-out as the rules' own matchers) and returns the rules whose values it carries, plus the
always list. The engine evaluates only those (:class:`adscore.detection.Dispatch`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable

    from adscore.events import Event

__all__ = ["Dispatcher", "Requirement", "requirement"]

Requirement = frozenset[tuple[str, str]]


def _plain(node: Any) -> tuple[str, str] | None:
    """``(field, casefolded value)`` of an equality with a plain string, else None."""
    from sigma import conditions as c
    from sigma import types as t

    if not isinstance(node, c.ConditionFieldEqualsValueExpression):
        return None
    value = node.value
    if not isinstance(value, t.SigmaString) or value.contains_special() or value.contains_placeholder():
        return None
    return str(node.field), value.to_plain().casefold()


#: About how many distinct values a field takes in the logs (the rules alone understate it: a few rules
#: name a few of the thousands of API calls, and as many of the few hundred services).
_DISTINCT = {
    "eventName": 10_000,  # CloudTrail: API calls
    "eventSource": 300,  # CloudTrail: services
    "operationName": 5_000,  # Azure activity logs
    "operationName.value": 5_000,
    "protoPayload.methodName": 5_000,  # GCP audit logs
    "data.protoPayload.methodName": 5_000,
    "verb": 10,  # Kubernetes audit
    "objectRef.resource": 100,
}


def _cost(req: Requirement, cardinality: dict[str, int]) -> tuple[float, int]:
    """The share of events expected to carry one of ``req``'s values: a value of a field the rules
    give ``n`` distinct values to is taken to be on 1/n of them (fewer values first on a tie)."""
    return sum(1 / max(cardinality.get(f, 1), 1) for f, _ in req), len(req)


def _alternatives(node: Any, cardinality: dict[str, int]) -> list[Requirement]:
    """Requirements each of which holds for every record ``node`` matches (empty: none is known)."""
    from sigma import conditions as c

    leaf = _plain(node)
    if leaf is not None:
        return [frozenset((leaf,))]
    if isinstance(node, c.ConditionAND):
        out: list[Requirement] = []
        for arg in node.args:
            out.extend(a for a in _alternatives(arg, cardinality) if a not in out)
        return out
    if isinstance(node, c.ConditionOR):
        best = _best([_alternatives(arg, cardinality) for arg in node.args], cardinality)
        return [] if best is None else [best]
    return []  # NOT, wildcards, numbers, null, exists, field references, keywords


def _best(children: list[list[Requirement]], cardinality: dict[str, int]) -> Requirement | None:
    """The union of each child's cheapest requirement (OR), or None when a child has none."""
    if not children or any(not alts for alts in children):
        return None
    return frozenset().union(*(min(alts, key=lambda r: _cost(r, cardinality)) for alts in children))


def requirement(trees: Iterable[Any], cardinality: dict[str, int] | None = None) -> Requirement | None:
    """A rule's requirement from its condition trees (any of them matching is a match), or None."""
    return _best([_alternatives(tree, cardinality or {}) for tree in trees], cardinality or {})


def _leaves(node: Any) -> Iterable[tuple[str, str]]:
    leaf = _plain(node)
    if leaf is not None:
        yield leaf
    for arg in getattr(node, "args", ()) or ():
        yield from _leaves(arg)


class Dispatcher:
    """The rules of one log source, indexed by their requirements (see the module docstring)."""

    def __init__(self, sources: frozenset[str]) -> None:
        self.sources = sources
        self._rules: list[tuple[str, list[Any]]] = []
        self._built = False
        self.always: tuple[str, ...] = ()
        self.index: dict[str, dict[str, tuple[str, ...]]] = {}
        self._longest: dict[str, int] = {}

    def add(self, rule_id: str, trees: list[Any]) -> None:
        """Register a rule (its detection id and its parsed condition trees) before the first event."""
        self._rules.append((rule_id, trees))
        self._built = False

    def build(self) -> None:
        """Derive every rule's requirement and index them (done on the first event otherwise)."""
        values: dict[str, set[str]] = defaultdict(set)
        for _, trees in self._rules:
            for tree in trees:
                for path, value in _leaves(tree):
                    values[path].add(value)
        cardinality = {path: max(len(v), _DISTINCT.get(path, 0)) for path, v in values.items()}
        always: list[str] = []
        index: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for rule_id, trees in self._rules:
            req = requirement(trees, cardinality)
            if req is None:
                always.append(rule_id)
                continue
            for path, value in sorted(req):
                if rule_id not in index[path][value]:
                    index[path][value].append(rule_id)
        self.always = tuple(dict.fromkeys(always))
        self.index = {path: {v: tuple(ids) for v, ids in table.items()} for path, table in index.items()}
        self._longest = {path: max(len(v) for v in table) for path, table in self.index.items()}
        self._built = True

    def candidates(self, event: Event) -> Collection[str]:
        """Ids of the rules that may match ``event``: those whose required values it carries, and the always list."""
        if event.source not in self.sources:
            return ()
        if not self._built:
            self.build()
        return self.select(event.raw)

    def select(self, raw: Any) -> set[str]:
        """The candidate rule ids for one record (``candidates`` without the log-source check)."""
        from adscore.sigma import _text, _values

        out = set(self.always)
        for path, table in self.index.items():
            longest = self._longest[path]
            for value in _values(raw, path):
                if value is None or isinstance(value, dict | list):
                    continue
                text = _text(value)
                if len(text) > longest:  # casefolding never shortens a string: it cannot be equal
                    continue
                ids = table.get(text.casefold())
                if ids:
                    out.update(ids)
        return out
