"""The loopback webhook receiver tests use: it lives in :mod:`adscore.emulate.receiver` (``adscore emulate`` uses it too)."""

from __future__ import annotations

from adscore.emulate.receiver import MAX_AGE_SECONDS, Received, WebhookReceiver, verify

__all__ = ["MAX_AGE_SECONDS", "Received", "WebhookReceiver", "verify"]
