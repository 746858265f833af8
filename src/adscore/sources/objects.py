"""Read log archives straight from object storage: ``s3://``, ``az://`` and Azure Blob URLs.

Every object under the prefix is listed with the platform's own client and credential chain,
filtered by the day its key names when ``since`` / ``until`` are given, and streamed record by
record like a local file (:func:`adscore.sources.files.stream_object`: gzip by its magic bytes,
JSON Lines or a document, bounded memory whatever the object's size). CloudTrail's digest and
Insight files, zero-byte objects and folder markers are skipped by name.

- ``s3://bucket/prefix``: boto3 (``pip install 'adscore[aws]'``), the standard credential chain
  and ``AWS_ENDPOINT_URL``.
- ``gs://bucket/prefix``: google-cloud-storage (``pip install 'adscore[gcs]'``), Application
  Default Credentials (``STORAGE_EMULATOR_HOST`` for an emulator);
- ``az://container/prefix`` (the account from ``AZURE_STORAGE_CONNECTION_STRING``, else
  ``AZURE_STORAGE_ACCOUNT`` with ``DefaultAzureCredential``) and
  ``https://<account>.blob.core.windows.net/<container>/<prefix>``: azure-storage-blob
  (``pip install 'adscore[azure]'``).

Keys are dated by the standard layouts: CloudTrail ``AWSLogs/[o-org/]<account>/CloudTrail/<region>/
YYYY/MM/DD/``, Azure diagnostic containers ``.../y=YYYY/m=MM/d=DD/...``, GCS log sinks
``.../YYYY/MM/DD/...``. A key with no date in it is always read.
"""

from __future__ import annotations

import os
import re
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from adscore.events import RecordError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["SCHEMES", "is_object_url", "key_day", "list_objects", "read_objects"]

SCHEMES = ("s3://", "gs://", "az://", "https://<account>.blob.core.windows.net/")
"""Object-store URLs ``adscore replay`` reads."""
_AZURE_HTTPS = re.compile(r"^https://([a-z0-9]+)\.blob\.core\.windows\.net/([^/]+)/?(.*)$")
_DAY = re.compile(r"/(?:y=)?(\d{4})/(?:m=)?(\d{2})/(?:d=)?(\d{2})(?:/|$)")
_SKIPPED = ("/CloudTrail-Digest/", "/CloudTrail-Insight/")


def is_object_url(path: str) -> bool:
    """True for a URL this module reads."""
    return path.startswith(("s3://", "gs://", "az://")) or _AZURE_HTTPS.match(path) is not None


def key_day(key: str) -> date | None:
    """The day a standard log layout puts in an object key, or None.

    Example
    -------
    >>> key_day("AWSLogs/111122223333/CloudTrail/eu-west-1/2024/05/06/x.json.gz")
    datetime.date(2024, 5, 6)
    >>> key_day("insights-activity-logs/resourceId=/SUBSCRIPTIONS/S/y=2024/m=05/d=06/h=10/m=00/PT1H.json")
    datetime.date(2024, 5, 6)
    """
    m = _DAY.search("/" + key)
    if m is None:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def _wanted(key: str, size: int, since: datetime | None, until: datetime | None) -> bool:
    if not size or key.endswith("/") or any(s in f"/{key}" for s in _SKIPPED):
        return False
    day = key_day(key)
    if day is None:
        return True
    return not ((since is not None and day < since.date()) or (until is not None and day > until.date()))


class _Store:
    """One container of objects: list keys under a prefix, open one for reading."""

    url: str
    prefix: str
    errors: tuple[type[BaseException], ...] = ()

    def __init__(self, url: str) -> None:
        self.url = url

    def listing(self) -> Iterator[tuple[str, int]]:
        raise NotImplementedError

    def open(self, key: str) -> Any:
        raise NotImplementedError

    def location(self, key: str) -> str:
        raise NotImplementedError


class _S3(_Store):
    def __init__(self, url: str) -> None:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        self.url = url
        self.bucket, _, self.prefix = url[len("s3://") :].partition("/")
        if not self.bucket:
            raise ValueError("no bucket in the URL (s3://BUCKET/PREFIX)")
        self.client = boto3.client("s3")
        self.region = str(self.client.meta.region_name or "us-east-1")
        self.errors = (ClientError, BotoCoreError)

    def listing(self) -> Iterator[tuple[str, int]]:
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            for obj in page.get("Contents", ()):
                yield obj["Key"], int(obj.get("Size") or 0)

    def open(self, key: str) -> Any:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"]

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


class _GCS(_Store):
    def __init__(self, url: str) -> None:
        import google.cloud.storage as storage
        from google.api_core.exceptions import GoogleAPIError
        from google.auth.exceptions import GoogleAuthError

        self.url = url
        self.bucket, _, self.prefix = url[len("gs://") :].partition("/")
        if not self.bucket:
            raise ValueError("no bucket in the URL (gs://BUCKET/PREFIX)")
        try:
            self.client = storage.Client()
        except GoogleAuthError as e:
            raise ValueError(f"gs:// needs Application Default Credentials: {str(e).splitlines()[0][:200]}") from e
        self.errors = (GoogleAPIError, GoogleAuthError)

    def listing(self) -> Iterator[tuple[str, int]]:
        for blob in self.client.list_blobs(self.bucket, prefix=self.prefix or None):
            yield blob.name, int(blob.size or 0)

    def open(self, key: str) -> Any:
        return self.client.bucket(self.bucket).blob(key).open("rb", chunk_size=1 << 20)

    def location(self, key: str) -> str:
        return f"gs://{self.bucket}/{key}"


class _Chunks:
    """``read(n)`` over an iterator of byte chunks (an Azure download)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""

    def read(self, size: int = -1, /) -> bytes:
        while not self._buf:
            self._buf = next(self._chunks, b"")
            if not self._buf:
                return b""
        n = len(self._buf) if size < 0 else size
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def close(self) -> None:
        self._chunks = iter(())


class _AzureBlob(_Store):
    def __init__(self, url: str) -> None:
        from azure.core.exceptions import AzureError
        from azure.storage.blob import ContainerClient

        self.url = url
        https = _AZURE_HTTPS.match(url)
        if https is not None:
            account, container, self.prefix = https.group(1), https.group(2), https.group(3)
        else:
            container, _, self.prefix = url[len("az://") :].partition("/")
            account = os.environ.get("AZURE_STORAGE_ACCOUNT", "")
        if not container:
            raise ValueError("no container in the URL (az://CONTAINER/PREFIX)")
        connection = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
        if connection and https is None:
            self.client = ContainerClient.from_connection_string(connection, container)
        else:
            if not account:
                raise ValueError("az:// needs AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT")
            from azure.identity import DefaultAzureCredential

            self.client = ContainerClient(
                f"https://{account}.blob.core.windows.net", container, credential=DefaultAzureCredential()
            )
        self.container = container
        self.errors = (AzureError,)

    def listing(self) -> Iterator[tuple[str, int]]:
        for blob in self.client.list_blobs(name_starts_with=self.prefix or None):
            yield blob.name, int(blob.size or 0)

    def open(self, key: str) -> Any:
        return _Chunks(self.client.download_blob(key).chunks())

    def location(self, key: str) -> str:
        return f"az://{self.container}/{key}"


def _store(url: str) -> _Store | str:
    """The store for ``url``, or why there is none (unsupported, a client library missing)."""
    if url.startswith("s3://"):
        factory: type[_Store] = _S3
        extra = "aws"
    elif url.startswith("gs://"):
        factory, extra = _GCS, "gcs"
    elif url.startswith("az://") or _AZURE_HTTPS.match(url):
        factory, extra = _AzureBlob, "azure"
    else:
        return f"unsupported object store URL {url!r} (supported: {', '.join(SCHEMES)})"
    try:
        return factory(url)
    except ImportError:
        return f"reading {url.split('://', 1)[0]}:// needs its client library: pip install 'adscore[{extra}]'"
    except ValueError as e:
        return str(e)


def list_objects(
    url: str, *, since: datetime | None = None, until: datetime | None = None
) -> Iterator[tuple[str, str, int, str] | str]:
    """S3 only: ``(bucket, key, size, region)`` of every log object under ``url`` in the day range, or an error text."""
    store = _store(url)
    if isinstance(store, str):
        yield store
        return
    if not isinstance(store, _S3):
        yield f"{url}: only s3:// archives can be listed for an AWS backfill"
        return
    try:
        for key, size in store.listing():
            if _wanted(key, size, since, until):
                yield store.bucket, key, size, store.region
    except store.errors as e:
        yield f"cannot list {url}: {_reason(e)}"


def read_objects(
    url: str, *, since: datetime | None = None, until: datetime | None = None
) -> Iterator[tuple[str, Any] | RecordError]:
    """Yield ``(location, record)`` for every record of every object under ``url``, or RecordErrors.

    A bucket, container or prefix that cannot be listed, and an object that cannot be read, are
    RecordErrors (with the service's error code), never exceptions; an object that fails part-way
    keeps the records read before the failure.
    """
    from adscore.sources.files import stream_object

    store = _store(url)
    if isinstance(store, str):
        yield _error(url, store)
        return
    read_errors: tuple[type[BaseException], ...] = (OSError, *store.errors)
    try:
        for key, size in store.listing():
            if not _wanted(key, size, since, until):
                continue
            location = store.location(key)
            try:
                body = store.open(key)
                try:
                    yield from stream_object(body, location)
                finally:
                    body.close()
            except read_errors as e:
                yield _error(location, f"cannot read the object: {_reason(e)}")
    except store.errors as e:
        yield _error(url, f"cannot list {url}: {_reason(e)}")


def _error(location: str, reason: str) -> RecordError:
    return RecordError(family="input", reason=reason[:1024], location=location, excerpt="")


def _reason(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error") or {}
        return f"{err.get('Code', type(exc).__name__)}: {str(err.get('Message', ''))[:200]}"
    code = getattr(exc, "error_code", None)
    text = str(getattr(exc, "message", None) or exc).splitlines()[0] if str(exc) else ""
    return f"{code or type(exc).__name__}: {text[:200]}"
