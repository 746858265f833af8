"""The GCP ingest endpoint (``on_k8s_audit``) end to end, over functions-framework's real HTTP server.

The servers are the module's ``stacks`` (``tests/e2e/gcp/conftest.py``): ``k8s`` with its alerts to a
loopback webhook (HMAC checked) and dead letters to the loopback Pub/Sub publisher, ``k8s_down``
whose alert webhook is a closed port. Both take the bearer token and signing secret of
:mod:`tests.e2e.ingest_support` from their environment, as the Cloud Function takes them from Secret
Manager (mounted as environment variables by ``infra/gcp``).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.e2e.gcp.conftest import DEADLETTER_TOPIC
from tests.e2e.ingest_support import (
    bearer,
    docker_batch,
    docker_event,
    event_list,
    exec_copy_event,
    refusals,
    signed,
)

if TYPE_CHECKING:
    from tests.e2e.gcp.conftest import Stack

pytestmark = pytest.mark.integration


def _alerts(stack: Stack) -> list[dict[str, object]]:
    assert stack.webhook is not None
    assert all(r.verified for r in stack.webhook.delivered)
    return [json.loads(r.body) for r in stack.webhook.delivered]


def _refused(stack: Stack) -> list[str]:
    """Reason codes of the refusals the server logged."""
    return re.findall(r"ingest request refused \((\w+), HTTP", stack.server.logs())


def test_eventlist_and_signed_docker_batch_raise_their_alerts(stacks: dict[str, Stack]) -> None:
    k8s = stacks["k8s"]
    before = len(_alerts(k8s))
    # GIVEN `kubectl exec web-1 -- cp -R /data /backup` from the audit webhook, bearer token
    response = httpx.post(k8s.server.url, content=event_list(exec_copy_event("erin@example.com", "web-1")),
                          headers=bearer(), timeout=60)  # fmt: skip
    assert response.status_code == 200, k8s.server.logs()[-2000:]
    # AND a signed forwarder batch with `docker commit`
    body = docker_batch(docker_event("commit", name="ledger-db"), hostname="gce-docker-01")
    response2 = httpx.post(k8s.server.url, content=body, headers=signed(body), timeout=60)
    assert response2.status_code == 200, k8s.server.logs()[-2000:]
    new = _alerts(k8s)[before:]
    assert [a["detection"] for a in new] == ["k8s.exec_copy", "container.snapshot"]
    assert response.json() == {"alerts": [new[0]["id"]]} and response2.json() == {"alerts": [new[1]["id"]]}
    assert "gce-docker-01" in json.dumps(new[1]["principal"])


def test_refusals_replays_and_counts(stacks: dict[str, Stack]) -> None:
    k8s = stacks["k8s"]
    before, letters = len(_alerts(k8s)), len(k8s.pubsub.on(DEADLETTER_TOPIC))
    refused_before = len(_refused(k8s))
    cases = refusals()
    for case in cases:
        response = httpx.post(k8s.server.url, content=case.body, headers=case.headers, timeout=60)
        assert response.status_code == case.status, case.name
    # a replay: the same signed request twice, then another body under the same webhook-id
    body = docker_batch(docker_event("commit", name="replayed-gcp"))
    headers = signed(body, "msg_gcp_replay")
    assert httpx.post(k8s.server.url, content=body, headers=headers, timeout=60).status_code == 200
    assert httpx.post(k8s.server.url, content=body, headers=headers, timeout=60).status_code == 409
    other = docker_batch(docker_event("commit", name="smuggled-gcp"))
    assert httpx.post(k8s.server.url, content=other, headers=signed(other, "msg_gcp_replay"), timeout=60).status_code == 409
    # THEN only the one accepted batch reached the engine, nothing was dead-lettered, every refusal logged
    assert [a["detection"] for a in _alerts(k8s)[before:]] == ["container.snapshot"]
    assert len(k8s.pubsub.on(DEADLETTER_TOPIC)) == letters
    assert sorted(_refused(k8s)[refused_before:]) == sorted([c.reason for c in cases] + ["replay", "replay"])


def test_a_failing_alert_webhook_answers_503_and_the_retry_is_accepted(stacks: dict[str, Stack]) -> None:
    down = stacks["k8s_down"]
    body = docker_batch(docker_event("commit", name="retried-gcp"))
    headers = signed(body, "msg_gcp_retry")
    response = httpx.post(down.server.url, content=body, headers=headers, timeout=120)
    assert response.status_code == 503 and "retry" in response.json()["error"]
    assert response.headers["retry-after"] == "10"
    # the claim was given back: the sender's retry of the same delivery is not a replay
    again = httpx.post(down.server.url, content=body, headers=headers, timeout=120)
    assert again.status_code == 503
    assert "replay" not in _refused(down)
