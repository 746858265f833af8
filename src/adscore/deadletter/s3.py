"""``s3://BUCKET/PREFIX``: one object per dead letter, named after the source, the day and a hash."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Self

from adscore.deadletter import DeadLetterError, code_of
from adscore.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from adscore.deadletter import DeadLetter


class S3DeadLetterStore:
    """Put each letter's document at ``PREFIX/SOURCE/YYYY/MM/DD/<sha256>.json`` (a retry overwrites it)."""

    def __init__(self, bucket: str, prefix: str = "", client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = client

    @classmethod
    def from_url(cls, url: str) -> Self:
        bucket, _, prefix = url.split("://", 1)[1].partition("/")
        if not bucket:
            raise ConfigError("deadletter", "s3:// needs a bucket (s3://my-bucket/deadletter)")
        return cls(bucket, prefix)

    def _s3(self) -> Any:
        if self._client is None:
            from adscore.cloud.aws import client

            self._client = client("s3", max_attempts=5)
        return self._client

    def key(self, letter: DeadLetter) -> str:
        digest = hashlib.sha256(letter.location.encode() + b"\n" + letter.body).hexdigest()[:40]
        name = f"{letter.source}/{letter.at:%Y/%m/%d}/{digest}.json"
        return f"{self.prefix}/{name}" if self.prefix else name

    def put(self, letters: Sequence[DeadLetter]) -> None:
        try:
            for letter in letters:
                self._s3().put_object(
                    Bucket=self.bucket,
                    Key=self.key(letter),
                    Body=letter.to_json(),
                    ContentType="application/json",
                )
        except Exception as exc:
            raise DeadLetterError(f"S3 dead-letter bucket {self.bucket}: {code_of(exc)}") from exc

    def close(self) -> None:
        """Nothing to release."""
