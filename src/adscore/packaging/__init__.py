"""Shared helpers for building function deployment zips (``adscore package <cloud>``).

Each cloud's module (``adscore.packaging.aws``...) builds the project wheel,
installs it with exactly the pinned lines of ``functions/<cloud>/requirements.txt``
(generated from ``uv.lock``: :func:`locked_requirements`, installed with
``--no-deps``) into a folder for the function's platform, removes the
command-line-only modules (:data:`CLI_ONLY`), adds the function's entry files
and zips the folder with :func:`zip_dir`, which leaves out tests, caches and
development files and writes a reproducible archive (sorted entries, fixed
timestamps), so the same commit gives the same zip and Terraform sees no
spurious change.

These helpers run ``pip`` in a subprocess; they are for the command line, not
for the detection runtime.
"""

from __future__ import annotations

import fnmatch
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from adscore.errors import AdscoreError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = [
    "CLI_ONLY",
    "EXCLUDED_DIRS",
    "EXCLUDED_FILES",
    "PackagingError",
    "add_user_detections",
    "build_wheel",
    "compile_bytecode",
    "human_size",
    "locked_requirements",
    "pip_install",
    "project_root",
    "remove_cli_only",
    "zip_dir",
]

EXCLUDED_DIRS: frozenset[str] = frozenset(
    {"__pycache__", "tests", "test", ".pytest_cache", ".mypy_cache", "bin"}
)
"""Folder names never shipped (at any depth)."""
EXCLUDED_FILES: tuple[str, ...] = ("*.pyc", "*.pyo", "*.pyi", "*.so.dbg", ".DS_Store", "*.exe")
"""File name patterns never shipped."""
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
CLI_ONLY: tuple[str, ...] = ("cli.py", "backfill.py", "emulate", "forward", "packaging")
"""Modules of the ``adscore`` package that only the command line uses: never shipped in a function."""


class PackagingError(AdscoreError):
    """A deployment package could not be built; the message says which step failed."""


def project_root() -> Path:
    """The source checkout this package runs from (the folder holding ``pyproject.toml`` and ``functions/``).

    Raises
    ------
    PackagingError
        When adscore is installed from a wheel rather than run from a checkout.
    """
    root = Path(__file__).resolve().parents[3]
    if not (root / "pyproject.toml").is_file() or not (root / "functions").is_dir():
        raise PackagingError(
            f"packaging needs a source checkout (pyproject.toml and functions/); not found at {root}"
        )
    return root


def _run(args: Sequence[str], step: str) -> None:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(list(args), capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise PackagingError(f"{step} failed (exit {proc.returncode}):\n{tail}")


def build_wheel(root: Path, out: Path) -> Path:
    """Build the project's wheel (``pip wheel --no-deps``) into ``out``; return its path."""
    out.mkdir(parents=True, exist_ok=True)
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(root)], "pip wheel"
    )
    wheels = sorted(out.glob("adscore-*.whl"))
    if not wheels:
        raise PackagingError(f"pip wheel produced no adscore wheel in {out}")
    return wheels[-1]


def locked_requirements(
    requirements: Path, *, python_version: str, machine: str = "x86_64", leave_out: Iterable[str] = ()
) -> list[str]:
    """The ``name==version`` lines of a generated requirements file that apply to the function's platform.

    ``functions/<cloud>/requirements.txt`` is ``uv export`` of the lock: every line pinned, some
    with an environment marker (``; python_full_version < '3.13'``). The markers are evaluated
    for the target (CPython ``python_version`` on Linux ``machine``), not for the machine that
    builds, so a build on Python 3.13 still ships what a 3.11 function needs.

    Parameters
    ----------
    requirements : Path
        The generated file.
    python_version : str
        The function's Python, e.g. ``"3.11"``.
    machine : str
        ``x86_64`` or ``aarch64``.
    leave_out : Iterable[str]
        Distribution names not to return (what the platform provides).

    Raises
    ------
    PackagingError
        A line is not pinned with ``==`` (the file was edited by hand, not generated).
    """
    from packaging.markers import Marker
    from packaging.requirements import Requirement

    env = {
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "python_version": python_version,
        "python_full_version": f"{python_version}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": machine,
    }
    skip = {name.lower().replace("_", "-") for name in leave_out}
    pins = []
    for raw in requirements.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        spec = str(req.specifier)
        if not spec.startswith("==") or "," in spec:
            raise PackagingError(f"{requirements}: {line!r} is not pinned; regenerate it with scripts/lock.sh")
        if req.marker is not None and not Marker(str(req.marker)).evaluate(env):
            continue
        if req.name.lower().replace("_", "-") in skip:
            continue
        pins.append(f"{req.name}{spec}")
    if not pins:
        raise PackagingError(f"{requirements} lists no requirements")
    return pins


USER_DETECTIONS_DIR = "detections"
"""Folder of the zip root that ``--detections`` copies user detection modules into."""


def add_user_detections(target: Path, folders: Sequence[Path]) -> list[str]:
    """Check the user detections of ``folders`` and copy their modules into ``target/detections/``.

    The function then loads them with ``ADSCORE_DETECTION_PATHS`` naming that folder
    (``/var/task/detections`` on Lambda, ``/home/site/wwwroot/detections`` on Azure,
    ``/workspace/detections`` on Cloud Functions).

    Raises
    ------
    PackagingError
        A detection breaks the contract (the same checks as at start: file and field named).
    """
    if not folders:
        return []
    from adscore.detections import load_user_detections
    from adscore.errors import ConfigError

    try:
        detections = load_user_detections([str(f) for f in folders])
    except ConfigError as exc:
        raise PackagingError(str(exc)) from exc
    out = target / USER_DETECTIONS_DIR
    out.mkdir(parents=True, exist_ok=True)
    for folder in folders:
        for det in detections:
            source = Path(folder) / f"{det.module_name}.py"
            if source.is_file():
                (out / source.name).write_bytes(source.read_bytes())
    return sorted(d.id for d in detections)


def remove_cli_only(package: Path) -> list[str]:
    """Delete the command-line-only modules (:data:`CLI_ONLY`) from an installed ``adscore`` package folder."""
    removed = []
    for name in CLI_ONLY:
        path = package / name
        if path.is_dir():
            _rmtree(path)
        elif path.is_file():
            path.unlink()
        else:
            continue
        removed.append(name)
    return removed


def pip_install(
    target: Path,
    requirements: Sequence[str],
    *,
    platforms: Sequence[str],
    python_version: str,
) -> None:
    """Install binary wheels for another platform into ``target`` (``pip install --target``).

    Parameters
    ----------
    target : Path
        Folder to install into (becomes the zip root).
    requirements : Sequence[str]
        Requirement strings: the project wheel's path and the pinned lines of :func:`locked_requirements`.
        Installed with ``--no-deps``: the pinned lines are the whole set, resolved once, in the lock.
    platforms : Sequence[str]
        pip platform tags, e.g. ``["manylinux2014_x86_64"]``.
    python_version : str
        e.g. ``"3.11"``; CPython wheels only (``--implementation cp``), no source builds.

    Raises
    ------
    PackagingError
        With pip's last lines of output.
    """
    args = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--no-deps", "--target", str(target)]
    for platform in platforms:
        args += ["--platform", platform]
    args += ["--only-binary=:all:", "--implementation", "cp", "--python-version", python_version]
    _run([*args, *requirements], "pip install")


def _rmtree(path: Path) -> None:
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            _rmtree(child)
        else:
            child.unlink()
    path.rmdir()


def compile_bytecode(target: Path, python_version: str) -> bool:
    """Compile every module in ``target`` to checked-hash ``.pyc`` files, when this interpreter is that version.

    A function's code folder is read-only, so without shipped bytecode every
    cold start compiles every module again (about twice the import time).
    Checked-hash ``.pyc`` files are validated against their source's hash, not
    its timestamp: zips reset timestamps, and a source edited after the build
    is still recompiled, never run stale.

    Returns
    -------
    bool
        False (nothing compiled) when this interpreter is not ``python_version``.
    """
    import compileall
    import py_compile

    if f"{sys.version_info.major}.{sys.version_info.minor}" != python_version:
        return False
    compileall.compile_dir(
        str(target), quiet=2, workers=0, invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH
    )
    return True


def _excluded(relative: Path, bytecode_tag: str | None) -> bool:
    dirs = relative.parts[:-1]
    if bytecode_tag is not None and dirs and dirs[-1] == "__pycache__":
        # keep the target interpreter's bytecode, unless it belongs to an excluded folder
        inside_excluded = any(part in EXCLUDED_DIRS for part in dirs[:-1])
        return inside_excluded or not relative.name.endswith(f".{bytecode_tag}.pyc")
    if any(part in EXCLUDED_DIRS for part in dirs):
        return True
    return any(fnmatch.fnmatchcase(relative.name, pattern) for pattern in EXCLUDED_FILES)


def zip_dir(source: Path, zip_path: Path, *, bytecode_tag: str | None = None) -> Path:
    """Zip ``source``'s contents (not the folder itself) reproducibly, leaving out tests and caches.

    Entries are sorted and stamped 1980-01-01, and file modes are normalised
    (0644, or 0755 for executables), so the same files give the same bytes.

    Parameters
    ----------
    source : Path
        Folder whose contents become the zip root.
    zip_path : Path
        The zip to write.
    bytecode_tag : str, optional
        Keep ``__pycache__/*.<tag>.pyc`` (e.g. ``cpython-311``, built by
        :func:`compile_bytecode`); by default all bytecode is left out.

    Returns
    -------
    Path
        ``zip_path``.
    """
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    files = sorted(
        p for p in source.rglob("*") if p.is_file() and not _excluded(p.relative_to(source), bytecode_tag)
    )
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), date_time=_FIXED_TIME)
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    return zip_path


def human_size(n: int) -> str:
    """``12.3 MiB`` style size."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover
