"""Who and where, for the Docker forwarder: host name, cloud instance id, and (from auditd) who ran docker.

All of it is optional and bounded: each metadata probe has a short timeout, the audit log is read
from its tail only (at most ``max_bytes``), and every value taken from it is length-capped.

What the audit lookup can and cannot attribute is written out in ``deploy/docker-forwarder/README.md``.
"""

from __future__ import annotations

import logging
import os
import pwd
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger("adscore.forward.identity")

#: The link-local metadata address the three clouds serve (GCE also answers as metadata.google.internal).
METADATA_BASE = "http://169.254.169.254"
_MAX_ID = 128


@dataclass(frozen=True)
class HostIdentity:
    """The ``host`` object of a ``DockerEventBatch``."""

    hostname: str
    instance_id: str | None = None
    cloud: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"hostname": self.hostname, "instance_id": self.instance_id, "cloud": self.cloud}


def _clean_id(text: str) -> str | None:
    text = text.strip()
    if not text or len(text) > _MAX_ID or not all(c.isalnum() or c in "-_." for c in text):
        return None
    return text


def cloud_instance(base: str = METADATA_BASE, *, timeout: float = 0.5) -> tuple[str, str] | None:
    """Ask the instance metadata services for this machine's id: ``(cloud, instance_id)`` or None.

    Tries EC2 (IMDSv2: a PUT for a session token, then the id with it), Azure IMDS (``vmId``, header
    ``Metadata: true``) and the GCE metadata server (header ``Metadata-Flavor: Google``), each with
    ``timeout`` seconds. Off the clouds every probe fails fast (no route or refused) and the answer is None.

    Parameters
    ----------
    base : str
        The metadata service's base URL (tests point it at a loopback server).
    timeout : float
        Seconds per request.

    Returns
    -------
    tuple[str, str] | None
        ``("aws", "i-0abc...")``, ``("azure", "<vmId>")``, ``("gcp", "<numeric id>")`` or None.
    """
    probes: list[tuple[str, Any]] = [("aws", _aws), ("azure", _azure), ("gcp", _gcp)]
    with httpx.Client(base_url=base, timeout=timeout, trust_env=False, follow_redirects=False) as client:
        for cloud, probe in probes:
            try:
                found = probe(client)
            except (httpx.HTTPError, OSError):
                found = None
            if found:
                return cloud, found
    return None


def _aws(client: httpx.Client) -> str | None:
    token = client.put("/latest/api/token", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    if token.status_code != 200:
        return None
    r = client.get("/latest/meta-data/instance-id", headers={"X-aws-ec2-metadata-token": token.text.strip()})
    return _clean_id(r.text) if r.status_code == 200 else None


def _azure(client: httpx.Client) -> str | None:
    r = client.get(
        "/metadata/instance/compute/vmId",
        params={"api-version": "2021-02-01", "format": "text"},
        headers={"Metadata": "true"},
    )
    return _clean_id(r.text) if r.status_code == 200 else None


def _gcp(client: httpx.Client) -> str | None:
    r = client.get("/computeMetadata/v1/instance/id", headers={"Metadata-Flavor": "Google"})
    if r.status_code != 200 or r.headers.get("Metadata-Flavor") != "Google":
        return None
    return _clean_id(r.text)


def host_identity(*, metadata: bool, metadata_base: str = METADATA_BASE) -> HostIdentity:
    """This host's name, and its cloud instance id when ``metadata`` is on and a service answers."""
    hostname = socket.gethostname()[:253] or "localhost"
    found = cloud_instance(metadata_base) if metadata else None
    if found is None:
        return HostIdentity(hostname)
    return HostIdentity(hostname, instance_id=found[1], cloud=found[0])


# ------------------------------------------------------------------------------------------ auditd

#: auid of a process with no login session (daemons, cron without pam_loginuid).
_UNSET_AUID = 4294967295
#: Docker CLI verbs per event operation: argv must hold one of them to tie an exec to the event.
_VERBS = {
    "container commit": ("commit",),
    "container export": ("export",),
    "image save": ("save",),
}


@dataclass(frozen=True)
class AuditExec:
    """One audited syscall of the docker keys: when, by whom, and the argv when it was an execve."""

    time: float
    serial: str
    auid: int | None
    uid: int | None
    exe: str
    argv: tuple[str, ...]


def _fields(text: str) -> dict[str, str]:
    """``k=v`` pairs of one audit record (values never hold spaces: auditd hex-encodes those)."""
    out: dict[str, str] = {}
    for part in text.split(" "):
        key, sep, value = part.partition("=")
        if sep and key not in out:
            out[key] = value
    return out


def _value(raw: str) -> str:
    """An audit value: ``"quoted"`` text, or hex when it held spaces, quotes or control characters."""
    if len(raw) >= 2 and raw[0] == '"' and raw[-1] == '"':
        return raw[1:-1][:256]
    try:
        return bytes.fromhex(raw).decode("utf-8", "replace")[:256]
    except ValueError:
        return raw[:256]


def _int(raw: str | None) -> int | None:
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def read_audit(path: Path, keys: frozenset[str], *, max_bytes: int = 8 * 1024 * 1024) -> list[AuditExec]:
    """The SYSCALL records with one of ``keys`` in the last ``max_bytes`` of an audit log, with their argv.

    Parameters
    ----------
    path : Path
        ``/var/log/audit/audit.log`` (raw or ``log_format = ENRICHED``).
    keys : frozenset[str]
        Rule keys to keep (``-k docker``).
    max_bytes : int
        How much of the file's end is read.

    Returns
    -------
    list[AuditExec]
        In file order. A missing or unreadable file gives an empty list (logged once per call).
    """
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - max_bytes))
            data = fh.read(max_bytes)
    except OSError as exc:
        log.warning("adscore forward: cannot read the audit log %s: %s", path, exc.strerror or exc)
        return []
    syscalls: dict[str, dict[str, str]] = {}
    argvs: dict[str, tuple[str, ...]] = {}
    for raw_line in data.split(b"\n"):
        line = raw_line[:16384].decode("utf-8", "replace").split("\x1d", 1)[0]
        kind, _, rest = line.partition(" ")
        if not rest.startswith("msg=audit(") or kind not in ("type=SYSCALL", "type=EXECVE"):
            continue
        stamp, _, body = rest[len("msg=audit(") :].partition("): ")
        f = _fields(body)
        if kind == "type=SYSCALL":
            if _value(f.get("key", '""')) in keys:
                syscalls[stamp] = f
        else:
            argc = min(_int(f.get("argc")) or 0, 64)
            argvs[stamp] = tuple(_value(f[f"a{i}"]) for i in range(argc) if f"a{i}" in f)
    out = []
    for stamp, f in syscalls.items():
        seconds, _, serial = stamp.partition(":")
        try:
            when = float(seconds)
        except ValueError:
            continue
        out.append(
            AuditExec(
                time=when,
                serial=serial[:32],
                auid=_int(f.get("auid")),
                uid=_int(f.get("uid")),
                exe=_value(f.get("exe", '""')),
                argv=argvs.get(stamp, ()),
            )
        )
    return out


def _name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name[:64]
    except (KeyError, OverflowError):
        return f"uid:{uid}"


def _who(rec: AuditExec) -> str | None:
    """The login user (auid, kept across sudo and su), else the process's uid for session-less processes."""
    if rec.auid is not None and rec.auid != _UNSET_AUID:
        return _name(rec.auid)
    if rec.uid is not None:
        return _name(rec.uid)
    return None


def attribute(
    records: list[AuditExec], operation: str, event_time: float, names: tuple[str, ...], *, window: float = 120.0
) -> str | None:
    """Who ran the docker command behind one engine event, or None when the log cannot tell.

    A record counts when it was logged from ``window`` seconds before the event to 2 seconds after
    it (the CLI runs before the engine reports; ``docker save`` of a large image takes a while).
    The latest record whose argv holds the operation's verb and, when ``names`` are given, one of
    them (container id prefix or name) wins. Without such a record, the records in the window are
    used only when they all belong to one user; several users make it ambiguous: None.

    Parameters
    ----------
    records : list[AuditExec]
        From :func:`read_audit`.
    operation : str
        ``container commit``, ``container export`` or ``image save``.
    event_time : float
        The engine event's time (seconds).
    names : tuple[str, ...]
        What the CLI may have been given for the subject: container id, its 12-char prefix, its name,
        the image name.

    Returns
    -------
    str | None
        A user name (``uid:<n>`` when the host has no name for it).
    """
    near = [r for r in records if event_time - window <= r.time <= event_time + 2.0]
    verbs = _VERBS.get(operation, ())
    wanted = {n for n in names if n} | {n.removesuffix(":latest") for n in names if n}

    def mentions(rec: AuditExec) -> bool:
        args = rec.argv[1:]
        if not any(v in args for v in verbs):
            return False
        return not wanted or any(a in wanted or any(a and w.startswith(a) and len(a) >= 4 for w in wanted) for a in args)

    exact = [r for r in near if mentions(r)]
    if exact:
        return _who(max(exact, key=lambda r: r.time))
    users = {_who(r) for r in near}
    users.discard(None)
    return users.pop() if len(users) == 1 else None
