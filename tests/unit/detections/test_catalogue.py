"""The catalogue matches the files on disk, and every detection carries its ADS, params and cases."""

from __future__ import annotations

import re
from dataclasses import fields
from importlib import import_module
from pathlib import Path

import pytest

import adscore.detections as catalogue_pkg
from adscore.actions import ALL_ACTIONS
from adscore.detection import SEVERITIES, AdsMeta, Detection, DetectionParams

DETECTIONS_DIR = Path(catalogue_pkg.__file__).resolve().parent
CASES_DIR = Path(__file__).resolve().parents[2] / "cases"
ID_RE = re.compile(r"^[a-z0-9]+\.[a-z0-9_]+$")
MODULES = catalogue_pkg.CATALOGUE


def _detection(module: str) -> Detection:
    det = import_module(f"adscore.detections.{module}").DETECTION
    assert isinstance(det, Detection)
    return det


def test_catalogue_matches_files_one_to_one() -> None:
    on_disk = sorted(p.stem for p in DETECTIONS_DIR.glob("*.py") if not p.stem.startswith("_"))  # _shared: helpers
    assert sorted(MODULES) == on_disk
    assert list(MODULES) == sorted(MODULES), "CATALOGUE is kept sorted"
    assert len(set(MODULES)) == len(MODULES)


def test_load_catalogue_returns_every_module() -> None:
    assert [d.module_name for d in catalogue_pkg.load_catalogue()] == list(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_id_matches_module_name(module: str) -> None:
    det = _detection(module)
    assert det.id == module.replace("_", ".", 1)
    assert ID_RE.match(det.id), det.id
    assert det.module_name == module


@pytest.mark.parametrize("module", MODULES)
def test_every_ads_field_is_filled(module: str) -> None:
    meta = _detection(module).meta
    for f in fields(AdsMeta):
        value = getattr(meta, f.name)
        assert value, f"{module}: AdsMeta.{f.name} is empty"
        if isinstance(value, tuple):
            assert all(isinstance(v, str) and v.strip() for v in value), f"{module}: blank item in {f.name}"
        else:
            assert isinstance(value, str) and value.strip(), f"{module}: {f.name}"
    assert meta.technique in ("T1578.001", "T1526")
    assert meta.severity in SEVERITIES
    assert any(r.startswith("https://attack.mitre.org/techniques/") for r in meta.references), module


@pytest.mark.parametrize("module", MODULES)
def test_actions_and_params_are_valid(module: str) -> None:
    det = _detection(module)
    assert det.actions, f"{module} subscribes to no action"
    unknown = det.actions - ALL_ACTIONS - {"outcome.denied"}
    assert not unknown, f"{module} subscribes to unknown actions {unknown}"
    assert issubclass(det.params, DetectionParams)
    det.params()  # defaults alone must validate
    assert callable(det.evaluate)


@pytest.mark.parametrize("module", MODULES)
def test_every_detection_has_fire_and_quiet_cases(module: str) -> None:
    folder = CASES_DIR / module
    assert folder.is_dir(), f"missing {folder}"
    assert list(folder.glob("fire_*.yaml")), f"{module} has no fire_ case"
    assert list(folder.glob("quiet_*.yaml")), f"{module} has no quiet_ case"


def test_case_folders_name_real_detections() -> None:
    for folder in CASES_DIR.iterdir():
        if folder.is_dir():
            assert folder.name in MODULES, f"case folder {folder.name} names no detection"
