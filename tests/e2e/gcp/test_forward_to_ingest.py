"""The seed's Docker emulation through ``adscore forward docker`` into the GCP ingest endpoint.

The forwarder posts straight to ``on_k8s_audit`` served by functions-framework's real HTTP server
(the Cloud Function's own entry point), configured as ``infra/gcp`` configures it: the signing secret
of :mod:`tests.e2e.ingest_support`, state (the replay claims) in SQLite, alerts to a loopback webhook
that checks their HMAC signature.
"""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, Any

import pytest

from adscore.emulate.gcp import FunctionServer, missing, serve
from tests.e2e.forward_support import forward_and_resume, outage_then_back
from tests.e2e.gcp.conftest import SECRET, SOURCE, _env, alerts_of
from tests.e2e.ingest_support import INGEST_ENV
from tests.integration.webhook_receiver import WebhookReceiver

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.e2e.gcp.conftest import PubSubReceiver

pytestmark = pytest.mark.integration


def ingest_server(tmp: Path, name: str, hook: WebhookReceiver, pubsub: PubSubReceiver) -> FunctionServer:
    """``on_k8s_audit`` on a free port (not started)."""
    if missing() is not None:
        pytest.skip("functions-framework is not installed in this environment")
    env = _env(tmp, name, hook.url, pubsub, ADSCORE_LOCAL="1", **INGEST_ENV)
    return FunctionServer("on_k8s_audit", "http", env, tmp / f"{name}.log", source=SOURCE)


@contextlib.contextmanager
def running(server: FunctionServer) -> Iterator[FunctionServer]:
    serve([server])
    try:
        yield server
    finally:
        server.stop()


def refused(server: FunctionServer) -> list[str]:
    return re.findall(r"ingest request refused \((\w+), HTTP", server.logs())


def test_the_seed_emulation_forwarded_raises_container_snapshot_and_a_restart_sends_nothing_new(
    tmp_path: Path, pubsub: PubSubReceiver
) -> None:
    with WebhookReceiver(secret=SECRET) as hook, running(ingest_server(tmp_path, "fwd", hook, pubsub)) as server:
        forward_and_resume(server.url, lambda: alerts_of(hook), tmp_path)
        assert refused(server) == []


def test_an_endpoint_outage_loses_nothing_and_a_redelivered_batch_is_answered_409(
    tmp_path: Path, pubsub: PubSubReceiver
) -> None:
    with WebhookReceiver(secret=SECRET) as hook:
        server = ingest_server(tmp_path, "fwd_down", hook, pubsub)  # its port stays closed until `up`

        def up() -> contextlib.AbstractContextManager[Any]:
            return running(server)

        outage_then_back(server.url, up, lambda: alerts_of(hook), tmp_path)
        assert refused(server) == ["replay"]  # the redelivered batch, answered 409
