"""A warm function picks up changed settings after ``settings_max_age_seconds``, without a restart.

The process-wide engine (:func:`adscore.runtime.get_engine`, what every cloud
function's handler runs through) reads ``ADSCORE_CONFIG`` again once its
settings are older than the max age; an invalid update keeps the last good
settings and logs an error naming the setting.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import pytest

from adscore import runtime
from tests.unit.test_cli import _ct

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

MAX_AGE = 0.5


def share(i: int) -> dict[str, Any]:
    return _ct(
        i,
        name="ModifySnapshotAttribute",
        requestParameters={
            "snapshotId": f"snap-{i}",
            "attributeType": "CREATE_VOLUME_PERMISSION",
            "createVolumePermission": {"add": {"items": [{"userId": "999988887777"}]}},
        },
        responseElements={"_return": True},
    )


def shared_alerts(i: int) -> list[Any]:
    report = runtime.run_batch([(f"record-{i}", share(i))])
    return [a for a in report.alerts if a.detection == "snapshot.shared_external"]


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "adscore.yaml"
    for name in ("ADSCORE_STATE", "ADSCORE_SINKS", "ADSCORE_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ADSCORE_CONFIG", str(path))
    runtime.reset_engine()
    yield path
    runtime.reset_engine()


def write(path: Path, principals: list[str], max_age: float = MAX_AGE, extra: str = "") -> None:
    path.write_text(
        f"settings_max_age_seconds: {max_age}\nallowlists: {{principals: {principals!r}}}\n" + extra,
        encoding="utf-8",
    )


def test_a_changed_allowlist_reaches_the_warm_engine_after_max_age(config: Path) -> None:
    # GIVEN a warm engine that alerts on alice's share
    write(config, [])
    (before,) = shared_alerts(1)
    first = runtime.get_engine()
    assert before.settings_version == first.settings.version()
    # WHEN alice is allowlisted in the settings file
    write(config, ["arn:aws:iam::111122223333:user/alice"])
    # THEN after max_age the new allowlist is in force, in the same process, on a new engine
    time.sleep(MAX_AGE * 1.5)
    assert shared_alerts(3) == []
    assert runtime.get_engine() is not first
    assert runtime.get_engine().settings.allowlists.principals == ("arn:aws:iam::111122223333:user/alice",)
    # AND alerts from now on carry the new settings' version
    write(config, [])
    time.sleep(MAX_AGE * 1.5)
    (after,) = shared_alerts(4)
    assert after.settings_version == before.settings_version  # the same settings again: the same version


def test_an_invalid_update_keeps_the_last_good_settings(
    config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="adscore.runtime")
    write(config, ["arn:aws:iam::111122223333:user/alice"])
    assert shared_alerts(1) == []
    good = runtime.get_engine()
    # WHEN the file gets a bad threshold
    write(config, [], extra="detections: {snapshot.burst: {threshold: -1}}\n")
    time.sleep(MAX_AGE * 1.5)
    # THEN the engine keeps the last good settings (alice still allowlisted) and says why
    assert shared_alerts(2) == []
    assert runtime.get_engine() is good
    assert "settings update rejected" in caplog.text and "detections.snapshot.burst" in caplog.text
    assert runtime.get_engine().settings_version == good.settings.version()


def test_unchanged_settings_keep_the_same_engine(config: Path) -> None:
    write(config, [])
    engine = runtime.get_engine()
    time.sleep(MAX_AGE * 1.5)
    assert runtime.get_engine() is engine


def test_max_age_zero_reads_once_per_process(config: Path) -> None:
    write(config, [], max_age=0)
    assert shared_alerts(1)
    write(config, ["arn:aws:iam::111122223333:user/alice"], max_age=0)
    time.sleep(0.05)
    assert shared_alerts(2)


def test_the_version_depends_on_values_not_on_their_order(monkeypatch: pytest.MonkeyPatch) -> None:
    from adscore.settings import load_settings

    monkeypatch.delenv("ADSCORE_CONFIG", raising=False)
    a = load_settings(None, severity_overrides={"snapshot.burst": "high", "snapshot.off_hours": "low"})
    b = load_settings(None, severity_overrides={"snapshot.off_hours": "low", "snapshot.burst": "high"})
    c = load_settings(None, severity_overrides={"snapshot.off_hours": "low"})
    assert a.version() == b.version() != c.version()
    wiring = load_settings(None, webhook_secret="s3cr3t-value", state="sqlite:///other.db", sinks="stdout://")
    assert wiring.version() == load_settings(None).version()  # where alerts go is not tuning
