"""Detection `discovery.enumeration_tool` (T1526 Cloud Service Discovery).

Calls whose user agent names a known cloud enumeration or audit tool
(ScoutSuite, Pacu, CloudSploit, Prowler, AzureHound, ROADtools, ...), and the
call signatures of the ADS's own emulation: `aws service-quotas
list-service-quotas` swept over several service codes, and `az group list`
where ARM reads are visible.

LOW severity on purpose: user agents are attacker-controlled (Pacu rewrites
its own to slip past GuardDuty) and the organisation's own scanners use the
same tools. A match is a hint that gives context to the burst detections and
arms ``chain.discovery_then_snapshot``; it is never the only evidence.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import Field

from adscore.actions import DISCOVERY_PERMISSION_PROBE, DISCOVERY_READ, IDENTITY_SIGNIN, OUTCOME_DENIED
from adscore.detection import AdsMeta, Detection, DetectionParams, Finding
from adscore.detections._shared import episode_start, where, who

if TYPE_CHECKING:
    from collections.abc import Iterable

    from adscore.detection import Context
    from adscore.events import Event

DETECTION_ID = "discovery.enumeration_tool"

DEFAULT_TOOLS: tuple[str, ...] = (
    "ScoutSuite",
    "Scout2",
    "Pacu",
    "CloudSploit",
    "Prowler",
    "CloudFox",
    "MicroBurst",
    "AzureHound",
    "ROADtools",
    "roadrecon",
    "AADInternals",
    "Stormspotter",
    "WeirdAAL",
    "enumerate-iam",
    "PMapper",
    "aws-inventory",
    "Cartography",
    "TruffleHog",
    "CloudMapper",
    "PowerZure",
    "GraphRunner",
    "cloud_enum",
    "GCPBucketBrute",
    "SkyArk",
    "CloudBrute",
    "kube-hunter",
    "Peirates",
    "KubiScan",
    "kubectl-who-can",
    "rbac-police",
)


class Params(DetectionParams):
    """Parameters of `discovery.enumeration_tool`."""

    tools: tuple[str, ...] = Field(
        default=DEFAULT_TOOLS,
        description="tool names matched in user agents (case, spaces, '-' and '_' ignored)",
    )
    extra_tools: tuple[str, ...] = Field(default=(), description="more tool names, added to `tools`")
    quota_operations: tuple[str, ...] = Field(
        default=(
            "servicequotas:ListServiceQuotas",
            "servicequotas:ListAWSDefaultServiceQuotas",
            "servicequotas:ListServices",
            "servicequotas:ListRequestedServiceQuotaChangeHistory",
        ),
        description="AWS Service Quotas calls whose sweep over service codes is a discovery signature",
    )
    quota_threshold: int = Field(
        default=3, ge=1, description="distinct service codes (or calls) in the window"
    )
    signatures: dict[str, str] = Field(
        default={"az group list": "microsoft.resources/subscriptions/resourcegroups/read"},
        description="name -> operation (lowercase) whose call alone is a discovery hint",
    )
    window_minutes: int = Field(default=10, ge=1, le=1440)
    episode_minutes: int = Field(default=60, ge=1, le=1440)


def _norm(text: str) -> str:
    return text.lower().replace(" ", "").replace("-", "").replace("_", "")


class _Lookups:
    """What one Params derives for the hot path: pydantic attribute access is slow, a dict lookup is not."""

    __slots__ = ("agents", "needles", "params", "quota_ops", "signatures")

    UA_CACHE_MAX = 4096

    def __init__(self, p: Params) -> None:
        self.params = p
        tools = (*p.tools, *p.extra_tools)
        #: (normalized needle, display name) per tool.
        self.needles = tuple((_norm(name), name) for name in tools if _norm(name))
        by_op: dict[str, list[str]] = {}
        for name, sig in p.signatures.items():
            by_op.setdefault(sig.lower(), []).append(name)
        #: lower-cased operation -> signature names.
        self.signatures = {k: tuple(v) for k, v in by_op.items()}
        self.quota_ops = frozenset(v.lower() for v in p.quota_operations)
        #: user agent -> matched tool (or None); bounded, cleared when full.
        self.agents: dict[str, str | None] = {}

    def tool(self, user_agent: str | None) -> str | None:
        """The first tool whose normalized name is in the normalized user agent."""
        if not user_agent:
            return None
        agents = self.agents
        if user_agent in agents:
            return agents[user_agent]
        ua = _norm(user_agent[:1024])
        found = next((name for needle, name in self.needles if needle in ua), None)
        if len(agents) >= self.UA_CACHE_MAX:
            agents.clear()
        agents[user_agent] = found
        return found


#: Lookups per Params, by id (checked by identity).
_DERIVED: dict[int, _Lookups] = {}


def _derived(p: Params) -> _Lookups:
    """The lookups of ``p``, computed once per Params."""
    hit = _DERIVED.get(id(p))
    if hit is not None and hit.params is p:
        return hit
    if len(_DERIVED) > 64:
        _DERIVED.clear()
    hit = _DERIVED[id(p)] = _Lookups(p)
    return hit


def _tool(user_agent: str | None, p: Params) -> str | None:
    return _derived(p).tool(user_agent)


def _quota_member(event: Event) -> str:
    """A distinct member per service code asked for (the code, when the parser names it)."""
    for r in event.resources:
        if r.id:
            return f"{event.operation}\x1f{r.id}"
    if event.operation.lower().endswith(":listservices"):
        return event.operation
    return f"{event.operation}\x1f{event.event_id}"


_META_NOTE = (
    "User agents are attacker-controlled: a match is a hint, never the only evidence "
    "(Pacu rewrites its user agent; the organisation's own scanners match too)."
)


def _finding(event: Event, ctx: Context, entity: str, kind: str, name: str, count: int, what: str) -> Finding:
    p: Params = ctx.params
    window = timedelta(minutes=p.window_minutes)
    start = episode_start(
        ctx.state, f"{DETECTION_ID}|{entity}", ctx.now, window, timedelta(minutes=p.episode_minutes)
    )
    title = f"{name} {what} by {who(event)}{where(event)}"
    count_key = "distinct_service_codes" if kind == "quota_sweep" else "distinct_operations"
    summary = (
        f"{who(event)} ({event.principal.type}) {what} ({kind} match on {event.operation[:120]}, user agent "
        f"{(event.user_agent or '-')[:160]!r}, from {(event.source_ip or 'unknown address')[:64]}). {_META_NOTE} "
        f"Check the burst detections and what this principal did next."
    )
    return Finding(
        entity=entity,
        window_start=start,
        title=title[:300],
        summary=summary,
        events=(event,),
        count=count,
        context={
            "match": kind,
            "tool": name,
            count_key: count,
            "window_minutes": p.window_minutes,
            "user_agent": (event.user_agent or "")[:200],
            "note": _META_NOTE,
        },
    )


def evaluate(event: Event, ctx: Context) -> Iterable[Finding]:
    """Match tool user agents and discovery call signatures."""
    p: Params = ctx.params
    if event.outcome == "pending":
        return ()
    look = _derived(p)
    tool = look.tool(event.user_agent)
    op = event.operation.lower()
    signatures = look.signatures.get(op, ())
    quota = op in look.quota_ops
    if tool is None and not signatures and not quota:
        return ()
    out: list[Finding] = []
    pid = event.principal.id
    window = timedelta(minutes=p.window_minutes)
    if tool is not None:
        key = f"{DETECTION_ID}|{pid}|tool:{_norm(tool)}"
        n = ctx.state.add(key, (event.operation,), ctx.now, window)
        out.append(
            _finding(event, ctx, f"{pid}|tool:{tool}", "user_agent", tool, n, f"user agent: {n} operation(s)")
        )
    if quota:
        n = ctx.state.add(f"{DETECTION_ID}|{pid}|quotas", (_quota_member(event),), ctx.now, window)
        if n >= p.quota_threshold:
            out.append(
                _finding(
                    event,
                    ctx,
                    f"{pid}|service-quotas",
                    "quota_sweep",
                    "service-quotas",
                    n,
                    f"sweep: {n} quota listings in {p.window_minutes} min",
                )
            )
    for name in signatures:
        out.append(_finding(event, ctx, f"{pid}|sig:{name}", "signature", name[:60], 1, "call signature"))
    return out


DETECTION = Detection(
    id=DETECTION_ID,
    meta=AdsMeta(
        title="Known cloud enumeration tool or discovery call signature",
        goal=(
            "Flag calls made by known cloud enumeration and audit tools, and the discovery call signatures of the "
            "ADS emulation (`aws service-quotas list-service-quotas` sweeps, `az group list`), as context for "
            "T1526 Cloud Service Discovery."
        ),
        technique="T1526",
        technique_name="Cloud Service Discovery",
        tactic="Discovery",
        severity="low",
        platforms=("IaaS", "Azure AD", "Office 365", "SaaS", "Google Workspace"),
        strategy=(
            "Match the user agent of every read, permission probe, denied call and Entra ID sign-in against a "
            "list of tool names "
            "(ScoutSuite, Pacu, CloudSploit, Prowler, CloudFox, MicroBurst, AzureHound, ROADtools/roadrecon, "
            "AADInternals, Stormspotter, WeirdAAL, enumerate-iam, PMapper, aws-inventory, Cartography, TruffleHog, "
            "...; extend with `extra_tools`), ignoring case, spaces, '-' and '_'. Separately count AWS Service "
            "Quotas listings per principal: 3 listings for distinct service codes in 10 minutes is the "
            "`list-service-quotas` sweep. Azure `resourceGroups/read` (`az group list`) is flagged where ARM "
            "reads are logged. One alert per principal and tool per hour."
        ),
        technical_context=(
            "Many enumeration tools announce themselves in the HTTP User-Agent (botocore `user_agent_extra`, "
            "Graph SDK headers), which CloudTrail, GCP audit logs, Graph activity logs, Entra sign-in logs and "
            "Kubernetes audit logs record. Azure AD tools (AzureHound, ROADtools, AADInternals) sign in before "
            "they read, so their sign-in shows up even where Graph activity logs are not collected. " + _META_NOTE
        ),
        blind_spots=(
            "Tools that fake or strip their user agent (Pacu by design, any script setting its own) are not "
            "matched here; the burst detections catch their volume.",
            "Azure ARM GETs (`az group list`) are not in the Activity Log; the signature only fires where a feed "
            "carries them.",
            "The Service Quotas sweep needs the service code in the event's resources to count codes; otherwise "
            "calls are counted.",
        ),
        false_positives=(
            "The organisation's own security scanners (Prowler, ScoutSuite, CloudSploit in a posture tool): "
            "suppress their roles by principal.",
            "Scheduled automated deployment processes that check quotas before a deploy (service-quotas calls "
            "from the CI deploy role): suppress the role.",
            "Legitimate use of test environments where teams try these tools: suppress the account.",
        ),
        priority="Low alone (attacker-controlled text); context for the medium/high discovery alerts and the chain.",
        validation=(
            "AWS: `aws service-quotas list-service-quotas --service-code ec2|ebs|rds|...` and a CloudSploit and "
            "ScoutSuite run (examples/aws/discovery_enumeration_tool.jsonl).",
            'Azure: `az group list --query "[].{name:name}" --output table` and MicroBurst/AzureHound Graph '
            "enumeration (examples/azure/discovery_enumeration_tool.jsonl).",
        ),
        response=(
            "Verify the source and context: is the tool run by your security team (ticket, scheduled scan, "
            "known role and source IP)? If not, treat it as hands-on-keyboard discovery.",
            "Investigate the credentials and access used by the tool: key id or token, when and where it was "
            "issued, and what the identity can reach.",
            "Review recent configuration and deployment changes around the run: new keys, roles, trust "
            "policies or service principals created before it.",
            "Isolate affected containers or hosts the tool ran from (an instance role, a pod's service account).",
            "Tune: suppress your own scanners by principal (not by user agent, which anyone can set) and add "
            "tools your team sees to `extra_tools`.",
        ),
        data_sources=(
            "AWS CloudTrail userAgent",
            "GCP audit requestMetadata.callerSuppliedUserAgent",
            "Microsoft Graph activity logs userAgent",
            "Kubernetes audit userAgent",
        ),
        references=(
            "https://attack.mitre.org/techniques/T1526/",
            "https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_finding-types-iam.html",
            "https://docs.aws.amazon.com/cli/latest/reference/service-quotas/list-service-quotas.html",
            "https://learn.microsoft.com/en-us/cli/azure/group#az-group-list",
            "https://github.com/NetSPI/MicroBurst",
        ),
    ),
    actions=frozenset({DISCOVERY_READ, DISCOVERY_PERMISSION_PROBE, OUTCOME_DENIED, IDENTITY_SIGNIN}),
    evaluate=evaluate,
    params=Params,
    clouds=("aws", "azure", "gcp", "kubernetes"),
)
