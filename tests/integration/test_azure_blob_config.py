"""Settings from Azure Blob Storage (``ADSCORE_CONFIG=azureblob://CONTAINER/file.yaml``), against Azurite.

With it an Azure function is tuned by uploading a file, and picks the change up
while warm (``settings_max_age_seconds``), instead of only from app settings.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from adscore import runtime
from adscore.errors import ConfigError
from adscore.settings import load_settings
from tests.integration import azurite as _azurite
from tests.unit.test_settings_refresh import shared_alerts

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.integration.azurite import Azurite

pytestmark = pytest.mark.integration
azurite = _azurite.azurite  # the session fixture


@pytest.fixture
def container(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from azure.storage.blob import ContainerClient

    for name in ("ADSCORE_STATE", "ADSCORE_SINKS", "ADSCORE_WEBHOOK_SECRET", "ADSCORE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    name = azurite.table_name("cfg")
    client = ContainerClient.from_connection_string(azurite.connection_string, name)
    client.create_container()
    runtime.reset_engine()
    yield client
    runtime.reset_engine()
    client.delete_container()


def test_settings_are_read_from_a_blob(container: Any) -> None:
    container.upload_blob(
        "tuning/adscore.yaml", b"detections: {snapshot.burst: {threshold: 9}}\nalert_dedup_hours: 6\n"
    )
    name = container.container_name
    settings = load_settings(f"azureblob://{name}/tuning/adscore.yaml")
    assert settings.params_for("snapshot.burst") == {"threshold": 9}
    assert settings.alert_dedup_hours == 6


def test_a_missing_blob_or_connection_fails_naming_the_setting(
    container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = container.container_name
    with pytest.raises(ConfigError) as err:
        load_settings(f"azureblob://{name}/nothing.yaml")
    assert err.value.setting == "config" and "BlobNotFound" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_settings("azureblob://just-a-container")
    assert err.value.setting == "config"
    monkeypatch.delenv("AzureWebJobsStorage")
    with pytest.raises(ConfigError) as err:
        load_settings(f"azureblob://{name}/adscore.yaml")
    assert err.value.setting == "config" and "AzureWebJobsStorage" in str(err.value)


def test_a_warm_engine_picks_up_an_uploaded_allowlist(
    container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a warm engine whose settings come from a blob
    name = container.container_name
    monkeypatch.setenv("ADSCORE_CONFIG", f"azureblob://{name}/adscore.yaml")
    container.upload_blob("adscore.yaml", b"settings_max_age_seconds: 0.5\n")
    assert shared_alerts(1)
    # WHEN alice is allowlisted in the blob
    container.upload_blob(
        "adscore.yaml",
        b"settings_max_age_seconds: 0.5\nallowlists: {principals: ['arn:aws:iam::111122223333:user/alice']}\n",
        overwrite=True,
    )
    time.sleep(0.75)
    # THEN the same process stops alerting on her
    assert shared_alerts(2) == []
