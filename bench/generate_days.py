"""Write N consecutive synthetic CloudTrail days (same principals each day) with attacks on the last day.

Each day (UTC, from Monday 2024-05-06) holds:

- background traffic from ``generate_cloudtrail``'s principals: workloads calling their fixed
  operations all day, AWS service principals and the Config/Backup/DLM service roles, SSO users and
  IAM users browsing their services during business hours (08:00-18:00 UTC);
- 18 CI and scanner roles (``ci_scanner_roles`` in the manifest): 12 CI roles that each read a fixed
  set of 20-36 operations across 6-10 services every ten minutes, all day (each run a new session,
  a random 80-100% of the set in a shuffled order over about a minute), four of them with a broader
  nightly job at 02:xx; 6 scanner roles that sweep 50-90 operations across 14-24 services every ten
  minutes and are refused the same dozen calls on each sweep (permissions they lack);
- three scheduled snapshot jobs by three of the CI roles (not AWS Backup or DLM, so not in the
  default suppressions): EBS snapshots of six volumes at 01:10, RDS snapshots of three databases at
  03:20, AMIs of two instances at 02:40.

The last day adds 11 attacks (``attacks`` in the manifest: id, principal as adscore names it, the
detections that should catch it, start and end):

A1 a new IAM user sweeps 60 reads across 15 services in 3 minutes (``discovery.api_burst``);
A2 a CI role's credentials read 30 operations of services that role never uses (``discovery.api_burst``);
A3 a scanner role's credentials are refused on 5 services it was never refused on (``discovery.access_denied_burst``);
A4 CreateSnapshot then ModifySnapshotAttribute sharing it with an unknown account (``snapshot.shared_external``);
A5 a person (SSO session) snapshots a volume at 22:40 (``snapshot.off_hours``);
A6 the EBS backup role's credentials snapshot three volumes it never backs up at 21:30 (``snapshot.off_hours``);
A7 a person creates eight snapshots in ten minutes (``snapshot.burst``);
A8 a new IAM user sweeps 40 reads, then snapshots a database (``chain.discovery_then_snapshot``);
A9 a CI role's credentials walk 15 repositories it never reads (``discovery.registry_enumeration``);
A10 an AMI is made public (``snapshot.shared_external``);
A11 a new IAM user is refused 24 calls across 6 services in a minute (``discovery.access_denied_burst``).

There is no Kubernetes traffic (CloudTrail only), so no namespace sweep.

Usage::

    python bench/generate_days.py --days 3 --out bench/data/days [--background 40000] [--seed 7]

writes ``day-1.jsonl`` ... ``day-N.jsonl`` (time-sorted) and ``manifest.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate_cloudtrail as ct  # the sibling generator, found through the path above

START = datetime(2024, 5, 6, tzinfo=UTC)  # a Monday
ACCOUNT = ct.ACCOUNT
SERVICES = sorted(ct.READS)
OLD_CI = {"github-actions-deploy", "gitlab-runner", "terraform-ci", "atlantis", "packer-builder", "jenkins"}
TOR_IP = "185.220.101.45"


def role_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def user_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


class Job:
    """A CI or scanner role: a fixed set of reads, run every ten minutes, each run a new session."""

    def __init__(self, rng: random.Random, name: str, kind: str, n_services: int, n_ops: int, index: int) -> None:
        self.name = name
        self.kind = kind
        self.arn = role_arn(name)
        services = rng.sample(SERVICES, n_services)
        pool = [(s, op) for s in services for op in ct.READS[s]]
        self.reads = rng.sample(pool, min(n_ops, len(pool)))
        self.services = sorted({s for s, _ in self.reads})
        self.offset = index * 37 % 600  # seconds into each ten-minute slot
        self.who = ct.Principal(
            "AssumedRole",
            name,
            services=self.services,
            weight=0,
            ua=ct.UA_BOTO if kind == "scanner" else ct.UA_TF,
            ip=f"52.{20 + index}.10.{index + 1}",
            repositories=ct.REPOSITORIES[index % 6 :: 6][:2],
        )
        # scanners lack a dozen permissions and are refused them on every sweep
        self.denied = set(rng.sample(self.reads, 12)) if kind == "scanner" else set()
        self.nightly: list[tuple[str, str]] = []

    def run(self, rng: random.Random, t0: datetime, reads: list[tuple[str, str]]) -> list[dict[str, Any]]:
        self.who.session = f"{self.name}-{rng.randrange(10**9, 10**10)}"
        picked = [r for r in reads if rng.random() < 0.9 or r in self.denied]
        rng.shuffle(picked)
        step = 60 / max(1, len(picked))
        out = []
        for k, (svc, op) in enumerate(picked):
            err = ct._denied(svc, op) if (svc, op) in self.denied else None
            t = t0 + timedelta(seconds=k * step)
            out.append(
                ct._record(rng, self.who, t, svc, op, read_only=True, request=ct._read_request(rng, self.who, svc, op), error=err)
            )
        return out


def _jobs(rng: random.Random) -> list[Job]:
    jobs = [
        Job(rng, name, "ci", rng.randrange(6, 11), rng.randrange(20, 37), i)
        for i, name in enumerate(
            (
                "ci-terraform-plan",
                "ci-terraform-apply",
                "ci-deploy-web",
                "ci-deploy-api",
                "ci-build-images",
                "ci-integration-tests",
                "ci-db-migrations",
                "ci-release-notes",
                "ci-backup-ebs",
                "ci-backup-rds",
                "ci-ami-bake",
                "ci-cost-report",
            )
        )
    ]
    jobs += [
        Job(rng, name, "scanner", rng.randrange(14, 25), rng.randrange(50, 91), 12 + i)
        for i, name in enumerate(
            ("scan-inventory", "scan-compliance", "scan-cspm", "scan-drift", "scan-tagging", "scan-exposure")
        )
    ]
    for job in jobs[:4]:  # nightly jobs read more: their set plus a few more operations of their services
        extra = [(s, op) for s in job.services for op in ct.READS[s] if (s, op) not in job.reads]
        job.nightly = job.reads + rng.sample(extra, min(10, len(extra)))
    return jobs


def _scheduled_snapshots(rng: random.Random, jobs: dict[str, Job], day: datetime) -> list[dict[str, Any]]:
    out = []
    ebs = jobs["ci-backup-ebs"].who
    ebs.session = "backup-cron"
    for i in range(6):
        vol = f"vol-0b{i:015d}"
        out.append(
            ct._record(
                rng, ebs, day + timedelta(hours=1, minutes=10, seconds=20 * i), "ec2", "CreateSnapshot",
                read_only=False, request={"volumeId": vol, "description": "nightly backup"},
                response={"snapshotId": f"snap-{rng.getrandbits(64):017x}"[:22], "volumeId": vol, "status": "pending"},
                region="us-east-1",
            )
        )
    rds = jobs["ci-backup-rds"].who
    rds.session = "backup-cron"
    for i in range(3):
        db = f"db-orders-{i}"
        out.append(
            ct._record(
                rng, rds, day + timedelta(hours=3, minutes=20, seconds=30 * i), "rds", "CreateDBSnapshot",
                read_only=False, request={"dBInstanceIdentifier": db, "dBSnapshotIdentifier": f"{db}-{day:%Y%m%d}"},
                response={"status": "creating", "engine": "postgres"}, region="us-east-1",
            )
        )
    ami = jobs["ci-ami-bake"].who
    ami.session = "bake"
    for i in range(2):
        inst = f"i-0a{i:015d}"
        out.append(
            ct._record(
                rng, ami, day + timedelta(hours=2, minutes=40, seconds=45 * i), "ec2", "CreateImage",
                read_only=False, request={"instanceId": inst, "name": f"golden-{i}-{day:%Y%m%d}", "noReboot": True},
                response={"imageId": f"ami-{rng.getrandbits(64):017x}"[:21]}, region="us-east-1",
            )
        )
    return out


def _background(rng: random.Random, day: datetime, n: int) -> list[dict[str, Any]]:
    principals = [p for p in ct._principals() if p.name not in OLD_CI]
    people = [p for p in principals if p.kind == "IAMUser" or (p.session or "").endswith("@example.com")]
    out = []
    weights = [p.weight for p in principals]
    for _ in range(n):
        who = rng.choices(principals, weights)[0]
        if who in people:
            t = day + timedelta(hours=8, seconds=rng.random() * 10 * 3600)
        else:
            t = day + timedelta(seconds=rng.random() * 86400)
        svc = rng.choice(who.services)
        if rng.random() < who.write_rate:
            writes = [w for w in ct.WRITES if w[0] == svc] or ct.WRITES
            wsvc, wname = rng.choice(writes)
            out.append(ct._record(rng, who, t, wsvc, wname, read_only=False, request={"resource": f"r-{rng.randrange(999)}"}))
            continue
        name = rng.choice(who.reads(svc))
        out.append(ct._record(rng, who, t, svc, name, read_only=True, request=ct._read_request(rng, who, svc, name)))
    return out


def _iam_user(name: str, ip: str = TOR_IP) -> ct.Principal:
    return ct.Principal("IAMUser", name, services=["sts"], weight=0, ua=ct.UA_CLI, ip=ip)


def _sso(email: str) -> ct.Principal:
    return ct.Principal(
        "AssumedRole", "AWSReservedSSO_PowerUser_3f2a9c1d0e8b7a65", services=["ec2"], weight=0,
        ua=ct.UA_CLI, ip=f"203.0.113.{len(email)}", session=email,
    )


def _snap(rng: random.Random, who: ct.Principal, t: datetime, vol: str, snap: str | None = None) -> dict[str, Any]:
    return ct._record(
        rng, who, t, "ec2", "CreateSnapshot", read_only=False, request={"volumeId": vol, "description": "copy"},
        response={"snapshotId": snap or f"snap-{rng.getrandbits(64):017x}"[:22], "volumeId": vol, "status": "pending"},
        region="us-east-1",
    )


def _sweep(rng: random.Random, who: ct.Principal, t0: datetime, calls: list[tuple[str, str]], step: float, *, deny_every: int = 0) -> list[dict[str, Any]]:
    out = []
    for k, (svc, op) in enumerate(calls):
        err = ct._denied(svc, op) if deny_every and k % deny_every == deny_every - 1 else None
        out.append(ct._record(rng, who, t0 + timedelta(seconds=k * step), svc, op, read_only=True, error=err, ua=ct.UA_CLI, ip=who.ip, region="us-east-1"))
    return out


def _attacks(rng: random.Random, jobs: dict[str, Job], day: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    manifest: list[dict[str, Any]] = []

    def add(aid: str, principal: str, detections: list[str], recs: list[dict[str, Any]], what: str) -> None:
        records.extend(recs)
        times = sorted(r["eventTime"] for r in recs)
        manifest.append({"id": aid, "principal": principal, "detections": detections, "start": times[0], "end": times[-1], "what": what})

    everything = [(s, op) for s in SERVICES for op in ct.READS[s]]
    # A1: a new IAM user's sweep
    a1 = _iam_user("svc-reporting-old")
    calls = [c for c in everything if c[0] in SERVICES[:15]][:60]
    add("A1-new-user-sweep", user_arn(a1.name), ["discovery.api_burst"], _sweep(rng, a1, day + timedelta(hours=10, minutes=7), calls, 3, deny_every=7), "new IAM user reads 60 operations across 15 services in 3 minutes")
    # A2: a CI role's credentials read services that role never uses
    ci = jobs["ci-release-notes"]
    foreign = [c for c in everything if c[0] not in ci.services and c[0] in ("iam", "secretsmanager", "organizations", "kms", "guardduty", "cloudtrail", "ssm", "backup")]
    intruder = ct.Principal("AssumedRole", ci.name, services=["iam"], weight=0, ua=ct.UA_CLI, ip=TOR_IP, session="botocore-session-1715000000")
    add("A2-ci-credentials-foreign-services", ci.arn, ["discovery.api_burst"], _sweep(rng, intruder, day + timedelta(hours=13, minutes=41), foreign[:30], 4), f"{ci.name} credentials read 30 operations of services it never uses")
    # A3: a scanner's credentials refused on services it was never refused on
    sc = jobs["scan-tagging"]
    refused_before = {s for s, _ in sc.denied}
    probe = [c for c in everything if c[0] not in refused_before and c[0] in ("iam", "secretsmanager", "organizations", "kms", "lambda", "sns", "sqs")]
    seen: dict[str, int] = {}
    probe = [c for c in probe if seen.setdefault(c[0], 0) < 3 and not seen.__setitem__(c[0], seen[c[0]] + 1)][:15]
    stolen = ct.Principal("AssumedRole", sc.name, services=["iam"], weight=0, ua=ct.UA_CLI, ip=TOR_IP, session="enum")
    add("A3-scanner-credentials-denied-probe", sc.arn, ["discovery.access_denied_burst"], _sweep(rng, stolen, day + timedelta(hours=15, minutes=2), probe, 2, deny_every=1), "scanner credentials refused 15 times on services it was never refused on")
    # A4: snapshot then share with an unknown account
    admin = ct.Principal("IAMUser", "alice.admin", services=["ec2"], weight=0, ua=ct.UA_CLI, ip="34.11.77.4")
    t4 = day + timedelta(hours=11, minutes=35)
    share = ct._record(
        rng, admin, t4 + timedelta(minutes=4), "ec2", "ModifySnapshotAttribute", read_only=False,
        request={"snapshotId": "snap-0feedbeefcafe0001", "attributeType": "CREATE_VOLUME_PERMISSION", "createVolumePermission": {"add": {"items": [{"userId": ct.EXTERNAL_ACCOUNT}]}}},
        response={"_return": True}, region="us-east-1",
    )
    add("A4-snapshot-shared-external", user_arn("alice.admin"), ["snapshot.shared_external"], [_snap(rng, admin, t4, "vol-0a1b2c3d4e5f60718", "snap-0feedbeefcafe0001"), share], "snapshot shared with an unknown account")
    # A5: a person snapshots at night
    bob = _sso("bob@example.com")
    sso = role_arn("AWSReservedSSO_PowerUser_3f2a9c1d0e8b7a65")
    add("A5-person-off-hours-snapshot", sso, ["snapshot.off_hours"], [_snap(rng, bob, day + timedelta(hours=22, minutes=40), "vol-0c0ffee000000001")], "SSO user snapshots a volume at 22:40")
    # A6: the EBS backup role at a new hour, on volumes it never backs up
    eb = jobs["ci-backup-ebs"]
    eb.who.session = "backup-cron"
    add("A6-backup-role-departs-schedule", eb.arn, ["snapshot.off_hours"], [_snap(rng, eb.who, day + timedelta(hours=21, minutes=30, seconds=20 * i), f"vol-0d{i:015d}") for i in range(3)], "backup role snapshots three unknown volumes at 21:30")
    # A7: a person's snapshot burst
    carol = _sso("carol@example.com")
    add("A7-person-snapshot-burst", sso, ["snapshot.burst"], [_snap(rng, carol, day + timedelta(hours=14, minutes=i), f"vol-0e{i:015d}") for i in range(8)], "eight snapshots in eight minutes")
    # A8: discovery then snapshot by a new user
    a8 = _iam_user("deploy-legacy", ip="45.155.205.99")
    calls8 = [c for c in everything if c[0] in SERVICES[10:26]][:40]
    t8 = day + timedelta(hours=16, minutes=5)
    rds_snap = ct._record(
        rng, a8, t8 + timedelta(minutes=12), "rds", "CreateDBSnapshot", read_only=False,
        request={"dBInstanceIdentifier": "db-orders-0", "dBSnapshotIdentifier": "tmp-export-1"},
        response={"status": "creating", "engine": "postgres"}, region="us-east-1",
    )
    add("A8-discovery-then-snapshot", user_arn(a8.name), ["chain.discovery_then_snapshot"], [*_sweep(rng, a8, t8, calls8, 3), rds_snap], "new user sweeps 40 reads then snapshots a database")
    # A9: a CI role's credentials walk repositories it never reads
    cb = jobs["ci-cost-report"]
    walker = ct.Principal("AssumedRole", cb.name, services=["ecr"], weight=0, ua=ct.UA_CLI, ip=TOR_IP, session="ecr-walk")
    repos = [f"team-{t}/{a}" for t in ("infra", "sec", "payments") for a in ("api", "worker", "etl", "ui", "ml")]
    walk = [
        ct._record(rng, walker, day + timedelta(hours=12, minutes=20, seconds=5 * i), "ecr", "DescribeImages", read_only=True, request={"registryId": ACCOUNT, "repositoryName": r}, region="us-east-1")
        for i, r in enumerate(repos)
    ]
    add("A9-ci-credentials-registry-walk", cb.arn, ["discovery.registry_enumeration"], walk, "CI credentials describe images of 15 repositories it never reads")
    # A10: an AMI made public
    dave = ct.Principal("IAMUser", "alice.admin", services=["ec2"], weight=0, ua=ct.UA_CLI, ip="34.11.77.4")
    public = ct._record(
        rng, dave, day + timedelta(hours=17, minutes=12), "ec2", "ModifyImageAttribute", read_only=False,
        request={"imageId": "ami-0123456789abcdef0", "launchPermission": {"add": {"items": [{"group": "all"}]}}, "attributeType": "launchPermission"},
        response={"_return": True}, region="us-east-1",
    )
    add("A10-ami-made-public", user_arn("alice.admin"), ["snapshot.shared_external"], [public], "an AMI shared with everyone")
    # A11: a new user refused everywhere
    a11 = _iam_user("temp-contractor", ip="91.219.236.12")
    calls11 = [c for c in everything if c[0] in ("iam", "s3", "ec2", "rds", "lambda", "kms")]
    rng.shuffle(calls11)
    add("A11-new-user-denied-everywhere", user_arn(a11.name), ["discovery.access_denied_burst"], _sweep(rng, a11, day + timedelta(hours=9, minutes=50), calls11[:24], 2, deny_every=1), "new user refused 24 calls across 6 services in a minute")
    return records, manifest


def generate(days: int, background: int, seed: int) -> tuple[list[list[dict[str, Any]]], dict[str, Any]]:
    """Every day's records (time-sorted) and the manifest."""
    rng = random.Random(seed)
    job_list = _jobs(rng)
    jobs = {j.name: j for j in job_list}
    out: list[list[dict[str, Any]]] = []
    manifest: dict[str, Any] = {"seed": seed, "days": [], "ci_scanner_roles": [j.arn for j in job_list], "attacks": []}
    for d in range(days):
        day = START + timedelta(days=d)
        recs = _background(rng, day, background)
        for job in job_list:
            for slot in range(144):
                t0 = day + timedelta(seconds=slot * 600 + job.offset)
                nightly = bool(job.nightly) and slot == 12  # 02:00-02:10
                recs += job.run(rng, t0, job.nightly if nightly else job.reads)
        recs += _scheduled_snapshots(rng, jobs, day)
        if d == days - 1:
            attack_records, attacks = _attacks(rng, jobs, day)
            recs += attack_records
            manifest["attacks"] = [dict(a, day=d + 1) for a in attacks]
        recs.sort(key=lambda r: r["eventTime"])
        out.append(recs)
        manifest["days"].append({"day": d + 1, "date": f"{day:%Y-%m-%d}", "file": f"day-{d + 1}.jsonl", "records": len(recs)})
    return out, manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--background", type=int, default=40_000, help="background records per day (the CI and scanner runs come on top)")
    ap.add_argument("--out", type=Path, default=Path("bench/data/days"))
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    days, manifest = generate(args.days, args.background, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    for i, recs in enumerate(days, 1):
        with (args.out / f"day-{i}.jsonl").open("wb") as f:
            for r in recs:
                f.write(orjson.dumps(r))
                f.write(b"\n")
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    total = sum(len(d) for d in days)
    print(f"wrote {args.days} days, {total} records, {len(manifest['attacks'])} attacks to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
