"""Shared helpers for building function deployment zips (``adscore package <cloud>``).

Each cloud's module (``adscore.packaging.aws``...) builds the project wheel,
installs it with its extra into a folder for the function's platform, adds the
function's entry files and zips the folder with :func:`zip_dir`, which leaves
out tests, caches and development files and writes a reproducible archive
(sorted entries, fixed timestamps), so the same commit gives the same zip and
Terraform sees no spurious change.

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
    "EXCLUDED_DIRS",
    "EXCLUDED_FILES",
    "PackagingError",
    "build_wheel",
    "compile_bytecode",
    "constraints_from",
    "human_size",
    "pip_install",
    "project_root",
    "remove_distributions",
    "zip_dir",
]

EXCLUDED_DIRS: frozenset[str] = frozenset(
    {"__pycache__", "tests", "test", ".pytest_cache", ".mypy_cache", "bin"}
)
"""Folder names never shipped (at any depth)."""
EXCLUDED_FILES: tuple[str, ...] = ("*.pyc", "*.pyo", "*.pyi", "*.so.dbg", ".DS_Store", "*.exe")
"""File name patterns never shipped."""
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


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


def constraints_from(requirements: Path, out: Path) -> Path:
    """Write the ``name==version`` lines of a requirements file (extras removed) as a pip constraints file."""
    lines = []
    for raw in requirements.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if "==" not in line:
            continue
        name, _, version = line.partition("==")
        lines.append(f"{name.split('[', 1)[0].strip()}=={version.strip()}")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def pip_install(
    target: Path,
    requirements: Sequence[str],
    *,
    platforms: Sequence[str],
    python_version: str,
    constraints: Path | None = None,
) -> None:
    """Install binary wheels for another platform into ``target`` (``pip install --target``).

    Parameters
    ----------
    target : Path
        Folder to install into (becomes the zip root).
    requirements : Sequence[str]
        Requirement strings (a wheel path with an extra is fine: ``dist/adscore-0.1.0-py3-none-any.whl[aws]``).
    platforms : Sequence[str]
        pip platform tags, e.g. ``["manylinux2014_x86_64"]``.
    python_version : str
        e.g. ``"3.11"``; CPython wheels only (``--implementation cp``), no source builds.
    constraints : Path, optional
        A pip constraints file (pinned versions).

    Raises
    ------
    PackagingError
        With pip's last lines of output.
    """
    args = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--target", str(target)]
    for platform in platforms:
        args += ["--platform", platform]
    args += ["--only-binary=:all:", "--implementation", "cp", "--python-version", python_version]
    if constraints is not None:
        args += ["-c", str(constraints)]
    _run([*args, *requirements], "pip install")


def remove_distributions(target: Path, names: Iterable[str]) -> list[str]:
    """Delete installed top-level packages and their ``*.dist-info`` from ``target``; return what was removed."""
    removed = []
    for name in names:
        norm = name.lower().replace("-", "_")
        for path in sorted(target.iterdir()):
            stem = path.name.lower().replace("-", "_")
            if stem == norm or (stem.startswith(norm + "-") and stem.endswith(".dist-info")):
                if path.is_dir():
                    _rmtree(path)
                else:
                    path.unlink()
                removed.append(path.name)
    return removed


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
