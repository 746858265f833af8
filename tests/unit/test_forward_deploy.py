"""The forwarder's deployment files agree with the command, and its imports stay light."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from adscore.cli import main

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "docker-forwarder"


def _flags_of_command() -> set[str]:
    out = CliRunner().invoke(main, ["forward", "docker", "--help"]).output
    return set(re.findall(r"--[a-z][a-z-]+", out))


def _unit() -> dict[str, list[str]]:
    text = (DEPLOY / "adscore-forward-docker.service").read_text().replace("\\\n", " ")
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_the_systemd_unit_is_hardened_and_runs_flags_the_command_has() -> None:
    unit = _unit()
    assert set(re.findall(r"--[a-z][a-z-]+", unit["ExecStart"][0])) <= _flags_of_command()
    assert unit["ExecStart"][0].split()[1:3] == ["forward", "docker"]
    for key, value in {
        "DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
        "PrivateTmp": "yes", "StateDirectory": "adscore-forward", "CapabilityBoundingSet": "",
        "Restart": "always",
    }.items():
        assert unit[key] == [value], key
    assert unit["LoadCredential"][0].startswith("forward-secret:")
    assert "%d/forward-secret" in unit["ExecStart"][0] and "%S/adscore-forward" in unit["ExecStart"][0]
    assert "docker" in unit["SupplementaryGroups"][0].split()


def test_the_dockerfile_runs_the_command_with_flags_it_has() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    assert entry[1:] == ["forward", "docker"]
    assert {a for a in cmd if a.startswith("--")} <= _flags_of_command()
    assert "--extra forward" in text and "USER 10001" in text


def test_the_forwarder_imports_no_cloud_sdk() -> None:
    code = (
        "import sys, adscore.forward.docker, adscore.forward.identity, adscore.forward.spool\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}))"
    )
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                           check=True).stdout.replace("'", '"')))
    assert not loaded & {"boto3", "botocore", "azure", "functions_framework", "moto", "pyarrow", "sigma"}
