"""Azurite (the Azure Storage emulator) on loopback, for tests that talk to Table, Blob and Queue storage.

The process code lives in :mod:`adscore.emulate.azurite` (``adscore emulate azure`` uses it too);
this module holds the pytest fixtures. Azurite comes from the npm registry through the repo's
``package.json`` (an exact version): run ``npm ci`` in the repo root once. Use the fixtures from a
``conftest.py``::

    from tests.integration.azurite import azurite, azurite_table  # noqa: F401 - fixtures

``azurite_table`` (session) starts ``azurite-table`` alone (the state contract suite needs nothing
else); ``azurite`` (session) starts Table, Blob and Queue in one ``azurite`` process (the function
app's dead-letter path needs Blob and Queue). Each service listens on 127.0.0.1 on a free port and
keeps its data in memory; the processes are stopped at the end of the session. When the binaries
are missing, the tests skip with a message saying how to install them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from adscore.emulate import free_port
from adscore.emulate.azurite import (
    ACCOUNT,
    ACCOUNT_KEY,
    INSTALL,
    SERVICES,
    Azurite,
    azurite_available,
    binary,
    start_azurite,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "ACCOUNT",
    "ACCOUNT_KEY",
    "MISSING",
    "SERVICES",
    "Azurite",
    "azurite",
    "azurite_available",
    "azurite_table",
    "binary",
    "free_port",
    "start_azurite",
]

MISSING = f"Azurite not installed: run `{INSTALL}` in the repo root"


def _session(services: tuple[str, ...]) -> Iterator[Azurite]:
    if not azurite_available(services):
        pytest.skip(MISSING)
    running = start_azurite(services)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def azurite_table() -> Iterator[Azurite]:
    """``azurite-table`` on a free loopback port for the session; skips when Azurite is not installed."""
    yield from _session(("table",))


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """Azurite Table, Blob and Queue on free loopback ports for the session; skips when not installed."""
    yield from _session(SERVICES)
