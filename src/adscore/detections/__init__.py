"""The detection catalogue: one module per detection, the module name being the id with ``.`` -> ``_``.

``CATALOGUE`` is an explicit sorted list (no import-and-introspect discovery); a
test checks that it matches the files on disk and that each module's
``DETECTION.id`` matches its file name.

Users add their own detections, written to the same contract, in folders named by the setting
``detection_paths`` (``ADSCORE_DETECTION_PATHS``, ``--detections DIR``): every ``*.py`` file there
(but ``_*.py`` and ``test_*.py``) is one detection module whose ``DETECTION`` is checked at load as
the built-in ones are (:func:`check_detection`); any problem is a :class:`~adscore.errors.ConfigError`
naming the file and the field. :func:`catalogue_for` is what the engine runs: built-in then user
detections.
"""

from __future__ import annotations

import re
import sys
from dataclasses import fields
from functools import lru_cache
from importlib import import_module
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adscore.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from adscore.detection import Detection
    from adscore.settings import Settings

ID_PATTERN = re.compile(r"^[a-z][a-z0-9]*\.[a-z][a-z0-9_]*$")
"""A detection id: ``family.name`` in lower case (the module file is ``family_name.py``)."""

CATALOGUE: tuple[str, ...] = (
    "chain_discovery_then_snapshot",
    "container_snapshot",
    "discovery_access_denied_burst",
    "discovery_api_burst",
    "discovery_enumeration_tool",
    "discovery_k8s_namespace_sweep",
    "discovery_k8s_permission_probe",
    "discovery_registry_enumeration",
    "discovery_unusual_services",
    "k8s_exec_copy",
    "k8s_volume_snapshot",
    "snapshot_burst",
    "snapshot_new_principal",
    "snapshot_off_hours",
    "snapshot_restore_after_create",
    "snapshot_shared_external",
)


@lru_cache(maxsize=1)
def load_catalogue() -> tuple[Detection, ...]:
    """Import every detection module in ``CATALOGUE`` and return their ``DETECTION`` objects."""
    out = []
    for name in CATALOGUE:
        mod = import_module(f"adscore.detections.{name}")
        det: Detection = mod.DETECTION
        if det.module_name != name:
            raise RuntimeError(f"detection module {name} declares id {det.id!r}")
        out.append(det)
    return tuple(out)


def get(detection_id: str) -> Detection:
    """Return one detection by id."""
    for d in load_catalogue():
        if d.id == detection_id:
            return d
    raise KeyError(detection_id)


def check_detection(det: Any, source: str) -> list[str]:
    """What is wrong with a detection object (empty when nothing): the checks every catalogue entry passes."""
    from adscore.actions import ALL_ACTIONS, OUTCOME_DENIED
    from adscore.detection import AdsMeta, Detection, DetectionParams

    if not isinstance(det, Detection):
        return [f"{source}: DETECTION is a {type(det).__name__}, not adscore.detection.Detection"]
    problems = []
    # read as Any: a user's module may hold anything, whatever the dataclass's annotations say
    meta: Any = det.meta
    params: Any = det.params
    evaluate: Any = det.evaluate
    if not isinstance(det.id, str) or not ID_PATTERN.match(det.id):
        problems.append(f"{source}: id {det.id!r} is not family.name in lower case (e.g. acme.snapshot_copy)")
    if not isinstance(meta, AdsMeta):
        problems.append(f"{source}: meta is not an AdsMeta")
    else:
        for f in fields(AdsMeta):
            value = getattr(meta, f.name)
            if f.name in ("data_sources", "references"):
                continue
            if not value or (isinstance(value, tuple) and not all(isinstance(v, str) and v.strip() for v in value)):
                problems.append(f"{source}: meta.{f.name} is empty")
        if meta.severity not in ("info", "low", "medium", "high", "critical"):
            problems.append(f"{source}: meta.severity {meta.severity!r} is not info/low/medium/high/critical")
    unknown = set(det.actions) - ALL_ACTIONS - {OUTCOME_DENIED}
    if not det.actions:
        problems.append(f"{source}: actions is empty (the detection would never run)")
    elif unknown:
        problems.append(f"{source}: actions {sorted(unknown)} are unknown (see adscore.actions.ALL_ACTIONS)")
    if not (isinstance(params, type) and issubclass(params, DetectionParams)):
        problems.append(f"{source}: params is not a DetectionParams subclass")
    else:
        try:
            params()
        except Exception as e:  # the defaults must validate
            problems.append(f"{source}: params defaults do not validate: {str(e).splitlines()[0][:200]}")
    if not callable(evaluate):
        problems.append(f"{source}: evaluate is not callable")
    return problems


def _user_files(folder: str) -> list[Path]:
    path = Path(folder)
    if not path.is_dir():
        raise ConfigError("detection_paths", f"{folder!r} is not a folder")
    return sorted(p for p in path.glob("*.py") if not p.name.startswith(("_", "test_")))


def _load_user(files: tuple[tuple[str, float], ...]) -> tuple[Detection, ...]:
    builtin = {d.id for d in load_catalogue()}
    out: list[Detection] = []
    seen: dict[str, str] = {}
    for file, _mtime in files:
        path = Path(file)
        name = f"adscore_user_detections.{path.stem}"
        spec = spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ConfigError("detection_paths", f"cannot load {file}")
        module = module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as e:
            sys.modules.pop(name, None)
            raise ConfigError("detection_paths", f"{file} fails to import: {type(e).__name__}: {e}") from e
        det = getattr(module, "DETECTION", None)
        if det is None:
            raise ConfigError("detection_paths", f"{file} defines no DETECTION")
        problems = check_detection(det, file)
        if not problems and det.module_name != path.stem:
            problems.append(f"{file}: the file of detection {det.id!r} must be named {det.module_name}.py")
        if not problems and det.id in builtin:
            problems.append(f"{file}: id {det.id!r} is a built-in detection's; choose another")
        if not problems and det.id in seen:
            problems.append(f"{file}: id {det.id!r} is also defined in {seen[det.id]}")
        if problems:
            raise ConfigError("detection_paths", "; ".join(problems))
        seen[det.id] = file
        out.append(det)
    return tuple(out)


_USER_CACHE: dict[tuple[tuple[str, float], ...], tuple[Detection, ...]] = {}


def load_user_detections(paths: Sequence[str]) -> tuple[Detection, ...]:
    """The detections of the folders ``paths`` (checked; loaded again when a file changes).

    Raises
    ------
    ConfigError
        A folder is missing, a file fails to import, or a detection breaks the contract
        (the message names the file and the field).
    """
    files = tuple((str(f.resolve()), f.stat().st_mtime) for folder in paths for f in _user_files(folder))
    if files not in _USER_CACHE:
        _USER_CACHE.clear()
        _USER_CACHE[files] = _load_user(files)
    return _USER_CACHE[files]


def catalogue_for(settings: Settings) -> tuple[Detection, ...]:
    """What an engine with these settings runs: the built-in detections, the user's, then the Sigma rules'."""
    catalogue = load_catalogue()
    if settings.detection_paths:
        catalogue += load_user_detections(settings.detection_paths)
    if settings.sigma_paths:
        from adscore.sigma import load_sigma

        catalogue += load_sigma(settings.sigma_paths)
    return catalogue
