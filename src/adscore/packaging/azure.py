"""Build the Azure Functions deployment zip (``adscore package azure --out DIR``).

The zip is what a Linux Function App (Python 3.11, Functions runtime 4.x) runs from
(``WEBSITE_RUN_FROM_PACKAGE``, or ``az functionapp deployment source config-zip`` with remote
build turned off), laid out as the Python worker expects::

    function_app.py                      the v2-model app (functions/azure/)
    host.json                            runtime settings: extension bundle, logging, Event Hub batching
    requirements.txt                     the pinned dependencies, for the record
    .python_packages/lib/site-packages/  adscore (from the project wheel, without its command-line-only
                                         modules) and exactly the lines of requirements.txt, as
                                         CPython 3.11 wheels for linux x86_64

Dependencies are installed with ``pip install --no-deps --target`` for another platform
(``--platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 --only-binary=:all:
--python-version 3.11 --implementation cp``): the lines of ``functions/azure/requirements.txt``,
generated from ``uv.lock``; nothing is resolved or compiled. The Functions images for Python 3.11 run Debian with glibc 2.31 or later,
so both manylinux tags load. Tests, caches and console scripts are left out, and the archive is
reproducible (see :func:`adscore.packaging.zip_dir`).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

from adscore.packaging import (
    PackagingError,
    add_user_detections,
    build_wheel,
    human_size,
    locked_requirements,
    pip_install,
    project_root,
    remove_cli_only,
    zip_dir,
)

__all__ = [
    "APP_FILES",
    "PLATFORMS",
    "PYTHON_VERSION",
    "SITE_PACKAGES",
    "ZIP_NAME",
    "build",
]

PYTHON_VERSION = "3.11"
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")
"""pip platform tags accepted for the Function App's Linux x86_64 workers."""
APP_FILES = ("function_app.py", "host.json", "requirements.txt")
"""Files of ``functions/azure/`` copied to the zip root."""
SITE_PACKAGES = Path(".python_packages") / "lib" / "site-packages"
"""Where the Python worker looks for the app's dependencies in a run-from-package zip."""
ZIP_NAME = "adscore-azure-functions.zip"


def build(out_dir: Path, *, detections: Sequence[Path] = ()) -> Path:
    """Build ``adscore-azure-functions.zip`` in ``out_dir`` and print its size.

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
        Not a source checkout, a missing app file, or a pip step failed (pip's output is included).

    Example
    -------
    >>> build(Path("dist"))  # doctest: +SKIP
    PosixPath('dist/adscore-azure-functions.zip')
    """
    root = project_root()
    app = root / "functions" / "azure"
    for name in APP_FILES:
        if not (app / name).is_file():
            raise PackagingError(f"missing {app / name}")
    requirements = locked_requirements(app / "requirements.txt", python_version=PYTHON_VERSION)
    with tempfile.TemporaryDirectory(prefix="adscore-package-") as tmp:
        work = Path(tmp)
        wheel = build_wheel(root, work / "wheel")
        package = work / "package"
        site = package / SITE_PACKAGES
        pip_install(site, [str(wheel), *requirements], platforms=list(PLATFORMS), python_version=PYTHON_VERSION)
        remove_cli_only(site / "adscore")
        if not (site / "adscore" / "__init__.py").is_file():
            raise PackagingError("the adscore package is missing from the install")
        if not (site / "azure" / "functions" / "__init__.py").is_file():
            raise PackagingError("azure-functions is missing from the install")
        for name in APP_FILES:
            (package / name).write_bytes((app / name).read_bytes())
        add_user_detections(package, detections)  # ADSCORE_DETECTION_PATHS=/home/site/wwwroot/detections
        unzipped = sum(p.stat().st_size for p in package.rglob("*") if p.is_file())
        zip_path = zip_dir(package, Path(out_dir) / ZIP_NAME)
    print(
        f"{zip_path}: {human_size(zip_path.stat().st_size)} zipped, {human_size(unzipped)} unzipped "
        f"(Linux x86_64, CPython {PYTHON_VERSION}, Azure Functions v4 Python v2 model)",
        file=sys.stderr,
    )
    return zip_path
