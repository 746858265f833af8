"""``sqs://QUEUE``: one SQS message per dead letter (the queue's name, or ``sqs://HOST/ACCOUNT/NAME``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

from adscore.deadletter import DeadLetterError, code_of
from adscore.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from adscore.deadletter import DeadLetter

#: An SQS message holds 256 KiB; keep room for the attributes.
MAX_MESSAGE = 250_000


class SqsDeadLetterStore:
    """Send each letter's document as one message, with the reason as a message attribute."""

    def __init__(self, queue: str, client: Any = None) -> None:
        self.queue = queue
        self._client = client
        self._url: str | None = queue if queue.startswith("https://") else None

    @classmethod
    def from_url(cls, url: str) -> Self:
        rest = url.split("://", 1)[1].strip("/")
        if not rest:
            raise ConfigError("deadletter", "sqs:// needs a queue name (sqs://adscore-deadletter)")
        return cls(f"https://{rest}" if "/" in rest else rest)

    def _sqs(self) -> Any:
        if self._client is None:
            from adscore.cloud.aws import client

            self._client = client("sqs", max_attempts=5)
        return self._client

    def _queue_url(self) -> str:
        if self._url is None:
            self._url = str(self._sqs().get_queue_url(QueueName=self.queue)["QueueUrl"])
        return self._url

    def put(self, letters: Sequence[DeadLetter]) -> None:
        try:
            url = self._queue_url()
            for letter in letters:
                self._sqs().send_message(
                    QueueUrl=url,
                    MessageBody=letter.to_json(MAX_MESSAGE).decode(),
                    MessageAttributes={
                        "adscore_reason": {"DataType": "String", "StringValue": letter.reason[:1000] or "-"},
                        "adscore_source": {"DataType": "String", "StringValue": letter.source[:200] or "-"},
                    },
                )
        except Exception as exc:
            raise DeadLetterError(f"SQS dead-letter queue {self.queue}: {code_of(exc)}") from exc

    def close(self) -> None:
        """Nothing to release."""
