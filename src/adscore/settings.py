"""All configuration: one pydantic-settings model, read from YAML with ``ADSCORE_*`` overrides.

Sources, highest priority first: explicit overrides (CLI flags), environment
variables (``ADSCORE_STATE``, ``ADSCORE_SINKS``, ``ADSCORE_WEBHOOK_SECRET``,
``ADSCORE_DETECTIONS__DISCOVERY_API_BURST__THRESHOLD``, ...; nested with
``__``), the YAML file named by ``--config`` or ``ADSCORE_CONFIG``, then the
shipped defaults (``adscore/data/defaults.yaml``). A bad value raises
:class:`~adscore.errors.ConfigError` naming the setting's path.
"""

from __future__ import annotations

import contextvars
import copy
import difflib
import ipaddress
import json
import os
from datetime import UTC, date, datetime, time
from functools import lru_cache
from importlib import import_module, resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from adscore.detection import Severity
from adscore.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

_DAY_NAMES = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}

#: ``ADSCORE_CONFIG`` may name a file, or a URL whose scheme has a fetcher here (lazy import).
CONFIG_FETCHERS: dict[str, str] = {
    "ssm": "adscore.cloud.aws:fetch_ssm_parameter",
    "s3": "adscore.cloud.aws:fetch_s3_object",
    "azureblob": "adscore.cloud.azure:fetch_blob",
}


#: ``ADSCORE_*`` variables that are not settings fields: read by an adapter, a script or ``adscore emulate``.
OTHER_VARIABLES: frozenset[str] = frozenset(
    {
        "ADSCORE_CONFIG",  # the settings file (load_settings)
        "ADSCORE_DEADLETTER",  # Azure: dead-letter store URL
        "ADSCORE_DEADLETTER_TOPIC",  # GCP: dead-letter topic
        "ADSCORE_EVENTHUB",  # Azure: Event Hub connection (or ADSCORE_EVENTHUB__<property>)
        "ADSCORE_EVENTHUB_NAME",
        "ADSCORE_EVENTHUB_CONSUMER_GROUP",
        "ADSCORE_FORWARD_ENDPOINT",  # adscore forward docker: the ingest endpoint URL
        "ADSCORE_FORWARD_SECRET",  # adscore forward docker: the whsec_ signing secret
        "ADSCORE_LOCAL",  # GCP: log as outside Cloud Functions
        "ADSCORE_GCP_FUNCTION_URL",  # exported by `adscore emulate gcp --keep`
        "ADSCORE_K8S_AUDIT_URL",
        "ADSCORE_WEBHOOK_URL",
        "ADSCORE_REGEN_GOLDEN",  # tests: regenerate golden files
        "ADSCORE_TEST_WORKERS",  # scripts/test.sh
    }
)
#: Prefixes of non-settings variables with sub-properties (the Functions host's identity-based connections).
OTHER_PREFIXES: tuple[str, ...] = ("ADSCORE_EVENTHUB__",)


def _show(text: str, limit: int = 80) -> str:
    """A value quoted for an error message: capped, so a long or hostile value cannot flood it."""
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """The ``ADSCORE_*`` variables that name no setting and no known adapter variable (sorted).

    ``ADSCORE_<FIELD>`` and, for nested settings, ``ADSCORE_<FIELD>__<KEY>...`` are known; so are
    :data:`OTHER_VARIABLES`. Case is ignored, as pydantic-settings ignores it.
    """
    env = os.environ if environ is None else environ
    fields = {f.upper() for f in Settings.model_fields}
    others = {v.upper() for v in OTHER_VARIABLES}
    out = []
    for name in env:
        upper = name.upper()
        if not upper.startswith("ADSCORE_") or upper in others or upper.startswith(OTHER_PREFIXES):
            continue
        head = upper.removeprefix("ADSCORE_").split("__", 1)[0]
        if head not in fields:
            out.append(name)
    return sorted(out)


def _suggest(name: str) -> str:
    known = [f"ADSCORE_{f.upper()}" for f in Settings.model_fields] + sorted(OTHER_VARIABLES)
    close = difflib.get_close_matches(name.upper(), known, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BusinessHours(_Frozen):
    """Working hours in a time zone; snapshots outside them are ``snapshot.off_hours``."""

    timezone: str = "UTC"
    days: tuple[int, ...] = (1, 2, 3, 4, 5)
    start: time = time(8, 0)
    end: time = time(19, 0)
    holidays: frozenset[date] = frozenset()

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r} (use an IANA name such as Europe/Paris)") from exc
        return v

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [p.strip() for p in v.split(",") if p.strip()]
        out = []
        for d in v:
            if isinstance(d, str) and not d.isdigit():
                key = d.strip().lower()[:3]
                if key not in _DAY_NAMES:
                    raise ValueError(f"unknown day {d!r}")
                out.append(_DAY_NAMES[key])
            else:
                n = int(d)
                if not 1 <= n <= 7:
                    raise ValueError(f"day {n} is not 1 (Monday) .. 7 (Sunday)")
                out.append(n)
        return tuple(out)


class MaintenanceWindow(_Frozen):
    """A declared change window: matching events do not alert (snapshot work expected)."""

    name: str
    start: datetime
    end: datetime
    accounts: tuple[str, ...] = ()
    principals: tuple[str, ...] = ()
    detections: tuple[str, ...] = ("snapshot.*", "container.*", "k8s.*")

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)

    @model_validator(mode="after")
    def _order(self) -> MaintenanceWindow:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class Calendar(_Frozen):
    """Business hours (default and per account) and maintenance windows."""

    default: BusinessHours = BusinessHours()
    accounts: dict[str, BusinessHours] = {}
    maintenance: tuple[MaintenanceWindow, ...] = ()


class Allowlists(_Frozen):
    """Activity that never alerts, for every detection.

    Attributes
    ----------
    principals : principal id or name globs (``arn:aws:iam::*:role/backup-*``)
    services : services acting on someone's behalf (AWS ``invokedBy``) or as
        themselves (backup, lifecycle managers, config scanners)
    source_cidrs : networks whose calls are trusted
    user_agents : user-agent globs (weak: user agents are attacker-controlled)
    resource_tags : ``key=value`` or ``key`` tags on the request
    """

    principals: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    source_cidrs: tuple[str, ...] = ()
    user_agents: tuple[str, ...] = ()
    resource_tags: tuple[str, ...] = ()

    @field_validator("source_cidrs")
    @classmethod
    def _cidrs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for c in v:
            try:
                ipaddress.ip_network(c, strict=False)
            except ValueError as exc:
                raise ValueError(f"{c!r} is not a CIDR") from exc
        return v


class Suppression(_Frozen):
    """A named rule that silences some detections for matching activity.

    Every given criterion must match (AND); list entries are alternatives (OR).
    """

    name: str
    reason: str = ""
    detections: tuple[str, ...] = ("*",)
    principals: tuple[str, ...] = ()
    principal_types: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    user_agents: tuple[str, ...] = ()
    source_cidrs: tuple[str, ...] = ()
    operations: tuple[str, ...] = ()
    utc_hours: tuple[int, ...] = ()
    until: datetime | None = None

    @field_validator("utc_hours")
    @classmethod
    def _hours(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        for h in v:
            if not 0 <= h <= 23:
                raise ValueError(f"hour {h} is not 0..23 (UTC hours of the day)")
        return tuple(sorted(set(v)))

    @model_validator(mode="after")
    def _some_criterion(self) -> Suppression:
        if not (
            self.principals
            or self.principal_types
            or self.accounts
            or self.namespaces
            or self.user_agents
            or self.source_cidrs
            or self.operations
        ):
            raise ValueError(f"suppression {self.name!r} has no criterion: it would silence everything")
        return self


_CONFIG_PATH: contextvars.ContextVar[str | None] = contextvars.ContextVar("adscore_config_path", default=None)


class Settings(BaseSettings):
    """Root settings. See ``docs/configuration.md`` and ``examples/config.yaml``."""

    model_config = SettingsConfigDict(
        env_prefix="ADSCORE_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        case_sensitive=False,
    )

    state: str = "memory://"
    sinks: Annotated[tuple[str, ...], NoDecode] = ()
    webhook_secret: SecretStr | None = None
    org_accounts: Annotated[tuple[str, ...], NoDecode] = ()
    calendar: Calendar = Calendar()
    allowlists: Allowlists = Allowlists()
    suppressions: tuple[Suppression, ...] = ()
    inherit_default_suppressions: bool = True
    detections: dict[str, dict[str, Any]] = Field(default_factory=dict)
    disabled: Annotated[tuple[str, ...], NoDecode] = ()
    severity_overrides: dict[str, Severity] = Field(default_factory=dict)
    alert_dedup_hours: float = Field(default=24.0, gt=0)
    send_timeout_seconds: float = Field(default=60.0, gt=0, le=86_400)
    deadletter: str | None = None
    deadletter_topic: str | None = Field(default=None, exclude=True)
    """Older name of a ``pubsub://`` dead-letter store (``ADSCORE_DEADLETTER_TOPIC=projects/P/topics/T``)."""
    batch_size: int = Field(default=2000, ge=1, le=1_000_000)
    detection_paths: Annotated[tuple[str, ...], NoDecode] = ()
    sigma_paths: Annotated[tuple[str, ...], NoDecode] = ()
    ads_base_url: str | None = None
    settings_max_age_seconds: float = Field(default=300.0, ge=0)
    ingest_token: SecretStr | None = None
    """Bearer token the HTTPS ingest endpoint accepts (Kubernetes audit webhooks), or a secret reference."""
    ingest_signing_secret: SecretStr | None = None
    """Standard Webhooks secret (``whsec_<base64>``) of signed ingest bodies (the Docker forwarder), or a reference."""
    ingest_max_bytes: int = Field(default=4_194_304, ge=1024, le=104_857_600)
    """Largest request body the ingest endpoint reads; a larger one is answered 413."""

    @field_validator("sinks", "org_accounts", "disabled", "detection_paths", "sigma_paths", mode="before")
    @classmethod
    def _comma_list(cls, v: Any) -> Any:
        """A list from YAML, a JSON list of strings (``'["1","2"]'``) or comma-separated text (``1,2``)."""
        if not isinstance(v, str):
            return v
        text = v.strip()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except ValueError as exc:
                raise ValueError(f"{_show(text)} starts like a JSON list but is not one ({exc})") from exc
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise ValueError(f"{_show(text)} must be a JSON list of strings")
            return tuple(i.strip() for i in items if i.strip())
        out = tuple(p.strip() for p in text.split(",") if p.strip())
        for item in out:  # a JSON fragment ('["1"', '"2"]') is a broken list, never a value
            if item[0] in '["{' or item[-1] in ']"}':
                raise ValueError(
                    f"{_show(item)} is not a value: write a JSON list of strings or comma-separated values"
                )
        return out

    @field_validator("ingest_token", "ingest_signing_secret")
    @classmethod
    def _ingest_secret(cls, v: SecretStr | None, info: Any) -> SecretStr | None:
        if v is None or not v.get_secret_value().strip():
            return None
        from adscore.ingest import check_secret_value

        check_secret_value(info.field_name, v.get_secret_value().strip())
        return SecretStr(v.get_secret_value().strip())

    @field_validator("state")
    @classmethod
    def _state_url(cls, v: str) -> str:
        if "://" not in v:
            raise ValueError(f"{v!r} is not a state URL (sqlite:///path, dynamodb://table, azuretable://table, firestore://collection, memory://)")
        return v

    @field_validator("deadletter")
    @classmethod
    def _deadletter_url(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        from adscore.deadletter import STORES

        scheme = v.split("://", 1)[0].lower() if "://" in v else ""
        if scheme not in STORES:
            raise ValueError(
                f"{v[:80]!r} is not a dead-letter URL (sqs://, s3://, azqueue://, azblob://, pubsub://, file://)"
            )
        return v.strip()

    @property
    def deadletter_url(self) -> str | None:
        """The dead-letter store URL: ``deadletter``, else ``pubsub://`` + the older ``deadletter_topic``."""
        if self.deadletter:
            return self.deadletter
        if self.deadletter_topic and self.deadletter_topic.strip():
            return f"pubsub://{self.deadletter_topic.strip()}"
        return None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls), _DefaultsSource(settings_cls))

    @field_validator("ads_base_url")
    @classmethod
    def _ads_base_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL, e.g. https://github.com/org/repo/blob/main/ads/{id}.md")
        return v or None

    def ads_url(self, detection_id: str) -> str | None:
        """Link to a detection's ADS report: ``ads_base_url`` with ``{id}`` replaced, or ``ads_base_url/<id>``."""
        base = self.ads_base_url
        if not base:
            return None
        if "{id}" in base:
            return base.replace("{id}", detection_id)
        return f"{base.rstrip('/')}/{detection_id}"

    def version(self) -> str:
        """A short fingerprint of the settings that decide alerts, stamped on every alert.

        Where alerts and state go (``state``, ``sinks``, ``webhook_secret``) is
        left out: a replay with a fresh state has the same version. Equal
        settings give the same version in every process, whatever the order they
        were written in; any change to a value gives another.
        """
        import hashlib

        import orjson

        tuning = self.model_dump(
            mode="json",
            exclude={"state", "sinks", "webhook_secret", "ingest_token", "ingest_signing_secret", "ingest_max_bytes"},
        )
        data = orjson.dumps(tuning, option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(data).hexdigest()[:12]

    def params_for(self, detection_id: str) -> dict[str, Any]:
        """Raw parameter overrides for one detection (keys ``snapshot.burst`` or ``snapshot_burst``)."""
        out: dict[str, Any] = {}
        for key in (detection_id, detection_id.replace(".", "_")):
            for k, v in self.detections.items():
                if k.lower() == key:
                    out.update(v)
        return out

    def is_disabled(self, detection_id: str) -> bool:
        return any(self.is_disabled_by(d, detection_id) for d in self.disabled)

    @staticmethod
    def is_disabled_by(pattern: str, detection_id: str) -> bool:
        """Whether one ``disabled`` entry (an id, a module name or a glob such as ``discovery.*``) names a detection."""
        import fnmatch

        return fnmatch.fnmatchcase(detection_id, pattern) or detection_id.replace(".", "_") == pattern



class _YamlSource(PydanticBaseSettingsSource):
    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover - unused
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = _CONFIG_PATH.get()
        if not path:
            return {}
        return read_config_text(path)


class _DefaultsSource(PydanticBaseSettingsSource):
    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover - unused
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return default_config()


#: libyaml's C loader when PyYAML was built with it (about ten times faster), else the pure-Python one.
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _safe_load(text: str) -> Any:
    return yaml.load(text, Loader=_SafeLoader)  # a safe loader: libyaml's or PyYAML's


@lru_cache(maxsize=1)
def _default_text() -> str:
    return resources.files("adscore").joinpath("data/defaults.yaml").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _default_data() -> dict[str, Any]:
    data = _safe_load(_default_text()) or {}
    if not isinstance(data, dict):  # pragma: no cover - shipped file
        raise ConfigError("defaults.yaml", "not a mapping")
    return data


def default_config() -> dict[str, Any]:
    """The shipped defaults (``adscore/data/defaults.yaml``): parsed once per process, a fresh copy each call."""
    return copy.deepcopy(_default_data())


@lru_cache(maxsize=1)
def _default_suppressions() -> tuple[Suppression, ...]:
    """The shipped suppressions, validated once per process (they depend on the shipped file only)."""
    adapter: TypeAdapter[tuple[Suppression, ...]] = TypeAdapter(tuple[Suppression, ...])
    return adapter.validate_python(_default_data().get("suppressions", []))


def read_config_text(path: str) -> dict[str, Any]:
    """Read and parse the YAML settings file (or fetch it by URL, e.g. ``ssm://``, ``s3://``)."""
    scheme = path.split("://", 1)[0] if "://" in path else "file"
    if scheme == "file":
        p = Path(path.removeprefix("file://"))
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError("config", f"cannot read {p}: {exc.strerror or exc}") from exc
    elif scheme in CONFIG_FETCHERS:
        mod, _, fn = CONFIG_FETCHERS[scheme].partition(":")
        try:
            text = getattr(import_module(mod), fn)(path)
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError("config", f"cannot fetch {path}: {type(exc).__name__}: {exc}") from exc
    else:
        raise ConfigError("config", f"unsupported config location {path!r}")
    try:
        data = _safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError("config", f"{path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("config", f"{path} must hold a mapping at the top level")
    return data


def _loc(err: Any) -> str:
    return ".".join(str(p) for p in err["loc"]) or "settings"


def load_settings(config: str | None = None, **overrides: Any) -> Settings:
    """Build the settings from defaults, the YAML file, the environment and ``overrides``.

    Parameters
    ----------
    config : str, optional
        Path (or ``ssm://``/``s3://`` URL) of the YAML file; default ``$ADSCORE_CONFIG``.
    **overrides
        Highest-priority values (CLI flags), e.g. ``state="sqlite:///x.db"``.

    Raises
    ------
    ConfigError
        Naming the first invalid setting, e.g. ``detections.snapshot.burst.threshold``.
    """
    unknown = unknown_variables()
    if unknown:
        raise ConfigError(unknown[0], f"unknown environment variable{_suggest(unknown[0])}; no setting has this name")
    path = config or os.environ.get("ADSCORE_CONFIG") or None
    token = _CONFIG_PATH.set(path)
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(_loc(first), first["msg"]) from exc
    except SettingsError as exc:  # an ADSCORE_* value that should be JSON and is not
        field_name = str(exc).split('"')[1] if str(exc).count('"') >= 2 else "settings"
        raise ConfigError(field_name, f"ADSCORE_{field_name.upper()} is not valid JSON for this setting") from exc
    finally:
        _CONFIG_PATH.reset(token)
    if settings.inherit_default_suppressions:
        defaults = _default_suppressions()
        names = {s.name for s in settings.suppressions}
        extra = tuple(s for s in defaults if s.name not in names)
        if extra:
            settings = settings.model_copy(update={"suppressions": settings.suppressions + extra})
    return settings

