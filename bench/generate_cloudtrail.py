"""Write a realistic, deterministic CloudTrail mix for benchmarks and replay tests.

The mix: about 40 principals (application and CI assumed roles, SSO users, a
few IAM users, AWS service principals and service roles invoked by AWS
Backup, Data Lifecycle Manager and Config) making mostly read-only calls
across ~35 services over about two hours, a few writes, rare snapshot calls,
a few denials, plus two embedded scenarios. Workloads (application, node and
function roles) call the fixed handful of operations their code makes
(``WORKLOAD_READS``); people, CI and scanners browse every read operation of
their services. ECR per-repository calls name one of the caller's
repositories, as real ``requestParameters`` do. The embedded scenarios:

- a discovery sweep: one principal, 60 distinct reads across 15 services in
  three minutes (from an unusual IP, with some denials);
- a snapshot-then-share sequence: CreateSnapshot then ModifySnapshotAttribute
  adding an external account four minutes later.

Usage::

    python bench/generate_cloudtrail.py --records 200000 --out bench/data/cloudtrail-200k.jsonl [--seed 7]

``.jsonl`` writes one record per line; ``.json.gz`` writes a CloudTrail log
file ``{"Records": [...]}`` (gzipped, streamed).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import random
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

ACCOUNT = "111122223333"
EXTERNAL_ACCOUNT = "999988887777"
PARTNER_ACCOUNT = "444455556666"
START = datetime(2024, 5, 6, 10, 0, 0, tzinfo=UTC)
SPAN_SECONDS = 2 * 3600
REGIONS = ("us-east-1", "us-east-1", "us-east-1", "eu-west-1", "us-west-2")
GLOBAL = {"iam", "sts", "organizations", "route53", "cloudfront"}

# eventSource prefix -> read-only operations
READS: dict[str, list[str]] = {
    "ec2": [
        "DescribeInstances",
        "DescribeVolumes",
        "DescribeSnapshots",
        "DescribeImages",
        "DescribeSecurityGroups",
        "DescribeSubnets",
        "DescribeVpcs",
        "DescribeNetworkInterfaces",
        "DescribeRegions",
        "DescribeAddresses",
        "DescribeKeyPairs",
        "DescribeLaunchTemplates",
        "DescribeInstanceStatus",
        "DescribeTags",
    ],
    "s3": [
        "ListBuckets",
        "GetBucketLocation",
        "GetBucketPolicy",
        "GetBucketAcl",
        "GetBucketVersioning",
        "GetBucketEncryption",
        "GetBucketTagging",
        "GetBucketLogging",
        "GetBucketPublicAccessBlock",
    ],
    "iam": [
        "ListRoles",
        "ListUsers",
        "GetRole",
        "ListAttachedRolePolicies",
        "ListPolicies",
        "GetPolicyVersion",
        "ListGroups",
        "GetAccountSummary",
        "ListAccessKeys",
        "GetUser",
    ],
    "sts": ["GetCallerIdentity", "AssumeRole"],
    "kms": ["Decrypt", "GenerateDataKey", "DescribeKey", "ListKeys", "ListAliases", "GetKeyPolicy"],
    "lambda": [
        "ListFunctions20150331",
        "GetFunction20150331v2",
        "GetPolicy20150331v2",
        "ListEventSourceMappings20150331",
    ],
    "rds": [
        "DescribeDBInstances",
        "DescribeDBClusters",
        "DescribeDBSnapshots",
        "DescribeDBClusterSnapshots",
        "DescribeDBParameterGroups",
        "DescribeDBSubnetGroups",
        "ListTagsForResource",
    ],
    "ecr": [
        "DescribeRepositories",
        "DescribeImages",
        "ListImages",
        "GetAuthorizationToken",
        "BatchGetImage",
        "GetDownloadUrlForLayer",
        "GetRepositoryPolicy",
    ],
    "monitoring": ["GetMetricData", "ListMetrics", "DescribeAlarms", "GetMetricStatistics"],
    "logs": ["DescribeLogGroups", "DescribeLogStreams", "FilterLogEvents", "GetLogEvents"],
    "ssm": [
        "GetParameter",
        "GetParameters",
        "GetParametersByPath",
        "DescribeInstanceInformation",
        "ListCommands",
        "DescribeParameters",
    ],
    "secretsmanager": ["GetSecretValue", "ListSecrets", "DescribeSecret"],
    "dynamodb": ["DescribeTable", "ListTables", "DescribeContinuousBackups", "DescribeTimeToLive"],
    "sns": ["ListTopics", "GetTopicAttributes", "ListSubscriptions"],
    "sqs": ["ListQueues", "GetQueueAttributes"],
    "elasticloadbalancing": [
        "DescribeLoadBalancers",
        "DescribeTargetGroups",
        "DescribeTargetHealth",
        "DescribeListeners",
    ],
    "autoscaling": ["DescribeAutoScalingGroups", "DescribeLaunchConfigurations", "DescribeScalingActivities"],
    "cloudformation": ["DescribeStacks", "ListStacks", "GetTemplate", "DescribeStackResources"],
    "cloudtrail": ["DescribeTrails", "GetTrailStatus", "LookupEvents", "GetEventSelectors"],
    "config": ["DescribeConfigurationRecorders", "DescribeConfigRules", "GetComplianceDetailsByConfigRule"],
    "eks": ["ListClusters", "DescribeCluster", "ListNodegroups", "DescribeNodegroup"],
    "route53": ["ListHostedZones", "ListResourceRecordSets", "GetHostedZone"],
    "guardduty": ["ListDetectors", "GetDetector", "ListFindings"],
    "organizations": ["DescribeOrganization", "ListAccounts"],
    "servicequotas": ["ListServiceQuotas", "GetServiceQuota"],
    "elasticache": ["DescribeCacheClusters", "DescribeReplicationGroups", "DescribeSnapshots"],
    "redshift": ["DescribeClusters", "DescribeClusterSnapshots"],
    "backup": ["ListBackupPlans", "ListBackupVaults", "ListRecoveryPointsByBackupVault"],
    "ecs": ["ListClusters", "DescribeClusters", "ListServices", "DescribeServices", "DescribeTaskDefinition"],
    "acm": ["ListCertificates", "DescribeCertificate"],
    "cloudfront": ["ListDistributions", "GetDistribution"],
    "apigateway": ["GetRestApis", "GetStages"],
}
# What workloads (application roles, node roles, functions) call: a fixed handful of operations per
# service, the SDK calls their code makes. People, CI and scanners browse the whole READS table.
WORKLOAD_READS: dict[str, list[str]] = {
    "sts": ["AssumeRole", "GetCallerIdentity"],
    "kms": ["Decrypt", "GenerateDataKey"],
    "secretsmanager": ["GetSecretValue"],
    "ssm": ["GetParameter", "GetParametersByPath"],
    "dynamodb": ["DescribeTable"],
    "sqs": ["GetQueueAttributes"],
    "sns": ["GetTopicAttributes"],
    "s3": ["GetBucketLocation"],
    "rds": ["DescribeDBInstances"],
    "logs": ["DescribeLogStreams", "FilterLogEvents"],
    "ecr": ["GetAuthorizationToken", "BatchGetImage", "GetDownloadUrlForLayer"],
    "ec2": ["DescribeInstances", "DescribeTags", "DescribeInstanceStatus"],
    "autoscaling": ["DescribeAutoScalingGroups"],
}
# ECR repositories: workloads and CI pull or describe their own few; people browse any.
REPOSITORIES = [f"team-{t}/{a}" for t in ("core", "data", "web") for a in ("api", "worker", "etl", "ui", "ml", "cron")]
ECR_PER_REPOSITORY = {"DescribeImages", "ListImages", "BatchGetImage", "GetDownloadUrlForLayer", "GetRepositoryPolicy"}

WRITES: list[tuple[str, str]] = [
    ("logs", "CreateLogStream"),
    ("ssm", "UpdateInstanceInformation"),
    ("ec2", "CreateTags"),
    ("ec2", "RunInstances"),
    ("ec2", "TerminateInstances"),
    ("autoscaling", "SetDesiredCapacity"),
    ("cloudformation", "UpdateStack"),
    ("lambda", "UpdateFunctionCode20150331v2"),
    ("iam", "PutRolePolicy"),
    ("ecr", "PutImage"),
    ("ecr", "InitiateLayerUpload"),
    ("dynamodb", "UpdateTable"),
    ("s3", "PutBucketTagging"),
    ("ec2", "AuthorizeSecurityGroupIngress"),
    ("kms", "CreateGrant"),
]
UA_BOTO = "Boto3/1.34.{n} md/Botocore#1.34.{n} ua/2.0 os/linux#5.10.215-203.850.amzn2.x86_64 md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.{n}"
UA_GO = "aws-sdk-go-v2/1.26.{n} os/linux lang/go#1.22.2 md/GOOS#linux md/GOARCH#amd64 api/{svc}#1.{n}.0"
UA_JAVA = "aws-sdk-java/2.25.{n} Linux/5.10.215 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10 vendor/Amazon.com_Inc. io/sync http/Apache cfg/retry-mode/legacy"
UA_CLI = "aws-cli/2.15.{n} md/awscrt#0.19.19 ua/2.0 os/macos#23.4.0 md/arch#arm64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/prompt#off md/command#{cmd}"
UA_TF = "APN/1.0 HashiCorp/1.0 Terraform/1.8.{n} (+https://www.terraform.io) terraform-provider-aws/5.48.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.26.1 os/linux lang/go#1.22.2"
UA_CONSOLE = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"


def _num(text: str) -> int:
    """A stable 16-digit number for a name (``hash()`` is salted per process)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") % 10**16


class Principal:
    """One simulated identity with a call profile."""

    def __init__(
        self,
        kind: str,
        name: str,
        *,
        services: list[str],
        weight: float,
        ua: str,
        ip: str,
        session: str | None = None,
        invoked_by: str | None = None,
        write_rate: float = 0.02,
        workload: bool = False,
        repositories: list[str] | None = None,
    ) -> None:
        self.kind = kind
        self.name = name
        self.services = services
        self.weight = weight
        self.ua = ua
        self.ip = ip
        self.session = session
        self.invoked_by = invoked_by
        self.write_rate = write_rate
        self.workload = workload
        self.repositories = repositories or REPOSITORIES
        # workloads and pipelines run in one home region; people and scanners roam
        self.region = REGIONS[_num(name) % len(REGIONS)] if workload or repositories else None

    def reads(self, service: str) -> list[str]:
        """The read operations this principal calls on ``service``."""
        if self.workload and service in WORKLOAD_READS:
            return WORKLOAD_READS[service]
        return READS[service]

    def identity(self, rng: random.Random) -> dict[str, Any]:
        if self.kind == "AssumedRole":
            session = self.session or f"{self.name}-{rng.randrange(10**9, 10**10)}"
            role_arn = f"arn:aws:iam::{ACCOUNT}:role/{self.name}"
            ident: dict[str, Any] = {
                "type": "AssumedRole",
                "principalId": f"AROA{_num(self.name):016d}:{session}",
                "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{self.name}/{session}",
                "accountId": ACCOUNT,
                "accessKeyId": f"ASIA{rng.randrange(10**15, 10**16)}",
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "Role",
                        "principalId": f"AROA{_num(self.name):016d}",
                        "arn": role_arn,
                        "accountId": ACCOUNT,
                        "userName": self.name,
                    },
                    "webIdFederationData": {},
                    "attributes": {"creationDate": "2024-05-06T09:12:44Z", "mfaAuthenticated": "false"},
                },
            }
            if self.invoked_by:
                ident["invokedBy"] = self.invoked_by
            return ident
        if self.kind == "IAMUser":
            return {
                "type": "IAMUser",
                "principalId": f"AIDA{_num(self.name):016d}",
                "arn": f"arn:aws:iam::{ACCOUNT}:user/{self.name}",
                "accountId": ACCOUNT,
                "accessKeyId": f"AKIA{_num(self.name):016d}",
                "userName": self.name,
            }
        return {"type": "AWSService", "invokedBy": self.name}


def _principals() -> list[Principal]:
    p: list[Principal] = []
    apps = [
        ("app-orders-api", ["sts", "kms", "secretsmanager", "dynamodb", "ssm"], UA_JAVA),
        ("app-payments-worker", ["sts", "kms", "secretsmanager", "sqs", "dynamodb"], UA_JAVA),
        ("app-catalog", ["sts", "kms", "dynamodb", "s3"], UA_GO),
        ("app-search-indexer", ["sts", "kms", "dynamodb", "logs"], UA_GO),
        ("app-reporting", ["sts", "rds", "kms", "s3"], UA_BOTO),
        ("app-notifications", ["sts", "sns", "kms", "ssm"], UA_BOTO),
        ("app-auth", ["sts", "kms", "secretsmanager", "dynamodb"], UA_GO),
        ("app-inventory", ["sts", "dynamodb", "kms", "ssm"], UA_JAVA),
        ("app-billing", ["sts", "kms", "secretsmanager", "rds"], UA_JAVA),
        ("app-etl", ["sts", "kms", "dynamodb", "logs", "ssm"], UA_BOTO),
        ("app-ml-training", ["sts", "ecr", "kms", "logs"], UA_BOTO),
        ("app-frontend-ssr", ["sts", "ssm", "kms"], UA_GO),
        ("eks-node-role", ["ec2", "ecr", "sts", "autoscaling"], UA_GO),
        ("lambda-thumbnailer", ["kms", "logs", "sts"], UA_BOTO),
        ("lambda-log-shipper", ["logs", "kms", "sts"], UA_BOTO),
    ]
    for i, (name, services, ua) in enumerate(apps):
        p.append(
            Principal(
                "AssumedRole",
                name,
                services=services,
                weight=6.0,
                ua=ua,
                ip=f"10.20.{i}.{10 + i}",
                session=f"{name}-session",
                write_rate=0.03,
                workload=True,
                repositories=REPOSITORIES[i % 6 :: 6][:2],
            )
        )
    ci = [
        ("github-actions-deploy", ["ecr", "ecs", "cloudformation", "lambda", "s3", "iam", "sts"], UA_TF),
        ("gitlab-runner", ["ecr", "s3", "sts", "eks"], UA_CLI),
        ("terraform-ci", list(READS)[:18], UA_TF),
        ("atlantis", ["iam", "ec2", "s3", "rds", "route53", "kms", "sts"], UA_TF),
        ("packer-builder", ["ec2", "sts", "kms"], UA_GO),
    ]
    for name, services, ua in ci:
        p.append(
            Principal(
                "AssumedRole",
                name,
                services=services,
                weight=3.0,
                ua=ua,
                ip=f"52.{len(name)}.10.{len(services)}",
                write_rate=0.08,
                repositories=REPOSITORIES[len(name) % 6 :: 6],
            )
        )
    for email in ("alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com"):
        p.append(
            Principal(
                "AssumedRole",
                "AWSReservedSSO_PowerUser_3f2a9c1d0e8b7a65",
                services=["ec2", "s3", "rds", "logs", "monitoring", "cloudformation", "iam", "lambda"],
                weight=1.0,
                ua=UA_CONSOLE,
                ip=f"203.0.113.{len(email)}",
                session=email,
                write_rate=0.05,
            )
        )
    p.append(
        Principal(
            "AssumedRole",
            "AWSReservedSSO_ReadOnly_77aa01bb23cc45dd",
            services=["ec2", "s3", "logs", "monitoring"],
            weight=0.5,
            ua=UA_CONSOLE,
            ip="198.51.100.23",
            session="erin@example.com",
            write_rate=0.0,
        )
    )
    for name, services, ua in (
        ("svc-legacy-backup", ["s3", "ec2", "sts"], UA_BOTO),
        ("jenkins", ["ecr", "s3", "sts", "ec2"], UA_CLI),
        ("alice.admin", ["iam", "ec2", "s3", "organizations"], UA_CLI),
        (
            "monitoring-datadog",
            ["monitoring", "ec2", "rds", "elasticloadbalancing", "elasticache", "sqs", "sns"],
            UA_GO,
        ),
    ):
        p.append(
            Principal(
                "IAMUser",
                name,
                services=services,
                weight=4.0 if name == "monitoring-datadog" else 1.0,
                ua=ua,
                ip=f"34.{len(name)}.77.{len(services)}",
                write_rate=0.01,
                repositories=REPOSITORIES[1::6] if name == "jenkins" else None,  # a CI user: its own repositories
            )
        )
    for name in (
        "config.amazonaws.com",
        "cloudtrail.amazonaws.com",
        "trustedadvisor.amazonaws.com",
        "access-analyzer.amazonaws.com",
        "securityhub.amazonaws.com",
    ):
        p.append(
            Principal(
                "AWSService", name, services=list(READS)[:12], weight=0.7, ua=name, ip=name, write_rate=0.0
            )
        )
    p.append(
        Principal(
            "AssumedRole",
            "AWSServiceRoleForConfig",
            services=list(READS),
            weight=2.0,
            ua="config.amazonaws.com",
            ip="config.amazonaws.com",
            session="AWSConfig-Describe",
            invoked_by="config.amazonaws.com",
            write_rate=0.0,
        )
    )
    p.append(
        Principal(
            "AssumedRole",
            "AWSBackupDefaultServiceRole",
            services=["ec2", "rds", "backup", "dynamodb"],
            weight=0.3,
            ua="backup.amazonaws.com",
            ip="backup.amazonaws.com",
            session="AWSBackup-AWSBackupDefaultServiceRole",
            invoked_by="backup.amazonaws.com",
            write_rate=0.0,
        )
    )
    p.append(
        Principal(
            "AssumedRole",
            "AWSDataLifecycleManagerDefaultRole",
            services=["ec2"],
            weight=0.2,
            ua="dlm.amazonaws.com",
            ip="dlm.amazonaws.com",
            session="DLMSession",
            invoked_by="dlm.amazonaws.com",
            write_rate=0.0,
        )
    )
    return p


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _record(
    rng: random.Random,
    who: Principal,
    t: datetime,
    service: str,
    name: str,
    *,
    read_only: bool,
    request: dict[str, Any] | None = None,
    response: dict[str, Any] | None = None,
    error: tuple[str, str] | None = None,
    ua: str | None = None,
    ip: str | None = None,
    region: str | None = None,
) -> dict[str, Any]:
    region = region or ("us-east-1" if service in GLOBAL else who.region or rng.choice(REGIONS))
    n = rng.randrange(10, 99)
    agent = (ua or who.ua).format(n=n, svc=service, cmd=f"{service}.{name.lower()}")
    rec: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": who.identity(rng),
        "eventTime": _ts(t),
        "eventSource": f"{service}.amazonaws.com",
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": ip or who.ip,
        "userAgent": agent,
        "requestParameters": request,
        "responseElements": response,
        "requestID": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "eventID": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }
    if who.kind != "AWSService" and not (ip or who.ip).endswith("amazonaws.com"):
        rec["tlsDetails"] = {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": f"{service}.{region}.amazonaws.com",
        }
    if error:
        rec["errorCode"], rec["errorMessage"] = error
    return rec


def _read_request(rng: random.Random, who: Principal, service: str, name: str) -> dict[str, Any] | None:
    if service == "ecr" and name in ECR_PER_REPOSITORY:
        return {"registryId": ACCOUNT, "repositoryName": rng.choice(who.repositories), "maxResults": 100}
    if service == "ec2":
        return (
            {"maxResults": 1000, "filterSet": {}, "instancesSet": {}}
            if "Instances" in name
            else {"filterSet": {}}
        )
    if service == "kms":
        return {"keyId": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{uuid.UUID(int=rng.getrandbits(128))}"}
    if service in ("ssm", "secretsmanager"):
        return {"name": f"/prod/app/param-{rng.randrange(40)}", "withDecryption": True}
    if service == "dynamodb":
        return {"tableName": f"table-{rng.randrange(25)}"}
    if service == "s3":
        return {"bucketName": f"corp-data-{rng.randrange(30)}", "Host": "s3.amazonaws.com"}
    if service == "sts":
        return (
            None
            if name == "GetCallerIdentity"
            else {"roleArn": f"arn:aws:iam::{ACCOUNT}:role/x", "roleSessionName": "s"}
        )
    return None if rng.random() < 0.5 else {"maxResults": 100}


def _denied(service: str, name: str) -> tuple[str, str]:
    if service == "ec2":
        return "Client.UnauthorizedOperation", "You are not authorized to perform this operation."
    return "AccessDenied", f"User is not authorized to perform: {service}:{name}"


def _snapshot_call(rng: random.Random, who: Principal, t: datetime) -> dict[str, Any]:
    vol = f"vol-{rng.getrandbits(64):017x}"[:21]
    snap = f"snap-{rng.getrandbits(64):017x}"[:22]
    kind = rng.random()
    if kind < 0.35:
        return _record(
            rng,
            who,
            t,
            "ec2",
            "CreateSnapshot",
            read_only=False,
            request={"volumeId": vol, "description": "nightly"},
            response={"snapshotId": snap, "volumeId": vol, "status": "pending", "ownerId": ACCOUNT},
        )
    if kind < 0.5:
        inst = f"i-{rng.getrandbits(64):017x}"[:19]
        return _record(
            rng,
            who,
            t,
            "ec2",
            "CreateImage",
            read_only=False,
            request={"instanceId": inst, "name": f"golden-{rng.randrange(999)}", "noReboot": True},
            response={"imageId": f"ami-{rng.getrandbits(64):017x}"[:21]},
        )
    if kind < 0.6:
        return _record(
            rng,
            who,
            t,
            "ec2",
            "CopySnapshot",
            read_only=False,
            request={"sourceSnapshotId": snap, "sourceRegion": "us-east-1", "destinationRegion": "eu-west-1"},
            response={"snapshotId": f"snap-{rng.getrandbits(64):017x}"[:22]},
        )
    if kind < 0.7:
        return _record(
            rng,
            who,
            t,
            "ec2",
            "ModifySnapshotAttribute",
            read_only=False,
            request={
                "snapshotId": snap,
                "attributeType": "CREATE_VOLUME_PERMISSION",
                "createVolumePermission": {"add": {"items": [{"userId": PARTNER_ACCOUNT}]}},
            },
            response={"_return": True},
        )
    if kind < 0.85:
        ident = f"db-{rng.randrange(20)}"
        return _record(
            rng,
            who,
            t,
            "rds",
            "CreateDBSnapshot",
            read_only=False,
            request={
                "dBInstanceIdentifier": ident,
                "dBSnapshotIdentifier": f"{ident}-manual-{rng.randrange(9999)}",
            },
            response={"status": "creating", "engine": "postgres"},
        )
    if kind < 0.93:
        ident = f"aurora-{rng.randrange(5)}"
        return _record(
            rng,
            who,
            t,
            "rds",
            "CreateDBClusterSnapshot",
            read_only=False,
            request={
                "dBClusterIdentifier": ident,
                "dBClusterSnapshotIdentifier": f"{ident}-snap-{rng.randrange(9999)}",
            },
            response={"status": "creating"},
        )
    return _record(
        rng, who, t, "ec2", "DeleteSnapshot", read_only=False, request={"snapshotId": snap}, response=None
    )


def _service_snapshot(rng: random.Random, who: Principal, t: datetime) -> dict[str, Any]:
    """AWS Backup / DLM making their scheduled snapshots."""
    vol = f"vol-{rng.getrandbits(64):017x}"[:21]
    if who.invoked_by == "dlm.amazonaws.com" and rng.random() < 0.5:
        inst = f"i-{rng.getrandbits(64):017x}"[:19]
        items = [
            {"snapshotId": f"snap-{rng.getrandbits(64):017x}"[:22], "volumeId": vol, "state": "pending"}
            for _ in range(2)
        ]
        return _record(
            rng,
            who,
            t,
            "ec2",
            "CreateSnapshots",
            read_only=False,
            request={"instanceSpecification": {"instanceId": inst}, "copyTagsFromSource": "volume"},
            response={"snapshotSet": {"items": items}},
        )
    return _record(
        rng,
        who,
        t,
        "ec2",
        "CreateSnapshot",
        read_only=False,
        request={"volumeId": vol, "description": "scheduled"},
        response={
            "snapshotId": f"snap-{rng.getrandbits(64):017x}"[:22],
            "volumeId": vol,
            "status": "pending",
        },
    )


def _discovery_sweep(rng: random.Random, who: Principal) -> list[dict[str, Any]]:
    services = [
        "ec2",
        "s3",
        "iam",
        "rds",
        "lambda",
        "ecr",
        "kms",
        "secretsmanager",
        "ssm",
        "dynamodb",
        "eks",
        "cloudtrail",
        "guardduty",
        "organizations",
        "sns",
    ]
    calls: list[tuple[str, str]] = []
    i = 0
    while len(calls) < 60:
        svc = services[i % len(services)]
        ops = READS[svc]
        op = ops[(i // len(services)) % len(ops)]
        if (svc, op) not in calls:
            calls.append((svc, op))
        i += 1
    t0 = START + timedelta(minutes=71)
    out = []
    for k, (svc, op) in enumerate(calls):
        t = t0 + timedelta(seconds=k * 3)  # 60 calls in 3 minutes
        err = _denied(svc, op) if k % 7 == 3 else None
        out.append(
            _record(
                rng,
                who,
                t,
                svc,
                op,
                read_only=True,
                error=err,
                ua=UA_CLI,
                ip="185.220.101.45",
                region="us-east-1",
            )
        )
    return out


def _snapshot_then_share(rng: random.Random, who: Principal) -> list[dict[str, Any]]:
    t0 = START + timedelta(minutes=95)
    vol, snap = "vol-0a1b2c3d4e5f60718", "snap-0feedbeefcafe0001"
    create = _record(
        rng,
        who,
        t0,
        "ec2",
        "CreateSnapshot",
        read_only=False,
        request={"volumeId": vol, "description": "debug copy"},
        response={"snapshotId": snap, "volumeId": vol, "status": "pending", "ownerId": ACCOUNT},
        ua=UA_CLI,
        region="us-east-1",
    )
    share = _record(
        rng,
        who,
        t0 + timedelta(minutes=4),
        "ec2",
        "ModifySnapshotAttribute",
        read_only=False,
        request={
            "snapshotId": snap,
            "attributeType": "CREATE_VOLUME_PERMISSION",
            "createVolumePermission": {"add": {"items": [{"userId": EXTERNAL_ACCOUNT}]}},
        },
        response={"_return": True},
        ua=UA_CLI,
        region="us-east-1",
    )
    return [create, share]


def generate(records: int = 200_000, seed: int = 7) -> Iterator[dict[str, Any]]:
    """Yield ``records`` CloudTrail records in event-time order (deterministic for a seed)."""
    rng = random.Random(seed)
    principals = _principals()
    weights = [p.weight for p in principals]
    sweeper = next(p for p in principals if p.name == "jenkins")
    sharer = next(p for p in principals if p.name == "alice.admin")
    special = _discovery_sweep(rng, sweeper) + _snapshot_then_share(rng, sharer)
    n = max(0, records - len(special))
    offsets = sorted(rng.random() * SPAN_SECONDS for _ in range(n))
    humans = [p for p in principals if p.kind == "IAMUser" or (p.session or "").endswith("@example.com")]
    ci = [p for p in principals if p.name in ("packer-builder", "github-actions-deploy", "terraform-ci")]
    snapshotters = [p for p in principals if p.invoked_by in ("backup.amazonaws.com", "dlm.amazonaws.com")]
    special_iter = iter(special)
    nxt = next(special_iter, None)
    for off in offsets:
        t = START + timedelta(seconds=off)
        while nxt is not None and nxt["eventTime"] <= _ts(t):
            yield nxt
            nxt = next(special_iter, None)
        roll = rng.random()
        if roll < 0.0004:
            yield _snapshot_call(rng, rng.choice(humans + ci), t)
            continue
        if roll < 0.0010:
            yield _service_snapshot(rng, rng.choice(snapshotters), t)
            continue
        who = rng.choices(principals, weights)[0]
        svc = rng.choice(who.services)
        if rng.random() < who.write_rate:
            writes = [w for w in WRITES if w[0] == svc] or WRITES
            wsvc, wname = rng.choice(writes)
            yield _record(
                rng, who, t, wsvc, wname, read_only=False, request={"resource": f"r-{rng.randrange(999)}"}
            )
            continue
        name = rng.choice(who.reads(svc))
        err = _denied(svc, name) if rng.random() < 0.003 else None
        yield _record(
            rng, who, t, svc, name, read_only=True, request=_read_request(rng, who, svc, name), error=err
        )
    while nxt is not None:
        yield nxt
        nxt = next(special_iter, None)


def write(path: Path, records: int = 200_000, seed: int = 7) -> int:
    """Write the mix to ``path`` (``.jsonl`` or ``.json.gz``); return the number of records."""
    return write_records(path, generate(records, seed))


def write_records(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write ``records`` to ``path``: one a line (``.jsonl``) or a gzipped CloudTrail log file (``.json.gz``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    if path.name.endswith(".json.gz"):
        with gzip.open(path, "wb", compresslevel=6) as f:
            f.write(b'{"Records":[')
            for rec in records:
                if count:
                    f.write(b",")
                f.write(orjson.dumps(rec))
                count += 1
            f.write(b"]}")
        return count
    with path.open("wb") as f:
        for rec in records:
            f.write(orjson.dumps(rec))
            f.write(b"\n")
            count += 1
    return count


def run_cli(
    write_fn: Callable[[Path, int, int], int], doc: str, argv: list[str] | None, *, records: int, out: str, seed: int
) -> int:
    """A generator's command line: ``--records``, ``--out``, ``--seed``, then ``write_fn(out, records, seed)``."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--records", type=int, default=records)
    ap.add_argument("--out", type=Path, default=Path(out))
    ap.add_argument("--seed", type=int, default=seed)
    args = ap.parse_args(argv)
    n = write_fn(args.out, args.records, args.seed)
    print(f"wrote {n} records to {args.out}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(write, __doc__ or "", argv, records=200_000, out="bench/data/cloudtrail-200k.jsonl", seed=7)


if __name__ == "__main__":
    raise SystemExit(main())
