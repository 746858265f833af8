"""Every real sample in ../shared/samples goes through the parsers without surprise errors.

Files that hold log records are read through the product path (``read_inputs`` +
``parse_record``). Panther's rule files, ``all_tests.jsonl`` and scenario YAML hold
logs inside test specifications: each test's ``Log`` is extracted and handed to
``parse_record``.

Panther's test logs are trimmed by hand: most of them lack the timestamp every real
record carries. The parsers rightly reject a record without a time (checked below
for the Kubernetes ones), so to exercise the rest of each record the test adds a
fixed timestamp where, and only where, the record has none. A record that still
fails must be listed in ``KNOWN_MALFORMED`` with the reason.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from adscore.events import Event, RecordError
from adscore.sources import parse_record, sniff
from adscore.sources.files import read_inputs

if TYPE_CHECKING:
    from collections.abc import Iterator

SAMPLES = (Path(__file__).resolve().parents[3] / ".." / "shared" / "samples").resolve()
pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"{SAMPLES} is absent")

#: Files that hold no log records, with the reason.
NOT_LOGS = {
    "README.md": "documentation",
    "SOURCES.json": "provenance metadata",
    "falco/falco_k8s_audit_tests.yaml": "Falco's test specification: trace file names and expected rule hits",
    "falco/falco_k8s_audit_expected_labels.json": "labels of the trace files",
}

#: File name patterns that hold no log records.
NOT_LOG_PATTERNS = {
    "*_expected_labels.json": "labels, no log records",
    "*_tests.yaml": "test specification, no log records",
}

#: Records that are expected to give a RecordError, by key (file, or file#test), with the reason.
KNOWN_MALFORMED = {
    "falco/k8s_audit_trace_files/fal_01_003.json": 'deliberately malformed {"kind":0} test record',
    **{
        f"panther/discovery/{rule}.json#{test}": "Panther test log with no verb (only user, sourceIPs, requestURI)"
        for rule, tests in {
            "Amazon.EKS.AnonymousAPIAccess": (
                "Anonymous API Access",
                "Non-Anonymous API Access",
                "ELB Health Check from 10.0.0.0/8",
                "ELB Health Check from 172.16.0.0/12",
                "ELB Health Check from 192.168.0.0/16",
                "ELB Health Check from Public IP",
            ),
            "Kubernetes.API.AnonymousAccess": (
                "EKS Anonymous API Access",
                "Non-Anonymous API Access",
                "Localhost Access",
                "ELB Health Checker (excluded)",
                "kube-probe Health Check (excluded)",
            ),
        }.items()
        for test in tests
    },
    **{
        f"panther/discovery/{rule}.json#{test}": "Panther test log with neither objectRef nor requestURI"
        for rule, test in (
            ("Kubernetes.API.Multiple403.PublicIP", "403 from Private IP (Excluded)"),
            ("Kubernetes.API.Multiple403.PublicIP", "200 Response (Not 403)"),
            ("Kubernetes.API.Multiple403.PublicIP", "No Source IP"),
            (
                "Kubernetes.System.Principal.PublicIP",
                "system:anonymous from Public IP (Excluded - Not a Real Principal)",
            ),
        )
    },
    **{
        f"panther/discovery/AWS.CloudTrail.Password.Policy.Discovery.json#{test}": (
            "Panther test log with lower-cased CloudTrail keys (eventsource, eventname...)"
        )
        for test in ("Non-Discovery Event", "Password Discovery ARN", "Password Discovery Service")
    },
}

FILL_TIME = "2024-01-01T00:00:00Z"
_K8S_TIMES = ("stageTimestamp", "requestReceivedTimestamp", "timestamp")
_PANTHER_QUERY_TYPES = ("correlation_rule", "scheduled_rule")


class _NoDatesLoader(yaml.SafeLoader):
    """SafeLoader that keeps timestamps as the strings the JSON logs hold."""


_NoDatesLoader.yaml_implicit_resolvers = {
    ch: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


# --------------------------------------------------------------------------------------------
# completing Panther's trimmed test logs
# --------------------------------------------------------------------------------------------
def _complete_k8s(event: dict[str, Any]) -> bool:
    if any(k in event for k in _K8S_TIMES):
        return False
    event["requestReceivedTimestamp"] = FILL_TIME
    return True


def complete(log: Any) -> tuple[Any, bool]:
    """Return a copy of a Panther test log with a timestamp added where it has none."""
    if not isinstance(log, dict):
        return log, False
    log = copy.deepcopy(log)
    family = sniff(log)
    if family == "kubernetes":
        return log, _complete_k8s(log)
    if family == "aws" and "eventTime" not in log and "eventSource" in log:
        log["eventTime"] = FILL_TIME
        return log, True
    if family == "gcp" and "protoPayload" in log and not ({"timestamp", "receiveTimestamp"} & log.keys()):
        log["timestamp"] = FILL_TIME
        return log, True
    if family == "azure":
        filled = False
        if not ({"time", "eventTimestamp"} & log.keys()):
            log["time"] = FILL_TIME
            filled = True
        props = log.get("properties")
        inner = props.get("log") if isinstance(props, dict) else None
        if isinstance(inner, str):
            try:
                event = json.loads(inner)
            except ValueError:
                event = None
            if isinstance(event, dict) and _complete_k8s(event):
                props["log"] = json.dumps(event)
                filled = True
        elif isinstance(inner, dict):
            filled = _complete_k8s(inner) or filled
        return log, filled
    return log, False


# --------------------------------------------------------------------------------------------
# reading every sample
# --------------------------------------------------------------------------------------------
Results = dict[str, list[Event | RecordError]]


def _rel(path: Path) -> str:
    return path.relative_to(SAMPLES).as_posix()


def _panther_logs(path: Path) -> Iterator[tuple[str, Any]]:
    rel = _rel(path)
    if path.name == "all_tests.jsonl":
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            t = json.loads(line)
            if str(t.get("log_type", "")).startswith("n/a"):
                continue  # correlation / query test: holds no raw log
            yield f"panther/{t['category']}/{t['rule_id']}.json#{t['test_name']}", t["log"]
    elif path.suffix == ".yml":
        spec = yaml.load(path.read_text(encoding="utf-8"), Loader=_NoDatesLoader)  # a SafeLoader subclass
        for i, log in enumerate(spec.get("Logs") or []):
            yield f"{rel}#{i}", log
    else:
        rule = json.loads(path.read_text(encoding="utf-8"))
        if rule.get("AnalysisType") in _PANTHER_QUERY_TYPES:
            return  # scheduled / correlation rule: its tests are query results, not logs
        for t in rule.get("Tests") or []:
            yield f"{rel}#{t['Name']}", t["Log"]


def _is_panther_query_rule(path: Path) -> bool:
    """Scheduled and correlation rules: their tests hold query results, not logs."""
    if not _rel(path).startswith("panther/") or path.suffix != ".json":
        return False
    return json.loads(path.read_text(encoding="utf-8")).get("AnalysisType") in _PANTHER_QUERY_TYPES


def sample_files() -> list[Path]:
    if not SAMPLES.is_dir():
        return []
    return sorted(p for p in SAMPLES.rglob("*") if p.is_file())


@functools.cache
def results_of(path: Path) -> Results:
    """Parse one sample file; results keyed by record key (file, or file#test)."""
    rel = _rel(path)
    out: Results = {}
    if rel.startswith("panther/"):
        for key, log in _panther_logs(path):
            filled, _ = complete(log)
            out.setdefault(key, []).extend(parse_record(filled, key))
        return out
    for item in read_inputs([str(path)]):
        if isinstance(item, RecordError):
            out.setdefault(rel, []).append(item)
        else:
            out.setdefault(rel, []).extend(parse_record(item[1], item[0]))
    return out


def _is_log_file(path: Path) -> bool:
    return _rel(path) not in NOT_LOGS and not any(path.match(pat) for pat in NOT_LOG_PATTERNS)


LOG_FILES = [p for p in sample_files() if _is_log_file(p)]


def _errors(results: Results) -> dict[str, list[str]]:
    return {
        key: [f"{r.location}: {r.reason}" for r in rs if isinstance(r, RecordError)]
        for key, rs in results.items()
        if any(isinstance(r, RecordError) for r in rs)
    }


# --------------------------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------------------------
def test_every_sample_file_is_covered() -> None:
    for rel in NOT_LOGS:
        assert (SAMPLES / rel).is_file(), f"NOT_LOGS names a missing file: {rel}"
    for path in LOG_FILES:
        rel = _rel(path)
        assert rel.startswith("panther/") or path.suffix in (".json", ".jsonl", ".ndjson", ".log", ".gz"), (
            f"{rel}: no reader for this sample; read it or add it to NOT_LOGS with a reason"
        )


@pytest.mark.parametrize("path", LOG_FILES, ids=[_rel(p) for p in LOG_FILES])
def test_sample_parses_without_unexpected_errors(path: Path) -> None:
    if _is_panther_query_rule(path):
        pytest.skip("Panther scheduled/correlation rule: its tests hold query results, no logs")
    results = results_of(path)
    assert results, f"{_rel(path)}: no records read"
    unexpected = {k: v for k, v in _errors(results).items() if k not in KNOWN_MALFORMED}
    assert not unexpected, "unexpected RecordErrors:\n" + "\n".join(
        f"{k}: {v}" for k, v in unexpected.items()
    )
    events = [r for rs in results.values() for r in rs if isinstance(r, Event)]
    assert all(e.time.tzinfo is not None and e.event_id and e.operation for e in events)


def test_known_malformed_records_still_fail() -> None:
    errors: dict[str, list[str]] = {}
    for path in LOG_FILES:
        errors.update(_errors(results_of(path)))
    stale = sorted(k for k in KNOWN_MALFORMED if k not in errors)
    assert not stale, f"KNOWN_MALFORMED entries that now parse (or no longer exist): {stale}"


def test_panther_k8s_logs_without_time_are_rejected_as_is() -> None:
    # GIVEN Panther's trimmed Kubernetes test logs WHEN read as they are THEN a missing time is an error
    checked = 0
    for path in sorted((SAMPLES / "panther").glob("*/*.json")):
        for key, log in _panther_logs(path):
            if sniff(log) != "kubernetes" or key in KNOWN_MALFORMED or any(k in log for k in _K8S_TIMES):
                continue
            [err] = parse_record(log, key)
            assert isinstance(err, RecordError) and "no time" in err.reason, key
            checked += 1
    assert checked > 20


def test_falco_exec_pod_is_a_k8s_exec() -> None:
    [ev] = results_of(SAMPLES / "falco/k8s_audit_trace_files/exec_pod.json")[
        "falco/k8s_audit_trace_files/exec_pod.json"
    ]
    assert isinstance(ev, Event)
    assert ev.action == "k8s.exec" and ev.operation == "create pods/exec"
    assert ev.command == ("bash",) and ev.namespace == "default"
    assert ev.principal.id == "minikube-user" and ev.source_ip == "192.168.99.1"
    assert ev.resources[0].id == "default/nginx-deployment-7998647bdf-phvq7"


def test_falco_trace_files_read_completely() -> None:
    # SOURCES.json: 47 files, 52 events, one of them the malformed {"kind": 0}
    events = 0
    for path in sorted((SAMPLES / "falco/k8s_audit_trace_files").glob("*.json")):
        events += sum(isinstance(r, Event) for rs in results_of(path).values() for r in rs)
    assert events == 51


def test_panther_kubectl_cp_positive_tests_are_tar_execs() -> None:
    # GIVEN the EKS, AKS and GKE positive tests of Panther's kubectl cp rule
    path = SAMPLES / "panther/snapshot/Kubernetes.Kubectl.CP.Operation.json"
    rule = json.loads(path.read_text(encoding="utf-8"))
    positives = [t["Name"] for t in rule["Tests"] if t["ExpectedResult"]]
    assert len(positives) >= 3
    results = results_of(path)
    for name in positives:
        # THEN each is one k8s.exec whose command is a tar
        [ev] = results[f"panther/snapshot/Kubernetes.Kubectl.CP.Operation.json#{name}"]
        assert isinstance(ev, Event), ev
        assert ev.action == "k8s.exec", name
        assert ev.command[:1] == ("tar",) and "-" in ev.command, name


def test_docker_cli_sample() -> None:
    results = results_of(SAMPLES / "docker-cli/docker-events-json.golden.jsonl")
    events = [r for rs in results.values() for r in rs]
    assert [e.operation for e in events if isinstance(e, Event)] == [
        "container create",
        "container start",
        "container attach",
        "container die",
    ]
    assert all(isinstance(e, Event) and e.action is None for e in events)
