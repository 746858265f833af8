"""Write a deterministic folder of Sigma rules shaped like SigmaHQ's cloud rules, for bench_sigma.py.

SigmaHQ's rules are not vendored; this set copies the shapes of its CloudTrail rules over the names
``generate_cloudtrail.py`` uses (rare and changing calls mostly, some reads, so a few rules fire on
the bench's records): ``eventSource`` plus a
list of ``eventName`` values (most rules), ``eventName`` with a nested field (``responseElements``...),
a ``userIdentity.arn|re`` selection with ``not 1 of filter_*``, ``eventName|startswith`` /
``|contains``, and ``userIdentity.type: Root``; the rest are Azure, GCP and Kubernetes rules (which
CloudTrail events never reach). The default split, 110 CloudTrail rules of 186, is SigmaHQ's.

Usage::

    python bench/generate_sigma_rules.py --out bench/data/sigma-rules [--cloudtrail 110] [--total 186] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import random
import uuid
from pathlib import Path
from typing import Any

from generate_cloudtrail import READS, WRITES

INVENTED = ["StopLogging", "DeleteTrail", "PutBucketPolicy", "CreateLoginProfile", "DeleteIdentity", "SendCommand",
            "ModifySnapshotAttribute", "CreateAccessKey", "DisableKey", "DeleteFlowLogs", "UpdateLoginProfile"]  # fmt: skip


def _cloudtrail(rng: random.Random, i: int) -> dict[str, Any]:
    service = rng.choice(sorted(READS))
    names = [*INVENTED, *(n for s, n in WRITES if s == service)]  # rules name rare, changing calls
    shape = rng.random()
    if shape < 0.6:  # eventSource + eventName list (most SigmaHQ CloudTrail rules)
        picked = rng.sample(names, rng.randint(1, 4))
        if rng.random() < 0.15:  # a discovery rule names a read
            picked[-1] = rng.choice(READS[service])
        sel: dict[str, Any] = {"eventSource": f"{service}.amazonaws.com", "eventName": picked}
        return {"detection": {"selection": sel, "condition": "selection"}}
    if shape < 0.7:  # eventName + a nested field
        sel = {"eventName": rng.choice([*names, *INVENTED]), "responseElements.ConsoleLogin": "Success"}
        return {"detection": {"selection": sel, "condition": "selection"}}
    if shape < 0.8:  # regex selection with filters: no value is required
        return {"detection": {
            "selection": {"userIdentity.arn|re": f".+:assumed-role/{rng.choice(['aws:', 'AWSReservedSSO_Admin', 'OrganizationAccountAccess'])}.+"},
            "filter_main_source": {"eventSource": f"{service}.amazonaws.com"},
            "filter_main_name": {"eventName": rng.choice(READS[service])},
            "condition": "selection and not 1 of filter_main_*",
        }}  # fmt: skip
    if shape < 0.9:  # prefixes and substrings
        mod = rng.choice(["startswith", "contains"])
        sel = {"eventSource": f"{service}.amazonaws.com", f"eventName|{mod}": rng.choice(["Delete", "Put", "Disable", "Create"])}
        return {"detection": {"selection": sel, "condition": "selection"}}
    sel = {"userIdentity.type": "Root", "eventSource": f"{service}.amazonaws.com"}
    return {"detection": {"selection": sel, "condition": "selection"}}


def _other(rng: random.Random, i: int) -> dict[str, Any]:
    product, service, field = rng.choice([
        ("azure", "activitylogs", "operationName"), ("azure", "signinlogs", "ResultType"),
        ("gcp", "gcp.audit", "data.protoPayload.methodName"), ("kubernetes", "audit", "verb"),
    ])  # fmt: skip
    return {"logsource": {"product": product, "service": service},
            "detection": {"selection": {field: [f"op{i}", f"op{i}b"]}, "condition": "selection"}}  # fmt: skip


def write(out: Path, cloudtrail: int = 110, total: int = 186, seed: int = 7) -> None:
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    for i in range(total):
        body = _cloudtrail(rng, i) if i < cloudtrail else _other(rng, i)
        rule = {
            "title": f"Bench rule {i}",
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "status": "test",
            "logsource": body.pop("logsource", {"product": "aws", "service": "cloudtrail"}),
            **body,
            "level": "medium",
            "tags": ["attack.discovery", "attack.t1526"],
        }
        (out / f"rule_{i:03d}.yml").write_text(json.dumps(rule, indent=1) + "\n")  # JSON is YAML


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cloudtrail", type=int, default=110)
    parser.add_argument("--total", type=int, default=186)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    write(args.out, args.cloudtrail, args.total, args.seed)


if __name__ == "__main__":
    main()
