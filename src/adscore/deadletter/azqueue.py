"""``azqueue://QUEUE`` (or ``azurequeue://``): one Azure Storage queue message per dead letter.

Takes ``?connection=SETTING`` or ``?endpoint=URL`` like the Azure Table state URL (default
connection: ``AzureWebJobsStorage``). A message holds 64 KiB base64-encoded: long bodies are cut.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Self

from adscore.deadletter import DeadLetterError, code_of

if TYPE_CHECKING:
    from collections.abc import Sequence

    from adscore.deadletter import DeadLetter

MAX_QUEUE_JSON = 45_000


class AzureQueueDeadLetterStore:
    """Send each letter's document (base64 JSON) to a queue, creating the queue on first use."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._ready = False

    @classmethod
    def from_url(cls, url: str) -> Self:
        from azure.storage.queue import QueueClient, TextBase64EncodePolicy

        from adscore.state.azure_table import default_credential, storage_target

        target = storage_target(url, url.split("://", 1)[0].lower(), "queue", setting="deadletter")
        encode = TextBase64EncodePolicy()
        if target.connection_string:
            return cls(
                QueueClient.from_connection_string(
                    target.connection_string, target.name, message_encode_policy=encode
                )
            )
        credential = default_credential("deadletter")
        return cls(
            QueueClient(
                str(target.endpoint), target.name, credential=credential, message_encode_policy=encode
            )
        )

    def put(self, letters: Sequence[DeadLetter]) -> None:
        from azure.core.exceptions import ResourceExistsError

        try:
            if not self._ready:
                with contextlib.suppress(ResourceExistsError):
                    self.client.create_queue()
                self._ready = True
            for letter in letters:
                self.client.send_message(letter.to_json(MAX_QUEUE_JSON).decode())
        except Exception as exc:
            raise DeadLetterError(f"Azure dead-letter queue: {code_of(exc)}") from exc

    def close(self) -> None:
        self.client.close()
