"""Redact credentials from log values before any rendering or log line (pure, standard library only).

A firing event can carry secrets: ``requestParameters.password``, the ``credentials`` an
``AssumeRole`` answer returns (``secretAccessKey``, ``sessionToken``), an ``Authorization``
header, a SAS URL's ``sig=``, a private key. An alert copies a few raw records into its evidence
and quotes log text in its title, summary and context; every one of them goes through this
module first (:class:`adscore.alerts.Evidence` and :class:`adscore.alerts.Alert` validators), so
no sink, renderer or log line sees the secret.

Two rules:

- by **key**: a scalar under a key named like a secret (password, passphrase, secret, token,
  credential, authorization, private key, api key, cookie, ``sig``/``signature``) becomes
  :data:`REDACTED`. A container under such a key is walked (an Azure ``authorization`` block holds
  the RBAC action and scope, not a secret), and its ``value`` leaves are redacted (ARM
  ``securestring`` parameters).
- by **shape**, in every string: ``Bearer``/``Basic`` credentials, ``sig=`` query values,
  ``password=…``-style pairs, PEM private keys, JSON Web Tokens, AWS session tokens and strings
  shaped like an AWS secret access key (40 base64 characters mixing upper case, lower case
  and digits); in command lines, a URL's user-info password, the value after ``--password``-style
  flags, a MySQL client's ``-pSECRET``, ``redis-cli -a SECRET`` and curl's or wget's ``-u user:SECRET``.

Every pattern is linear by construction (no nested or adjacent overlapping quantifiers), so
attacker text cannot make redaction slow. Redaction is idempotent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[REDACTED]"
"""What a secret is replaced with."""

_MAX_DEPTH = 64
"""Deeper containers are left to the cleaner, which cuts them well before this depth."""

_SECRET_KEY = re.compile(
    r"passw(?:or)?d|passphrase|secret|token|credential|authori[sz]ation|privatekey|apikey|cookie|"
    r"connectionstring|sharedaccesskey|accountkey"
)
_SECRET_KEY_EXACT = frozenset({"pwd", "sig", "signature", "sas"})
#: Keys that hold no secret even when their name says so (token *types*, counts, expiry).
_NOT_SECRET = frozenset({"tokentype", "tokenissuancetype", "tokenexpiration", "credentialtype", "authorizationtype"})

_BEARER = re.compile(r"(?i)\b(bearer|basic|negotiate|sharedkey)\s+[A-Za-z0-9._~+/:=-]{8,}")
_SIG = re.compile(r"(?i)\b(sig|signature|x-amz-signature|x-amz-security-token|x-goog-signature)=[^&\s\"'<>]+")
_PAIR = re.compile(
    r"(?i)(?<![A-Za-z0-9])(password|passwd|pwd|passphrase|secret|client_secret|token|access_token|api_?key|"
    r"accountkey|sharedaccesskey)([\"']?\s*[=:]\s*[\"']?)(?!\[REDACTED\])[^\s&\"',;]+"
)
_PEM = re.compile(r"-----BEGIN [A-Z ]{0,40}PRIVATE KEY-----[^-]*(?:-----END [A-Z ]{0,40}PRIVATE KEY-----)?")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_SESSION_TOKEN = re.compile(r"(?:IQoJb3JpZ2lu|FwoGZXIvYXdz|FQoGZXIvYXdz)[A-Za-z0-9/+=]{16,}")
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
#: Command lines (a ``kubectl exec`` or ``docker exec`` argv): the password of a URL's user info
#: (``mongodb://admin:pw@db``), the value after a secret-named flag (``--password pw``), a MySQL client's
#: attached ``-ppw``, and curl's or wget's ``-u user:pw``. Each bounded, so linear.
_URL_USERINFO = re.compile(r"(://[^/\s:@]{1,256}:)(?!\[REDACTED\]@)[^/\s@]{1,256}@")
_SECRET_FLAG = re.compile(
    r"(?i)(?<![A-Za-z0-9-])(--?(?:password|passwd|pass|secret|client-secret|token|access-token|auth-token|"
    r"api-?key)\s+)(?!\[REDACTED\])(?!-)[^\s\"']+"
)
_MYSQL_PASSWORD = re.compile(
    r"(?i)(\b(?:mysql|mysqldump|mysqladmin|mysqlimport|mysqlpump|mariadb|mariadb-dump)\b[^\n|;&]{0,200}?\s-p)"
    r"(?!\[REDACTED\])(?=[^\s-])[^\s\"']+"
)
_REDIS_AUTH = re.compile(
    r"(\bredis-cli\b[^\n|;&]{0,200}?\s(?:-a|--pass)\s+)(?!\[REDACTED\])(?!-)[^\s\"']+"
)
_CLIENT_USER = re.compile(
    r"(?i)(\b(?:curl|wget)\b[^\n|;&]{0,200}?\s(?:-u|--user|--http-user)[\s=]+[^\s:\"']{1,128}:)"
    r"(?!\[REDACTED\])[^\s\"']+"
)
#: Characters that must appear before any shape pattern can match (a quick pre-check).
_HINTS = ("=", ":", "earer", "asic", "PRIVATE", "eyJ")


def _norm_key(key: str) -> str:
    last = key.rsplit("/", 1)[-1]  # "authorization.k8s.io/decision" is a decision, not a secret
    return last.lower().replace("_", "").replace("-", "").replace(" ", "")


def is_secret_key(key: object) -> bool:
    """Whether a mapping key names a secret (``password``, ``secretAccessKey``, ``Authorization``, ``sig`` …).

    Examples
    --------
    >>> is_secret_key("secretAccessKey"), is_secret_key("accessKeyId")
    (True, False)
    """
    if not isinstance(key, str):
        return False
    k = _norm_key(key)
    if k in _NOT_SECRET:
        return False
    return k in _SECRET_KEY_EXACT or _SECRET_KEY.search(k) is not None


def _aws_secret(match: re.Match[str]) -> str:
    s = match.group(0)
    mixed = any(c.isupper() for c in s) and any(c.islower() for c in s) and any(c.isdigit() for c in s)
    return REDACTED if mixed and s.count("/") <= 3 else s


def redact_text(text: str) -> str:
    """Replace credentials found by their shape in free text.

    Parameters
    ----------
    text : str
        Any text (a command line, a header, a URL, an excerpt of a record).

    Returns
    -------
    str
        The text with each credential replaced by :data:`REDACTED` (the scheme or key name kept).

    Examples
    --------
    >>> redact_text("curl -H 'Authorization: Bearer abcdefgh12345' https://x/?a=1&sig=XYZ%3D")
    "curl -H 'Authorization: Bearer [REDACTED]' https://x/?a=1&sig=[REDACTED]"
    """
    if not isinstance(text, str) or len(text) < 8:
        return text
    if any(h in text for h in _HINTS):
        text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
        text = _SIG.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
        text = _PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
        text = _PEM.sub(REDACTED, text)
        text = _JWT.sub(REDACTED, text)
        if "://" in text:
            text = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)
    if " -" in text:
        text = _SECRET_FLAG.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
        text = _MYSQL_PASSWORD.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
        text = _REDIS_AUTH.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
        text = _CLIENT_USER.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    if len(text) >= 40:
        text = _SESSION_TOKEN.sub(REDACTED, text)
        text = _AWS_SECRET.sub(_aws_secret, text)
    return text


def redact_value(
    value: Any,
    *,
    max_len: int | None = None,
    max_items: int | None = None,
    max_depth: int = _MAX_DEPTH,
    _under_secret: bool = False,
) -> Any:
    """Return a copy of a decoded record (or context) with its credentials redacted.

    Scalars under secret-named keys become :data:`REDACTED`; every other string goes through
    :func:`redact_text`. Containers are copied, never changed in place.

    Parameters
    ----------
    value : Any
        A decoded JSON value.
    max_len : int, optional
        Strings longer than this are cut to it before they are searched (give the cleaner's cap plus
        a margin: a credential that starts before the cap is still whole, and a 1 MB value costs no
        more than a short one).
    max_items : int, optional
        Only the first ``max_items`` items of a container are searched; the rest are kept as they
        are (give the cleaner's cap: it drops them).
    max_depth : int
        Containers deeper than this are kept as they are (the cleaner replaces them).

    Examples
    --------
    >>> redact_value({"requestParameters": {"userName": "bob", "password": "hunter2"}})
    {'requestParameters': {'userName': 'bob', 'password': '[REDACTED]'}}
    """

    def walk(v: Any, depth: int, under_secret: bool) -> Any:
        if isinstance(v, str):
            return redact_text(v if max_len is None else v[:max_len])
        if depth >= max_depth:
            return v
        if isinstance(v, Mapping):
            out: dict[Any, Any] = {}
            for i, (k, item) in enumerate(v.items()):
                if max_items is not None and i >= max_items:
                    out[k] = item
                    continue
                secret = is_secret_key(k) or (under_secret and isinstance(k, str) and k.lower() == "value")
                if secret and not isinstance(item, Mapping | list | tuple):
                    out[k] = REDACTED if item not in (None, "", True, False) else item
                else:
                    out[k] = walk(item, depth + 1, secret)
            return out
        if isinstance(v, list | tuple):
            head = v if max_items is None else v[:max_items]
            return [walk(item, depth + 1, under_secret) for item in head] + list(v[len(head) :])
        return v

    return walk(value, 0, _under_secret)
