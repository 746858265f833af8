"""The seed's Docker emulation through ``adscore forward docker`` into the AWS ingest endpoint.

The endpoint is a Lambda Function URL; tests have no Lambda runtime serving HTTP, so
:class:`tests.e2e.forward_support.EndpointBridge` listens on loopback and turns each POST into the
Function URL request event (payload format 2.0, :func:`tests.e2e.aws.test_ingest.url_event`) for the
real ``handler.ingest_handler``. State (the replay claims) in DynamoDB, the signing secret in
Secrets Manager, alerts to SNS: moto's server (``ingest_stack``).
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import pytest

from adscore.emulate import free_port
from tests.e2e.aws.conftest import LambdaContext
from tests.e2e.aws.test_ingest import ingest_stack, url_event
from tests.e2e.forward_support import Answer, EndpointBridge, forward_and_resume, outage_then_back

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from types import ModuleType

    from tests.e2e.aws.conftest import AwsStack

__all__ = ["ingest_stack"]  # the fixture, imported
pytestmark = pytest.mark.integration


def function_url(handler: ModuleType) -> Callable[[bytes, dict[str, str]], Answer]:
    """What the Function URL service does with one request: the 2.0 event in, the handler's answer out."""

    def call(body: bytes, headers: dict[str, str]) -> Answer:
        answer = handler.ingest_handler(url_event(body, headers), LambdaContext())
        out = answer.get("body", "")
        data = base64.b64decode(out) if answer.get("isBase64Encoded") else out.encode()
        return answer["statusCode"], dict(answer.get("headers") or {}), data

    return call


def sns_alerts(stack: AwsStack) -> Callable[[], list[dict[str, Any]]]:
    """Every alert published so far (the subscribed queue is drained into one list)."""
    seen: list[dict[str, Any]] = []

    def alerts() -> list[dict[str, Any]]:
        seen.extend(m["alert"] for m in stack.alerts())
        return list(seen)

    return alerts


def test_the_seed_emulation_forwarded_raises_container_snapshot_and_a_restart_sends_nothing_new(
    ingest_stack: AwsStack, handler: ModuleType, tmp_path: Path
) -> None:
    with EndpointBridge(function_url(handler)) as bridge:
        forward_and_resume(bridge.url, sns_alerts(ingest_stack), tmp_path)
    # one signed POST, answered 200 by the handler
    assert [r.status for r in bridge.requests] == [200]
    assert json.loads(bridge.requests[0].body)["kind"] == "DockerEventBatch"


def test_an_endpoint_outage_loses_nothing_and_a_redelivered_batch_is_answered_409(
    ingest_stack: AwsStack, handler: ModuleType, tmp_path: Path
) -> None:
    port = free_port()
    bridge = EndpointBridge(function_url(handler), port=port)
    outage_then_back(bridge.url, lambda: bridge, sns_alerts(ingest_stack), tmp_path)
    # the spooled batch, then the one read after the outage; the spooled batch again: same id, same bytes
    first, _, again = bridge.requests
    assert [r.status for r in bridge.requests] == [200, 200, 409]
    assert (again.webhook_id, again.body) == (first.webhook_id, first.body)
