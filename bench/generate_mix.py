"""Write issue 22's synthetic day of CloudTrail: a wider mix than ``generate_cloudtrail.py``.

The mix (deterministic for a seed): 300 principals in 6 accounts (workload roles, CI roles, SSO
users, IAM users, AWS service principals and service roles invoked by AWS Backup / DLM / Config),
47 event sources, about 71 % read-only calls, 1.9 % errors (denials, throttling, not-found,
validation), 0.1 % snapshot calls, spread over 24 hours, plus the two scenarios of
``generate_cloudtrail.py`` (a discovery sweep and a snapshot-then-share).

Usage::

    python bench/generate_mix.py --records 1000000 --out bench/data/mix-1m.jsonl [--seed 22]

``.jsonl`` writes one record per line; ``.json.gz`` one gzipped CloudTrail log file.
"""

from __future__ import annotations

import random
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate_cloudtrail as gc
from generate_cloudtrail import READS, START, WRITES, _denied, _discovery_sweep, _num, _record, _snapshot_call

if TYPE_CHECKING:
    from collections.abc import Iterator

ACCOUNTS = ("111122223333", "210987654321", "333344445555", "404040404040", "505050505050", "616161616161")
SPAN_SECONDS = 24 * 3600
#: Fifteen more services beside generate_cloudtrail's 32: 47 event sources in all.
EXTRA_READS: dict[str, list[str]] = {
    "athena": ["ListWorkGroups", "GetQueryExecution", "GetQueryResults", "ListDataCatalogs"],
    "glue": ["GetDatabases", "GetTables", "GetJobs", "GetCrawlers"],
    "elasticfilesystem": ["DescribeFileSystems", "DescribeMountTargets", "DescribeAccessPoints"],
    "kinesis": ["ListStreams", "DescribeStreamSummary", "ListShards"],
    "states": ["ListStateMachines", "DescribeExecution", "ListExecutions"],
    "events": ["ListRules", "DescribeRule", "ListTargetsByRule"],
    "sagemaker": ["ListNotebookInstances", "ListEndpoints", "DescribeEndpoint", "ListModels"],
    "es": ["ListDomainNames", "DescribeDomain"],
    "codebuild": ["ListProjects", "BatchGetProjects", "ListBuilds"],
    "codepipeline": ["ListPipelines", "GetPipelineState", "GetPipeline"],
    "wafv2": ["ListWebACLs", "GetWebACL", "ListIPSets"],
    "ram": ["GetResourceShares", "ListResources"],
    "fsx": ["DescribeFileSystems", "DescribeBackups"],
    "securityhub": ["GetFindings", "DescribeHub"],
    "inspector2": ["ListFindings", "ListCoverage"],
}
ALL_READS: dict[str, list[str]] = {**READS, **EXTRA_READS}
EXTRA_WRITES: list[tuple[str, str]] = [
    ("kinesis", "PutRecords"),
    ("states", "StartExecution"),
    ("events", "PutEvents"),
    ("athena", "StartQueryExecution"),
    ("glue", "StartJobRun"),
    ("sqs", "SendMessage"),
    ("sns", "Publish"),
    ("logs", "PutLogEvents"),
    ("dynamodb", "PutItem"),
    ("s3", "PutObject"),
    ("codebuild", "StartBuild"),
    ("sagemaker", "InvokeEndpoint"),
]
ALL_WRITES = WRITES + EXTRA_WRITES
ERRORS = (
    ("AccessDenied", "User is not authorized to perform this operation"),
    ("ThrottlingException", "Rate exceeded"),
    ("ResourceNotFoundException", "Requested resource not found"),
    ("ValidationException", "1 validation error detected"),
)
UAS = (gc.UA_BOTO, gc.UA_GO, gc.UA_JAVA, gc.UA_CLI, gc.UA_TF)


class MixPrincipal(gc.Principal):
    """A principal of one of the six accounts."""

    def __init__(self, kind: str, name: str, account: str, **kw: Any) -> None:
        super().__init__(kind, name, **kw)
        self.account = account

    def identity(self, rng: random.Random) -> dict[str, Any]:
        ident = super().identity(rng)
        if self.kind == "AWSService":
            return ident
        text = orjson.dumps(ident).decode().replace(gc.ACCOUNT, self.account)
        out: dict[str, Any] = orjson.loads(text)
        return out


def _principals(rng: random.Random) -> list[MixPrincipal]:
    services = sorted(ALL_READS)
    out: list[MixPrincipal] = []
    for a, account in enumerate(ACCOUNTS):
        for i in range(29):  # workloads: a few services each, a fixed handful of calls
            name = f"app-{a}-{i:02d}"
            out.append(
                MixPrincipal(
                    "AssumedRole", name, account, services=rng.sample(services, 4), weight=6.0,
                    ua=UAS[i % len(UAS)], ip=f"10.{a}.{i}.{10 + i}", session=f"{name}-session",
                    write_rate=0.3, workload=True, repositories=gc.REPOSITORIES[i % 6 :: 6][:2],
                )
            )
        for i in range(5):  # CI roles
            name = f"ci-{a}-{i}"
            out.append(
                MixPrincipal(
                    "AssumedRole", name, account, services=rng.sample(services, 10), weight=3.0,
                    ua=gc.UA_TF, ip=f"52.{a}.10.{i}", write_rate=0.3,
                    repositories=gc.REPOSITORIES[i % 6 :: 6],
                )
            )
        for i in range(10):  # people through SSO
            email = f"user{a}{i}@example.com"
            out.append(
                MixPrincipal(
                    "AssumedRole", "AWSReservedSSO_PowerUser_3f2a9c1d0e8b7a65", account,
                    services=rng.sample(services, 8), weight=1.0, ua=gc.UA_CONSOLE,
                    ip=f"203.0.{113 + a}.{i}", session=email, write_rate=0.15,
                )
            )
        for i in range(3):  # IAM users
            out.append(
                MixPrincipal(
                    "IAMUser", f"user-{a}-{i}", account, services=rng.sample(services, 6), weight=1.0,
                    ua=gc.UA_CLI, ip=f"34.{a}.77.{i}", write_rate=0.1,
                )
            )
        out.append(
            MixPrincipal(
                "AssumedRole", "AWSServiceRoleForConfig", account, services=services, weight=2.0,
                ua="config.amazonaws.com", ip="config.amazonaws.com", session="AWSConfig-Describe",
                invoked_by="config.amazonaws.com", write_rate=0.0,
            )
        )
        out.append(
            MixPrincipal(
                "AssumedRole", "AWSBackupDefaultServiceRole", account, services=["ec2", "rds", "backup", "dynamodb"],
                weight=0.3, ua="backup.amazonaws.com", ip="backup.amazonaws.com",
                session="AWSBackup-AWSBackupDefaultServiceRole", invoked_by="backup.amazonaws.com", write_rate=0.0,
            )
        )
    for name in ("cloudtrail.amazonaws.com", "trustedadvisor.amazonaws.com", "access-analyzer.amazonaws.com",
                 "securityhub.amazonaws.com", "dlm.amazonaws.com", "config.amazonaws.com"):
        out.append(
            MixPrincipal(
                "AWSService", name, ACCOUNTS[0], services=services[:12], weight=0.7, ua=name, ip=name, write_rate=0.0
            )
        )
    assert len(out) == 300, len(out)
    return out


def _error(rng: random.Random, service: str, name: str) -> tuple[str, str]:
    k = rng.random()
    if k < 0.55:
        return _denied(service, name)
    return ERRORS[1 + int((k - 0.55) / 0.15) % 3]


def generate(records: int = 1_000_000, seed: int = 22) -> Iterator[dict[str, Any]]:
    """Yield ``records`` CloudTrail records in event-time order."""
    rng = random.Random(seed)
    principals = _principals(rng)
    weights = [p.weight for p in principals]
    humans = [p for p in principals if p.kind == "IAMUser" or (p.session or "").endswith("@example.com")]
    sweeper, sharer = humans[0], humans[-1]
    special = _discovery_sweep(rng, sweeper) + gc._snapshot_then_share(rng, sharer)
    for rec in special:
        rec["recipientAccountId"] = rec["userIdentity"].get("accountId", ACCOUNTS[0])
    n = max(0, records - len(special))
    offsets = sorted(rng.random() * SPAN_SECONDS for _ in range(n))
    special_iter = iter(special)
    nxt = next(special_iter, None)
    for off in offsets:
        t = START + timedelta(seconds=off)
        while nxt is not None and nxt["eventTime"] <= gc._ts(t):
            yield nxt
            nxt = next(special_iter, None)
        roll = rng.random()
        if roll < 0.001:
            who = rng.choice(humans)
            rec = _snapshot_call(rng, who, t)
        else:
            who = rng.choices(principals, weights)[0]
            svc = rng.choice(who.services)
            err = _error(rng, svc, "x") if rng.random() < 0.019 else None
            if rng.random() < who.write_rate:
                writes = [w for w in ALL_WRITES if w[0] == svc] or ALL_WRITES
                wsvc, wname = rng.choice(writes)
                rec = _record(rng, who, t, wsvc, wname, read_only=False,
                              request={"resource": f"r-{rng.randrange(999)}"}, error=err)
            else:
                ops = ALL_READS[svc]
                if who.workload:
                    ops = ops[: 1 + _num(who.name + svc) % 2]
                name = rng.choice(ops)
                request = gc._read_request(rng, who, svc, name) if svc in READS else None
                rec = _record(rng, who, t, svc, name, read_only=True, request=request, error=err)
        rec["recipientAccountId"] = getattr(who, "account", ACCOUNTS[0])
        yield rec
    while nxt is not None:
        yield nxt
        nxt = next(special_iter, None)


def write(path: Path, records: int = 1_000_000, seed: int = 22) -> int:
    """Write the mix to ``path`` (``.jsonl`` or ``.json.gz``); return the number of records."""
    return gc.write_records(path, generate(records, seed))


def main(argv: list[str] | None = None) -> int:
    return gc.run_cli(write, __doc__ or "", argv, records=1_000_000, out="bench/data/mix-1m.jsonl", seed=22)


if __name__ == "__main__":
    raise SystemExit(main())
