"""One contract suite for every dead-letter store: what goes in comes back with its bytes and reason.

Each backend is opened by its URL (as the ``deadletter`` setting names it) against a real emulator
over loopback (moto server, Azurite, a gRPC Pub/Sub publisher), and read back with the cloud's own
client. A store that cannot write raises ``DeadLetterError``, so the runtime retries the message.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from adscore.deadletter import DeadLetter, DeadLetterError, DeadLetterStore, open_deadletter
from adscore.errors import ConfigError
from tests.integration import moto_server as _moto
from tests.integration.azurite import azurite  # noqa: F401 - fixture for the Azure backends

if TYPE_CHECKING:
    from pathlib import Path

moto_server, aws_env = _moto.moto_server, _moto.aws_env  # fixtures for the AWS backends

Reader = Callable[[], list[dict[str, Any]]]
"""Reads back every letter stored, as ``{"body": bytes, "reason", "location", "source", "message_id"}``."""

LETTERS = [
    DeadLetter(b'{"Records": [', "message body is not JSON", "sqs[0]", "aws.sqs_handler", "m-1"),
    DeadLetter(b"\xff\xfe not utf-8", "event body is not JSON", "eventhub:9", "azure.on_event_hub"),
    DeadLetter(json.dumps({"hello": "world"}).encode(), "unrecognised record shape", "pubsub#message:7", "gcp.on_pubsub", "7"),
]  # fmt: skip


def _from_document(doc: dict[str, Any]) -> dict[str, Any]:
    body = base64.b64decode(doc["body_base64"]) if "body_base64" in doc else doc["body"].encode()
    return {k: doc.get(k) for k in ("reason", "location", "source", "message_id")} | {"body": body}


@dataclass(frozen=True)
class Backend:
    name: str
    setup: Callable[[pytest.FixtureRequest, Path], tuple[str, Reader]]
    marks: tuple[pytest.MarkDecorator, ...] = ()


def _file(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Reader]:
    path = tmp_path / "dead" / "letters.jsonl"

    def read() -> list[dict[str, Any]]:
        return [_from_document(json.loads(line)) for line in path.read_text().split("\n") if line]

    return f"file://{path}", read


def _sqs(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Reader]:
    server = request.getfixturevalue("aws_env")
    sqs = server.client("sqs")
    url = sqs.create_queue(QueueName=f"dead-{tmp_path.name[-20:]}")["QueueUrl"]

    def read() -> list[dict[str, Any]]:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        out = []
        for m in messages.get("Messages", []):
            doc = _from_document(json.loads(m["Body"]))
            assert m["MessageAttributes"]["adscore_reason"]["StringValue"] == doc["reason"]
            out.append(doc)
        return out

    return f"sqs://dead-{tmp_path.name[-20:]}", read


def _s3(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Reader]:
    server = request.getfixturevalue("aws_env")
    s3 = server.client("s3")
    s3.create_bucket(Bucket="dead-letters")

    def read() -> list[dict[str, Any]]:
        objects = s3.list_objects_v2(Bucket="dead-letters", Prefix="unreadable/").get("Contents", [])
        return [
            _from_document(json.loads(s3.get_object(Bucket="dead-letters", Key=o["Key"])["Body"].read()))
            for o in objects
        ]

    return "s3://dead-letters/unreadable", read


def _azblob(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Reader]:
    from azure.storage.blob import ContainerClient

    emulator = request.getfixturevalue("azurite")
    request.getfixturevalue("monkeypatch").setenv("AzureWebJobsStorage", emulator.connection_string)
    name = f"dead{tmp_path.name[-12:].lower().replace('_', '')}"

    def read() -> list[dict[str, Any]]:
        with ContainerClient.from_connection_string(emulator.connection_string, name) as client:
            return [
                _from_document(json.loads(client.download_blob(b.name).readall()))
                for b in client.list_blobs()
            ]

    return f"azblob://{name}", read


def _azqueue(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Reader]:
    from azure.storage.queue import QueueClient

    emulator = request.getfixturevalue("azurite")
    request.getfixturevalue("monkeypatch").setenv("AzureWebJobsStorage", emulator.connection_string)
    name = f"dead{tmp_path.name[-12:].lower().replace('_', '')}"

    def read() -> list[dict[str, Any]]:
        with QueueClient.from_connection_string(emulator.connection_string, name) as client:
            messages = client.receive_messages(max_messages=32)
            return [_from_document(json.loads(base64.b64decode(m.content))) for m in messages]

    return f"azqueue://{name}", read


def _pubsub(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Reader]:
    pytest.importorskip("google.cloud.pubsub_v1")
    from tests.e2e.gcp.conftest import PubSubReceiver

    topic = "projects/adscore-test/topics/dead-letters"
    receiver = PubSubReceiver({topic}).__enter__()
    request.addfinalizer(lambda: receiver.__exit__(None, None, None))
    request.getfixturevalue("monkeypatch").setenv("PUBSUB_EMULATOR_HOST", receiver.host)

    def read() -> list[dict[str, Any]]:
        return [
            {
                "body": m.data,
                "reason": m.attributes["adscore_reason"],
                "location": m.attributes["adscore_location"],
                "source": m.attributes["adscore_source"],
                "message_id": m.attributes.get("adscore_message_id"),
            }
            for m in receiver.on(topic)
        ]

    return f"pubsub://{topic}", read


BACKENDS = [
    Backend("file", _file),
    Backend("sqs", _sqs, (pytest.mark.integration,)),
    Backend("s3", _s3, (pytest.mark.integration,)),
    Backend("azblob", _azblob, (pytest.mark.integration,)),
    Backend("azqueue", _azqueue, (pytest.mark.integration,)),
    Backend("pubsub", _pubsub, (pytest.mark.integration,)),
]


@pytest.fixture(params=[pytest.param(b, id=b.name, marks=b.marks) for b in BACKENDS])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[DeadLetterStore, Reader]]:
    url, read = request.param.setup(request, tmp_path)
    opened = open_deadletter(url, cache=False)
    try:
        yield opened, read
    finally:
        opened.close()


def test_every_letter_comes_back_with_its_bytes_and_reason(store: tuple[DeadLetterStore, Reader]) -> None:
    opened, read = store
    opened.put(LETTERS[:1])
    opened.put(LETTERS[1:])
    got = sorted(read(), key=lambda d: d["location"])
    want = sorted(
        ({"body": x.body, "reason": x.reason, "location": x.location, "source": x.source, "message_id": x.message_id}
         for x in LETTERS),
        key=lambda d: d["location"],
    )  # fmt: skip
    assert got == want


def test_a_huge_body_is_kept_or_cut_and_said_so(store: tuple[DeadLetterStore, Reader]) -> None:
    opened, read = store
    huge = DeadLetter(b"{" + b"x" * 400_000, "too big to read", "sqs[1]", "aws.sqs_handler")
    opened.put([huge])
    [got] = read()
    assert huge.body.startswith(got["body"]) and len(got["body"]) > 1000
    assert got["reason"] == "too big to read"


def test_letters_survive_hostile_text(store: tuple[DeadLetterStore, Reader]) -> None:
    opened, read = store
    letter = DeadLetter(
        b"\x00\x01", "reason \u2028 with <html> & \U0001f600", "loc/../\u0000", "aws.sqs_handler"
    )
    opened.put([letter])
    [got] = read()
    assert got["body"] == b"\x00\x01" and got["reason"] == letter.reason


# --------------------------------------------------------------------------- failures and URLs


def test_a_store_that_cannot_write_raises(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    store = open_deadletter(f"file://{tmp_path / 'file' / 'below-a-file.jsonl'}", cache=False)
    with pytest.raises(DeadLetterError):
        store.put(LETTERS[:1])


@pytest.mark.parametrize(
    "url", ["kafka://topic", "nothing", "file://", "s3://", "sqs://", "pubsub://not-a-topic"]
)
def test_a_bad_url_names_the_setting(url: str) -> None:
    with pytest.raises(ConfigError, match="deadletter"):
        open_deadletter(url, cache=False)


def test_opening_the_package_loads_no_backend() -> None:
    import subprocess
    import sys

    sdks = "('boto3', 'botocore', 'azure.storage.blob', 'azure.storage.queue', 'google.cloud.pubsub_v1')"
    code = f"import sys, adscore.deadletter; print(sorted(m for m in {sdks} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
