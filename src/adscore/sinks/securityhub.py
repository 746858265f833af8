"""AWS Security Hub sink: each alert as an ASFF finding, through ``BatchImportFindings``.

``securityhub://`` (the region and account of the credential chain),
``securityhub://<region>`` or ``securityhub://<region>/<account>``.

- Findings are rendered by :func:`adscore.render.asff.to_asff`: ``Id`` = alert
  id, so the same alert sent again (a redelivery, or the alert grown by later
  events of its window) updates its finding instead of adding one.
- The product is the account's own custom integration
  (``arn:aws:securityhub:<region>:<account>:product/<account>/default``): no
  subscription to a partner product is needed, only Security Hub enabled in the
  region and ``securityhub:BatchImportFindings`` on that ARN.
- Batches respect the API's limits: at most 100 findings and 6 MB per call, at
  most 240 KB per finding (an alert's raw evidence records are never sent here,
  so a finding stays far below it).

This backend does not retry: it reports what failed, and
:class:`~adscore.sinks.base.RetryingSink` (which :func:`~adscore.sinks.open_sink`
always adds) retries and raises :class:`~adscore.errors.SinkError` with the
unsent ids.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from adscore.errors import ConfigError
from adscore.render.asff import MAX_FINDING_BYTES, to_asff
from adscore.sinks.base import SendReport

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Self

    from adscore.alerts import Alert

__all__ = ["MAX_BATCH_BYTES", "MAX_BATCH_FINDINGS", "SecurityHubSink"]

log = logging.getLogger("adscore.sinks.securityhub")

MAX_BATCH_FINDINGS = 100
"""``BatchImportFindings`` accepts at most 100 findings per call."""
MAX_BATCH_BYTES = 6_000_000
"""... and at most 6 MB per call."""
_REGION = re.compile(r"^[a-z]{2,4}(-[a-z]+)+-\d{1,2}$")
_ACCOUNT = re.compile(r"^\d{12}$")
#: Errors a retry cannot fix: Security Hub is not enabled, no permission, a bad finding.
_PERMANENT = frozenset(
    {
        "InvalidAccessException",
        "AccessDeniedException",
        "InvalidInputException",
        "InvalidInput",
        "ValidationException",
        "ResourceNotFoundException",
    }
)


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", "")) or type(exc).__name__
    return type(exc).__name__


class SecurityHubSink:
    """Import alerts into AWS Security Hub as ASFF findings.

    Parameters
    ----------
    region : str | None
        Security Hub region; default: the environment's (``AWS_REGION``...).
    account : str | None
        12-digit account that owns the findings; default: the caller's
        (``sts:GetCallerIdentity``, asked once).
    client : botocore Security Hub client, optional
        Injected client; by default one is built on first send, honouring
        ``AWS_ENDPOINT_URL``.
    sts_client : botocore STS client, optional
        Injected client for the account look-up.
    clock : Callable[[], float]
        Source of ``UpdatedAt`` (unix seconds).

    Raises
    ------
    ConfigError
        ``sinks``: a region or account that is not well formed.

    Example
    -------
    >>> sink = SecurityHubSink.from_url("securityhub://eu-west-1/111122223333")
    """

    def __init__(
        self,
        region: str | None = None,
        account: str | None = None,
        client: Any = None,
        *,
        sts_client: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if region is not None and not _REGION.match(region):
            raise ConfigError("sinks", f"securityhub://: {region[:40]!r} is not an AWS region")
        if account is not None and not _ACCOUNT.match(account):
            raise ConfigError("sinks", "securityhub://<region>/<account>: the account is 12 digits")
        self.region = region
        self.account = account
        self._client = client
        self._sts = sts_client
        self._clock = clock
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, *, secret: str | None = None) -> Self:
        """Build from ``securityhub://[<region>[/<account>]]`` (``secret`` is unused: requests are signed by IAM)."""
        del secret
        scheme, _, rest = url.partition("://")
        if scheme.lower() != "securityhub" or "?" in rest or "#" in rest:
            raise ConfigError(
                "sinks", "a Security Hub sink URL is written securityhub://[<region>[/<account>]]"
            )
        region, _, account = rest.strip("/").partition("/")
        return cls(region or None, account.strip("/") or None)

    def __repr__(self) -> str:
        return f"SecurityHubSink(region={self.region!r}, account={self.account!r})"

    def _target(self) -> tuple[Any, str, str]:
        with self._lock:
            if self._client is None:
                from adscore.cloud.aws import client

                # Few attempts here: RetryingSink retries whole sends with its own backoff.
                self._client = client("securityhub", max_attempts=3, region_name=self.region)
            if self.region is None:
                self.region = str(self._client.meta.region_name)
            if self.account is None:
                if self._sts is None:
                    from adscore.cloud.aws import client

                    self._sts = client("sts", max_attempts=3, region_name=self.region)
                self.account = str(self._sts.get_caller_identity()["Account"])
            return self._client, self.region, self.account

    def _batches(
        self, alerts: Sequence[Alert], region: str, account: str
    ) -> tuple[list[list[dict[str, Any]]], dict[str, str]]:
        now = datetime.fromtimestamp(self._clock(), UTC)
        batches: list[list[dict[str, Any]]] = []
        too_big: dict[str, str] = {}
        current: list[dict[str, Any]] = []
        size = 0
        for alert in alerts:
            finding = to_asff(alert, account=account, region=region, updated_at=now)
            finding_size = len(orjson.dumps(finding))
            if finding_size > MAX_FINDING_BYTES:  # cannot happen with the caps in to_asff; never send it
                too_big[alert.id] = f"finding of {finding_size} bytes is over 240 KB"
                continue
            if current and (len(current) >= MAX_BATCH_FINDINGS or size + finding_size > MAX_BATCH_BYTES):
                batches.append(current)
                current, size = [], 0
            current.append(finding)
            size += finding_size
        if current:
            batches.append(current)
        return batches, too_big

    def send(self, alerts: Sequence[Alert]) -> SendReport:
        """Import each alert as a finding; report which were accepted and which failed (and why).

        Returns
        -------
        SendReport
            ``failed`` lists the ids Security Hub did not accept; ``permanent``
            those a retry cannot help (Security Hub not enabled, no permission,
            an invalid finding).
        """
        unique = list({a.id: a for a in alerts}.values())
        if not unique:
            return SendReport()
        sent: list[str] = []
        failed: list[str] = []
        permanent: list[str] = []
        reasons: dict[str, str] = {}
        try:
            hub, region, account = self._target()
        except Exception as exc:
            code = _code(exc)
            log.warning("Security Hub: cannot resolve the region or account: %s", code)
            ids = [a.id for a in unique]
            return SendReport(failed=tuple(ids), reasons=dict.fromkeys(ids, code))
        batches, too_big = self._batches(unique, region, account)
        for i, reason in too_big.items():
            failed.append(i)
            permanent.append(i)
            reasons[i] = reason
        for findings in batches:
            ids = [f["Id"] for f in findings]
            try:
                response = hub.batch_import_findings(Findings=findings)
            except Exception as exc:
                code = _code(exc)
                log.warning("Security Hub import in %s failed: %s", region, code)
                failed.extend(ids)
                reasons.update(dict.fromkeys(ids, code))
                if code in _PERMANENT:
                    permanent.extend(ids)
                continue
            refused: dict[str, str] = {}
            for item in response.get("FailedFindings", ()):
                refused[str(item.get("Id"))] = str(item.get("ErrorCode") or "Failed")
            for i in ids:
                if i in refused:
                    failed.append(i)
                    reasons[i] = refused[i]
                    if refused[i] in _PERMANENT:
                        permanent.append(i)
                else:
                    sent.append(i)
        if failed:
            log.warning(
                "Security Hub: %d of %d finding(s) not imported (%s)",
                len(failed),
                len(unique),
                ", ".join(sorted(set(reasons.values()))),
            )
        return SendReport(sent=tuple(sent), failed=tuple(failed), permanent=tuple(permanent), reasons=reasons)

    def close(self) -> None:
        """Nothing to release (botocore clients hold no open resources that need closing)."""
