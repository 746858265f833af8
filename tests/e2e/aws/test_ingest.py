"""The AWS ingest endpoint end to end: Lambda Function URL requests (payload 2.0) into ``ingest_handler``.

State in DynamoDB, alerts to SNS, dead letters to SQS, the bearer token and the signing secret in
Secrets Manager (the settings hold their ARNs, as ``infra/aws`` sets them): all on moto's server.
"""

from __future__ import annotations

import json
import socket
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.aws.conftest import LambdaContext
from tests.e2e.aws.test_handlers import emf_metrics
from tests.e2e.ingest_support import (
    INGEST_ENV,
    MAX_BYTES,
    SIGNING_SECRET,
    TOKEN,
    bearer,
    docker_batch,
    docker_event,
    event_list,
    exec_copy_event,
    refusals,
    signed,
)

if TYPE_CHECKING:
    from types import ModuleType

    from tests.e2e.aws.conftest import AwsStack

pytestmark = pytest.mark.integration


def url_event(body: bytes, headers: dict[str, str], *, base64_body: bool = False) -> dict[str, Any]:
    """A Lambda Function URL request event, payload format 2.0 (header names lowercased by the service)."""
    import base64

    now = 1_765_000_000_000
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {k.lower(): v for k, v in headers.items()}
        | {"host": "abcdefghij.lambda-url.us-east-1.on.aws", "x-forwarded-proto": "https"},
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghij",
            "domainName": "abcdefghij.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abcdefghij",
            "http": {
                "method": "POST",
                "path": "/",
                "protocol": "HTTP/1.1",
                "sourceIp": "198.51.100.20",
                "userAgent": "kube-apiserver-admission",
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": "06/Dec/2026:12:00:00 +0000",
            "timeEpoch": now,
        },
        "body": base64.b64encode(body).decode() if base64_body else body.decode(),
        "isBase64Encoded": base64_body,
    }


@pytest.fixture
def ingest_stack(aws_stack: AwsStack) -> AwsStack:
    sm = aws_stack.server.client("secretsmanager")
    suffix = uuid.uuid4().hex[:8]
    token = sm.create_secret(Name=f"adscore-ingest-token-{suffix}", SecretString=TOKEN)["ARN"]
    secret = sm.create_secret(Name=f"adscore-ingest-signing-{suffix}", SecretString=SIGNING_SECRET)["ARN"]
    aws_stack.use_env(
        **{**INGEST_ENV, "ADSCORE_INGEST_TOKEN": token, "ADSCORE_INGEST_SIGNING_SECRET": secret}
    )
    return aws_stack


def call(handler: ModuleType, body: bytes, headers: dict[str, str], **kw: Any) -> tuple[int, dict[str, Any]]:
    answer = handler.ingest_handler(url_event(body, headers, **kw), LambdaContext())
    assert answer["headers"]["content-type"] == "application/json"
    return answer["statusCode"], json.loads(answer["body"])


def test_an_audit_webhook_eventlist_with_kubectl_exec_cp_raises_k8s_exec_copy(
    ingest_stack: AwsStack, handler: ModuleType
) -> None:
    # GIVEN the API server's webhook batch with `kubectl exec db-0 -- cp -R /data /backup`, bearer token
    body = event_list(exec_copy_event())
    status, answer = call(handler, body, bearer())
    assert status == 200
    [received] = ingest_stack.alerts()
    assert received["alert"]["detection"] == "k8s.exec_copy"
    assert answer == {"alerts": [received["alert"]["id"]]}
    assert "cp -R /data /backup" in received["alert"]["title"]
    assert received["alert"]["principal"]["name"] == "alice@example.com"


def test_a_signed_docker_commit_batch_raises_container_snapshot(
    ingest_stack: AwsStack, handler: ModuleType
) -> None:
    # GIVEN a forwarder batch from host build-07 holding `docker commit` and one unreadable element
    body = json.loads(docker_batch(docker_event("commit")))
    body["events"].append("not an event")
    raw = json.dumps(body).encode()
    status, answer = call(handler, raw, signed(raw), base64_body=True)
    assert status == 200
    [received] = ingest_stack.alerts()
    alert = received["alert"]
    assert alert["detection"] == "container.snapshot" and answer == {"alerts": [alert["id"]]}
    assert "build-07" in json.dumps(alert["principal"])  # the batch's host is the principal
    # AND the unreadable element alone was dead-lettered, with its own location
    [letter] = ingest_stack.dead_letters()
    assert letter["source"] == "aws.ingest_handler" and letter["location"] == "docker-forward[1]"


def test_refused_requests_never_reach_the_engine_and_are_counted(
    ingest_stack: AwsStack, handler: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    for case in refusals():
        status, answer = call(handler, case.body, case.headers)
        assert status == case.status, case.name
        assert "error" in answer
    # THEN no body reached the engine: each would have raised an alert of its own
    assert ingest_stack.alerts() == []
    assert ingest_stack.dead_letters() == []
    metrics = emf_metrics(capsys.readouterr().out)
    for reason in ("unauthenticated", "bad_token", "bad_signature", "stale", "signature_required", "too_large"):
        assert metrics[f"ingest_refused_{reason}"] == 1, reason
    assert len(refusals()[-1].body) > MAX_BYTES


def test_a_replayed_delivery_id_is_refused_409(
    ingest_stack: AwsStack, handler: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    body = docker_batch(docker_event("commit", name="replayed"))
    headers = signed(body, "msg_replay_1")
    assert call(handler, body, headers)[0] == 200
    assert len(ingest_stack.alerts()) == 1
    capsys.readouterr()
    # WHEN the same signed request is sent again, or another body under the same webhook-id
    assert call(handler, body, headers)[0] == 409
    other = docker_batch(docker_event("commit", name="smuggled"))
    assert call(handler, other, signed(other, "msg_replay_1"))[0] == 409
    # AND an EventList posted twice with the bearer token (its id is the body's hash)
    k8s = event_list(exec_copy_event("bob@example.com", "web-3"))
    assert call(handler, k8s, bearer())[0] == 200
    assert call(handler, k8s, bearer())[0] == 409
    assert [a["alert"]["detection"] for a in ingest_stack.alerts()] == ["k8s.exec_copy"]
    assert emf_metrics(capsys.readouterr().out)["ingest_refused_replay"] == 3


def test_an_unreachable_topic_answers_503_and_the_retry_is_accepted(
    ingest_stack: AwsStack, handler: ModuleType
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    body = docker_batch(docker_event("commit", name="retried"))
    headers = signed(body, "msg_retry_1")
    ingest_stack.use_env(AWS_ENDPOINT_URL_SNS=f"http://127.0.0.1:{closed}")
    raw = handler.ingest_handler(url_event(body, headers), LambdaContext())
    status, answer = raw["statusCode"], json.loads(raw["body"])
    assert status == 503 and "retry" in answer["error"]
    assert raw["headers"]["Retry-After"] == "10"  # the audit webhook backend retries a 503 that suggests a delay
    # WHEN the forwarder retries the same delivery once SNS answers, it is accepted (the claim was given back)
    ingest_stack.use_env(AWS_ENDPOINT_URL_SNS=ingest_stack.server.endpoint)
    assert call(handler, body, headers)[0] == 200
    assert [a["alert"]["detection"] for a in ingest_stack.alerts()] == ["container.snapshot"]


def test_no_credential_configured_refuses_everything(aws_stack: AwsStack, handler: ModuleType) -> None:
    body = event_list(exec_copy_event("carol@example.com", "db-9"))
    assert call(handler, body, bearer())[0] == 401
    assert aws_stack.alerts() == []
