"""Build the Cloud Functions (2nd gen) source zip (``adscore package gcp --out DIR``).

Cloud Functions builds a Python function from source with Cloud Build: it installs
``requirements.txt`` and imports ``main.py`` from the zip root. The zip holds::

    main.py            the entry points (functions/gcp/main.py): on_pubsub, on_pubsub_push, on_k8s_audit
    requirements.txt   adscore's runtime dependencies and its [gcp] extra, pinned to the versions
                       installed where the zip is built (the versions the tests ran with)
    adscore/           the package source, vendored: the requirements need no unpublished package

Nothing is downloaded or compiled here. The archive is reproducible (sorted entries, fixed
timestamps, see :func:`adscore.packaging.zip_dir`), so Terraform's source hash only changes
when the code or the pins do. Deploy with, for example::

    gcloud functions deploy adscore --gen2 --runtime=python311 --region=europe-west1 \\
        --source=dist/adscore-gcp-function.zip --entry-point=on_pubsub --trigger-topic=adscore-audit
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
import tomllib
from importlib import metadata
from pathlib import Path

from adscore.packaging import PackagingError, human_size, project_root, zip_dir

__all__ = ["EXTRA", "ZIP_NAME", "build", "pinned_requirements"]

EXTRA = "gcp"
ZIP_NAME = "adscore-gcp-function.zip"
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[A-Za-z0-9_,\s-]+\])?")


def pinned_requirements(pyproject: Path, extra: str = EXTRA) -> list[str]:
    """``name==version`` for each runtime dependency and each dependency of ``extra``, as installed here.

    Parameters
    ----------
    pyproject : Path
        The project's ``pyproject.toml`` (the source of truth for the dependency list).
    extra : str
        The optional-dependency group to add (``gcp``).

    Returns
    -------
    list[str]
        Sorted by name, extras kept (``pkg[x]==1.2``).

    Raises
    ------
    PackagingError
        A dependency is not installed in this environment (nothing to pin it to).
    """
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    wanted = [*project.get("dependencies", []), *project.get("optional-dependencies", {}).get(extra, [])]
    pins: dict[str, str] = {}
    for spec in wanted:
        m = _NAME.match(spec.split(";", 1)[0])
        if m is None:
            raise PackagingError(f"cannot read the requirement {spec!r} in {pyproject}")
        name, extras = m.group(1), (m.group(2) or "").replace(" ", "")
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError as exc:
            raise PackagingError(
                f"{name} is not installed here: install adscore[{extra}] before packaging"
            ) from exc
        pins[name.lower()] = f"{name}{extras}=={version}"
    return [pins[k] for k in sorted(pins)]


def build(out_dir: Path) -> Path:
    """Build ``adscore-gcp-function.zip`` in ``out_dir`` and print its size.

    Parameters
    ----------
    out_dir : Path
        Where to write the zip (created if missing).

    Returns
    -------
    Path
        The zip.

    Raises
    ------
    PackagingError
        Not a source checkout, ``functions/gcp/main.py`` missing, or a dependency not installed.

    Example
    -------
    >>> build(Path("dist"))  # doctest: +SKIP
    PosixPath('dist/adscore-gcp-function.zip')
    """
    root = project_root()
    main = root / "functions" / "gcp" / "main.py"
    package = root / "src" / "adscore"
    if not main.is_file():
        raise PackagingError(f"missing {main}")
    if not (package / "__init__.py").is_file():
        raise PackagingError(f"missing the package source {package}")
    requirements = pinned_requirements(root / "pyproject.toml")
    with tempfile.TemporaryDirectory(prefix="adscore-package-") as tmp:
        work = Path(tmp)
        shutil.copy2(main, work / "main.py")
        (work / "requirements.txt").write_text(
            "# adscore Cloud Function: runtime dependencies pinned to the versions it was tested with.\n"
            "# The adscore package itself is vendored in this zip (adscore/).\n"
            + "\n".join(requirements)
            + "\n",
            encoding="utf-8",
        )
        shutil.copytree(package, work / "adscore", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        unzipped = sum(p.stat().st_size for p in work.rglob("*") if p.is_file())
        zip_path = zip_dir(work, Path(out_dir) / ZIP_NAME)
    print(
        f"{zip_path}: {human_size(zip_path.stat().st_size)} zipped, {human_size(unzipped)} unzipped "
        f"(Cloud Functions 2nd gen, python311; {len(requirements)} pinned requirements)",
        file=sys.stderr,
    )
    return zip_path
