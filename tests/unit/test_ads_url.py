"""``ads_url`` on every alert, from the ``ads_base_url`` setting."""

from __future__ import annotations

from typing import Any

import pytest

from adscore.errors import ConfigError
from adscore.settings import load_settings
from adscore.testing import run_records
from tests.unit.test_cli import _ct

SHARE = _ct(
    5,
    name="ModifySnapshotAttribute",
    requestParameters={
        "snapshotId": "snap-5",
        "attributeType": "CREATE_VOLUME_PERMISSION",
        "createVolumePermission": {"add": {"items": [{"userId": "999988887777"}]}},
    },
    responseElements={"_return": True},
)


def _alerts(settings: dict[str, Any] | None = None) -> list[Any]:
    alerts = run_records([SHARE], settings).alerts
    assert alerts
    return alerts


def test_without_the_setting_ads_url_is_null() -> None:
    assert {a.ads_url for a in _alerts()} == {None}


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("https://wiki.example.com/ads", "https://wiki.example.com/ads/{id}"),
        ("https://wiki.example.com/ads/", "https://wiki.example.com/ads/{id}"),
        (
            "https://github.com/acme/adscore/blob/main/ads/{id}.md",
            "https://github.com/acme/adscore/blob/main/ads/{id}.md",
        ),
    ],
)
def test_ads_url_is_the_base_and_the_detection_id(base: str, expected: str) -> None:
    for a in _alerts({"ads_base_url": base}):
        assert a.ads_url == expected.replace("{id}", a.detection)


def test_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADSCORE_ADS_BASE_URL", "https://ads.example.com")
    assert load_settings(None).ads_url("snapshot.burst") == "https://ads.example.com/snapshot.burst"


def test_a_base_that_is_not_a_web_url_fails_naming_the_setting() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, ads_base_url="javascript:alert(1)")
    assert err.value.setting == "ads_base_url"
