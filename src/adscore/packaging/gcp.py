"""Build the Cloud Functions (2nd gen) source zip (``adscore package gcp --out DIR``).

Cloud Functions builds a Python function from source with Cloud Build: it installs
``requirements.txt`` and imports ``main.py`` from the zip root. The zip holds::

    main.py            the entry points (functions/gcp/main.py): on_pubsub, on_pubsub_push, on_k8s_audit
    requirements.txt   functions/gcp/requirements.txt: adscore's core and [gcp] dependencies at the
                       exact versions of uv.lock (the versions the tests ran with, the same as the
                       AWS and Azure packages ship)
    adscore/           the package source, vendored without its command-line-only modules
                       (cli, emulate, packaging): the requirements need no unpublished package

Nothing is downloaded or compiled here. The archive is reproducible (sorted entries, fixed
timestamps, see :func:`adscore.packaging.zip_dir`), so Terraform's source hash only changes
when the code or the pins do. Deploy with, for example::

    gcloud functions deploy adscore --gen2 --runtime=python311 --region=europe-west1 \\
        --source=dist/adscore-gcp-function.zip --entry-point=on_pubsub --trigger-topic=adscore-audit
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

from adscore.packaging import (
    CLI_ONLY,
    PackagingError,
    add_user_detections,
    human_size,
    locked_requirements,
    project_root,
    zip_dir,
)

__all__ = ["PYTHON_VERSION", "ZIP_NAME", "build"]

PYTHON_VERSION = "3.11"
"""The runtime the pins are checked against (Terraform ``python_runtime = "python311"``)."""
ZIP_NAME = "adscore-gcp-function.zip"


def build(out_dir: Path, *, detections: Sequence[Path] = ()) -> Path:
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
        Not a source checkout, or ``functions/gcp/main.py`` or its ``requirements.txt`` missing or not pinned.

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
    requirements_file = root / "functions" / "gcp" / "requirements.txt"
    if not requirements_file.is_file():
        raise PackagingError(f"missing {requirements_file}")
    requirements = locked_requirements(requirements_file, python_version=PYTHON_VERSION)  # checks every pin
    with tempfile.TemporaryDirectory(prefix="adscore-package-") as tmp:
        work = Path(tmp)
        shutil.copy2(main, work / "main.py")
        add_user_detections(work, detections)  # ADSCORE_DETECTION_PATHS=/workspace/detections
        shutil.copy2(requirements_file, work / "requirements.txt")
        shutil.copytree(
            package, work / "adscore", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", *CLI_ONLY)
        )
        unzipped = sum(p.stat().st_size for p in work.rglob("*") if p.is_file())
        zip_path = zip_dir(work, Path(out_dir) / ZIP_NAME)
    print(
        f"{zip_path}: {human_size(zip_path.stat().st_size)} zipped, {human_size(unzipped)} unzipped "
        f"(Cloud Functions 2nd gen, python311; {len(requirements)} pinned requirements)",
        file=sys.stderr,
    )
    return zip_path
