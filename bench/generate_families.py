"""Synthetic records of every non-CloudTrail input family, most of them reaching no detection.

For issue 22's route-before-building bench (``bench_probe.py``) and its test: per family, about
85 % writes no detection reads (a Kubernetes lease renewal, a Docker container start, an ARM
``sites/write``, a Graph ``PATCH``...), 10 % reads (``discovery.read``: routed) and 5 % denials,
over a few principals and an hour, as their deliveries hand them to the engine (one record each:
an Event Hub document's records one by one, a CloudWatch Logs message narrowed to one log event).

Usage::

    python bench/generate_families.py --records 20000 --out bench/data/families.jsonl [--seed 22]

writes ``{"family": ..., "hint": ..., "record": ...}`` lines (``hint`` is the family the delivery
names, or null when the record is sniffed).
"""

from __future__ import annotations

import argparse
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

FAMILIES = ("docker", "k8s_audit", "eks_audit", "aks_audit", "gke_audit", "gcp_audit", "azure_activity", "azure_graph")
#: The family a delivery names for the records of each (None: sniffed from the record).
HINTS: dict[str, str | None] = {
    "docker": "docker",
    "k8s_audit": None,
    "eks_audit": "aws",
    "aks_audit": "azure",
    "gke_audit": None,
    "gcp_audit": None,
    "azure_activity": "azure",
    "azure_graph": "azure",
}
START = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
SUB = "7d4a9c2e-1f3b-4c5d-8e6f-0a1b2c3d4e5f"


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _kind(rng: random.Random) -> str:
    x = rng.random()
    return "write" if x < 0.85 else "read" if x < 0.95 else "denied"


def _k8s(rng: random.Random, i: int, t: datetime) -> dict[str, Any]:
    kind = _kind(rng)
    user = rng.choice(["system:node:ip-10-0-1-7", "system:kube-controller-manager", "alice", "system:serviceaccount:ci:deployer"])
    if kind == "write":
        verb, resource, ns, name = rng.choice(
            [("update", "leases", "kube-node-lease", "ip-10-0-1-7"), ("patch", "nodes", None, "ip-10-0-1-7"),
             ("update", "configmaps", "kube-system", "cluster-autoscaler-status"), ("create", "events", "default", None),
             ("update", "endpoints", "default", "web")]
        )
    else:
        verb, resource, ns, name = rng.choice([("list", "pods", "prod", None), ("get", "secrets", "prod", "db")])
    ref: dict[str, Any] = {"resource": resource, "apiVersion": "v1"}
    if ns:
        ref["namespace"] = ns
    if name:
        ref["name"] = name
    code = 403 if kind == "denied" else 200
    return {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": f"a{i:07d}-aaaa-4bbb-8ccc-{rng.getrandbits(48):012x}", "stage": "ResponseComplete",
        "requestURI": f"/api/v1/{'namespaces/' + ns + '/' if ns else ''}{resource}{'/' + name if name else ''}",
        "verb": verb, "user": {"username": user, "groups": ["system:authenticated"]},
        "sourceIPs": [f"10.0.{rng.randrange(4)}.{rng.randrange(250)}"], "userAgent": "kubelet/v1.29.2",
        "objectRef": ref, "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": _iso(t), "stageTimestamp": _iso(t + timedelta(milliseconds=5)),
        "annotations": {"authorization.k8s.io/decision": "forbid" if code == 403 else "allow",
                        "authorization.k8s.io/reason": ""},
    }


def _docker(rng: random.Random, i: int, t: datetime) -> dict[str, Any]:
    cid = f"{rng.getrandbits(256):064x}"
    if rng.random() < 0.9:
        etype, action = rng.choice([("container", "start"), ("container", "die"), ("container", "attach"),
                                    ("network", "connect"), ("image", "pull"), ("container", "create")])
    else:
        etype, action = "container", "commit"
    ns = int(t.timestamp()) * 1_000_000_000 + i
    return {"status": action, "id": cid, "from": "nginx:1.27", "Type": etype, "Action": action,
            "Actor": {"ID": cid, "Attributes": {"image": "nginx:1.27", "name": f"web-{i % 50}"}},
            "scope": "local", "time": ns // 1_000_000_000, "timeNano": ns, "host": f"build-{i % 7:02d}"}


def _gcp_entry(rng: random.Random, i: int, t: datetime, method: str, service: str, code: int | None,
               resource_type: str) -> dict[str, Any]:
    return {
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "authenticationInfo": {"principalEmail": rng.choice(["dev@example.com", "ci@acme-prod.iam.gserviceaccount.com"])},
            "requestMetadata": {"callerIp": "203.0.113.50", "callerSuppliedUserAgent": "google-api-go-client/0.5"},
            "serviceName": service, "methodName": method,
            "resourceName": f"projects/acme-prod/zones/europe-west1-b/instances/vm-{i % 30}",
            "authorizationInfo": [{"permission": method, "granted": code != 7}],
            "status": {"code": code} if code else {},
        },
        "insertId": f"{rng.getrandbits(64):016x}{i}",
        "resource": {"type": resource_type, "labels": {"project_id": "acme-prod", "location": "europe-west1"}},
        "timestamp": _iso(t), "receiveTimestamp": _iso(t + timedelta(seconds=1)),
        "logName": "projects/acme-prod/logs/cloudaudit.googleapis.com%2Factivity",
    }


def _gcp(rng: random.Random, i: int, t: datetime) -> dict[str, Any]:
    kind = _kind(rng)
    if kind == "read":
        method = rng.choice(["v1.compute.instances.list", "storage.buckets.list"])
    else:
        method = rng.choice(["v1.compute.instances.setMetadata", "v1.compute.instances.start",
                             "storage.objects.create", "v1.compute.firewalls.patch", "SetIamPolicy"])
    return _gcp_entry(rng, i, t, method, "compute.googleapis.com", 7 if kind == "denied" else None, "gce_instance")


def _gke(rng: random.Random, i: int, t: datetime) -> dict[str, Any]:
    kind = _kind(rng)
    if kind == "read":
        method = "io.k8s.core.v1.pods.list"
    else:
        method = rng.choice(["io.k8s.coordination.v1.leases.update", "io.k8s.core.v1.configmaps.update",
                             "io.k8s.core.v1.nodes.status.patch", "io.k8s.apps.v1.deployments.scale.update"])
    entry = _gcp_entry(rng, i, t, method, "k8s.io", 7 if kind == "denied" else None, "k8s_cluster")
    entry["protoPayload"]["resourceName"] = "coordination.k8s.io/v1/namespaces/kube-system/leases/ip-10-0-1-7"
    return entry


def _activity(rng: random.Random, i: int, t: datetime) -> dict[str, Any]:
    kind = _kind(rng)
    rg = f"/subscriptions/{SUB}/resourceGroups/web-rg/providers"
    if kind == "read":
        op, rid = "Microsoft.Compute/virtualMachines/read", f"{rg}/Microsoft.Compute/virtualMachines/vm{i % 20}"
    else:
        op, rid = rng.choice([
            ("Microsoft.Web/sites/write", f"{rg}/Microsoft.Web/sites/app{i % 9}"),
            ("Microsoft.Insights/diagnosticSettings/write", f"{rg}/Microsoft.Web/sites/app{i % 9}"),
            ("Microsoft.Network/networkSecurityGroups/securityRules/write",
             f"{rg}/Microsoft.Network/networkSecurityGroups/nsg1/securityRules/r{i % 5}"),
            ("Microsoft.Resources/deployments/write", f"/subscriptions/{SUB}/resourceGroups/web-rg"),
        ])
    return {
        "time": _iso(t), "resourceId": rid.upper(), "operationName": op.upper(), "category": "Administrative",
        "resultType": "Failure" if kind == "denied" else "Success",
        "resultSignature": "Failed.Forbidden" if kind == "denied" else "Succeeded.OK",
        "callerIpAddress": "203.0.113.24", "correlationId": f"{rng.getrandbits(128):032x}",
        "identity": {"claims": {"http://schemas.microsoft.com/identity/claims/objectidentifier": f"oid-{i % 12}",
                                "appid": "04b07795-8ddb-461a-bbee-02f9e1bf7b46"}},
        "level": "Information", "location": "westeurope",
        "properties": {"statusCode": "Forbidden" if kind == "denied" else "OK"},
    }


def _graph(rng: random.Random, i: int, t: datetime) -> dict[str, Any]:
    kind = _kind(rng)
    if kind == "read":
        method, uri = "GET", "https://graph.microsoft.com/v1.0/users?$top=999"
    else:
        method, uri = rng.choice([
            ("PATCH", f"https://graph.microsoft.com/v1.0/users/{rng.getrandbits(128):032x}"),
            ("POST", "https://graph.microsoft.com/v1.0/me/sendMail"),
            ("POST", f"https://graph.microsoft.com/v1.0/groups/{rng.getrandbits(64):016x}1/members/$ref"),
        ])
    return {
        "time": _iso(t), "resourceId": "/TENANTS/3C1E5F7A/PROVIDERS/MICROSOFT.AADIAM",
        "operationName": "Microsoft Graph Activity", "category": "MicrosoftGraphActivityLogs",
        "tenantId": "3c1e5f7a", "resultSignature": "200",
        "properties": {"timeGenerated": _iso(t), "requestId": f"{rng.getrandbits(128):032x}", "requestMethod": method,
                       "requestUri": uri, "responseStatusCode": 403 if kind == "denied" else 200,
                       "userId": f"user-{i % 15}", "appId": "de8bc8b5-d9f9-48b1-a8ad-b748da725064",
                       "ipAddress": "198.51.100.9", "userAgent": "python-requests/2.31"},
    }


def record(family: str, rng: random.Random, i: int, t: datetime) -> dict[str, Any]:
    """One record of ``family`` as its delivery hands it to the engine."""
    if family == "docker":
        return _docker(rng, i, t)
    if family == "k8s_audit":
        return _k8s(rng, i, t)
    if family == "eks_audit":
        event = _k8s(rng, i, t)
        return {"messageType": "DATA_MESSAGE", "owner": "111122223333", "logGroup": "/aws/eks/prod/cluster",
                "logStream": "kube-apiserver-audit-0", "subscriptionFilters": ["adscore"],
                "logEvents": [{"id": str(i), "timestamp": int(t.timestamp() * 1000),
                               "message": orjson.dumps(event).decode()}]}
    if family == "aks_audit":
        event = _k8s(rng, i, t)
        return {"operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
                "category": "kube-audit", "time": _iso(t),
                "resourceId": f"/SUBSCRIPTIONS/{SUB}/RESOURCEGROUPS/AKS-RG/PROVIDERS/"
                              "MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/AKS-PROD",
                "properties": {"log": orjson.dumps(event).decode(), "stream": "stdout", "pod": "kube-apiserver-0"}}
    if family == "gke_audit":
        return _gke(rng, i, t)
    if family == "gcp_audit":
        return _gcp(rng, i, t)
    if family == "azure_activity":
        return _activity(rng, i, t)
    if family == "azure_graph":
        return _graph(rng, i, t)
    raise ValueError(f"unknown family {family!r}")


def generate(family: str, records: int, seed: int = 22) -> list[dict[str, Any]]:
    """``records`` records of ``family``, over an hour, deterministic for ``seed``."""
    rng = random.Random(f"{family}:{seed}")
    step = 3600 / max(records, 1)
    return [record(family, rng, i, START + timedelta(seconds=i * step)) for i in range(records)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=20_000, help="records per family")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=22)
    args = ap.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("wb") as f:
        for family in FAMILIES:
            for rec in generate(family, args.records, args.seed):
                f.write(orjson.dumps({"family": family, "hint": HINTS[family], "record": rec}) + b"\n")
    print(f"wrote {args.records * len(FAMILIES)} records ({args.records} per family) to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
