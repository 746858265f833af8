"""One lock for every install: the venv, the function requirement files and the packages agree with uv.lock.

These tests read ``uv.lock`` through ``scripts/uv.sh export --frozen`` (no network) and compare it
with what is installed here and with the generated ``functions/*/requirements.txt``.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
CLOUDS = ("aws", "azure", "gcp")
#: Packages only the command line, the emulators or development use: never in a function package.
#: (click is the CLI's, but Flask needs it too, so the GCP function, on functions-framework, has it.)
CLI_AND_DEV = {"rich", "pygments", "markdown-it-py", "mdurl", "pip", "moto", "pytest", "build", "twine"}


def _export(*args: str) -> dict[str, str]:
    """``uv export --frozen`` as {name: version}, keeping only lines whose markers hold here."""
    proc = subprocess.run(
        [str(ROOT / "scripts" / "uv.sh"), "export", "--frozen", "--no-emit-project", "--no-hashes",
         "--no-header", "--no-annotate", *args],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return _pins(proc.stdout.splitlines())


def _pins(lines: list[str]) -> dict[str, str]:
    env = default_environment()
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(env):
            pins[canonicalize_name(req.name)] = str(req.specifier).removeprefix("==")
    return pins


def _requirements(cloud: str) -> dict[str, str]:
    return _pins((ROOT / "functions" / cloud / "requirements.txt").read_text(encoding="utf-8").splitlines())


def test_installed_versions_are_the_locked_versions() -> None:
    # GIVEN every package the lock holds for this machine (all extras: what scripts/test.sh installs)
    locked = _export("--all-extras")
    # THEN each is installed at exactly that version, and nothing else is installed
    installed = {
        canonicalize_name(d.metadata["Name"]): d.version
        for d in metadata.distributions()
        if canonicalize_name(d.metadata["Name"]) != "adscore"
    }
    wrong = {n: (installed.get(n), v) for n, v in locked.items() if installed.get(n) != v}
    assert not wrong, f"installed differs from uv.lock (installed, locked): {wrong}; run scripts/setup.sh"
    assert not set(installed) - set(locked), "installed but not in uv.lock"


def test_the_function_requirements_are_generated_from_the_lock() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_requirements.py"), "--check"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def _canon(line: str) -> str:
    req = Requirement(line)
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    marker = f" ; {req.marker}" if req.marker else ""
    return f"{canonicalize_name(req.name)}{extras}{req.specifier}{marker}"


def test_the_lock_was_made_from_this_pyproject() -> None:
    # GIVEN what pyproject.toml asks for, and what uv.lock recorded of adscore's requirements when it was made
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    asked = {_canon(r) for r in project["dependencies"]}
    for extra, reqs in project["optional-dependencies"].items():
        asked |= {_canon(f"{r} ; extra == '{extra}'") for r in reqs}
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    (adscore,) = [p for p in lock["package"] if p["name"] == "adscore"]
    recorded = set()
    for entry in adscore["metadata"]["requires-dist"]:
        line = entry["name"] + (f"[{','.join(entry['extras'])}]" if entry.get("extras") else "")
        line += entry.get("specifier", "")
        if "marker" in entry:
            line += f" ; {entry['marker']}"
        recorded.add(_canon(line))
    # THEN they are the same: a dependency changed without `scripts/lock.sh` fails here
    assert asked == recorded, f"pyproject.toml and uv.lock disagree: {sorted(asked ^ recorded)}"


def test_the_clouds_ship_the_same_version_of_every_shared_package() -> None:
    pins = {cloud: _requirements(cloud) for cloud in CLOUDS}
    for a in CLOUDS:
        for b in CLOUDS:
            shared = set(pins[a]) & set(pins[b])
            assert {n: pins[a][n] for n in shared} == {n: pins[b][n] for n in shared}
    core = {"pydantic", "pydantic-settings", "pyyaml", "orjson", "httpx", "tenacity", "tzdata"}
    assert all(core <= set(p) for p in pins.values())


@pytest.mark.parametrize("cloud", CLOUDS)
def test_a_function_needs_no_cli_emulator_or_dev_package(cloud: str) -> None:
    pins = set(_requirements(cloud))
    assert not CLI_AND_DEV & pins
    if cloud != "gcp":
        assert "click" not in pins


FUNCTION_IMPORTS = {
    "aws": ("functions/aws", "import handler"),
    "azure": ("functions/azure", "import function_app"),
    "gcp": ("functions/gcp", "import main"),
}


@pytest.mark.parametrize("cloud", CLOUDS)
def test_a_function_imports_nothing_of_the_command_line(cloud: str) -> None:
    folder, statement = FUNCTION_IMPORTS[cloud]
    # click is Flask's too: functions-framework imports it on GCP
    bad = ("rich", "pygments", "moto", "adscore.cli", "adscore.backfill", "adscore.emulate", "adscore.packaging")
    bad += () if cloud == "gcp" else ("click",)
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT / folder)!r}); {statement}\n"
        "from adscore import runtime; runtime.get_engine()\n"
        f"bad = {bad!r}\n"
        "print(sorted(m for m in sys.modules if m in bad or m.startswith(tuple(b + '.' for b in bad))))"
    )
    env = {"PATH": "/usr/bin:/bin", "ADSCORE_STATE": "memory://", "ADSCORE_SINKS": "stdout://",
           "ADSCORE_LOCAL": "1", "POWERTOOLS_TRACE_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"
