"""``pubsub://projects/P/topics/T``: one Pub/Sub message per dead letter.

The message's data is the original bytes (so it can be republished to the function's topic once
the cause is fixed); ``adscore_reason``, ``adscore_location``, ``adscore_source`` and
``adscore_message_id`` are attributes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

from adscore.deadletter import DeadLetterError, code_of

if TYPE_CHECKING:
    from collections.abc import Sequence

    from adscore.deadletter import DeadLetter

#: A Pub/Sub message holds 10 MB; attributes included.
MAX_DATA = 9_000_000


class PubSubDeadLetterStore:
    """Publish each letter's bytes with its reason as attributes, and wait for the publish."""

    def __init__(self, topic: str, publisher: Any = None, *, timeout: float = 30.0) -> None:
        self.topic = topic
        self.timeout = timeout
        self._publisher = publisher

    @classmethod
    def from_url(cls, url: str) -> Self:
        from adscore.sinks.pubsub import topic_name

        return cls(topic_name(url.split("://", 1)[1], "deadletter"))

    def _client(self) -> Any:
        if self._publisher is None:
            from google.cloud.pubsub_v1 import PublisherClient
            from google.cloud.pubsub_v1.types import BatchSettings

            self._publisher = PublisherClient(batch_settings=BatchSettings(max_latency=0.01))
        return self._publisher

    def put(self, letters: Sequence[DeadLetter]) -> None:
        try:
            futures = []
            for letter in letters:
                attributes = {
                    "adscore_reason": letter.reason[:1024] or "-",
                    "adscore_location": letter.location[:1024] or "-",
                    "adscore_source": letter.source[:256] or "-",
                }
                if letter.message_id:
                    attributes["adscore_message_id"] = letter.message_id[:256]
                futures.append(self._client().publish(self.topic, letter.body[:MAX_DATA], **attributes))
            for future in futures:
                future.result(timeout=self.timeout)
        except Exception as exc:
            raise DeadLetterError(f"Pub/Sub dead-letter topic {self.topic}: {code_of(exc)}") from exc

    def close(self) -> None:
        """The publisher is shared by the process; nothing to release."""
