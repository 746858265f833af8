"""AWS helpers: boto3 clients built from the standard environment, settings and secrets fetched by reference.

boto3 is imported inside each function, so importing this module costs
nothing. Clients honour the standard variables through botocore's own
handling (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_<SERVICE>``, credentials,
``AWS_DEFAULT_REGION``), plus ``AWS_REGION`` (which Lambda sets), so the same
code runs against emulators such as moto server.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from adscore.errors import ConfigError

__all__ = [
    "MAX_CONFIG_BYTES",
    "client",
    "fetch_s3_object",
    "fetch_secret",
    "fetch_ssm_parameter",
    "forget_session",
    "lambda_tracing",
    "region",
    "tracing_on",
]

_F = TypeVar("_F", bound=Callable[..., Any])

MAX_CONFIG_BYTES = 1_048_576
"""A settings file fetched from S3 may be at most this long."""


def region() -> str | None:
    """The region from ``AWS_REGION`` (set by Lambda) or ``AWS_DEFAULT_REGION``; None lets botocore decide."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


def client(
    service: str,
    *,
    max_attempts: int = 8,
    retry_mode: str = "adaptive",
    connect_timeout: float = 5.0,
    read_timeout: float = 15.0,
    region_name: str | None = None,
) -> Any:
    """Build a boto3 client for ``service`` with adaptive retries.

    Parameters
    ----------
    service : str
        ``dynamodb``, ``sns``, ``s3``, ``ssm``, ``secretsmanager``...
    max_attempts : int
        Total attempts botocore makes, the first included (throttling and transient errors).
    retry_mode : str
        botocore retry mode (``adaptive`` also rate-limits the client on throttling).
    connect_timeout, read_timeout : float
        Socket timeouts in seconds.
    region_name : str, optional
        Region to use instead of the environment's (for example the region in a resource's ARN).

    Returns
    -------
    Any
        A botocore client (thread-safe; build one per process and reuse it).

    Example
    -------
    >>> ddb = client("dynamodb")  # doctest: +SKIP
    """
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"total_max_attempts": max_attempts, "mode": retry_mode},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=32,
    )
    global _session
    identity = tuple(os.environ.get(name) for name in _IDENTITY_VARIABLES)
    with _session_lock:
        if _session is None or _session[0] != identity:
            _session = (identity, boto3.session.Session())
        return _session[1].client(service, region_name=region_name or region(), config=config)


# One boto3 session per process: its loaders keep the endpoint rules and service models they have read,
# so the second client (SNS after DynamoDB, S3 after SQS) skips parsing them again. botocore sessions
# are not thread-safe, so clients are created under a lock (the clients themselves are). A session
# keeps the credentials it resolved: it is replaced when the variables naming them change.
_IDENTITY_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")
_session: tuple[tuple[str | None, ...], Any] | None = None
_session_lock = threading.Lock()


def forget_session() -> None:
    """Drop the shared session (``runtime.reset_engine``: settings or endpoints changed)."""
    global _session
    with _session_lock:
        _session = None


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", "")) or type(exc).__name__
    return type(exc).__name__


def fetch_ssm_parameter(url: str) -> str:
    """Read a settings file stored in an SSM parameter (decrypted when a SecureString).

    Parameters
    ----------
    url : str
        ``ssm:///path/to/param`` (name ``/path/to/param``), ``ssm://name`` or
        ``ssm://arn:aws:ssm:<region>:<account>:parameter/...``.

    Returns
    -------
    str
        The parameter's value.

    Raises
    ------
    ConfigError
        ``config``: malformed URL, or the parameter cannot be read (the error code is named).
    """
    name = url.removeprefix("ssm://")
    if not name or name == "/":
        raise ConfigError("config", "an SSM settings location is written ssm:///parameter/name")
    try:
        response = client("ssm", max_attempts=4).get_parameter(Name=name, WithDecryption=True)
    except Exception as exc:
        raise ConfigError("config", f"cannot read SSM parameter {name[:256]!r}: {_error_code(exc)}") from exc
    return str(response["Parameter"]["Value"])


def fetch_s3_object(url: str) -> str:
    """Read a settings file stored in S3.

    Parameters
    ----------
    url : str
        ``s3://bucket/key``.

    Returns
    -------
    str
        The object's text (UTF-8), at most ``MAX_CONFIG_BYTES`` long.

    Raises
    ------
    ConfigError
        ``config``: malformed URL, unreadable or too large object, or not UTF-8.
    """
    bucket, _, key = url.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise ConfigError("config", "an S3 settings location is written s3://bucket/key")
    try:
        response = client("s3", max_attempts=4).get_object(Bucket=bucket, Key=key)
        body = response["Body"]
        try:
            data: bytes = body.read(MAX_CONFIG_BYTES + 1)
        finally:
            body.close()
    except Exception as exc:
        raise ConfigError("config", f"cannot read s3://{bucket}/{key[:256]}: {_error_code(exc)}") from exc
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError("config", f"s3://{bucket}/{key[:256]} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError("config", f"s3://{bucket}/{key[:256]} is not UTF-8 text") from exc


def fetch_secret(arn: str) -> str:
    """Fetch a secret's current value from AWS Secrets Manager.

    Parameters
    ----------
    arn : str
        The secret's ARN (``arn:aws:secretsmanager:<region>:<account>:secret:<name>``).

    Returns
    -------
    str
        ``SecretString`` (or ``SecretBinary`` decoded as UTF-8), stripped of surrounding whitespace.

    Raises
    ------
    ConfigError
        ``webhook_secret``: the secret cannot be read or is empty. The message
        names the error code, never the value.
    """
    parts = arn.split(":")
    secret_region = parts[3] if len(parts) > 3 and parts[3] else None  # a secret lives in its ARN's region
    try:
        response = client("secretsmanager", max_attempts=4, region_name=secret_region).get_secret_value(
            SecretId=arn
        )
    except Exception as exc:
        raise ConfigError("webhook_secret", f"cannot fetch the secret: {_error_code(exc)}") from exc
    value = response.get("SecretString")
    if value is None and response.get("SecretBinary") is not None:
        raw = response["SecretBinary"]
        value = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    value = (value or "").strip()
    if not value:
        raise ConfigError("webhook_secret", "the secret is empty")
    return value


_TRUE = ("1", "true", "yes", "on", "y", "t")


def tracing_on(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether a Lambda handler is traced (X-Ray through Powertools Tracer): Powertools' own rule.

    Off when ``POWERTOOLS_TRACE_DISABLED`` is true, and outside Lambda (no ``LAMBDA_TASK_ROOT``, or
    SAM local / Chalice local).
    """
    if environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in _TRUE:
        return False
    if environ.get("AWS_SAM_LOCAL") or environ.get("AWS_CHALICE_CLI_MODE"):
        return False
    return bool(environ.get("LAMBDA_TASK_ROOT"))


def lambda_tracing(service: str) -> tuple[Any, Callable[[_F], _F]]:
    """A Powertools ``Tracer`` and its handler decorator when :func:`tracing_on`, else ``(None, identity)``.

    When tracing is off no Tracer is built: the X-Ray SDK, its recorder and the botocore clients of
    its sampler (about 170 ms of a cold start) are never imported.
    """
    if not tracing_on():
        return None, lambda fn: fn
    from aws_lambda_powertools import Tracer

    tracer = Tracer(service=service)
    decorator: Callable[[_F], _F] = tracer.capture_lambda_handler(capture_response=False)
    return tracer, decorator
