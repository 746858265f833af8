"""Webhook signatures per the Standard Webhooks specification, checked by its own library.

Requests go to the loopback receiver over a real connection; what it received
is verified with ``standardwebhooks.Webhook.verify`` (the specification's Python
library), and with the documented ``X-Adscore-Signature`` check for the
existing scheme.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from adscore.errors import ConfigError
from adscore.sinks import open_sink
from adscore.sinks.base import RetryingSink
from adscore.sinks.webhook import WebhookSink
from tests.contract.test_alert_sink import SECRET, alert, no_sleep
from tests.integration.webhook_receiver import WebhookReceiver, verify

WHSEC = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def _verify_standard(secret: str | bytes, headers: dict[str, str], body: bytes) -> Any:
    return Webhook(secret).verify(body, headers)


def test_standard_signature_is_accepted_by_the_libraries_verifier() -> None:
    a = alert(1)
    with WebhookReceiver() as rx:
        WebhookSink(rx.url + "?adscore_signature=standard", secret=WHSEC).send([a])
    (req,) = rx.requests
    # the specification's verifier, with the secret as the specification writes it
    assert _verify_standard(WHSEC, req.headers, req.body) == orjson.loads(a.to_json())
    assert req.headers["webhook-id"].startswith(a.id + "-")
    assert abs(int(req.headers["webhook-timestamp"]) - time.time()) < 60
    assert req.headers["webhook-signature"].startswith("v1,")
    assert "x-adscore-signature" not in req.headers  # standard only
    assert req.headers["x-adscore-alert-id"] == a.id  # dedup header kept
    # and it does check: another secret, a changed body, an old timestamp all fail
    other = "whsec_" + base64.b64encode(b"another key, 32 bytes long......").decode()
    with pytest.raises(WebhookVerificationError):
        _verify_standard(other, req.headers, req.body)
    with pytest.raises(WebhookVerificationError):
        _verify_standard(WHSEC, req.headers, req.body + b" ")
    old = {**req.headers, "webhook-timestamp": str(int(req.headers["webhook-timestamp"]) - 3600)}
    with pytest.raises(WebhookVerificationError):
        _verify_standard(WHSEC, old, req.body)


def test_a_plain_secret_keys_the_standard_signature_with_its_utf8_bytes() -> None:
    with WebhookReceiver() as rx:
        WebhookSink(rx.url, secret=SECRET, signature="standard").send([alert(1)])
    (req,) = rx.requests
    assert _verify_standard(SECRET.encode(), req.headers, req.body)["id"] == alert(1).id


def test_both_schemes_at_once_for_a_migration() -> None:
    with WebhookReceiver(secret=SECRET) as rx:
        open_sink(rx.url + "?keep=1&adscore_signature=both", secret=SECRET).send([alert(1)])
    (req,) = rx.requests
    assert req.verified is True and verify(SECRET, req.headers, req.body)  # existing receivers
    assert _verify_standard(SECRET.encode(), req.headers, req.body)  # Standard Webhooks receivers
    # the choice is not sent to the receiver; its own parameters are
    assert rx.paths[0].endswith("?keep=1")


def test_the_default_stays_the_existing_scheme() -> None:
    with WebhookReceiver(secret=SECRET) as rx:
        sink = open_sink(rx.url, secret=SECRET)
        sink.send([alert(1)])
    (req,) = rx.requests
    assert req.verified is True
    assert not any(h.startswith("webhook-") for h in req.headers)
    assert isinstance(sink, RetryingSink) and "signature='adscore'" in repr(sink.inner)


def test_a_retry_keeps_the_message_id_and_signs_afresh() -> None:
    a = alert(1)
    with WebhookReceiver() as rx:
        rx.fail_next(1, status=503)
        RetryingSink(WebhookSink(rx.url, secret=WHSEC, signature="standard"), sleep=no_sleep).send([a])
        WebhookSink(rx.url, secret=WHSEC, signature="standard").send([alert(1, count=9)])
    first, retry, changed = rx.requests
    assert first.headers["webhook-id"] == retry.headers["webhook-id"]
    assert changed.headers["webhook-id"] != first.headers["webhook-id"]  # new content, new message
    assert changed.headers["webhook-id"].startswith(a.id + "-")
    for req in (first, retry, changed):
        _verify_standard(WHSEC, req.headers, req.body)


def test_without_a_secret_no_signature_headers() -> None:
    with WebhookReceiver() as rx:
        WebhookSink(rx.url, signature="both").send([alert(1)])
    (req,) = rx.requests
    assert not any(h.startswith("webhook-") or h == "x-adscore-signature" for h in req.headers)


@pytest.mark.parametrize("kind", ["slack", "teams"])
def test_chat_webhooks_stay_unsigned(kind: str) -> None:
    with WebhookReceiver() as rx:
        sink = WebhookSink.from_url(f"{kind}+{rx.url}?adscore_signature=standard", secret=WHSEC)
        sink.send([alert(1)])
    (req,) = rx.requests
    assert not any(h.startswith("webhook-") for h in req.headers)
    assert "adscore_signature" not in rx.paths[0]


def test_bad_choices_fail_at_start_naming_the_setting() -> None:
    with pytest.raises(ConfigError) as err:
        open_sink("https://hooks.example.com/in?adscore_signature=sha1&token=SECRETQ")
    assert err.value.setting == "sinks" and "SECRETQ" not in str(err.value)
    with pytest.raises(ConfigError) as err:
        WebhookSink("https://hooks.example.com/in", secret="whsec_!!!not base64", signature="standard")
    assert err.value.setting == "webhook_secret" and "not base64" not in str(err.value)
