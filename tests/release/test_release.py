"""A release a user can trust: the sdist and wheel build, pass ``twine check``, and work from a fresh venv.

The fresh venv is made with the project's pinned uv and takes the locked versions (``-c`` the
lock's export); uv installs them from its cache when ``scripts/setup.sh`` already downloaded them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import adscore

ROOT = Path(__file__).resolve().parents[2]
UV = str(ROOT / "scripts" / "uv.sh")

pytestmark = pytest.mark.slow


def _run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, check=False, timeout=600, **kwargs)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{args[:3]} exit {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: the build backend (setuptools, wheel) comes from the lock, not from the index
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)])
    return out


def test_sdist_and_wheel_pass_twine_check_and_carry_the_licence(dist: Path) -> None:
    version = adscore.__version__
    wheel = dist / f"adscore-{version}-py3-none-any.whl"
    sdist = dist / f"adscore-{version}.tar.gz"
    assert wheel.is_file() and sdist.is_file(), sorted(p.name for p in dist.iterdir())
    out = _run([sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)])
    assert out.stdout.count("PASSED") == 2
    names = zipfile.ZipFile(wheel).namelist()
    assert f"adscore-{version}.dist-info/licenses/LICENSE" in names
    metadata = zipfile.ZipFile(wheel).read(f"adscore-{version}.dist-info/METADATA").decode()
    assert "License-Expression: Apache-2.0" in metadata
    assert "Provides-Extra: cli" in metadata
    # the core's requirements name no command-line package
    core = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert core and not [line for line in core if any(p in line.lower() for p in ("click", "rich", "moto"))]


def test_the_wheel_runs_the_lambda_handler_and_replay_from_a_fresh_venv(dist: Path, tmp_path: Path) -> None:
    wheel = next(dist.glob("adscore-*.whl"))
    constraints = tmp_path / "constraints.txt"
    exported = _run(
        [UV, "export", "--frozen", "--all-extras", "--no-emit-project", "--no-hashes", "--no-header",
         "--no-annotate", "-o", str(constraints)],
        cwd=ROOT,
    )  # fmt: skip
    del exported
    venv = tmp_path / "venv"
    _run([UV, "venv", "--quiet", "--python", sys.executable, str(venv)])
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "ADSCORE_", "PYTHONPATH"))}

    # GIVEN the wheel installed with only its [aws] extra, at the locked versions
    _run([UV, "pip", "install", "--quiet", "--python", str(python), "-c", str(constraints), f"{wheel}[aws]"], env=env)
    # THEN the Lambda handler imports and runs, and no command-line package was installed
    code = (
        "import importlib.util, sys\n"
        f"sys.path.insert(0, {str(ROOT / 'functions' / 'aws')!r})\n"
        "import handler, adscore\n"
        "assert adscore.__file__.startswith(sys.prefix), adscore.__file__\n"
        "print([m for m in ('click', 'rich', 'pygments', 'markdown_it', 'moto') if importlib.util.find_spec(m)])\n"
    )
    run_env = {**env, "ADSCORE_STATE": "memory://", "POWERTOOLS_TRACE_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1"}
    out = _run([str(python), "-I", "-c", code], env=run_env, cwd=tmp_path)
    assert out.stdout.strip().splitlines()[-1] == "[]"

    # WHEN the [cli] extra is added, THEN `adscore --version` and a replay of the examples work
    _run([UV, "pip", "install", "--quiet", "--python", str(python), "-c", str(constraints), f"{wheel}[aws,cli]"], env=env)
    adscore_bin = venv / "bin" / "adscore"
    version = _run([str(adscore_bin), "--version"], env=env, cwd=tmp_path)
    assert adscore.__version__ in version.stdout

    def replay(adscore_command: Path, state: Path) -> set[tuple[str, str]]:
        out = _run(
            [str(adscore_command), "replay", str(ROOT / "examples"), "--config", str(ROOT / "examples" / "config.yaml"),
             "--state", f"sqlite:///{state}", "--output", "jsonl"],
            env=env, cwd=tmp_path,
        )  # fmt: skip
        return {(a["detection"], a["id"]) for a in map(json.loads, out.stdout.splitlines()) if a}

    # the installed wheel raises exactly the alerts the checkout raises
    from_wheel = replay(adscore_bin, tmp_path / "wheel.db")
    from_checkout = replay(Path(sys.executable).parent / "adscore", tmp_path / "checkout.db")
    assert from_wheel == from_checkout
    assert len({detection for detection, _ in from_wheel}) >= 10
