"""Backends the state contract suite runs against.

``store_factory`` is parametrized over ``BACKENDS``. To add a backend, append a
``Backend`` to ``BACKENDS``: its ``setup(request, tmp_path)`` is called once per
test and returns an opener ``open(name) -> StateStore``. The same ``name``
within a test must reach the same data (a new connection or client is fine:
it stands for a second function instance); different names must be
independent. A cloud backend's ``setup`` requests its emulator fixture with
``request.getfixturevalue(...)`` and calls ``pytest.skip(...)`` when the
emulator is absent; give it ``marks=(pytest.mark.integration,)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from adscore.state.base import StateStore
from adscore.state.memory import MemoryStateStore
from adscore.state.sqlite import SqliteStateStore
from tests.integration import moto_server as _moto
from tests.integration.azurite import azurite_table  # noqa: F401 - fixture for the azuretable backend

if TYPE_CHECKING:
    from pathlib import Path

Opener = Callable[[str], StateStore]
moto_server, aws_env = _moto.moto_server, _moto.aws_env  # fixtures for the dynamodb backend


@dataclass(frozen=True)
class Backend:
    name: str
    setup: Callable[[pytest.FixtureRequest, Path], Opener]
    marks: tuple[pytest.MarkDecorator, ...] = ()


def _memory(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    stores: dict[str, MemoryStateStore] = {}

    def open_(name: str) -> StateStore:
        return stores.setdefault(name, MemoryStateStore())

    return open_


def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    def open_(name: str) -> StateStore:
        return SqliteStateStore(tmp_path / f"{name}.db")

    return open_


def _dynamodb(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    # moto in server mode over loopback (tests/integration/moto_server.py); skips without moto
    server = request.getfixturevalue("aws_env")
    from adscore.state.dynamodb import DynamoDBStateStore, init_table

    tables: dict[str, str] = {}

    def open_(name: str) -> StateStore:
        if name not in tables:
            tables[name] = f"adscore-contract-{name}"
            init_table(tables[name], server.client("dynamodb"))
        return DynamoDBStateStore(tables[name], server.client("dynamodb"))

    return open_


def _azuretable(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    # azurite-table over loopback (tests/integration/azurite.py); skips without `npm install`
    azurite = request.getfixturevalue("azurite_table")
    from adscore.state.azure_table import AzureTableStateStore

    tables: dict[str, str] = {}

    def open_(name: str) -> StateStore:
        fresh = name not in tables
        table = tables.setdefault(name, azurite.table_name("contract"))
        store = AzureTableStateStore.from_connection_string(azurite.connection_string, table)
        if fresh:
            store.init()
        return store

    return open_


def _firestore(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    # the strict in-process fake of the Firestore client (tests/integration/firestore_fake.py)
    from adscore.state.firestore import FirestoreStateStore
    from tests.integration.firestore_fake import FakeFirestore

    client = FakeFirestore()

    def open_(name: str) -> StateStore:
        return FirestoreStateStore(f"adscore-contract-{name}", client, sleep=lambda _: None)

    return open_


def _firestore_emulator(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    # the official emulator when FIRESTORE_EMULATOR_HOST is set (functions/gcp/README.md); skips otherwise
    from adscore.state.firestore import FirestoreStateStore
    from tests.integration.firestore_fake import emulator_client, unique_collection

    client = emulator_client()
    prefix = unique_collection("contract")

    def open_(name: str) -> StateStore:
        return FirestoreStateStore(f"{prefix}-{name}", client)

    return open_


BACKENDS: list[Backend] = [
    Backend("memory", _memory),
    Backend("sqlite", _sqlite),
    Backend("dynamodb", _dynamodb, marks=(pytest.mark.integration,)),
    Backend("azuretable", _azuretable, marks=(pytest.mark.integration,)),
    Backend("firestore", _firestore),
    Backend("firestore-emulator", _firestore_emulator, marks=(pytest.mark.integration,)),
]


@pytest.fixture(params=[pytest.param(b, id=b.name, marks=b.marks) for b in BACKENDS])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., StateStore]]:
    """A callable ``make(name="main") -> StateStore``; stores are closed after the test."""
    backend: Backend = request.param
    open_ = backend.setup(request, tmp_path)
    opened: list[StateStore] = []

    def make(name: str = "main") -> StateStore:
        store = open_(name)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()
