"""``azblob://CONTAINER`` (or ``azureblob://``): one blob per dead letter.

Takes ``?connection=SETTING`` or ``?endpoint=URL`` like the Azure Table state URL (default
connection: ``AzureWebJobsStorage``). Blobs are named ``SOURCE/YYYY/MM/DD/<sha256>.json``: a retry
the same day overwrites the same blob.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import TYPE_CHECKING, Any, Self

from adscore.deadletter import DeadLetterError, code_of

if TYPE_CHECKING:
    from collections.abc import Sequence

    from adscore.deadletter import DeadLetter


class AzureBlobDeadLetterStore:
    """Upload each letter's document as a blob, creating the container on first use."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._ready = False

    @classmethod
    def from_url(cls, url: str) -> Self:
        from azure.storage.blob import ContainerClient

        from adscore.state.azure_table import default_credential, storage_target

        target = storage_target(url, url.split("://", 1)[0].lower(), "blob", setting="deadletter")
        if target.connection_string:
            return cls(ContainerClient.from_connection_string(target.connection_string, target.name))
        credential = default_credential("deadletter")
        return cls(ContainerClient(str(target.endpoint), target.name, credential=credential))

    @staticmethod
    def name(letter: DeadLetter) -> str:
        digest = hashlib.sha256(letter.location.encode() + b"\n" + letter.body).hexdigest()[:40]
        return f"{letter.source}/{letter.at:%Y/%m/%d}/{digest}.json"

    def put(self, letters: Sequence[DeadLetter]) -> None:
        from azure.core.exceptions import ResourceExistsError

        try:
            if not self._ready:
                with contextlib.suppress(ResourceExistsError):
                    self.client.create_container()
                self._ready = True
            for letter in letters:
                self.client.upload_blob(self.name(letter), letter.to_json(), overwrite=True)
        except Exception as exc:
            raise DeadLetterError(f"Azure dead-letter container: {code_of(exc)}") from exc

    def close(self) -> None:
        self.client.close()
