"""The PagerDuty Events API v2 sink, against a local server that checks each request.

No PagerDuty emulator exists: ``tests/integration/pagerduty_receiver.py`` checks
every request against the documented Events API v2 schema and limits (routing
key, event action, dedup key of at most 255 characters, summary of at most
1,024, source, severity enum, ISO 8601 timestamp, no unknown field, 512 KB per
event) and answers as the API does (202, or 400 with the errors).
"""

from __future__ import annotations

import logging

import pytest

from adscore.errors import ConfigError, SinkError
from adscore.sinks import SINKS, open_sink
from adscore.sinks.base import RetryingSink
from adscore.sinks.pagerduty import ENDPOINTS, PagerDutySink
from tests.contract.test_alert_sink import alert, no_sleep
from tests.integration.pagerduty_receiver import PagerDutyReceiver, problems

KEY = "R0UT1NGKEY0123456789abcdefABCDEF"


def test_an_alert_triggers_an_event_with_dedup_key_and_mapped_severity() -> None:
    a = alert(1, ads_url="https://ads.example.com/snapshot.shared_external")
    with PagerDutyReceiver() as pd:
        report = PagerDutySink(KEY, pd.endpoint).send([a])
    assert report.sent == (a.id,)
    (req,) = pd.requests
    assert req.status == 202, req.errors
    event = req.event
    assert event["routing_key"] == KEY and event["event_action"] == "trigger"
    assert event["dedup_key"] == a.id
    payload = event["payload"]
    assert payload["severity"] == "error"  # high
    assert payload["summary"] == a.title
    assert payload["source"] == "111122223333"
    assert (payload["component"], payload["group"], payload["class"]) == (
        "snapshot.shared_external",
        "aws",
        "T1578.001",
    )
    assert payload["timestamp"] == "2024-05-01T12:01:00Z"
    details = payload["custom_details"]
    assert details["alert_id"] == a.id and details["response"] == ["Revoke the share"]
    assert details["evidence_event_ids"] == ["e-1"] and "records" not in details
    assert event["links"] == [{"href": a.ads_url, "text": "ADS: snapshot.shared_external"}]


@pytest.mark.parametrize(
    ("severity", "expected"),
    [("critical", "critical"), ("high", "error"), ("medium", "warning"), ("low", "info"), ("info", "info")],
)
def test_severity_mapping(severity: str, expected: str) -> None:
    with PagerDutyReceiver() as pd:
        PagerDutySink(KEY, pd.endpoint).send([alert(1, severity=severity)])
    assert [r.event["payload"]["severity"] for r in pd.accepted] == [expected]


def test_the_same_alert_again_has_the_same_dedup_key() -> None:
    # PagerDuty merges events with one dedup_key into one alert: a redelivery does not page twice.
    a, grown = alert(1), alert(1, count=9)
    with PagerDutyReceiver() as pd:
        PagerDutySink(KEY, pd.endpoint).send([a, grown, alert(2)])
    keys = [r.event["dedup_key"] for r in pd.accepted]
    assert keys == [a.id, a.id, alert(2).id]


def test_long_and_hostile_text_stays_within_the_limits() -> None:
    a = alert(1, title="@here " + "T" * 2000, account=None, summary="<script>" * 200)
    with PagerDutyReceiver() as pd:
        PagerDutySink(KEY, pd.endpoint).send([a])
    (req,) = pd.requests
    assert req.status == 202, req.errors
    assert req.event["payload"]["summary"] == a.title and len(a.title) <= 1024
    assert req.event["payload"]["source"] == "aws"  # no account: the cloud


def test_throttling_and_outages_are_retried() -> None:
    a = alert(1)
    with PagerDutyReceiver() as pd:
        pd.fail_next(1, status=429)
        pd.fail_next(1, status=502)
        report = RetryingSink(PagerDutySink(KEY, pd.endpoint), sleep=no_sleep).send([a])
    assert report.sent == (a.id,)
    assert [r.status for r in pd.requests] == [429, 502, 202]


def test_an_invalid_event_is_a_permanent_failure() -> None:
    # GIVEN a server that refuses the event (400), THEN no retry and the id is unsent
    a = alert(1)
    with PagerDutyReceiver() as pd:
        pd.fail_next(1, status=400)
        with pytest.raises(SinkError) as err:
            RetryingSink(PagerDutySink(KEY, pd.endpoint), sleep=no_sleep).send([a])
    assert err.value.unsent == (a.id,)
    assert len(pd.requests) == 1


def test_the_checking_server_does_refuse_bad_events() -> None:
    good = {
        "routing_key": KEY,
        "event_action": "trigger",
        "payload": {"summary": "s", "source": "x", "severity": "info"},
    }
    assert problems(good) == []
    assert problems({**good, "routing_key": "short"})
    assert problems({**good, "payload": {**good["payload"], "severity": "high"}})  # type: ignore[dict-item]
    assert problems({**good, "payload": {**good["payload"], "summary": "x" * 1025}})  # type: ignore[dict-item]
    assert problems({**good, "dedup_key": "k" * 256})
    assert problems({**good, "extra": 1})


def test_urls_and_the_key_never_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    assert SINKS["pagerduty"] == "adscore.sinks.pagerduty:PagerDutySink"
    sink = open_sink(f"pagerduty://{KEY}")
    assert isinstance(sink, RetryingSink) and isinstance(sink.inner, PagerDutySink)
    assert sink.inner.endpoint == ENDPOINTS["us"]
    eu = open_sink(f"pagerduty://{KEY}?region=eu")
    assert isinstance(eu, RetryingSink) and isinstance(eu.inner, PagerDutySink)
    assert eu.inner.endpoint == ENDPOINTS["eu"]
    assert KEY not in repr(sink.inner)
    caplog.set_level(logging.DEBUG)
    with PagerDutyReceiver() as pd:
        pd.fail_next(10, status=500)
        s = open_sink(
            f"pagerduty://{KEY}?endpoint={pd.endpoint}", attempts=2, base_delay=0.001, max_delay=0.002
        )
        with pytest.raises(SinkError) as err:
            s.send([alert(1)])
    assert KEY not in caplog.text and KEY not in str(err.value)
    for bad in ("pagerduty://short", f"pagerduty://{KEY}?region=mars", f"pagerduty://{KEY}?endpoint=ftp://x"):
        with pytest.raises(ConfigError) as cerr:
            open_sink(bad)
        assert KEY not in str(cerr.value)
