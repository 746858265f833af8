"""One AlertSink contract, run against every local backend.

Webhook backends post to a real HTTP server on loopback
(``tests/integration/webhook_receiver.py``), which verifies signatures on its
own, from the documented scheme. Retry delays are injected (no real sleeping).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from adscore import __version__
from adscore.alerts import Alert, make_alert
from adscore.errors import ConfigError, SinkError
from adscore.events import Principal, Resource
from adscore.render.slack import to_slack
from adscore.render.teams import to_teams
from adscore.sinks import SINKS, open_sink, open_sinks
from adscore.sinks.base import AlertSink, MultiSink, RetryingSink, SendReport
from adscore.sinks.stdout import JsonlSink, StdoutSink
from adscore.sinks.webhook import WebhookSink

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

try:  # the import root depends on whether tests/ is a package
    from tests.integration.webhook_receiver import WebhookReceiver, verify
except ImportError:  # pragma: no cover
    from integration.webhook_receiver import WebhookReceiver, verify  # type: ignore[no-redef,import-not-found]

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SECRET = "test-signing-secret"


def alert(n: int = 1, **overrides: Any) -> Alert:
    fields: dict[str, Any] = {
        "detection": "snapshot.shared_external",
        "entity": f"arn:aws:iam::111122223333:user/user{n}",
        "window_start": T0,
        "technique": "T1578.001",
        "technique_name": "Create Snapshot",
        "tactic": "Defense Evasion",
        "severity": "high",
        "title": f"Snapshot shared outside the organization by user{n} <!channel>",
        "summary": f"user{n} shared snap-{n} with 999988887777",
        "principal": Principal(id=f"arn:aws:iam::111122223333:user/user{n}", type="user", name=f"user{n}"),
        "cloud": "aws",
        "account": "111122223333",
        "region": "eu-west-1",
        "resources": [Resource("ec2.snapshot", f"snap-{n}")],
        "first_seen": T0,
        "last_seen": T0 + timedelta(minutes=1),
        "count": n,
        "event_ids": [f"e-{n}"],
        "records": [{"eventName": "ModifySnapshotAttribute", "n": n}],
        "response": ["Revoke the share"],
    }
    fields.update(overrides)
    return make_alert(**fields)


def no_sleep(_: float) -> None:
    pass


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


# --- the backends -------------------------------------------------------------------------


@dataclass
class Harness:
    """A backend, how to read what it delivered, and what one alert should look like there."""

    sink: AlertSink
    delivered: Callable[[], list[Any]]
    expected: Callable[[Alert], Any]
    upserts: bool = False
    """True when the destination keys what it stores by alert id (a redelivery updates it)."""


def _lines(text: str) -> list[Any]:
    return [orjson.loads(line) for line in text.splitlines() if line]


def _bodies(rx: WebhookReceiver) -> Callable[[], list[Any]]:
    return lambda: [orjson.loads(r.body) for r in rx.delivered]


def _alert_json(a: Alert) -> Any:
    return orjson.loads(a.to_json())


def _finding_digest(f: dict[str, Any]) -> dict[str, Any]:
    return {k: f[k] for k in ("Id", "GeneratorId", "Title", "Severity", "Types")}


def _asff_digest(a: Alert) -> dict[str, Any]:
    from adscore.render.asff import to_asff

    return _finding_digest(to_asff(a, account="123456789012", region="us-east-1", updated_at=T0))


BACKENDS = [
    "stdout",
    "jsonl",
    "webhook-json",
    "webhook-slack",
    "webhook-teams",
    pytest.param("securityhub", marks=pytest.mark.integration),
    "pagerduty",
    pytest.param("sentinel", marks=pytest.mark.integration),
]


@pytest.fixture(params=BACKENDS)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    name = request.param
    if name == "securityhub":
        # moto server over loopback (tests/integration/moto_server.py); skips without moto
        server = request.getfixturevalue("aws_env")
        from adscore.sinks.securityhub import SecurityHubSink

        hub = server.client("securityhub")
        hub.enable_security_hub()

        def stored() -> list[Any]:
            return [_finding_digest(f) for f in hub.get_findings()["Findings"]]

        yield Harness(SecurityHubSink(), stored, _asff_digest, upserts=True)
    elif name == "pagerduty":
        # a local server that checks each request against the Events API v2 schema
        from adscore.sinks.pagerduty import PagerDutySink
        from tests.integration.pagerduty_receiver import PagerDutyReceiver

        def event_digest(a: Alert) -> Any:
            return {"dedup_key": a.id, "summary": a.title, "detection": a.detection}

        with PagerDutyReceiver() as pd:
            pagerduty = PagerDutySink("R0UT1NGKEY0123456789abcdefABCDEF", pd.endpoint)

            def accepted() -> list[Any]:
                return [
                    {
                        "dedup_key": r.event["dedup_key"],
                        "summary": r.event["payload"]["summary"],
                        "detection": r.event["payload"]["component"],
                    }
                    for r in pd.requests
                    if r.status == 202 or r.errors  # an invalid request shows up and fails the test
                ]

            yield Harness(pagerduty, accepted, event_digest)
            pagerduty.close()
    elif name == "sentinel":
        # a local server that checks each request against the Logs Ingestion API
        from adscore.sinks.sentinel import SentinelSink
        from tests.integration.test_sentinel_sink import DCR, STREAM, IngestionReceiver, StaticToken

        def row_digest(a: Alert) -> Any:
            return {"AlertId": a.id, "Title": a.title, "Detection": a.detection}

        with IngestionReceiver() as ingestion:
            sentinel = SentinelSink(ingestion.endpoint, DCR, STREAM, credential=StaticToken())

            def rows() -> list[Any]:
                assert all(u.status == 204 for u in ingestion.uploads), [u.errors for u in ingestion.uploads]
                return [{k: r[k] for k in ("AlertId", "Title", "Detection")} for r in ingestion.rows]

            yield Harness(sentinel, rows, row_digest)
            sentinel.close()
    elif name == "stdout":
        buf = io.StringIO()
        yield Harness(StdoutSink(buf), lambda: _lines(buf.getvalue()), _alert_json)
    elif name == "jsonl":
        path = tmp_path / "out" / "alerts.jsonl"
        yield Harness(JsonlSink(path), lambda: _lines(path.read_text()) if path.exists() else [], _alert_json)
    else:
        kind = name.removeprefix("webhook-")
        expected: dict[str, Callable[[Alert], Any]] = {
            "json": _alert_json,
            "slack": to_slack,
            "teams": to_teams,
        }
        with WebhookReceiver(secret=SECRET) as rx:
            sink = WebhookSink(rx.url, secret=SECRET, kind=kind, timeout=5)
            yield Harness(sink, _bodies(rx), expected[kind])
            sink.close()


# --- the contract, for every backend ----------------------------------------------------------


def test_delivers_each_alert_with_its_content_in_order(harness: Harness) -> None:
    alerts = [alert(1), alert(2), alert(3)]
    report = harness.sink.send(alerts)
    assert report == SendReport(sent=tuple(a.id for a in alerts))
    assert harness.delivered() == [harness.expected(a) for a in alerts]


def test_an_empty_batch_delivers_nothing(harness: Harness) -> None:
    assert harness.sink.send([]) == SendReport()
    assert harness.delivered() == []


def test_redelivery_delivers_again(harness: Harness) -> None:
    # At-least-once: a sink does not dedup (the engine's claim does); a finding service
    # keyed by alert id updates the same finding instead.
    a = alert(1)
    harness.sink.send([a])
    harness.sink.send([a])
    assert harness.delivered() == [harness.expected(a)] * (1 if harness.upserts else 2)


def test_close_is_idempotent_and_wrappers_close_the_backend(harness: Harness) -> None:
    harness.sink.send([alert(1)])
    wrapped = MultiSink([RetryingSink(harness.sink, sleep=no_sleep)])
    wrapped.close()
    wrapped.close()
    assert len(harness.delivered()) == 1


def test_retrying_sink_passes_through_a_clean_send(harness: Harness) -> None:
    alerts = [alert(1), alert(2)]
    report = RetryingSink(harness.sink, sleep=no_sleep).send(alerts)
    assert report.sent == (alerts[0].id, alerts[1].id) and report.ok
    assert harness.delivered() == [harness.expected(a) for a in alerts]


# --- local backends: failures -------------------------------------------------------------------


def test_jsonl_failure_raises_sink_error_with_unsent_ids(tmp_path: Path) -> None:
    # GIVEN a path that is a directory: every append fails
    (tmp_path / "dir.jsonl").mkdir()
    alerts = [alert(1), alert(2)]
    sink = JsonlSink(tmp_path / "dir.jsonl")
    report = sink.send(alerts)
    assert report.failed == (alerts[0].id, alerts[1].id) and not report.sent
    with pytest.raises(SinkError) as err:
        RetryingSink(sink, attempts=2, sleep=no_sleep).send(alerts)
    assert err.value.unsent == (alerts[0].id, alerts[1].id)


def test_stdout_closed_stream_is_reported() -> None:
    buf = io.StringIO()
    buf.close()
    a = alert(1)
    assert StdoutSink(buf).send([a]).failed == (a.id,)


def test_stdout_ocsf_and_table_formats() -> None:
    buf = io.StringIO()
    StdoutSink(buf, fmt="ocsf").send([alert(1)])
    (finding,) = _lines(buf.getvalue())
    assert finding["class_uid"] == 2004 and finding["finding_info"]["uid"] == alert(1).id
    buf = io.StringIO()
    StdoutSink(buf, fmt="table").send([alert(1), alert(2)])
    assert "user1" in buf.getvalue() and "user2" in buf.getvalue()
    with pytest.raises(ConfigError):
        StdoutSink(fmt="xml")  # type: ignore[arg-type]


# --- webhooks: signing ---------------------------------------------------------------------------


def test_generic_webhook_headers_and_signature() -> None:
    a = alert(1)
    with WebhookReceiver(secret=SECRET) as rx:
        RetryingSink(WebhookSink(rx.url, secret=SECRET), sleep=no_sleep).send([a])
    (req,) = rx.requests
    assert req.verified is True
    assert req.headers["content-type"] == "application/json"
    assert req.headers["user-agent"] == f"adscore/{__version__}"
    assert req.headers["x-adscore-alert-id"] == a.id
    assert abs(int(req.headers["x-adscore-timestamp"]) - time.time()) < 600
    assert req.body == a.to_json()
    assert Alert.model_validate_json(req.body) == a
    # The receiver's check does reject a changed body, an old timestamp and another secret.
    assert not verify(SECRET, req.headers, req.body + b" ")
    assert not verify("other-secret", req.headers, req.body)
    old = {**req.headers, "x-adscore-timestamp": str(int(req.headers["x-adscore-timestamp"]) - 3600)}
    assert not verify(SECRET, old, req.body)


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    # GIVEN a fixed clock, the signature is exactly what docs/webhooks.md specifies
    with WebhookReceiver() as rx:
        WebhookSink(rx.url, secret=SECRET, clock=lambda: 1_700_000_000).send([alert(1)])
    (req,) = rx.requests
    assert req.headers["x-adscore-timestamp"] == "1700000000"
    mac = hmac.new(SECRET.encode(), b"1700000000." + req.body, hashlib.sha256).hexdigest()
    assert req.headers["x-adscore-signature"] == f"v1={mac}"


def test_wrong_secret_fails_verification() -> None:
    with WebhookReceiver(secret=SECRET) as rx:
        WebhookSink(rx.url, secret="not-the-secret").send([alert(1)])
    assert [r.verified for r in rx.requests] == [False]


def test_unsigned_without_secret_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="adscore.sinks.webhook")
    with WebhookReceiver(secret=SECRET) as rx:
        sink = WebhookSink(rx.url + "/path-secret?token=query-secret", secret=None)
        sink.send([alert(1)])
        sink.send([alert(2), alert(3)])
    assert len(rx.requests) == 3
    assert all("x-adscore-signature" not in r.headers for r in rx.requests)
    assert all(r.verified is False for r in rx.requests)
    assert [r.headers["x-adscore-alert-id"] for r in rx.requests] == [alert(n).id for n in (1, 2, 3)]
    warnings = [r for r in caplog.records if "unsigned" in r.getMessage()]
    assert len(warnings) == 1
    assert "path-secret" not in caplog.text and "query-secret" not in caplog.text


@pytest.mark.parametrize("kind", ["slack", "teams"])
def test_chat_webhooks_are_not_signed(kind: str) -> None:
    with WebhookReceiver() as rx:
        WebhookSink(rx.url, secret=SECRET, kind=kind).send([alert(1)])  # type: ignore[arg-type]
    (req,) = rx.requests
    assert "x-adscore-signature" not in req.headers
    assert req.headers["content-type"] == "application/json"


# --- webhooks: retries and failures ------------------------------------------------------------

KINDS = ["json", "slack", "teams"]


def webhook(rx: WebhookReceiver, kind: str, **retry: Any) -> RetryingSink:
    inner = WebhookSink(rx.url, secret=SECRET, kind=kind, timeout=5)  # type: ignore[arg-type]
    return RetryingSink(inner, sleep=no_sleep, **retry)


@pytest.mark.parametrize("kind", KINDS)
def test_retries_after_two_server_errors(kind: str) -> None:
    a = alert(1)
    with WebhookReceiver(secret=SECRET) as rx:
        rx.fail_next(2, status=500)
        report = webhook(rx, kind).send([a])
    assert report.sent == (a.id,) and report.ok
    assert rx.statuses == [500, 500, 200]
    assert len(rx.delivered) == 1


@pytest.mark.parametrize("status", [408, 429, 502, 503])
def test_retryable_statuses(status: int) -> None:
    with WebhookReceiver(secret=SECRET) as rx:
        rx.fail_next(1, status=status)
        webhook(rx, "json").send([alert(1)])
    assert rx.statuses == [status, 200]


def test_only_failed_alerts_are_retried() -> None:
    alerts = [alert(1), alert(2), alert(3)]
    with WebhookReceiver(secret=SECRET) as rx:
        rx.fail_next(1, status=503)  # the first alert's first attempt
        report = webhook(rx, "json").send(alerts)
    assert set(report.sent) == {a.id for a in alerts}
    assert rx.statuses == [503, 200, 200, 200]
    assert [r.headers["x-adscore-alert-id"] for r in rx.delivered] == [
        alerts[1].id,
        alerts[2].id,
        alerts[0].id,
    ]
    assert all(r.verified for r in rx.requests)  # a retry is signed afresh


@pytest.mark.parametrize("kind", KINDS)
def test_keeps_failing_raises_sink_error_with_unsent_ids(kind: str) -> None:
    alerts = [alert(1), alert(2)]
    sleeps: list[float] = []
    with WebhookReceiver(secret=SECRET) as rx:
        rx.fail_next(1000, status=500)
        sink = RetryingSink(
            WebhookSink(rx.url, secret=SECRET, kind=kind, timeout=5),  # type: ignore[arg-type]
            attempts=3,
            base_delay=0.5,
            max_delay=0.75,
            sleep=sleeps.append,
        )
        with pytest.raises(SinkError) as err:
            sink.send(alerts)
    assert err.value.unsent == (alerts[0].id, alerts[1].id)
    assert len(rx.requests) == 3 * 2
    assert len(sleeps) == 2
    assert all(0.5 <= s <= 0.75 + 0.5 for s in sleeps)  # backoff capped at max_delay, plus jitter


@pytest.mark.parametrize("kind", KINDS)
def test_closed_port_raises_sink_error(kind: str) -> None:
    a = alert(1)
    sink = RetryingSink(
        WebhookSink(closed_port_url(), secret=SECRET, kind=kind, timeout=5),  # type: ignore[arg-type]
        attempts=2,
        sleep=no_sleep,
    )
    with pytest.raises(SinkError) as err:
        sink.send([a])
    assert err.value.unsent == (a.id,)
    sink.close()


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 413])
def test_client_errors_are_not_retried(status: int) -> None:
    a, b = alert(1), alert(2)
    with WebhookReceiver(secret=SECRET) as rx:
        rx.fail_next(1, status=status)
        with pytest.raises(SinkError) as err:
            webhook(rx, "json").send([a, b])
    assert err.value.unsent == (a.id,)
    assert rx.statuses == [status, 200]  # no second attempt for a; b delivered


def test_logs_and_errors_never_show_the_webhook_path_or_query(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with WebhookReceiver(secret=SECRET) as rx:
        rx.fail_next(1000, status=500)
        url = rx.url + "/services/T000/B000/XOXB-TOKEN?key=QUERY-SECRET"
        sink = RetryingSink(
            WebhookSink(url, secret="SIGNING-SECRET", kind="json"), attempts=2, sleep=no_sleep
        )
        with pytest.raises(SinkError) as err:
            sink.send([alert(1)])
    assert rx.paths[0].endswith("/services/T000/B000/XOXB-TOKEN?key=QUERY-SECRET")  # it was used
    for text in (caplog.text, str(err.value), repr(sink.inner)):
        assert "XOXB-TOKEN" not in text and "QUERY-SECRET" not in text and "SIGNING-SECRET" not in text
    assert "http://127.0.0.1" in caplog.text  # the host is named


def test_webhook_trims_the_body_to_max_bytes_and_signs_what_it_sends() -> None:
    records = [{"blob": "x" * 2000, "i": i, "more": ["y" * 2000] * 20} for i in range(5)]
    a = alert(1, records=records)
    with WebhookReceiver(secret=SECRET) as rx:
        WebhookSink(rx.url, secret=SECRET, max_bytes=20_000).send([a])
    (req,) = rx.requests
    assert len(req.body) <= 20_000 and req.verified
    sent = Alert.model_validate_json(req.body)
    assert sent.id == a.id and sent.evidence.truncated is True
    assert len(sent.evidence.records) < len(a.evidence.records)


# --- fan-out --------------------------------------------------------------------------------------


def test_multisink_tries_all_sinks_and_names_what_any_failed(tmp_path: Path) -> None:
    alerts = [alert(1), alert(2)]
    path = tmp_path / "alerts.jsonl"
    with WebhookReceiver(secret=SECRET) as rx:
        rx.fail_next(1000, status=500)
        multi = MultiSink([webhook(rx, "json", attempts=2), RetryingSink(JsonlSink(path), sleep=no_sleep)])
        with pytest.raises(SinkError) as err:
            multi.send(alerts)
    assert err.value.unsent == (alerts[0].id, alerts[1].id)
    assert [line["id"] for line in _lines(path.read_text())] == [
        alerts[0].id,
        alerts[1].id,
    ]  # still delivered


def test_multisink_reports_partial_failure_per_alert(tmp_path: Path) -> None:
    alerts = [alert(1), alert(2)]
    with WebhookReceiver(secret=SECRET) as rx:
        rx.fail_next(1, status=400)  # alert 1 refused for good, alert 2 accepted
        multi = MultiSink(
            [webhook(rx, "json"), RetryingSink(JsonlSink(tmp_path / "a.jsonl"), sleep=no_sleep)]
        )
        with pytest.raises(SinkError) as err:
            multi.send(alerts)
    assert err.value.unsent == (alerts[0].id,)


# --- open_sink ------------------------------------------------------------------------------------


def test_open_sink_stdout_and_jsonl(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = alert(1)
    for url in ("-", "stdout://"):
        sink = open_sink(url)
        assert isinstance(sink, RetryingSink) and isinstance(sink.inner, StdoutSink)
        sink.send([a])
    assert _lines(capsys.readouterr().out) == [_alert_json(a)] * 2
    path = tmp_path / "x" / "alerts.jsonl"
    sink = open_sink(f"jsonl://{path}")
    sink.send([a])
    assert _lines(path.read_text()) == [_alert_json(a)]


def test_open_sink_webhook_end_to_end() -> None:
    a = alert(1)
    with WebhookReceiver(secret=SECRET) as rx:
        sink = open_sink(rx.url, secret=SECRET, base_delay=0.001, max_delay=0.002)
        rx.fail_next(1)
        sink.send([a])
        sink.close()
    assert rx.statuses == [500, 200] and rx.requests[-1].verified


@pytest.mark.parametrize(
    ("url", "kind", "target"),
    [
        ("https://hooks.example.com/in", "json", "https://hooks.example.com/in"),
        ("slack+https://hooks.slack.com/services/T/B/X", "slack", "https://hooks.slack.com/services/T/B/X"),
        ("teams+https://example.webhook.office.com/w/1", "teams", "https://example.webhook.office.com/w/1"),
    ],
)
def test_open_sink_webhook_kinds(url: str, kind: str, target: str) -> None:
    sink = open_sink(url, secret=SECRET)
    assert isinstance(sink, RetryingSink)
    inner = sink.inner
    assert isinstance(inner, WebhookSink)
    assert (inner.kind, inner.url) == (kind, target)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "nothing",
        "ftp://host/secretpath?token=abc",
        "jsonl://",
        "https:///secretpath",
        "stdout://xml",
        "slack+http://hooks.slack.com/secretpath",
    ],
)
def test_open_sink_rejects_bad_urls_without_leaking_them(url: str) -> None:
    with pytest.raises(ConfigError) as err:
        open_sink(url)
    assert err.value.setting == "sinks"
    assert "secretpath" not in str(err.value) and "token" not in str(err.value)


def test_open_sinks_fans_out_and_needs_at_least_one(tmp_path: Path) -> None:
    multi = open_sinks([f"jsonl://{tmp_path}/a.jsonl", f"jsonl://{tmp_path}/b.jsonl"])
    a = alert(1)
    assert multi.send([a]).sent == (a.id,)
    assert (
        _lines((tmp_path / "a.jsonl").read_text())
        == _lines((tmp_path / "b.jsonl").read_text())
        == [_alert_json(a)]
    )
    with pytest.raises(ConfigError):
        open_sinks([])


def test_cloud_sinks_are_mapped_lazily() -> None:
    assert SINKS["sns"] == "adscore.sinks.sns:SnsSink"
    assert SINKS["pubsub"] == "adscore.sinks.pubsub:PubSubSink"
    assert SINKS["securityhub"] == "adscore.sinks.securityhub:SecurityHubSink"
    # Importing the package, the model and the chat/OCSF renderers loads no HTTP client, terminal or cloud SDK.
    code = (
        "import sys; before = set(sys.modules); "
        "import adscore.sinks, adscore.alerts, adscore.render.slack, adscore.render.teams, adscore.render.ocsf, adscore.render.asff; "
        "new = set(sys.modules) - before; "
        "print(','.join(sorted(m for m in new if m.split('.')[0] in ('httpx', 'rich', 'tenacity', 'boto3', 'botocore', 'google', 'azure'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
