"""moto in server mode on loopback, for tests that talk to AWS APIs over a real connection.

Use the fixtures from a ``conftest.py``::

    from tests.integration.moto_server import aws_env, moto_server  # noqa: F401 - fixtures

``moto_server`` (session) starts :class:`moto.server.ThreadedMotoServer` on
127.0.0.1 with a free port and stops it at the end; it skips the test when moto
(the ``[dev]`` extra) is not installed. ``aws_env`` (function) points the
standard AWS variables at it (``AWS_ENDPOINT_URL``, fake credentials, a region),
so boto3 clients built anywhere in the process, and in child processes started
afterwards, reach the emulator; and it resets the emulator's data after the
test.
"""

from __future__ import annotations

import importlib.util
import logging
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from moto.server import ThreadedMotoServer

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account

#: Variables ``aws_env`` sets; removed: anything that could reach a real account.
AWS_VARS_REMOVED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")


def moto_available() -> bool:
    """Whether moto's server extra can be imported."""
    return importlib.util.find_spec("moto") is not None and importlib.util.find_spec("flask") is not None


@dataclass
class MotoServer:
    """A running moto server on loopback.

    Attributes
    ----------
    endpoint : str
        ``http://127.0.0.1:<port>``.
    """

    endpoint: str = ""
    _server: ThreadedMotoServer | None = field(default=None, repr=False)

    def start(self) -> MotoServer:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        self._server = server
        self.endpoint = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def env(self) -> dict[str, str]:
        """The environment that points boto3 at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def reset(self) -> None:
        """Forget every resource (moto's reset API)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client bound to this server (independent of the environment)."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            **kwargs,
        )


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
