"""What a period of logs would alert on, and the settings changes that would quiet its regular noise.

``adscore tune`` replays logs through every enabled detection without sending anything, hands each
alert to a :class:`Tally` and asks :func:`propose` what to change. This module is pure: no I/O, no
terminal, no cloud SDK. The heuristics (all in :class:`Policy`, documented in ``docs/tuning.md``):

- **Suppression** of one principal for the detections it raises *regularly*: on at least
  ``min_days`` distinct days (UTC) and at least ``min_day_share`` of the period's days (the days
  that have events). A principal that alerts on one day only is never proposed: a one-off is what
  an attack looks like. The rule matches the principal's exact id (glob characters escaped), the
  detections it raised regularly, and its account when it alerted from one; it carries a reason
  naming the evidence and an expiry (``expiry_days`` from now), so it is looked at again.
- **Never proposed**: suppressing the chained detection or ``snapshot.shared_external`` (the
  signals that catch an intruder inside a noisy identity, and data leaving), an unknown or
  anonymous principal or an account root (one rule would silence everyone the parsers could not
  name), a principal whose id the alert had to clean (control characters, over 512 characters: a
  rule could not match the original), and any rule that alone would remove more than ``max_share`` of the period's alerts
  (then that identity *is* what the detections see: a person must decide, so it is held back and
  said why).
- **The chain**: a suppression of a principal's ``discovery.*`` alerts also disarms the chained
  detection for it (the chain is armed by a discovery alert): the proposal says so and counts
  those chain alerts in what it removes.
- **Business hours** of an account, when its ``snapshot.off_hours`` alerts on working days come
  from at least two principals on at least ``min_days`` days and ``hours_share`` of them fall
  within ``extend_hours`` hours of the account's start or end: the proposal moves start or end to
  cover those hours (one principal's nightly job is a suppression instead).
- **Trusted accounts** of ``snapshot.shared_external``: an outside account id that snapshots were
  shared with on at least ``min_days`` days by at least two principals is proposed for the
  detection's ``trusted_accounts`` (public grants never are; a first share to a new account stays
  an alert).
- **Threshold** (advice, written as a comment): when ``spread_principals`` or more principals
  raise a counting detection regularly, one raise of its ``threshold`` could replace their
  suppressions. The value proposed is one above the highest count those alerts had, only when it
  stays below every one-off alert's count and at most doubles the current threshold. An alert's
  count is the window's size when it was raised, so the value is an estimate: it is advice for a
  person, never applied by ``--write``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import yaml

from adscore.calendar import hours_for
from adscore.render.escape import clean_text

if TYPE_CHECKING:
    from adscore.alerts import Alert
    from adscore.events import Event
    from adscore.settings import Settings

#: Detections whose alerts tune never proposes to suppress (they catch the intruder in a noisy identity).
PROTECTED_DETECTIONS: frozenset[str] = frozenset({"chain.discovery_then_snapshot", "snapshot.shared_external"})
#: Detections whose alert ``count`` is what their ``threshold`` parameter is compared with.
THRESHOLD_DETECTIONS: dict[str, str] = {
    "discovery.api_burst": "threshold",
    "discovery.access_denied_burst": "threshold",
    "discovery.k8s_namespace_sweep": "threshold",
}
_UNNAMED = frozenset({"", "unknown", "anonymous", "system:anonymous", "root"})
_NAME_CAP = 120
_ID_CAP = 512
_MAX_GROUPS = 100_000  # (detection, principal) groups kept; more are counted, not itemized
_MAX_PRINCIPALS = 200_000  # principals whose operations and addresses are tallied
_MAX_OPS = 400  # distinct operations per principal; past it, a rule names none (it would be too broad to mean much)
_ALL_DAY = 20  # regular in this many UTC hours or more: the rule names no hours
_MAX_IPS = 16  # distinct source addresses per principal; past it, a rule names none (its addresses change)
OFF_HOURS = "snapshot.off_hours"
SHARED_EXTERNAL = "snapshot.shared_external"
CHAIN = "chain.discovery_then_snapshot"
_ACCOUNT_ID = re.compile(r"^[0-9]{12}$")


@dataclass(frozen=True)
class Policy:
    """The knobs of the heuristics (see the module docstring)."""

    min_days: int = 2
    min_day_share: float = 0.5
    max_share: float = 0.5
    expiry_days: int = 90
    top: int = 5
    extend_hours: int = 3
    hours_share: float = 0.8
    spread_principals: int = 4

    def regular_days(self, period_days: int) -> int:
        """Distinct alerting days that make a principal regular over a period of ``period_days`` days."""
        return max(self.min_days, math.ceil(self.min_day_share * max(period_days, 1)))


@dataclass
class _Group:
    """One principal's alerts for one detection."""

    name: str
    type: str
    accounts: Counter[str] = field(default_factory=Counter)
    days: Counter[date] = field(default_factory=Counter)
    hours: dict[int, set[date]] = field(default_factory=dict)
    min_count: int = 0
    max_count: int = 0

    @property
    def alerts(self) -> int:
        return sum(self.days.values())


@dataclass
class _OffHours:
    """One account's ``snapshot.off_hours`` alerts on working days, by local hour."""

    hours: Counter[int] = field(default_factory=Counter)
    principals: set[str] = field(default_factory=set)
    days: set[date] = field(default_factory=set)
    other: int = 0  # on non-working days or holidays (a calendar change cannot help)


@dataclass
class _Usage:
    """What one principal did on which days: its operations and source addresses (bounded)."""

    ops: dict[str, set[date]] = field(default_factory=dict)
    ips: dict[str, set[date]] = field(default_factory=dict)
    too_many_ops: bool = False
    too_many_ips: bool = False


@dataclass
class _Target:
    """An outside account that snapshots were shared with."""

    principals: set[str] = field(default_factory=set)
    days: set[date] = field(default_factory=set)


class Tally:
    """Everything ``propose`` needs, in memory bounded by the distinct (detection, principal) pairs."""

    def __init__(self, settings: Settings, since: datetime | None = None, until: datetime | None = None) -> None:
        self.settings = settings
        self.calendar = settings.calendar
        self.since, self.until = since, until
        self.event_days: Counter[date] = Counter()
        self.by_detection: dict[str, Counter[date]] = {}
        self.groups: dict[tuple[str, str], _Group] = {}
        self.by_account: dict[str, Counter[str]] = {}
        self.off_hours: dict[str, _OffHours] = {}
        self.share_targets: dict[str, _Target] = {}
        self.shared_alerts: list[tuple[str, ...]] = []  # the external targets of each shared_external alert
        self.usage: dict[str, _Usage] = {}
        self.ungrouped = 0
        self.alerts = 0
        self.outside = 0

    def in_period(self, t: datetime) -> bool:
        """Whether ``t`` falls in ``[since, until]``."""
        return not ((self.since is not None and t < self.since) or (self.until is not None and t > self.until))

    def add_event_time(self, t: datetime) -> None:
        """Count one event of the period on its UTC day (the period's days are the days with events)."""
        self.event_days[t.astimezone(UTC).date()] += 1

    def add_event(self, event: Event) -> None:
        """Count one event of the period: its day, and the principal's operation and source address that day."""
        day = event.time.astimezone(UTC).date()
        self.event_days[day] += 1
        pid = event.principal.id
        u = self.usage.get(pid)
        if u is None:
            if len(self.usage) >= _MAX_PRINCIPALS:
                return
            u = self.usage[pid] = _Usage()
        if not u.too_many_ops:
            days = u.ops.get(event.operation)
            if days is None:
                if len(u.ops) >= _MAX_OPS:
                    u.too_many_ops, u.ops = True, {}
                else:
                    u.ops[event.operation] = {day}
            else:
                days.add(day)
        if not u.too_many_ips:
            ip = event.source_ip or ""
            days = u.ips.get(ip)
            if days is None:
                if len(u.ips) >= _MAX_IPS:
                    u.too_many_ips, u.ips = True, {}
                else:
                    u.ips[ip] = {day}
            else:
                days.add(day)

    def add(self, alert: Alert) -> None:
        """Count one alert (outside the period it is only counted as such)."""
        if not self.in_period(alert.first_seen):
            self.outside += 1
            return
        self.alerts += 1
        det = alert.detection
        day = alert.first_seen.date()
        self.by_detection.setdefault(det, Counter())[day] += 1
        p = alert.principal
        pid = p.get("id") or "unknown"
        account = alert.account or p.get("account") or ""
        self.by_account.setdefault(det, Counter())[account] += 1
        key = (det, pid)
        g = self.groups.get(key)
        if g is None:
            if len(self.groups) >= _MAX_GROUPS:
                self.ungrouped += 1
                return
            g = self.groups[key] = _Group(p.get("name") or pid, p.get("type") or "unknown", min_count=alert.count)
        g.accounts[account] += 1
        g.days[day] += 1
        g.hours.setdefault(alert.first_seen.hour, set()).add(day)
        g.min_count = min(g.min_count, alert.count)
        g.max_count = max(g.max_count, alert.count)
        if det == OFF_HOURS:
            self._off_hours(alert, pid, account, day)
        elif det == SHARED_EXTERNAL and alert.context.get("kind") == "external":
            targets = [str(t) for t in alert.context.get("external") or ()]
            self.shared_alerts.append(tuple(sorted(set(targets))))
            for target in set(targets):
                s = self.share_targets.setdefault(target, _Target())
                s.days.add(day)
                if len(s.principals) < 1000:
                    s.principals.add(pid)

    def _off_hours(self, alert: Alert, pid: str, account: str, day: date) -> None:
        o = self.off_hours.setdefault(account, _OffHours())
        if alert.context.get("non_working_day") or alert.context.get("holiday"):
            o.other += 1
            return
        hours = hours_for(self.calendar, account or None)
        from zoneinfo import ZoneInfo

        local = alert.first_seen.astimezone(ZoneInfo(hours.timezone))
        o.hours[local.hour] += 1
        if len(o.principals) < 1000:
            o.principals.add(pid)
        o.days.add(day)

    @property
    def period_days(self) -> list[date]:
        """The days of the period that have events (UTC), oldest first."""
        return sorted(self.event_days)


@dataclass(frozen=True)
class Finding:
    """One principal's alerts for one detection, and what tune makes of them."""

    detection: str
    principal: str
    name: str
    type: str
    accounts: tuple[str, ...]
    alerts: int
    days: int
    per_day: dict[str, int]
    hours: tuple[int, ...]
    verdict: str  # "suppress", "calendar", "one-off", "occasional", "protected", "unnamed", "unmatchable"
    why: str


@dataclass(frozen=True)
class Proposal:
    """One settings change: ``suppression``, ``business_hours``, ``trusted_accounts`` or ``threshold`` (advice)."""

    kind: str
    target: str
    removes: int
    evidence: tuple[str, ...]
    setting: dict[str, Any]


@dataclass
class Report:
    """What ``propose`` found: per-detection figures, findings, proposals and what was held back."""

    since: str | None
    until: str | None
    days: list[str]
    alerts: int
    outside_period: int
    by_detection: dict[str, dict[str, int]]
    top_accounts: dict[str, list[tuple[str, int]]]
    findings: dict[str, list[Finding]]
    proposals: list[Proposal]
    held: list[str]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (``adscore tune --json``)."""
        return {
            "since": self.since,
            "until": self.until,
            "days": self.days,
            "alerts": self.alerts,
            "outside_period": self.outside_period,
            "by_detection": self.by_detection,
            "top_accounts": {d: [{"account": a, "alerts": n} for a, n in v] for d, v in self.top_accounts.items()},
            "findings": {d: [f.__dict__ | {"hours": list(f.hours), "accounts": list(f.accounts)} for f in v]
                         for d, v in self.findings.items()},
            "proposals": [
                {"kind": p.kind, "target": p.target, "removes": p.removes, "evidence": list(p.evidence),
                 "setting": _jsonable(p.setting)}
                for p in self.proposals
            ],
            "held": self.held,
        }


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def escape_glob(text: str) -> str:
    """``text`` as a glob that matches only itself (``*``, ``?`` and ``[`` in brackets)."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def short(text: str, limit: int = _NAME_CAP) -> str:
    """Log text made safe for one line of a report: capped, control characters and line breaks removed."""
    return clean_text(text, limit)


def _slug(name: str, pid: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].strip("-") or "principal"
    return f"tune-{base}-{hashlib.sha256(pid.encode('utf-8', 'surrogatepass')).hexdigest()[:6]}"


def _unnamed(pid: str, name: str, ptype: str) -> bool:
    return (
        pid.strip().lower() in _UNNAMED
        or ptype in ("anonymous", "unknown")
        or pid.endswith(":root")
        or name == "root"
    )


def _unmatchable(pid: str) -> bool:
    """An id the alert had to clean (control characters replaced, or cut): a rule built on it would not match."""
    return "\ufffd" in pid or (len(pid) >= _ID_CAP and pid.endswith("…"))


def _hours_text(hours: tuple[int, ...]) -> str:
    if len(hours) >= 12:
        return "all day"
    return ", ".join(f"{h:02d}" for h in hours) + " UTC"


def propose(tally: Tally, policy: Policy | None = None, *, now: datetime | None = None) -> Report:
    """Turn a tally into findings and proposals (see the module docstring for the rules)."""
    policy = policy or Policy()
    now = now or datetime.now(UTC)
    days = tally.period_days
    n_days = len(days)
    need = policy.regular_days(n_days)
    total = tally.alerts
    cap = policy.max_share * total
    findings: dict[str, list[Finding]] = {}
    regular: dict[str, list[tuple[str, _Group]]] = {}  # principal -> its regular (detection, group)
    held: list[str] = []
    calendar = _business_hours(tally, policy, need, cap, held)
    calendar_accounts = {p.target for p in calendar}
    one_off_min: dict[str, int] = {}  # detection -> lowest count of a one-off alert
    for (det, pid), g in tally.groups.items():
        n = len(g.days)
        if _unnamed(pid, g.name, g.type):
            verdict, why = "unnamed", "no stable identity (unknown, anonymous or root): a rule would silence everyone"
        elif _unmatchable(pid):
            verdict, why = "unmatchable", "its id held characters the alert replaced or cut: no rule can match it exactly"
        elif n >= need and det in PROTECTED_DETECTIONS:
            verdict, why = "protected", f"{det} is never suppressed by tune (it catches an intruder in a noisy identity)"
        elif n >= need and det == OFF_HOURS and set(g.accounts) <= calendar_accounts:
            verdict, why = "calendar", "covered by the business-hours proposal for its account"
        elif n >= need and _regular_hours(g, need) is None:
            verdict, why = "occasional", f"alerts on {n} of {n_days} days, but never twice in the same hour"
            one_off_min[det] = min(one_off_min.get(det, g.min_count), g.min_count)
        elif n >= need:
            verdict, why = "suppress", f"alerts on {n} of {n_days} days (regular: at least {need})"
            regular.setdefault(pid, []).append((det, g))
        elif n == 1:
            verdict, why = "one-off", "alerts on one day only: may be an attack, never proposed"
            one_off_min[det] = min(one_off_min.get(det, g.min_count), g.min_count)
        else:
            verdict, why = "occasional", f"alerts on {n} of {n_days} days (regular: at least {need})"
            one_off_min[det] = min(one_off_min.get(det, g.min_count), g.min_count)
        findings.setdefault(det, []).append(
            Finding(
                det, short(pid, _ID_CAP), short(g.name), short(g.type, 40),
                tuple(short(a, 80) for a, _ in g.accounts.most_common(3)), g.alerts, n,
                {d.isoformat(): c for d, c in sorted(g.days.items())}, tuple(sorted(g.hours)), verdict, why,
            )
        )  # fmt: skip
    for det in findings:
        findings[det].sort(key=lambda f: (-f.alerts, f.principal))

    proposals: list[Proposal] = []
    until = (now + timedelta(days=policy.expiry_days)).replace(hour=0, minute=0, second=0, microsecond=0)
    stamp = now.date().isoformat()
    for pid, items in sorted(regular.items(), key=lambda kv: (-sum(g.alerts for _, g in kv[1]), kv[0])):
        removes = sum(g.alerts for _, g in items)
        chain = tally.groups.get((CHAIN, pid))
        chain_note: tuple[str, ...] = ()
        if chain is not None and any(det.startswith("discovery.") for det, _ in items):
            removes += chain.alerts  # the chain needs the discovery alert: suppressing it disarms the chain too
            chain_note = (
                f"also silences its {chain.alerts} {CHAIN} alerts: the chain is armed by the discovery alert "
                "this rule suppresses",
            )
        if removes > cap:
            held.append(
                f"{short(pid, 200)}: a suppression would remove {removes} of {total} alerts "
                f"(more than {policy.max_share:.0%}); when one identity makes most alerts, it is either what "
                "the estate does or what an intruder does - a person must decide"
            )
            continue
        scope, scope_note = _scope(tally.usage.get(pid), need)
        by_hours: dict[tuple[int, ...], list[tuple[str, _Group]]] = {}
        for det, g in sorted(items):
            by_hours.setdefault(_regular_hours(g, need) or (), []).append((det, g))
        for k, (hours, group) in enumerate(sorted(by_hours.items())):
            rule = _rule(pid, group, hours, scope, n_days, until, stamp)
            evidence = tuple(
                f"{det}: per day {', '.join(f'{d.isoformat()}={c}' for d, c in sorted(g.days.items()))}; "
                f"hours {_hours_text(tuple(sorted(g.hours)))}"
                for det, g in group
            ) + scope_note + (chain_note if k == 0 else ())
            share = sum(g.alerts for _, g in group) + (chain.alerts if chain_note and k == 0 and chain else 0)
            proposals.append(Proposal("suppression", short(pid, _ID_CAP), share, evidence, rule))

    proposals.extend(calendar)
    proposals.extend(_trusted_accounts(tally, need, cap, held))
    proposals.extend(_thresholds(tally, policy, regular, one_off_min, held))

    by_detection = {
        det: {d.isoformat(): c[d] for d in days if c.get(d)} | {"total": sum(c.values())}
        for det, c in sorted(tally.by_detection.items())
    }
    top_accounts = {
        det: [(short(a, 80) or "(none)", n) for a, n in c.most_common(policy.top)]
        for det, c in sorted(tally.by_account.items())
    }
    return Report(
        since=tally.since.isoformat() if tally.since else None,
        until=tally.until.isoformat() if tally.until else None,
        days=[d.isoformat() for d in days],
        alerts=total,
        outside_period=tally.outside,
        by_detection=by_detection,
        top_accounts=top_accounts,
        findings=findings,
        proposals=proposals,
        held=held,
    )


def _business_hours(tally: Tally, policy: Policy, need: int, cap: float, held: list[str]) -> list[Proposal]:
    out: list[Proposal] = []
    for account, o in sorted(tally.off_hours.items()):
        n = sum(o.hours.values())
        if not account or n == 0 or len(o.principals) < 2 or len(o.days) < need:
            continue
        hours = hours_for(tally.calendar, account)
        start, end = hours.start.hour, hours.end.hour + (1 if hours.end.minute else 0)
        if start >= end:  # a window across midnight: leave it to a person
            continue
        early = {h for h in o.hours if start - policy.extend_hours <= h < start}
        late = {h for h in o.hours if end <= h < end + policy.extend_hours}
        near = sum(o.hours[h] for h in early | late)
        if near < policy.hours_share * n or near == 0:
            continue
        if near > cap:
            held.append(f"business hours of account {short(account, 80)}: would remove {near} alerts (over the cap)")
            continue
        new_start = min(early) if early else start
        new_end = max(late) + 1 if late else end
        setting = {
            "timezone": hours.timezone,
            "days": list(hours.days),
            "start": time(new_start, 0).strftime("%H:%M"),
            "end": "23:59" if new_end >= 24 else time(new_end, 0).strftime("%H:%M"),
        }
        if hours.holidays:
            setting["holidays"] = sorted(d.isoformat() for d in hours.holidays)
        evidence = (
            f"{near} of {n} working-day off-hours alerts at local hours "
            f"{', '.join(f'{h:02d}' for h in sorted(early | late))} ({hours.timezone}), from {len(o.principals)} "
            f"principals on {len(o.days)} days; now {hours.start:%H:%M}-{hours.end:%H:%M}",
        )
        out.append(Proposal("business_hours", short(account, 80), near, evidence, setting))
    return out


def _trusted_accounts(tally: Tally, need: int, cap: float, held: list[str]) -> list[Proposal]:
    """Outside accounts that receive shares regularly from several principals: a partner to list as trusted.

    Only 12-digit account ids, never ``public`` grants; a target shared with on one day, or by one
    principal, is never proposed (one share to a new account is what exfiltration looks like).
    """
    partners = {
        t: s for t, s in tally.share_targets.items()
        if _ACCOUNT_ID.match(t) and len(s.days) >= need and len(s.principals) >= 2
    }  # fmt: skip
    if not partners:
        return []
    removes = sum(1 for targets in tally.shared_alerts if targets and set(targets) <= set(partners))
    if removes > cap:
        held.append(f"{SHARED_EXTERNAL}: trusting {', '.join(sorted(partners))} would remove {removes} alerts "
                    "(over the cap)")
        return []
    from adscore.detections import get

    current = get(SHARED_EXTERNAL).params.model_validate(tally.settings.params_for(SHARED_EXTERNAL))
    have: tuple[str, ...] = tuple(getattr(current, "trusted_accounts", ()))
    trusted = [*have, *(t for t in sorted(partners) if t not in have)]
    evidence = tuple(
        f"account {t}: shares on {len(s.days)} days by {len(s.principals)} principals; confirm it is a partner "
        "or another account of yours (then org_accounts fits better)"
        for t, s in sorted(partners.items())
    )
    return [Proposal("trusted_accounts", SHARED_EXTERNAL, removes, evidence, {"trusted_accounts": trusted})]


def _regular_hours(g: _Group, need: int) -> tuple[int, ...] | None:
    """The UTC hours it alerted in on regular days: ``()`` when nearly every hour (all day), None when none."""
    hours = tuple(sorted(h for h, days in g.hours.items() if len(days) >= need))
    if not hours:
        return None
    return () if len(hours) >= _ALL_DAY else hours


def _scope(usage: _Usage | None, need: int) -> tuple[dict[str, list[str]], tuple[str, ...]]:
    """The operations and source addresses the principal used on regular days: what its rule is limited to."""
    import ipaddress

    if usage is None:
        return {}, ()
    scope: dict[str, list[str]] = {}
    notes = []
    ops = sorted(op for op, days in usage.ops.items() if len(days) >= need and op)
    if ops and not usage.too_many_ops:
        scope["operations"] = [escape_glob(op) for op in ops]
        notes.append(f"limited to the {len(ops)} operation(s) it called on regular days")
    ips = [ip for ip, days in usage.ips.items() if len(days) >= need]
    nets = []
    for ip in sorted(ips):
        try:
            nets.append(str(ipaddress.ip_network(ip.strip("[]"))))
        except ValueError:
            nets = []
            break
    if nets and not usage.too_many_ips:
        scope["source_cidrs"] = nets
        notes.append(f"to the {len(nets)} source address(es) it used on regular days")
    if notes:
        notes.append("the same credentials calling anything else, or from elsewhere, still alert")
    return scope, ("; ".join(notes),) if notes else ()


def _rule(
    pid: str,
    group: list[tuple[str, _Group]],
    hours: tuple[int, ...],
    scope: dict[str, list[str]],
    n_days: int,
    until: datetime,
    stamp: str,
) -> dict[str, Any]:
    """One suppression entry for a principal and the detections it raises regularly in the same hours."""
    g0 = group[0][1]
    label = f"{g0.type} {short(g0.name, 60)}"
    parts = [
        f"{g.alerts} {det} alerts on {len(g.days)} of {n_days} days ({g.alerts / len(g.days):.1f}/day)"
        for det, g in group
    ]
    when = f" at {_hours_text(hours)}" if hours else ""
    reason = short(f"{label} raised " + "; ".join(parts) + when + f" (adscore tune {stamp}, review before expiry)", 900)
    accounts = {a for _, g in group for a in g.accounts}
    rule: dict[str, Any] = {
        "name": _slug(g0.name, pid + repr(hours)),
        "reason": reason,
        "detections": [det for det, _ in group],
        "principals": [escape_glob(pid)],
    }
    if len(accounts) == 1 and next(iter(accounts)):
        rule["accounts"] = sorted(accounts)
    rule.update(scope)
    if hours:
        rule["utc_hours"] = list(hours)
    rule["until"] = until
    return rule


def _thresholds(
    tally: Tally,
    policy: Policy,
    regular: dict[str, list[tuple[str, _Group]]],
    one_off_min: dict[str, int],
    held: list[str],
) -> list[Proposal]:
    out: list[Proposal] = []
    per_det: dict[str, list[_Group]] = {}
    for items in regular.values():
        for det, g in items:
            per_det.setdefault(det, []).append(g)
    for det, groups in sorted(per_det.items()):
        param = THRESHOLD_DETECTIONS.get(det)
        if param is None or len(groups) < policy.spread_principals:
            continue
        current = _current_threshold(tally, det, param)
        value = max(g.max_count for g in groups) + 1
        lowest_one_off = one_off_min.get(det)
        if value > 2 * current:
            held.append(f"{det}: {len(groups)} principals alert regularly, but silencing them needs {param} "
                        f"{value}, more than twice the current {current}")
            continue
        if lowest_one_off is not None and value > lowest_one_off:
            held.append(f"{det}: raising {param} to {value} would also hide a one-off alert (count {lowest_one_off})")
            continue
        evidence = (
            f"{len(groups)} principals raise {det} regularly with counts up to {value - 1}; every one-off alert "
            f"counted {lowest_one_off if lowest_one_off is not None else 'n/a'} or more; current {param} {current}. "
            "Counts are taken when each alert was raised: an estimate, review before applying",
        )
        out.append(Proposal("threshold", det, sum(g.alerts for g in groups), evidence, {param: value}))
    return out


def _current_threshold(tally: Tally, det: str, param: str) -> int:
    """The threshold in force: the detection's default with the settings' override."""
    from adscore.detections import get

    params = get(det).params.model_validate(tally.settings.params_for(det))
    return int(getattr(params, param))


def _comment(text: str) -> str:
    """One YAML comment line: ASCII only (JSON escapes), so no character of the logs can end the comment."""
    body = json.dumps(text, ensure_ascii=True)[1:-1]
    return f"# {body}"


def _dump(value: Any) -> list[str]:
    text = yaml.safe_dump(value, default_flow_style=False, sort_keys=False, allow_unicode=False, width=10**6)
    return text.rstrip("\n").split("\n")


def to_yaml(report: Report) -> str:
    """The proposals as a settings YAML fragment for a person to review (``adscore tune --write``).

    Values are written by the YAML dumper (quoted and escaped as needed); comments naming the
    evidence hold ASCII only. Threshold proposals are advice: they are written as comments.
    """
    lines = [
        _comment("adscore tune proposal: review each entry before merging it into your settings file."),
        _comment(f"period: {', '.join(report.days) or 'no events'}; {report.alerts} alerts"),
    ]
    sups = [p for p in report.proposals if p.kind == "suppression"]
    cal = [p for p in report.proposals if p.kind == "business_hours"]
    thr = [p for p in report.proposals if p.kind == "threshold"]
    trust = [p for p in report.proposals if p.kind == "trusted_accounts"]
    if sups:
        lines.append("suppressions:")
        for p in sups:
            lines.append("  " + _comment(f"removes {p.removes} alerts"))
            lines.extend("  " + _comment(e) for e in p.evidence)
            lines.extend("  " + line for line in _dump([p.setting]))
    if cal:
        lines.append("calendar:")
        lines.append("  accounts:")
        for p in cal:
            lines.extend("    " + _comment(e) for e in p.evidence)
            lines.extend("    " + line for line in _dump({p.target: p.setting}))
    if trust:
        lines.append("detections:")
        for p in trust:
            lines.append("  " + _comment(f"removes {p.removes} alerts"))
            lines.extend("  " + _comment(e) for e in p.evidence)
            lines.extend("  " + line for line in _dump({p.target: p.setting}))
    if thr:
        lines.append(_comment("threshold advice (estimates; uncomment after review):"))
        for p in thr:
            lines.extend(_comment(e) for e in p.evidence)
            lines.extend(_comment(line) for line in _dump({"detections": {p.target: p.setting}}))
    for h in report.held:
        lines.append(_comment(f"held back: {h}"))
    return "\n".join(lines) + "\n"
