"""The detection catalogue: one module per detection, the module name being the id with ``.`` -> ``_``.

``CATALOGUE`` is an explicit sorted list (no import-and-introspect discovery); a
test checks that it matches the files on disk and that each module's
``DETECTION.id`` matches its file name.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adscore.detection import Detection

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
