"""Exception hierarchy: every error adscore raises derives from ``AdscoreError``."""

from __future__ import annotations


class AdscoreError(Exception):
    """Root of every adscore exception."""


class ConfigError(AdscoreError):
    """A setting is missing or invalid; the message names the setting's path."""

    def __init__(self, setting: str, reason: str) -> None:
        super().__init__(f"invalid setting {setting}: {reason}")
        self.setting = setting
        self.reason = reason


class StateError(AdscoreError):
    """The state store could not complete an operation (after its retries)."""


class SinkError(AdscoreError):
    """A sink could not deliver some alerts after its retries.

    Attributes
    ----------
    unsent : tuple[str, ...]
        Ids of the alerts that were not delivered.
    """

    def __init__(self, message: str, unsent: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.unsent = unsent
