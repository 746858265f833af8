"""Azure helpers: the settings file fetched from Blob Storage.

``azure-storage-blob`` is imported inside the function, so importing this module costs nothing.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from adscore.errors import ConfigError

__all__ = ["MAX_CONFIG_BYTES", "fetch_blob"]

MAX_CONFIG_BYTES = 1_048_576
"""A settings file fetched from Blob Storage may be at most this long."""


def fetch_blob(url: str) -> str:
    """Read a settings file from Azure Blob Storage.

    Parameters
    ----------
    url : str
        ``azureblob://CONTAINER/path/to/adscore.yaml``, with the connection of
        ``ADSCORE_STATE`` and ``ADSCORE_DEADLETTER``: the ``AzureWebJobsStorage``
        app setting, ``?connection=APP_SETTING``, or ``?endpoint=https://ACCOUNT.blob.core.windows.net``
        (managed identity).

    Returns
    -------
    str
        The blob's text (UTF-8).

    Raises
    ------
    ConfigError
        ``config``: malformed URL, a connection that is not set, a blob that
        cannot be read (the error code is named) or is over 1 MiB.

    Example
    -------
    >>> fetch_blob("azureblob://adscore-config/adscore.yaml")  # doctest: +SKIP
    """
    from adscore.state.azure_table import default_credential, storage_target

    parts = urlsplit(url.strip())
    blob = parts.path.lstrip("/")
    if parts.scheme.lower() != "azureblob" or not parts.netloc or not blob:
        raise ConfigError("config", "a settings blob is azureblob://CONTAINER/path/to/file.yaml")
    bare = urlunsplit((parts.scheme, parts.netloc, "", parts.query, ""))
    target = storage_target(bare, "azureblob", "blob", setting="config")
    from azure.storage.blob import BlobClient

    client: Any
    if target.connection_string:
        client = BlobClient.from_connection_string(target.connection_string, target.name, blob)
    else:
        client = BlobClient(f"{target.endpoint}", target.name, blob, credential=default_credential("config"))
    try:
        with client:
            size = int(client.get_blob_properties().size)
            if size > MAX_CONFIG_BYTES:
                raise ConfigError("config", f"the settings blob is {size} bytes (at most {MAX_CONFIG_BYTES})")
            data: bytes = client.download_blob().readall()
    except ConfigError:
        raise
    except Exception as exc:
        code = getattr(exc, "error_code", None) or type(exc).__name__
        raise ConfigError("config", f"cannot read the settings blob {parts.netloc}/{blob}: {code}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError("config", "the settings blob is not UTF-8 text") from exc
