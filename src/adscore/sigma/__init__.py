"""Sigma rules, natively: parsed by pySigma, evaluated on the stream, correlations on the state store.

The setting ``sigma_paths`` (``ADSCORE_SIGMA_PATHS``, ``--sigma DIR``) names folders of Sigma rule
files (``*.yml``, ``*.yaml``). pySigma parses them (:class:`sigma.collection.SigmaCollection`,
collecting errors, so one broken file never stops the others) and resolves each rule's condition
and modifiers into an expression tree; this module compiles that tree once into plain Python
predicates over the original record (``Event.raw``), and wraps each rule in a
:class:`~adscore.detection.Detection`, so Sigma alerts go through the same suppression, dedup,
claim and output as the built-in detections.

Log sources read: ``product: aws`` / ``service: cloudtrail``; ``product: azure`` /
``service: activitylogs``, ``signinlogs``, ``auditlogs``; ``product: gcp`` / ``service: gcp.audit``;
``product: kubernetes`` / ``service: audit``. Field names are dotted paths into the record as the
cloud wrote it (``requestParameters.bucketName``, ``objectRef.resource``); a key that itself holds
dots (``annotations.authorization.k8s.io/decision``) is found too, and a list matches when any item
does. Values: strings with wildcards (case-insensitive unless ``|cased``; plain equality casefolds), numbers, booleans, null,
``|re`` (RE2: linear time), ``|cidr``, ``|exists``, ``|gt``/``|gte``/``|lt``/``|lte``, ``|fieldref``,
and what pySigma expands (``contains``, ``startswith``, ``endswith``, ``all``, ``base64``,
``base64offset``, ``windash``, ``wide``); keywords search every string of the record.

Each log source's single-event rules share a :class:`~adscore.sigma.dispatch.Dispatcher`: rules are
indexed by a casefolded value their condition cannot match without, so the engine evaluates a rule only
on the events carrying one of its values (rules without one, on every event of the source).

A single-event rule raises one alert per principal and hour (its matches in that hour share the
alert id, as a SIEM groups them). Correlation rules (``event_count``, ``value_count``, ``temporal``) with ``group-by`` and
``timespan`` count event ids, values or rule ids in the idempotent state store (the same windows
as the built-in detections), so redelivery and concurrent instances never count twice and one
group raises one alert per window. A referenced rule alerts on its own only with ``generate: true``.

What is not supported is reported per rule with the reason (``adscore sigma check``) and left out:
other log sources, placeholders (``|expand``), ``temporal_ordered``, value aggregations
(``value_sum``...), ``lt``/``lte`` correlation conditions (they would need the window's end) and
field aliases.
"""

from __future__ import annotations

import ipaddress
import operator
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adscore.errors import ConfigError
from adscore.sigma.dispatch import Dispatcher

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from adscore.detection import Context, Detection, Finding
    from adscore.events import Event

__all__ = ["LOG_SOURCES", "RuleReport", "check_rules", "load_sigma"]

#: (product, service) -> (clouds, event sources) of the events a rule of that log source sees.
LOG_SOURCES: dict[tuple[str, str], tuple[tuple[str, ...], frozenset[str]]] = {
    ("aws", "cloudtrail"): (("aws",), frozenset({"cloudtrail"})),
    ("azure", "activitylogs"): (("azure",), frozenset({"azure_activity", "azure_eventgrid"})),
    ("azure", "signinlogs"): (("azure",), frozenset({"azure_signin"})),
    ("azure", "auditlogs"): (("azure",), frozenset({"azure_audit"})),
    ("gcp", "gcp.audit"): (("gcp",), frozenset({"gcp_audit"})),
    ("kubernetes", "audit"): (("kubernetes",), frozenset({"k8s_audit", "eks_audit", "aks_audit"})),
}
_LEVELS = {"informational": "info", "low": "low", "medium": "medium", "high": "high", "critical": "critical"}


class Unsupported(Exception):
    """A rule uses something this evaluator does not do; the message says what."""


@dataclass
class RuleReport:
    """One rule file's rule: loaded, or unsupported with the reason."""

    path: str
    title: str
    rule_id: str | None
    loaded: bool
    reason: str = ""
    kind: str = "rule"


# ------------------------------------------------------------------------------------------ fields


def _values(obj: Any, path: str) -> Iterator[Any]:
    """Every value at dotted ``path`` in ``obj`` (lists fan out; keys holding dots are found whole)."""
    if isinstance(obj, list):
        for item in obj:
            yield from _values(item, path)
        return
    if not isinstance(obj, dict):
        return
    if path in obj:
        value = obj[path]
        if isinstance(value, list):
            yield from (v for v in value if not isinstance(v, dict | list))
            if not value:
                yield value
        else:
            yield value
    head, dot, rest = path.partition(".")
    while dot:
        child = obj.get(head)
        if child is not None:
            yield from _values(child, rest)
        nxt, dot, rest = rest.partition(".")
        head = f"{head}.{nxt}"


def _strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)
    elif obj is not None and not isinstance(obj, bool):
        yield str(obj)


# ------------------------------------------------------------------------------------------ values


def _compile_regex(pattern: str, flags: Iterable[Any] = ()) -> Callable[[str], bool]:
    """A linear-time matcher (RE2, :mod:`adscore.patterns`) for ``pattern`` (search semantics, as Sigma's ``|re``)."""
    from adscore.patterns import compile_linear, matchable

    names = {getattr(f, "name", str(f)).upper() for f in flags}
    prefix = "".join(f for f, n in (("i", "IGNORECASE"), ("m", "MULTILINE"), ("s", "DOTALL")) if n in names)
    try:
        compiled = compile_linear(f"(?{prefix}){pattern}" if prefix else pattern)
    except ValueError as e:
        raise Unsupported(f"regular expression {pattern[:80]!r}: {e}") from e
    # lone surrogates (which no UTF-8 encoder takes) become U+FFFD, so hostile text never raises here
    return lambda text: compiled.search(matchable(text)) is not None


def _string_matcher(value: Any) -> Callable[[Any], bool]:
    from sigma.types import SigmaCasedString

    cased = isinstance(value, SigmaCasedString)
    if value.contains_placeholder():
        raise Unsupported("placeholders (|expand) are not supported")
    if not value.contains_special():
        plain = value.to_plain()
        if cased:
            return lambda v: isinstance(v, str | int | float) and not isinstance(v, bool) and str(v) == plain
        low = plain.casefold()  # Sigma's string equality is case-insensitive: casefolded, as the dispatcher indexes
        return lambda v: v is not None and not isinstance(v, dict | list) and _text(v).casefold() == low
    regex = value.to_regex().regexp.to_plain()
    match = _compile_regex(f"^(?:{regex})$" if cased else f"(?i)^(?:{regex})$")
    return lambda v: v is not None and not isinstance(v, dict | list) and match(_text(v))


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


def _value_matcher(value: Any) -> Callable[[Any], bool]:
    """Whether one field value matches a Sigma value (modifiers already applied by pySigma)."""
    from sigma import types as t

    if isinstance(value, t.SigmaString):
        return _string_matcher(value)
    if isinstance(value, t.SigmaBool):
        return lambda v: v is value.boolean or (isinstance(v, str) and v.lower() == str(value.boolean).lower())
    if isinstance(value, t.SigmaNumber):
        n = float(value.number)
        return lambda v: _number(v) == n
    if isinstance(value, t.SigmaRegularExpression):
        match = _compile_regex(value.regexp.to_plain(), value.flags)
        return lambda v: v is not None and not isinstance(v, dict | list) and match(_text(v))
    if isinstance(value, t.SigmaCIDRExpression):
        network = ipaddress.ip_network(str(value.network), strict=False)

        def in_network(v: Any) -> bool:
            try:
                return isinstance(v, str) and ipaddress.ip_address(v.split("%")[0]) in network
            except ValueError:
                return False

        return in_network
    if isinstance(value, t.SigmaCompareExpression):
        ops = {"LT": operator.lt, "LTE": operator.le, "GT": operator.gt, "GTE": operator.ge}
        op = ops.get(getattr(value.op, "name", str(value.op)).upper())
        if op is None:
            raise Unsupported(f"comparison {value.op} is not supported")
        n = float(value.number.number)
        return lambda v: (x := _number(v)) is not None and op(x, n)
    if isinstance(value, t.SigmaExpansion):
        options = [_value_matcher(v) for v in value.values]
        return lambda v: any(m(v) for m in options)
    raise Unsupported(f"value type {type(value).__name__} is not supported")


# ------------------------------------------------------------------------------------------ conditions


def _compile(node: Any) -> Callable[[Any], bool]:
    """Compile a pySigma condition tree into a predicate over a record."""
    from sigma import conditions as c
    from sigma import types as t

    if isinstance(node, c.ConditionAND):
        parts = [_compile(a) for a in node.args]
        return lambda r: all(p(r) for p in parts)
    if isinstance(node, c.ConditionOR):
        parts = [_compile(a) for a in node.args]
        return lambda r: any(p(r) for p in parts)
    if isinstance(node, c.ConditionNOT):
        (inner,) = [_compile(a) for a in node.args]
        return lambda r: not inner(r)
    if isinstance(node, c.ConditionFieldEqualsValueExpression):
        path, value = str(node.field), node.value
        if isinstance(value, t.SigmaExists):
            want = value.exists
            return lambda r: any(True for _ in _values(r, path)) == want
        if isinstance(value, t.SigmaNull):
            return lambda r: all(v is None for v in _values(r, path))
        if isinstance(value, t.SigmaFieldReference):
            other = str(value.field)
            return lambda r: any(_text(a) == _text(b) for a in _values(r, path) for b in _values(r, other))
        matcher = _value_matcher(value)
        return lambda r: any(matcher(v) for v in _values(r, path))
    if isinstance(node, c.ConditionValueExpression):  # keywords: anywhere in the record
        matcher = _value_matcher(node.value)
        return lambda r: any(matcher(s) for s in _strings(r))
    raise Unsupported(f"condition element {type(node).__name__} is not supported")


def _rule_predicate(trees: list[Any]) -> Callable[[Any], bool]:
    conditions = [_compile(tree) for tree in trees]
    checks = _prefilter(trees[0]) if len(trees) == 1 else []
    if len(conditions) == 1:
        (full,) = conditions
    else:
        def full(r: Any) -> bool:
            return any(p(r) for p in conditions)

    if not checks:
        return full

    def prefiltered(r: Any) -> bool:
        # a cheap look at the fields every match needs (eventName, methodName...) before the whole tree
        if not isinstance(r, dict):
            return False
        for path, allowed in checks:
            value = r.get(path)
            if isinstance(value, list | dict):
                return full(r)  # lists fan out: the full predicate decides
            if value is None or _text(value).casefold() not in allowed:
                return False
        return full(r)

    return prefiltered


def _prefilter(tree: Any) -> list[tuple[str, frozenset[str]]]:
    """Fields the rule can only match with one of a few plain values: ``[(field, {values})]``.

    Read off the root: an AND whose child is an equality (or an OR of equalities on one field) with
    plain strings, on a top-level field of the record. Anything else (NOT, wildcards, nested
    fields, several conditions) is left to the full predicate.
    """
    from sigma import conditions as c
    from sigma import types as t

    def plain(node: Any) -> tuple[str, set[str]] | None:
        if isinstance(node, c.ConditionFieldEqualsValueExpression):
            value = node.value
            if (isinstance(value, t.SigmaString) and not isinstance(value, t.SigmaCasedString)
                    and not value.contains_special() and "." not in str(node.field)):  # fmt: skip
                return str(node.field), {value.to_plain().casefold()}
            return None
        if isinstance(node, c.ConditionOR):
            parts = [plain(a) for a in node.args]
            if parts and all(p is not None for p in parts) and len({p[0] for p in parts if p}) == 1:
                return parts[0][0], set().union(*(p[1] for p in parts if p))  # type: ignore[index]
        return None

    children = tree.args if isinstance(tree, c.ConditionAND) else [tree]
    found: dict[str, set[str]] = {}
    for child in children:
        nodes = child.args if isinstance(child, c.ConditionAND) else [child]
        for node in nodes:
            got = plain(node)
            if got is None:
                continue
            field_name, values = got
            if field_name in found:
                found[field_name] &= values  # two required equalities on one field: both must hold
            else:
                found[field_name] = values
    return [(f, frozenset(v)) for f, v in found.items()]


# ------------------------------------------------------------------------------------------ detections


def _tags(rule: Any) -> tuple[str, str, str]:
    """(technique, technique name, tactic) from ``attack.*`` tags (``Sigma`` when there are none)."""
    technique, tactic = "", ""
    for tag in rule.tags or ():
        if tag.namespace != "attack":
            continue
        name = tag.name
        if re.fullmatch(r"t\d{4}(\.\d{3})?", name):
            technique = technique or name.upper()
        elif not name.startswith(("g", "s")) or "_" in name or "-" in name:
            tactic = tactic or name.replace("_", " ").replace("-", " ").title()
    return technique or "Sigma", technique or "Sigma rule", tactic or "Unspecified"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:60] or "rule"


def _detection_id(rule: Any) -> str:
    return f"sigma.{str(rule.id).replace('-', '') if rule.id else _slug(rule.title)}"


def _meta(rule: Any, sources: str, correlation: str = "") -> Any:
    from adscore.detection import AdsMeta

    technique, technique_name, tactic = _tags(rule)
    description = (rule.description or rule.title or "Sigma rule").strip()
    references = tuple(str(r) for r in (rule.references or ())) or (f"sigma:{rule.id or rule.title}",)
    return AdsMeta(
        title=str(rule.title),
        goal=description,
        technique=technique,
        technique_name=technique_name,
        tactic=tactic,
        severity=_LEVELS.get(str(getattr(rule.level, "name", rule.level) or "medium").lower(), "medium"),  # type: ignore[arg-type]
        platforms=("IaaS", "Containers") if "kubernetes" in sources else ("IaaS",),
        strategy=f"Sigma rule {rule.id or rule.title} ({sources}){correlation}, evaluated on every record of its log source.",
        technical_context=description,
        blind_spots=("Those of the Sigma rule: see its description and references.",),
        false_positives=tuple(str(f) for f in (rule.falsepositives or ())) or ("None listed in the rule.",),
        priority=f"Sigma level {getattr(rule.level, 'name', rule.level) or 'unset'}.",
        validation=("Replay logs that the rule is written for: `adscore replay --sigma DIR`.",),
        response=("Follow the rule's references; confirm with the principal's owner.",),
        data_sources=(sources,),
        references=references,
    )


def _context(rule: Any) -> dict[str, Any]:
    return {
        "sigma_rule_id": str(rule.id) if rule.id else None,
        "sigma_title": str(rule.title),
        "sigma_level": str(getattr(rule.level, "name", rule.level) or "").lower() or None,
        "sigma_tags": [f"{t.namespace}.{t.name}" for t in (rule.tags or ())],
        "sigma_falsepositives": [str(f) for f in (rule.falsepositives or ())],
        "sigma_references": [str(r) for r in (rule.references or ())],
    }


@dataclass
class _Compiled:
    rule: Any
    clouds: tuple[str, ...]
    sources: frozenset[str]
    match: Callable[[Any], bool]
    source_name: str
    trees: list[Any]


def _compile_rule(rule: Any) -> _Compiled:
    ls = rule.logsource
    key = (str(ls.product or "").lower(), str(ls.service or "").lower())
    if key not in LOG_SOURCES:
        raise Unsupported(f"log source product={ls.product} service={ls.service} is not one adscore reads")
    clouds, sources = LOG_SOURCES[key]
    trees = [cond.parse() for cond in rule.detection.parsed_condition]
    return _Compiled(rule, clouds, sources, _rule_predicate(trees), f"{key[0]}/{key[1]}", trees)


def _single_detection(c: _Compiled, dispatcher: Dispatcher | None = None) -> Detection:
    from adscore.actions import ALL_ACTIONS, OUTCOME_DENIED
    from adscore.detection import Detection, Finding

    context = _context(c.rule)

    def evaluate(event: Event, ctx: Context) -> Iterable[Finding]:
        if event.source not in c.sources or not c.match(event.raw):
            return ()
        # one alert per rule, principal and hour (as a SIEM groups a rule's matches): a broad rule
        # matching every event of a busy role raises one alert an hour for it, not one per event
        return (
            Finding(
                entity=event.principal.id,
                window_start=event.time.replace(minute=0, second=0, microsecond=0),
                title=str(c.rule.title)[:200],
                summary=f"Sigma rule {c.rule.title!r} matched {event.operation[:200]} by {event.principal.name or event.principal.id}.",
                events=(event,),
                context=context,
            ),
        )

    # every event of the log source, whatever its action ("" is the route of events without one)
    detection_id = _detection_id(c.rule)
    if dispatcher is not None:
        dispatcher.add(detection_id, c.trees)
    return Detection(
        id=detection_id, meta=_meta(c.rule, c.source_name), actions=frozenset(ALL_ACTIONS | {"", OUTCOME_DENIED}),
        evaluate=evaluate, clouds=c.clouds, dispatch=dispatcher,
    )  # fmt: skip


_OPS: dict[str, Callable[[int, int], bool]] = {"GT": operator.gt, "GTE": operator.ge, "EQ": operator.eq, "NEQ": operator.ne}


def _correlation_detection(corr: Any, bases: list[_Compiled]) -> Detection:
    from sigma.correlations import SigmaCorrelationType

    from adscore.actions import ALL_ACTIONS, OUTCOME_DENIED
    from adscore.detection import Detection, Finding

    kind = corr.type
    if kind not in (SigmaCorrelationType.EVENT_COUNT, SigmaCorrelationType.VALUE_COUNT, SigmaCorrelationType.TEMPORAL):
        raise Unsupported(f"correlation type {getattr(kind, 'name', kind)} is not supported")
    if getattr(corr, "aliases", None):
        raise Unsupported("field aliases are not supported")
    window = timedelta(seconds=int(corr.timespan.seconds))
    group_by = [str(g) for g in (corr.group_by or ())]
    op: Callable[[int, int], bool]
    value_field: str | None
    if kind == SigmaCorrelationType.TEMPORAL:
        op, threshold, value_field = operator.ge, len(bases), None
    else:
        cond = corr.condition
        name = getattr(cond.op, "name", str(cond.op)).upper()
        if name not in _OPS:
            raise Unsupported(f"correlation condition {name.lower()} needs the window's end; not supported")
        op, threshold = _OPS[name], int(cond.count)
        value_field = str(cond.fieldref) if kind == SigmaCorrelationType.VALUE_COUNT else None
        if kind == SigmaCorrelationType.VALUE_COUNT and not value_field:
            raise Unsupported("value_count without a field")
    sources = frozenset().union(*(b.sources for b in bases))
    clouds = tuple(sorted({cl for b in bases for cl in b.clouds}))
    detection_id = _detection_id(corr)
    context = _context(corr)
    label = getattr(kind, "name", str(kind)).lower()

    def evaluate(event: Event, ctx: Context) -> Iterable[Finding]:
        if event.source not in sources:
            return ()
        matched = [b for b in bases if event.source in b.sources and b.match(event.raw)]
        if not matched:
            return ()
        group = "|".join(",".join(sorted(_text(v) for v in _values(event.raw, g))) for g in group_by)
        key = f"{detection_id}|{group}"
        if kind == SigmaCorrelationType.TEMPORAL:
            members: tuple[str, ...] = tuple(str(b.rule.id or b.rule.title) for b in matched)
        elif value_field is not None:
            members = tuple(sorted({_text(v) for v in _values(event.raw, value_field)}))
            if not members:
                return ()
        else:
            members = (event.event_id,)
        count = ctx.state.add(key, members, ctx.now, window)
        if not op(count, threshold):
            return ()
        start = datetime.fromtimestamp(event.time.timestamp() // window.total_seconds() * window.total_seconds(), UTC)
        return (
            Finding(
                entity=group or "all",
                window_start=start,
                title=f"{str(corr.title)[:160]} ({label}: {count} in {window})",
                summary=f"Sigma correlation {corr.title!r}: {count} ({label}) for {group_by or 'all'}={group or '*'} within {window}.",
                events=(event,),
                count=count,
                context={**context, "correlation": label, "group_by": group_by, "group": group, "count": count},
            ),
        )

    return Detection(
        id=detection_id, meta=_meta(corr, ", ".join(sorted(b.source_name for b in bases)), f", a {label} correlation"),
        actions=frozenset(ALL_ACTIONS | {"", OUTCOME_DENIED}), evaluate=evaluate, clouds=clouds,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------ loading


def _rule_files(paths: Sequence[str]) -> list[Path]:
    files: list[Path] = []
    for folder in paths:
        path = Path(folder)
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file()))
        else:
            raise ConfigError("sigma_paths", f"{folder!r} is neither a folder nor a rule file")
    return files


def _load(paths: Sequence[str]) -> tuple[list[Detection], list[RuleReport]]:
    try:
        from sigma.collection import SigmaCollection
        from sigma.correlations import SigmaCorrelationRule
        from sigma.rule import SigmaRule
    except ImportError as e:
        raise ConfigError("sigma_paths", "Sigma rules need pySigma: pip install 'adscore[sigma]'") from e
    detections: list[Detection] = []
    reports: list[RuleReport] = []
    rules: list[tuple[str, Any]] = []
    for rule_file in _rule_files(paths):
        try:
            collection = SigmaCollection.from_yaml(
                rule_file.read_text(encoding="utf-8"), collect_errors=True, resolve_references=False
            )
        except Exception as e:  # a file pySigma cannot read at all
            reports.append(RuleReport(str(rule_file), rule_file.name, None, False, f"cannot be parsed: {str(e)[:200]}"))
            continue
        for item in collection.rules:
            if item.errors:
                reports.append(RuleReport(str(rule_file), str(getattr(item, "title", rule_file.name)), _id(item), False,
                                          "; ".join(str(e)[:200] for e in item.errors)))  # fmt: skip
            else:
                rules.append((str(rule_file), item))
    try:  # correlations may reference rules of other files
        SigmaCollection([r for _, r in rules], resolve_references=False).resolve_rule_references()
    except Exception as e:
        for file, item in rules:
            if isinstance(item, SigmaCorrelationRule):
                reports.append(RuleReport(file, str(item.title), _id(item), False, f"rule references: {e}", "correlation"))
        rules = [(f, r) for f, r in rules if not isinstance(r, SigmaCorrelationRule)]
    compiled: dict[int, _Compiled | str] = {}
    for _file, item in rules:
        if isinstance(item, SigmaRule):
            try:
                compiled[id(item)] = _compile_rule(item)
            except Exception as e:  # Unsupported, or pySigma's own errors raised while compiling
                compiled[id(item)] = str(e)[:300] or type(e).__name__
    # rules a correlation uses alert on their own only when the correlation says `generate: true`
    quiet_bases = {
        id(ref.rule)
        for _f, corr in rules
        if isinstance(corr, SigmaCorrelationRule) and not getattr(corr, "generate", False)
        for ref in corr.rules or ()
    }
    seen: set[str] = set()
    dispatchers: dict[str, Dispatcher] = {}  # one per log source: an event reaches only the rules it can match
    for file, item in rules:
        if isinstance(item, SigmaCorrelationRule):
            bases = [compiled.get(id(ref.rule)) for ref in item.rules or ()]
            bad = [b for b in bases if not isinstance(b, _Compiled)]
            try:
                if bad:
                    raise Unsupported(f"a referenced rule is unsupported: {bad[0]}")
                det = _correlation_detection(item, [b for b in bases if isinstance(b, _Compiled)])
            except Exception as e:
                reports.append(RuleReport(file, str(item.title), _id(item), False, str(e)[:300], "correlation"))
                continue
            _add(det, file, item, detections, reports, seen, "correlation")
        elif isinstance(item, SigmaRule):
            result = compiled[id(item)]
            if isinstance(result, str):
                reports.append(RuleReport(file, str(item.title), _id(item), False, result))
                continue
            if id(item) in quiet_bases:
                reports.append(RuleReport(file, str(item.title), _id(item), True, "used by a correlation only"))
                continue
            dispatcher = dispatchers.get(result.source_name)
            if dispatcher is None:
                dispatcher = dispatchers[result.source_name] = Dispatcher(result.sources)
            _add(_single_detection(result, dispatcher), file, item, detections, reports, seen, "rule")
    for dispatcher in dispatchers.values():
        dispatcher.build()
    return detections, reports


def _add(det: Detection, file: str, item: Any, out: list[Detection], reports: list[RuleReport], seen: set[str], kind: str) -> None:
    if det.id in seen:
        reports.append(RuleReport(file, str(item.title), _id(item), False, f"id {det.id} is loaded twice", kind))
        return
    seen.add(det.id)
    out.append(det)
    reports.append(RuleReport(file, str(item.title), _id(item), True, kind=kind))


def _id(item: Any) -> str | None:
    value = getattr(item, "id", None)
    return str(value) if value else None


@dataclass
class _Cache:
    key: tuple[tuple[str, float], ...] = ()
    value: tuple[list[Detection], list[RuleReport]] = field(default_factory=lambda: ([], []))


_CACHE = _Cache()


def _key(paths: Sequence[str]) -> tuple[tuple[str, float], ...]:
    return tuple((str(p), p.stat().st_mtime) for p in _rule_files(paths))


def load_sigma(paths: Sequence[str]) -> tuple[Detection, ...]:
    """The detections of the loadable Sigma rules under ``paths`` (unsupported ones are left out).

    Raises
    ------
    ConfigError
        A path is missing, or pySigma is not installed.
    """
    key = _key(paths)
    if key != _CACHE.key or not key:
        _CACHE.key, _CACHE.value = key, _load(paths)
    return tuple(_CACHE.value[0])


def check_rules(paths: Sequence[str]) -> list[RuleReport]:
    """Every rule under ``paths``: loaded, or unsupported with the reason."""
    return list(_load(paths)[1])
