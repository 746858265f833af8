"""Build the AWS Lambda deployment zip (``adscore package aws --out DIR [--arch x86_64|arm64]``).

The zip holds, at its root: ``handler.py`` and ``lambda_adapter.py`` from
``functions/aws/``, the ``adscore`` package (from the project wheel) and its
``[aws]`` dependencies as Linux wheels for CPython 3.11 (``manylinux2014``: the
python3.11 runtime runs on Amazon Linux 2, glibc 2.26, so newer manylinux
wheels would not load), pinned by ``functions/aws/requirements.txt``. Tests,
stale caches, type stubs and console scripts are left out. When the build runs
on Python 3.11, every module is shipped with checked-hash bytecode
(``__pycache__/*.cpython-311.pyc``): ``/var/task`` is read-only, so without it
each cold start compiles every module again, which doubles the import time.

boto3, botocore, s3transfer and urllib3 are left out by default: the Lambda
Python runtime ships them, they are the largest part of the tree (botocore
alone is over half of it), and every API adscore calls (``PublishBatch``,
``ReturnValuesOnConditionCheckFailure``, ``AWS_ENDPOINT_URL``) predates the
runtime's bundled SDK. Pass ``include_sdk=True`` to ship the pinned SDK
instead (a fixed SDK version, at the cost of a bigger zip).
"""

from __future__ import annotations

import sys
import tempfile
import zipfile
from pathlib import Path

from adscore.packaging import (
    PackagingError,
    build_wheel,
    compile_bytecode,
    constraints_from,
    human_size,
    pip_install,
    project_root,
    remove_distributions,
    zip_dir,
)

__all__ = ["ARCHITECTURES", "HANDLER_FILES", "PYTHON_VERSION", "RUNTIME_PROVIDED", "build"]

PYTHON_VERSION = "3.11"
ARCHITECTURES: dict[str, str] = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
"""Lambda architecture -> pip platform tag."""
HANDLER_FILES = ("handler.py", "lambda_adapter.py")
"""Files of ``functions/aws/`` copied to the zip root (handler: ``handler.sqs_handler`` ...)."""
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "urllib3")
"""Distributions the Lambda Python runtime provides, left out unless ``include_sdk``."""


def build(out_dir: Path, arch: str = "x86_64", *, include_sdk: bool = False) -> Path:
    """Build ``adscore-aws-lambda-<arch>.zip`` in ``out_dir`` and print its size.

    Parameters
    ----------
    out_dir : Path
        Where to write the zip (created if missing).
    arch : {"x86_64", "arm64"}
        The Lambda function's architecture.
    include_sdk : bool
        Ship boto3/botocore too (default: use the runtime's).

    Returns
    -------
    Path
        The zip.

    Raises
    ------
    PackagingError
        Unknown architecture, not a source checkout, or a pip step failed (pip's output is included).

    Example
    -------
    >>> build(Path("dist"), "arm64")  # doctest: +SKIP
    PosixPath('dist/adscore-aws-lambda-arm64.zip')
    """
    platform = ARCHITECTURES.get(arch)
    if platform is None:
        raise PackagingError(f"unknown Lambda architecture {arch!r}; use one of {', '.join(ARCHITECTURES)}")
    root = project_root()
    functions = root / "functions" / "aws"
    with tempfile.TemporaryDirectory(prefix="adscore-package-") as tmp:
        work = Path(tmp)
        wheel = build_wheel(root, work / "wheel")
        constraints = constraints_from(functions / "requirements.txt", work / "constraints.txt")
        target = work / "package"
        pip_install(
            target,
            [f"{wheel}[aws]"],
            platforms=[platform],
            python_version=PYTHON_VERSION,
            constraints=constraints,
        )
        removed = [] if include_sdk else remove_distributions(target, RUNTIME_PROVIDED)
        for name in HANDLER_FILES:
            source = functions / name
            if not source.is_file():
                raise PackagingError(f"missing {source}")
            (target / name).write_bytes(source.read_bytes())
        if not (target / "adscore" / "__init__.py").is_file():
            raise PackagingError("the adscore package is missing from the install")
        compiled = compile_bytecode(target, PYTHON_VERSION)
        tag = f"cpython-{PYTHON_VERSION.replace('.', '')}" if compiled else None
        zip_path = zip_dir(target, Path(out_dir) / f"adscore-aws-lambda-{arch}.zip", bytecode_tag=tag)
        unzipped = sum(i.file_size for i in zipfile.ZipFile(zip_path).infolist())
    size = zip_path.stat().st_size
    left_out = (
        ", ".join(sorted({n.split("-")[0] for n in removed if not n.endswith(".dist-info")})) or "nothing"
    )
    bytecode = (
        "with checked-hash bytecode"
        if compiled
        else f"no bytecode (build with Python {PYTHON_VERSION} for it)"
    )
    print(
        f"{zip_path}: {human_size(size)} zipped, {human_size(unzipped)} unzipped "
        f"({arch}, CPython {PYTHON_VERSION}, {bytecode}; runtime-provided, left out: {left_out})",
        file=sys.stderr,
    )
    return zip_path
