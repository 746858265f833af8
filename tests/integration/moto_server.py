"""moto in server mode on loopback, for tests that talk to AWS APIs over a real connection.

Use the fixtures from a ``conftest.py``::

    from tests.integration.moto_server import aws_env, moto_server  # noqa: F401 - fixtures

``moto_server`` (session) starts :class:`adscore.emulate.aws.MotoServer`
(``moto.server.ThreadedMotoServer`` on 127.0.0.1, a free port; the same code
``adscore emulate aws`` runs) and stops it at the end; it skips the test when
moto (the ``[dev]`` extra) is not installed. ``aws_env`` (function) points the
standard AWS variables at it (``AWS_ENDPOINT_URL``, fake credentials, a region),
so boto3 clients built anywhere in the process, and in child processes started
afterwards, reach the emulator; and it resets the emulator's data after the
test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from adscore.emulate.aws import ACCOUNT, AWS_VARS_REMOVED, REGION, MotoServer, moto_available

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["ACCOUNT", "AWS_VARS_REMOVED", "REGION", "MotoServer", "aws_env", "moto_available", "moto_server"]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """Start moto on 127.0.0.1 (a free port) for the session; skip when moto is missing."""
    if not moto_available():
        pytest.skip("moto[server] is not installed (pip install adscore[dev])")
    server = MotoServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def aws_env(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoServer]:
    """Point the standard AWS variables at the moto server; reset its data afterwards."""
    for name in AWS_VARS_REMOVED:
        monkeypatch.delenv(name, raising=False)
    for name, value in moto_server.env().items():
        monkeypatch.setenv(name, value)
    try:
        yield moto_server
    finally:
        moto_server.reset()
