"""Build the AWS Lambda deployment zip (``adscore package aws --out DIR [--arch x86_64|arm64]``).

The zip holds, at its root: ``handler.py`` and ``lambda_adapter.py`` from
``functions/aws/``, the ``adscore`` package (from the project wheel) and its
``[aws]`` dependencies as Linux wheels for the function's CPython (3.11 by
default; ``--python`` as the Terraform module's ``python_runtime``). The
python3.11 runtime runs on Amazon Linux 2 (glibc 2.26), so only
``manylinux2014`` wheels load there; python3.12 and later run on Amazon Linux
2023 and also take ``manylinux_2_28`` wheels. The versions are exactly the
lines of ``functions/aws/requirements.txt`` (generated from ``uv.lock``,
installed with ``--no-deps``). The command-line-only modules (``adscore.cli``,
``adscore.emulate``, ``adscore.forward``, ``adscore.packaging``) are removed: a function never
imports them, nor click, rich or moto, which the zip does not carry. Tests,
stale caches, type stubs and console scripts are left out. When the build runs
on the function's Python, every module is shipped with checked-hash bytecode
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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

from adscore.packaging import (
    PackagingError,
    add_user_detections,
    build_wheel,
    compile_bytecode,
    human_size,
    locked_requirements,
    pip_install,
    project_root,
    remove_cli_only,
    zip_dir,
)

__all__ = [
    "ARCHITECTURES",
    "HANDLER_FILES",
    "PYTHON_VERSION",
    "PYTHON_VERSIONS",
    "RUNTIME_PROVIDED",
    "build",
    "platform_tags",
]

PYTHON_VERSION = "3.11"
"""The default function runtime (Terraform ``python_runtime = "python3.11"``)."""
PYTHON_VERSIONS = ("3.11", "3.12", "3.13")
"""Lambda Python runtimes a zip can be built for."""
ARCHITECTURES: dict[str, str] = {"x86_64": "x86_64", "arm64": "aarch64"}
"""Lambda architecture -> Linux machine name of its wheels."""
HANDLER_FILES = ("handler.py", "lambda_adapter.py")
"""Files of ``functions/aws/`` copied to the zip root (handler: ``handler.sqs_handler`` ...)."""
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "urllib3")
"""Distributions the Lambda Python runtime provides, left out unless ``include_sdk``."""


def platform_tags(arch: str, python_version: str = PYTHON_VERSION) -> list[str]:
    """pip platform tags whose wheels load on the Lambda runtime for ``python_version`` on ``arch``."""
    machine = ARCHITECTURES[arch]
    tags = [f"manylinux2014_{machine}"]
    if python_version != "3.11":  # Amazon Linux 2023: glibc 2.34
        tags.append(f"manylinux_2_28_{machine}")
    return tags


def build(
    out_dir: Path,
    arch: str = "x86_64",
    *,
    include_sdk: bool = False,
    python_version: str = PYTHON_VERSION,
    detections: Sequence[Path] = (),
) -> Path:
    """Build ``adscore-aws-lambda-<arch>.zip`` in ``out_dir`` and print its size.

    Parameters
    ----------
    out_dir : Path
        Where to write the zip (created if missing).
    arch : {"x86_64", "arm64"}
        The Lambda function's architecture.
    include_sdk : bool
        Ship boto3/botocore too (default: use the runtime's).
    python_version : str
        The function's runtime, one of :data:`PYTHON_VERSIONS`.
    detections : sequence of Path
        Folders of user detections, copied into ``detections/`` (set
        ``ADSCORE_DETECTION_PATHS=/var/task/detections``).

    Returns
    -------
    Path
        The zip.

    Raises
    ------
    PackagingError
        Unknown architecture or Python, not a source checkout, or a pip step failed (pip's output is included).

    Example
    -------
    >>> build(Path("dist"), "arm64")  # doctest: +SKIP
    PosixPath('dist/adscore-aws-lambda-arm64.zip')
    """
    if arch not in ARCHITECTURES:
        raise PackagingError(f"unknown Lambda architecture {arch!r}; use one of {', '.join(ARCHITECTURES)}")
    if python_version not in PYTHON_VERSIONS:
        raise PackagingError(f"unsupported Lambda Python {python_version!r}; use one of {', '.join(PYTHON_VERSIONS)}")
    root = project_root()
    functions = root / "functions" / "aws"
    requirements = locked_requirements(
        functions / "requirements.txt",
        python_version=python_version,
        machine=ARCHITECTURES[arch],
        leave_out=() if include_sdk else RUNTIME_PROVIDED,
    )
    with tempfile.TemporaryDirectory(prefix="adscore-package-") as tmp:
        work = Path(tmp)
        wheel = build_wheel(root, work / "wheel")
        target = work / "package"
        pip_install(
            target,
            [str(wheel), *requirements],
            platforms=platform_tags(arch, python_version),
            python_version=python_version,
        )
        removed = [] if include_sdk else list(RUNTIME_PROVIDED)
        remove_cli_only(target / "adscore")
        add_user_detections(target, detections)
        for name in HANDLER_FILES:
            source = functions / name
            if not source.is_file():
                raise PackagingError(f"missing {source}")
            (target / name).write_bytes(source.read_bytes())
        if not (target / "adscore" / "__init__.py").is_file():
            raise PackagingError("the adscore package is missing from the install")
        compiled = compile_bytecode(target, python_version)
        tag = f"cpython-{python_version.replace('.', '')}" if compiled else None
        zip_path = zip_dir(target, Path(out_dir) / f"adscore-aws-lambda-{arch}.zip", bytecode_tag=tag)
        unzipped = sum(i.file_size for i in zipfile.ZipFile(zip_path).infolist())
    size = zip_path.stat().st_size
    left_out = ", ".join(sorted(removed)) or "nothing"
    bytecode = (
        "with checked-hash bytecode" if compiled else f"no bytecode (build with Python {python_version} for it)"
    )
    print(
        f"{zip_path}: {human_size(size)} zipped, {human_size(unzipped)} unzipped "
        f"({arch}, CPython {python_version}, {bytecode}; runtime-provided, left out: {left_out})",
        file=sys.stderr,
    )
    return zip_path
