"""The ingest endpoint's core (``adscore.ingest``) and the forwarder's delivery shape, on a memory engine.

The three clouds' real HTTP paths are tested in ``tests/e2e/*/test_ingest.py``; here are the rules
that do not depend on a platform: settings, the ``DockerEventBatch`` reader, refusals before any
read, and what reaches the engine.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from adscore import ingest
from adscore.deliveries import Record, Unreadable
from adscore.deliveries.docker_forward import MAX_EVENTS, unwrap_docker_batch
from adscore.errors import ConfigError
from adscore.runtime import build_engine, check_settings
from adscore.settings import load_settings
from tests.e2e.ingest_support import (
    SIGNING_SECRET,
    TOKEN,
    bearer,
    docker_batch,
    docker_event,
    event_list,
    exec_copy_event,
    signed,
)

if TYPE_CHECKING:
    from pathlib import Path

    from adscore.engine import Engine


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Engine:
    for name in ("ADSCORE_CONFIG", "ADSCORE_STATE", "ADSCORE_SINKS"):
        monkeypatch.delenv(name, raising=False)
    return build_engine(
        load_settings(None, state="memory://", ingest_token=TOKEN, ingest_signing_secret=SIGNING_SECRET),
        sinks=[],
    )


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("ingest_token", "short"),
        ("ingest_token", "has a space in it, sixteen+"),
        ("ingest_signing_secret", "plain-text-secret-not-whsec"),
        ("ingest_signing_secret", "whsec_" + base64.b64encode(b"too-short").decode()),
    ],
)
def test_a_bad_ingest_credential_fails_at_start_naming_the_setting(setting: str, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, **{setting: value})
    assert err.value.setting == setting
    assert value not in str(err.value)  # never the value itself


def test_references_are_accepted_and_a_file_is_checked_by_validate_settings(tmp_path: Path) -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:adscore-ingest-token-AbCdEf"
    assert load_settings(None, ingest_token=arn).ingest_token is not None
    assert load_settings(None, ingest_signing_secret="projects/p/secrets/s/versions/1").ingest_signing_secret
    weak = tmp_path / "token"
    weak.write_text("short\n", encoding="utf-8")
    settings = load_settings(None, ingest_token=f"file://{weak}")
    with pytest.raises(ConfigError) as err:
        check_settings(settings)  # what `adscore validate-settings` runs
    assert err.value.setting == "ingest_token"
    with pytest.raises(ConfigError, match="ingest_signing_secret"):
        check_settings(load_settings(None, ingest_signing_secret=f"file://{tmp_path / 'missing'}"))


def test_ingest_settings_do_not_change_the_settings_version() -> None:
    plain = load_settings(None)
    with_ingest = load_settings(None, ingest_token=TOKEN, ingest_signing_secret=SIGNING_SECRET, ingest_max_bytes=2048)
    assert plain.version() == with_ingest.version()


# --------------------------------------------------------------------------- DockerEventBatch


def test_a_docker_batch_is_one_record_per_event_with_the_batch_host() -> None:
    doc = json.loads(docker_batch(docker_event("commit"), {**docker_event("commit"), "hostname": "own"}, 7))
    items = unwrap_docker_batch(b"raw", doc)
    assert [type(i).__name__ for i in items] == ["Record", "Record", "Unreadable"]
    first, second, bad = items
    assert isinstance(first, Record) and isinstance(second, Record) and isinstance(bad, Unreadable)
    assert (first.raw["hostname"], first.raw["host_id"]) == ("build-07", "i-0123456789abcdef0")
    assert second.raw["hostname"] == "own"  # an event's own host wins
    assert [i.where.location for i in items] == ["docker-forward[0]", "docker-forward[1]", "docker-forward[2]"]
    assert {i.where.family for i in items} == {"docker"}
    assert bad.body == b"7" and "expected an object" in bad.reason


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({"kind": "DockerEventBatch", "apiVersion": "adscore.dev/v2", "events": []}, "unsupported"),
        ({"kind": "DockerEventBatch", "apiVersion": "adscore.dev/v1", "events": {}}, "no events list"),
        ([], "not a DockerEventBatch"),
    ],
)
def test_an_unreadable_docker_batch_is_one_unreadable_item_with_its_bytes(doc: object, reason: str) -> None:
    [item] = unwrap_docker_batch(b"the body", doc)
    assert isinstance(item, Unreadable) and item.body == b"the body" and reason in item.reason


def test_a_batch_over_the_event_limit_reads_the_limit_and_reports_the_rest() -> None:
    doc = {"kind": "DockerEventBatch", "apiVersion": "adscore.dev/v1", "events": [{}] * (MAX_EVENTS + 3)}
    items = unwrap_docker_batch(b"", doc)
    assert len(items) == MAX_EVENTS + 1 and isinstance(items[-1], Unreadable)
    assert "more than" in items[-1].reason


# --------------------------------------------------------------------------- the endpoint's rules


def test_no_credential_configured_refuses_even_a_well_formed_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADSCORE_CONFIG", raising=False)
    bare = build_engine(load_settings(None, state="memory://"), sinks=[])
    answer = ingest.handle(event_list(exec_copy_event()), bearer(), source="test", engine=bare)
    assert (answer.status, answer.refused, answer.result) == (401, "not_configured", None)


def test_an_oversized_body_is_refused_on_its_declared_length_without_being_read(engine: Engine) -> None:
    before = ingest.REFUSALS["too_large"]
    answer = ingest.handle(None, bearer(), source="test", engine=engine, content_length=10**9)
    assert (answer.status, answer.refused) == (413, "too_large")
    assert answer.counts == {"ingest_refused_too_large": 1}
    assert ingest.REFUSALS["too_large"] == before + 1


def test_a_signed_eventlist_is_accepted_and_a_basic_auth_header_is_not(engine: Engine) -> None:
    body = event_list(exec_copy_event("dana@example.com", "api-0"))
    answer = ingest.handle(body, signed(body), source="test", engine=engine)
    assert answer.status == 200 and answer.kind == "EventList"
    assert answer.result is not None and answer.result.report.by_detection == {"k8s.exec_copy": 1}
    basic = {"Authorization": "Basic " + base64.b64encode(f"x:{TOKEN}".encode()).decode()}
    assert ingest.handle(event_list(exec_copy_event()), basic, source="test", engine=engine).refused == "bad_token"


def test_a_future_timestamp_is_refused_as_stale(engine: Engine) -> None:
    body = docker_batch(docker_event())
    headers = signed(body, at=datetime.now(UTC) + timedelta(minutes=10))
    assert ingest.handle(body, headers, source="test", engine=engine).refused == "stale"


def test_an_authenticated_body_of_another_kind_is_dead_lettered_and_answered_400(engine: Engine) -> None:
    body = json.dumps({"kind": "PodList", "items": []}).encode()
    answer = ingest.handle(body, bearer(), source="test", engine=engine)
    assert answer.status == 400 and "expected EventList or DockerEventBatch" in answer.body["error"]
    assert answer.result is not None and [letter.body for letter in answer.result.letters] == [body]


def test_the_replay_window_ends(engine: Engine) -> None:
    body = event_list(exec_copy_event("erin@example.com", "api-1"))
    t0 = datetime.now(UTC)
    assert ingest.handle(body, bearer(), source="test", engine=engine, now=t0).status == 200
    assert ingest.handle(body, bearer(), source="test", engine=engine, now=t0 + timedelta(minutes=9)).status == 409
    later = ingest.handle(body, bearer(), source="test", engine=engine, now=t0 + ingest.REPLAY_TTL + timedelta(seconds=1))
    assert later.status == 200 and later.body == {"alerts": []}  # processed again; the alert was sent already


def test_a_delivery_whose_instance_died_is_retried_not_refused_as_a_replay(engine: Engine) -> None:
    # GIVEN an instance that took the delivery's lease and died before it was processed
    body = event_list(exec_copy_event("frank@example.com", "api-2"))
    t0 = datetime.now(UTC)
    key = "ingest|delivery|sha256:" + hashlib.sha256(body).hexdigest()
    assert engine.store.lease(key, t0, ingest.REPLAY_TTL, now=t0, lease=ingest.IN_FLIGHT_LEASE) == "won"
    # WHEN the sender retries while the lease lives THEN it is told to retry later, not that it is a replay
    early = ingest.handle(body, bearer(), source="test", engine=engine, now=t0 + timedelta(seconds=30))
    assert early.status == 503 and early.headers.get("Retry-After") and early.result is None
    assert early.refused == "in_flight" and early.counts == {"ingest_refused_in_flight": 1}
    # AND once the lease is over the retry is processed (the alert raised), then a replay gets 409
    late = t0 + ingest.IN_FLIGHT_LEASE + timedelta(seconds=1)
    done = ingest.handle(body, bearer(), source="test", engine=engine, now=late)
    assert done.status == 200 and len(done.body["alerts"]) == 1
    assert ingest.handle(body, bearer(), source="test", engine=engine, now=late).status == 409


def test_an_unreadable_secret_store_answers_503_and_the_secret_is_read_once_it_is_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the token held by reference in a mounted secret file that is not there yet
    monkeypatch.delenv("ADSCORE_CONFIG", raising=False)
    mounted = tmp_path / f"token-{id(tmp_path)}"
    settings = load_settings(None, state="memory://", ingest_token=f"file://{mounted}")
    store_engine = build_engine(settings, sinks=[])
    body = event_list(exec_copy_event("frank@example.com", "api-2"))
    answer = ingest.handle(body, bearer(), source="test", engine=store_engine)
    # THEN the sender is told to retry (a 401 would make the API server drop the batch)
    assert answer.status == 503 and answer.headers == {"Retry-After": "10"} and answer.refused is None
    # WHEN the secret appears, the retry is accepted: a failed read is not remembered
    mounted.write_text(TOKEN + "\n", encoding="utf-8")
    assert ingest.handle(body, bearer(), source="test", engine=store_engine).status == 200
