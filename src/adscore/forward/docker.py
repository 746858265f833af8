"""``adscore forward docker``: follow a Docker engine's events and post them, signed, to the ingest endpoint.

Data flow (one process, two threads)::

    reader thread:  GET /events (unix socket, filtered to the actions the detections use)
                    -> skip what the cursor has seen -> add host, user, changes -> queue
    main thread:    queue -> batch (--batch-size / --flush-seconds / --max-batch-bytes)
                    -> spool (fsync) -> save cursor -> POST spooled batches oldest first

Delivery guarantees:

- **No gap on restart.** The cursor (last ``timeNano`` plus the keys of the events at that
  nanosecond) is saved only after the batch holding its event is in the spool; a restart asks
  the engine for ``since=<cursor>`` and skips the boundary events it already has. The engine keeps
  its last 1000 events in memory only: a forwarder stopped for longer than that many engine events,
  or a daemon restart, can still lose events (logged: the first event read is later than the cursor).
- **No gap, no duplicate on reconnect.** When the socket goes away the reader retries with backoff
  (0.5 s doubling to ``reconnect_max``) and resumes from its in-memory cursor the same way.
- **Outages lose nothing the spool holds.** A batch is on disk before it is posted and deleted on
  2xx (or 409: the endpoint already has it). 5xx, 408, 429 and network errors keep it and retry
  with backoff; any other 4xx moves it to ``rejected/`` with an ERROR log. The spool is capped
  (:mod:`adscore.forward.spool` explains why the oldest batches are dropped, loudly).
- Every POST of one batch carries the same ``webhook-id`` (the spool file's name) and a fresh
  ``webhook-timestamp``; the body is byte-identical across retries.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import queue
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from ipaddress import ip_address
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import httpx
import orjson

from adscore import __version__, actions
from adscore.errors import ConfigError
from adscore.forward.identity import AuditExec, HostIdentity, attribute, read_audit
from adscore.forward.spool import Cursor, Spool, events_in
from adscore.patterns import GlobMatcher, compile_linear

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

log = logging.getLogger("adscore.forward.docker")

API_VERSION = "adscore.dev/v1"
KIND = "DockerEventBatch"
USER_AGENT = f"adscore-forward/{__version__}"

#: Engine event ``(Type, Action)`` pairs the detections read, from :data:`adscore.actions.DOCKER`.
WANTED: frozenset[tuple[str, str]] = frozenset(
    (op.split(" ", 1)[0], op.split(" ", 1)[1]) for op in actions.DOCKER
)
#: The ``filters`` query parameter of ``GET /events`` (a JSON map of lists).
FILTERS: dict[str, list[str]] = {
    "type": sorted({t for t, _ in WANTED}),
    "event": sorted({a for _, a in WANTED}),
}
#: Operations whose container's filesystem changes are summarized.
CHANGES_FOR = frozenset({("container", "commit"), ("container", "export")})

MAX_LINE_BYTES = 1_048_576
"""A longer line of the event stream is skipped (logged and counted); no engine event is near it."""
MAX_EVENT_BYTES = 65_536
"""An event larger than this (huge container labels) keeps only the attributes in :data:`_KEEP_ATTRS`."""
_KEEP_ATTRS = ("name", "image", "imageID", "imageRef", "comment", "exitCode")
MAX_CHANGES_BYTES = 32 * 1_048_576
"""Most of a ``/containers/{id}/changes`` answer read; a larger one gives counts of what was read."""
MAX_CHANGE_PATHS = 20
MAX_PATH_CHARS = 512

#: Data, backup and secret locations: a commit or export that changed one of these captured state
#: worth a closer look (``fnmatch`` globs; ``*`` also crosses ``/``).
SENSITIVE_GLOBS: dict[str, tuple[str, ...]] = {
    "secret": (
        "/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/sudoers.d/*", "/etc/ssh/*_key",
        "/root/.ssh/*", "/home/*/.ssh/*", "/run/secrets/*", "*secret*", "*.pem", "*.key", "*.p12", "*.pfx",
        "*/id_rsa*", "*/id_ecdsa*", "*/id_ed25519*", "*/.aws/credentials", "*/.kube/config",
        "*/.docker/config.json", "*/.git-credentials", "*/.pgpass", "*/.netrc",
    ),
    "backup": ("/backup", "/backup/*", "/backups", "/backups/*", "*.bak", "*.dump", "*.tar", "*.tar.gz", "*.tgz"),
    "data": (
        "/data", "/data/*", "/srv/*", "/var/lib/*", "/root", "/root/*", "*.sql", "*.sql.gz", "*.sqlite",
        "*.sqlite3", "*.db",
    ),
}
#: Package-manager state under /var/lib that every image build touches: not data.
_NOT_DATA = GlobMatcher(("/var/lib/apt/*", "/var/lib/dpkg/*", "/var/lib/rpm/*", "/var/lib/dnf/*",
                         "/var/lib/yum/*", "/var/lib/apk/*", "/var/lib/apt", "/var/lib/dpkg"))
_MATCHERS = {name: GlobMatcher(globs) for name, globs in SENSITIVE_GLOBS.items()}
#: One pass for the common answer (not sensitive): the union of every category's globs.
_ANY = GlobMatcher(tuple(g for globs in SENSITIVE_GLOBS.values() for g in globs))
_KINDS = {0: "C", 1: "A", 2: "D"}


def sensitive_category(path: str) -> str | None:
    """``secret``, ``backup`` or ``data`` when ``path`` is in such a location, else None.

    Example
    -------
    >>> sensitive_category("/home/ops/.ssh/id_ed25519"), sensitive_category("/var/lib/apt/lists/x")
    ('secret', None)
    """
    if not _ANY.match(path):
        return None
    for name, matcher in _MATCHERS.items():
        if matcher.match(path):
            if name == "data" and _NOT_DATA.match(path):
                continue
            return name
    return None


def summarize_changes(changes: Any, *, truncated: bool = False, max_paths: int = MAX_CHANGE_PATHS) -> dict[str, Any]:
    """The bounded ``changes`` summary of an Engine API ``/containers/{id}/changes`` answer.

    Parameters
    ----------
    changes : Any
        The decoded answer: a list of ``{"Path": str, "Kind": 0|1|2}`` (0 changed, 1 added, 2 deleted).
    truncated : bool
        The answer was cut at :data:`MAX_CHANGES_BYTES` (counts cover what was read).

    Returns
    -------
    dict
        ``added``, ``changed``, ``deleted``, ``total``, ``sensitive`` (count of paths in data, backup
        and secret locations), ``sensitive_paths`` (the first ``max_paths``: ``kind`` A/C/D,
        ``category``, ``path`` capped at 512 characters) and ``truncated``.

    Example
    -------
    >>> s = summarize_changes([{"Path": "/etc/shadow", "Kind": 0}, {"Path": "/tmp/x", "Kind": 1}])
    >>> s["added"], s["changed"], s["sensitive_paths"]
    (1, 1, [{'kind': 'C', 'category': 'secret', 'path': '/etc/shadow'}])
    """
    counts = {"A": 0, "C": 0, "D": 0}
    sensitive = 0
    paths: list[dict[str, str]] = []
    items = changes if isinstance(changes, list) else []
    for item in items:
        if not isinstance(item, dict):
            continue
        raw_kind = item.get("Kind")
        kind = _KINDS.get(raw_kind) if isinstance(raw_kind, int) and not isinstance(raw_kind, bool) else None
        path = item.get("Path")
        if kind is None or not isinstance(path, str):
            continue
        counts[kind] += 1
        if len(paths) >= max_paths:  # only counting now: the category is not needed
            if _ANY.match(path) and (not _NOT_DATA.match(path) or sensitive_category(path) is not None):
                sensitive += 1
            continue
        category = sensitive_category(path)
        if category is None:
            continue
        sensitive += 1
        paths.append({"kind": kind, "category": category, "path": path[:MAX_PATH_CHARS]})
    return {
        "added": counts["A"],
        "changed": counts["C"],
        "deleted": counts["D"],
        "total": sum(counts.values()),
        "sensitive": sensitive,
        "sensitive_paths": paths,
        "truncated": truncated or len(paths) < sensitive,
    }


def event_key(obj: dict[str, Any]) -> str:
    """A stable key of one engine event as the engine sent it (boundary deduplication)."""
    return hashlib.sha256(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def event_time_nano(obj: dict[str, Any]) -> int | None:
    """``timeNano``, else ``time`` in nanoseconds, else None."""
    tn = obj.get("timeNano")
    if isinstance(tn, int) and not isinstance(tn, bool) and tn > 0:
        return tn
    t = obj.get("time")
    if isinstance(t, int) and not isinstance(t, bool) and t > 0:
        return t * 1_000_000_000
    return None


@dataclass(frozen=True)
class Oversized:
    """A stream line over :data:`MAX_LINE_BYTES`: its first and last bytes only."""

    head: bytes
    tail: bytes


_HEAD_BYTES = 4096
_TAIL_BYTES = 512


def _bounded_lines(chunks: Iterator[bytes], limit: int) -> Iterator[bytes | Oversized]:
    """Split a byte stream into lines; a line longer than ``limit`` comes as :class:`Oversized`."""
    buf = bytearray()
    tail = bytearray()
    head = b""
    over = False
    for chunk in chunks:
        start = 0
        while True:
            nl = chunk.find(b"\n", start)
            piece = chunk[start:] if nl < 0 else chunk[start:nl]
            if over:
                tail += piece
                del tail[:-_TAIL_BYTES]
            else:
                buf += piece
                if len(buf) > limit:
                    over, head, tail = True, bytes(buf[:_HEAD_BYTES]), bytearray(buf[-_TAIL_BYTES:])
                    buf.clear()
            if nl < 0:
                break
            if over:
                yield Oversized(head, bytes(tail))
                over = False
                tail.clear()
            elif buf.strip():
                yield bytes(buf)
            buf.clear()
            start = nl + 1
    if over:
        yield Oversized(head, bytes(tail))
    elif buf.strip():
        yield bytes(buf)


def salvage(line: Oversized) -> dict[str, Any] | None:
    """The event behind an oversized line (huge labels), from its first and last bytes, or None.

    The engine encodes ``Type``, ``Action`` and ``Actor.ID`` before the attributes and ``time`` /
    ``timeNano`` after them (Go's field order), so a snapshot event cannot be hidden by inflating its
    container's labels: it arrives without attributes and with ``"truncated": true``.
    """
    head = line.head.decode("utf-8", "replace")
    tail = line.tail.decode("utf-8", "replace")
    typ = compile_linear(r'"Type"\s*:\s*"([a-z]{1,32})"').search(head)
    action = compile_linear(r'"Action"\s*:\s*"([^"\\]{1,256})"').search(head)
    actor = compile_linear(r'"ID"\s*:\s*"([^"\\]{1,256})"').search(head)
    tn = compile_linear(r'"timeNano"\s*:\s*([0-9]{1,20})').search(tail)
    t = compile_linear(r'"time"\s*:\s*([0-9]{1,12})').search(tail)
    if typ is None or action is None or (tn is None and t is None):
        return None
    time_nano = int(tn.group(1)) if tn is not None else int(t.group(1)) * 1_000_000_000  # type: ignore[union-attr]
    return {
        "Type": typ.group(1),
        "Action": action.group(1),
        "Actor": {"ID": actor.group(1) if actor is not None else "", "Attributes": {}},
        "scope": "local",
        "time": time_nano // 1_000_000_000,
        "timeNano": time_nano,
        "truncated": True,
    }


def check_endpoint(url: str) -> str:
    """The endpoint URL when it is HTTPS, or plain HTTP to a loopback address; else ConfigError."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return url
    if parts.scheme == "http" and host:
        loopback = host == "localhost"
        with contextlib.suppress(ValueError):
            loopback = loopback or ip_address(host).is_loopback
        if loopback:
            return url
        raise ConfigError("--endpoint", "plain http is allowed to a loopback address only; use https")
    raise ConfigError("--endpoint", "an https:// URL of the adscore ingest endpoint")


def check_secret(secret: str) -> str:
    """The signing secret when it is ``whsec_<base64>`` (the Standard Webhooks form); else ConfigError."""
    from standardwebhooks.webhooks import Webhook

    secret = secret.strip()
    if not secret.startswith("whsec_"):
        raise ConfigError("ADSCORE_FORWARD_SECRET", "the signing secret must be whsec_ followed by base64")
    try:
        Webhook(secret)
    except Exception as exc:  # binascii.Error, EmptyWebhookSecretError
        raise ConfigError("ADSCORE_FORWARD_SECRET", "the signing secret must be whsec_ followed by base64") from exc
    return secret


@dataclass(frozen=True)
class ForwardOptions:
    """What ``adscore forward docker`` was told (the CLI builds it; tests build it directly)."""

    endpoint: str
    secret: str = field(repr=False)
    spool_dir: Path
    socket_path: str = "/var/run/docker.sock"
    batch_size: int = 100
    flush_seconds: float = 5.0
    max_batch_bytes: int = 1_048_576
    spool_max_batches: int = 1000
    spool_max_bytes: int = 64 * 1_048_576
    audit_log: Path | None = None
    audit_keys: frozenset[str] = frozenset({"docker", "docker-socket"})
    audit_window: float = 120.0
    post_timeout: float = 10.0
    backoff_max: float = 60.0
    reconnect_max: float = 30.0

    def __post_init__(self) -> None:
        check_endpoint(self.endpoint)
        check_secret(self.secret)
        for name, value, low, high in (
            ("--batch-size", self.batch_size, 1, 10_000),
            ("--flush-seconds", self.flush_seconds, 0.05, 3600),
            ("--max-batch-bytes", self.max_batch_bytes, 4096, 100 * 1_048_576),
            ("--spool-max-batches", self.spool_max_batches, 1, 10_000_000),
            ("--spool-max-bytes", self.spool_max_bytes, 65_536, 1 << 40),
        ):
            if not low <= value <= high:
                raise ConfigError(name, f"must be between {low} and {high} (got {value})")


@dataclass
class ForwardStats:
    """Counts of one run (logged at exit; ``--once`` prints them as JSON)."""

    events_forwarded: int = 0
    batches_spooled: int = 0
    batches_delivered: int = 0
    batches_already_received: int = 0
    batches_rejected: int = 0
    batches_dropped: int = 0
    events_dropped: int = 0
    post_failures: int = 0
    duplicates_skipped: int = 0
    unreadable_events: int = 0
    reconnects: int = 0
    changes_failed: int = 0
    oversized_events: int = 0
    pending_batches: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class EngineClient:
    """The Docker Engine API over its unix socket (httpx's UDS transport)."""

    def __init__(self, socket_path: str, *, timeout: float = 10.0) -> None:
        self._client = httpx.Client(
            transport=httpx.HTTPTransport(uds=socket_path),
            base_url="http://docker",
            timeout=timeout,
            headers={"User-Agent": USER_AGENT},
        )
        self._stream_sock: socket.socket | None = None
        self._interrupted = False

    def close(self) -> None:
        self.interrupt()
        self._client.close()

    def interrupt(self) -> None:
        """Wake a reader blocked on the event stream (its socket is shut down); no stream opens after it."""
        self._interrupted = True
        sock = self._stream_sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def events(
        self, *, since: str | None, until: str | None, on_connect: Callable[[], None], on_oversize: Callable[[], None]
    ) -> Iterator[Any]:
        """Decoded events of ``GET /events`` (filtered); ends when the engine closes the stream.

        Raises httpx errors (socket missing, refused, cut) and ``ValueError`` for a non-200 answer.
        """
        params = {"filters": orjson.dumps(FILTERS).decode()}
        if since is not None:
            params["since"] = since
        if until is not None:
            params["until"] = until
        timeout = httpx.Timeout(10.0, read=None)  # the stream may stay quiet for hours
        with self._client.stream("GET", "/events", params=params, timeout=timeout) as resp:
            if resp.status_code != 200:
                raise ValueError(f"GET /events answered {resp.status_code}: {resp.read()[:200]!r}")
            stream = resp.extensions.get("network_stream")
            self._stream_sock = stream.get_extra_info("socket") if stream is not None else None
            if self._interrupted:
                return
            on_connect()
            try:
                for line in _bounded_lines(resp.iter_raw(), MAX_LINE_BYTES):
                    if isinstance(line, Oversized):
                        on_oversize()
                        yield salvage(line)
                        continue
                    try:
                        yield orjson.loads(line)
                    except orjson.JSONDecodeError:
                        yield None
            finally:
                self._stream_sock = None

    def changes(self, container_id: str) -> dict[str, Any] | None:
        """The summarized filesystem changes of a container, or None when the engine cannot say."""
        url = f"/containers/{quote(container_id[:256], safe='')}/changes"
        with self._client.stream("GET", url) as resp:
            if resp.status_code != 200:
                log.warning("adscore forward: %s answered %d", url[:300], resp.status_code)
                return None
            data = bytearray()
            truncated = False
            for chunk in resp.iter_bytes():
                data += chunk
                if len(data) > MAX_CHANGES_BYTES:
                    truncated = True
                    break
        if truncated:
            # keep the complete entries read so far: cut after the last "}," and close the list
            cut = bytes(data[: MAX_CHANGES_BYTES]).rfind(b"},")
            data = bytearray(data[: cut + 1] + b"]") if cut > 0 else bytearray(b"[]")
        try:
            decoded = orjson.loads(bytes(data))
        except orjson.JSONDecodeError:
            log.warning("adscore forward: %s answered unreadable JSON", url[:300])
            return None
        return summarize_changes(decoded, truncated=truncated)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _trim(obj: dict[str, Any]) -> dict[str, Any]:
    """An oversized event with only the attributes the parser and the detections read."""
    actor = _dict(obj.get("Actor"))
    attrs = _dict(actor.get("Attributes"))
    keep = {k: v[:1024] for k, v in attrs.items() if isinstance(v, str) and (k in _KEEP_ATTRS or k.startswith("io.kubernetes.pod."))}
    out = {k: v for k, v in obj.items() if k != "Actor" and (not isinstance(v, str) or len(v) <= 4096)}
    out["Actor"] = {"ID": str(actor.get("ID", ""))[:1024], "Attributes": keep}
    out["truncated"] = True
    return out


class DockerForwarder:
    """Follows the engine, spools and posts (see the module text).

    Parameters
    ----------
    options : ForwardOptions
    host : HostIdentity
        Resolved once by the caller (:func:`adscore.forward.identity.host_identity`).
    """

    def __init__(self, options: ForwardOptions, host: HostIdentity) -> None:
        self.options = options
        self.host = host
        self.stats = ForwardStats()
        self.spool = Spool(options.spool_dir, max_batches=options.spool_max_batches, max_bytes=options.spool_max_bytes)
        self._engine = EngineClient(options.socket_path)
        # trust_env: HTTPS_PROXY and SSL_CERT_FILE apply to the endpoint (the metadata probes never use a proxy)
        self._http = httpx.Client(timeout=options.post_timeout, headers={"User-Agent": USER_AGENT})
        # bounded: a stalled main thread holds the reader back (the engine keeps its buffer meanwhile)
        self._queue: queue.Queue[tuple[dict[str, Any], Cursor]] = queue.Queue(maxsize=100_000)
        self._stop = threading.Event()
        self._read_cursor: Cursor | None = self.spool.load_cursor()
        self._next_send = 0.0
        self._send_delay = 0.0
        self._reader: threading.Thread | None = None
        self._delay = 0.5
        self.read_error: str | None = None
        self._audit_cache: tuple[tuple[int, ...], list[AuditExec]] | None = None
        self.connected = threading.Event()

    # ------------------------------------------------------------------ lifecycle
    def stop(self) -> None:
        """Ask :meth:`run` to finish: the pending batch is spooled and one delivery pass is made."""
        self._stop.set()
        self._engine.interrupt()

    def close(self) -> None:
        self.stop()
        if self._reader is not None:
            self._reader.join(timeout=10)
        self._engine.close()
        self._http.close()

    def run(self, *, once: bool = False) -> ForwardStats:
        """Forward until :meth:`stop` (or, with ``once``, until the engine's buffered events are posted).

        Returns
        -------
        ForwardStats
            The run's counts; ``pending_batches`` is what is still spooled at the end.
        """
        self._deliver(force=True)  # what an earlier run left in the spool goes first
        if once:
            try:
                self._read(until=f"{time.time():.9f}")
            except (httpx.HTTPError, OSError, ValueError) as exc:
                self.read_error = f"{type(exc).__name__}: {str(exc)[:200]}"
                log.error("adscore forward: cannot read events from %s: %s", self.options.socket_path, self.read_error)
            self._collect(drain_only=True)
            self._deliver(force=True)
        else:
            self._reader = threading.Thread(target=self._follow, name="adscore-forward-reader", daemon=True)
            self._reader.start()
            self._collect(drain_only=False)
            self._reader.join(timeout=10)
            self._collect(drain_only=True)
            self._deliver(force=True)
        self.stats.pending_batches = len(self.spool.pending())
        self.stats.batches_dropped = self.spool.dropped_batches
        self.stats.events_dropped = self.spool.dropped_events
        return self.stats

    # ------------------------------------------------------------------ reading
    def _since(self) -> str:
        cursor = self._read_cursor
        return cursor.since() if cursor is not None else "0"  # first start: all the engine still holds

    def _oversize(self) -> None:
        self.stats.oversized_events += 1
        log.warning("adscore forward: an engine event over %d bytes is forwarded without its attributes", MAX_LINE_BYTES)

    def _read(self, *, until: str | None) -> None:
        """One connection: read events until the engine ends the stream (raises on socket errors)."""
        for obj in self._engine.events(
            since=self._since(), until=until, on_connect=self._on_connect, on_oversize=self._oversize
        ):
            if self._stop.is_set() and until is None:
                return
            self._admit(obj)

    def _on_connect(self) -> None:
        self._delay = 0.5
        self.connected.set()

    def _follow(self) -> None:
        self._delay = 0.5
        while not self._stop.is_set():
            try:
                self._read(until=None)
                reason = "the engine closed the event stream"
            except (httpx.HTTPError, OSError, ValueError) as exc:
                reason = f"{type(exc).__name__}: {str(exc)[:200]}"
            self.connected.clear()
            if self._stop.is_set():
                return
            self.stats.reconnects += 1
            log.warning("adscore forward: Docker socket %s: %s; reconnecting in %.1fs",
                        self.options.socket_path, reason, self._delay)
            self._stop.wait(self._delay)
            self._delay = min(self._delay * 2, self.options.reconnect_max)

    def _admit(self, obj: Any) -> None:
        if not isinstance(obj, dict):
            self.stats.unreadable_events += 1
            log.error("adscore forward: skipped an engine event that is not a JSON object")
            return
        tn = event_time_nano(obj)
        etype, action = obj.get("Type"), obj.get("Action")
        if tn is None or (etype, action) not in WANTED:
            if tn is None:
                self.stats.unreadable_events += 1
                log.error("adscore forward: skipped an engine event with no time")
            return
        key = event_key(obj)
        cursor = self._read_cursor
        if cursor is not None and not cursor.admits(tn, key):
            self.stats.duplicates_skipped += 1
            return
        cursor = cursor.advance(tn, key) if cursor is not None else Cursor(tn, [key])
        self._read_cursor = cursor
        self._queue.put((self._enrich(obj), cursor))

    def _enrich(self, obj: dict[str, Any]) -> dict[str, Any]:
        event = dict(obj) if len(orjson.dumps(obj)) <= MAX_EVENT_BYTES else _trim(obj)
        event["hostname"] = self.host.hostname
        event["host_id"] = self.host.instance_id
        actor = _dict(event.get("Actor"))
        actor_id = str(actor.get("ID") or event.get("id") or "")[:256]
        attrs = _dict(actor.get("Attributes"))
        pair = (event.get("Type"), event.get("Action"))
        if pair in CHANGES_FOR and actor_id:
            try:
                summary = self._engine.changes(actor_id)
            except (httpx.HTTPError, OSError) as exc:
                summary = None
                log.warning("adscore forward: cannot read the changes of %s: %s", actor_id[:64], type(exc).__name__)
            if summary is None:
                self.stats.changes_failed += 1
            else:
                event["changes"] = summary
        if self.options.audit_log is not None:
            records = self._audit_records(self.options.audit_log)
            names = (actor_id, actor_id.removeprefix("sha256:")[:12], str(attrs.get("name", ""))[:256])
            user = attribute(
                records, f"{pair[0]} {pair[1]}", (event_time_nano(obj) or 0) / 1e9, names,
                window=self.options.audit_window,
            )
            if user is not None:
                event["user"] = user
        return event

    def _audit_records(self, path: Path) -> list[AuditExec]:
        """The audit log's docker records, re-read only when the file changed (a burst reads it once)."""
        try:
            st = path.stat()
            stamp: tuple[int, ...] = (st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            stamp = ()
        if stamp and self._audit_cache is not None and self._audit_cache[0] == stamp:
            return self._audit_cache[1]
        records = read_audit(path, self.options.audit_keys)
        self._audit_cache = (stamp, records) if stamp else None
        return records

    # ------------------------------------------------------------------ batching
    def _collect(self, *, drain_only: bool) -> None:
        batch: list[bytes] = []
        size = 0
        cursor: Cursor | None = None
        first = 0.0
        event: dict[str, Any] | None
        cur: Cursor | None
        while True:
            if drain_only:
                try:
                    event, cur = self._queue.get_nowait()
                except queue.Empty:
                    break
            else:
                if self._stop.is_set() and self._queue.empty() and (self._reader is None or not self._reader.is_alive()):
                    break
                deadline = first + self.options.flush_seconds if batch else time.monotonic() + 0.5
                wait = max(0.01, min(deadline, self._next_send if self._next_send else deadline) - time.monotonic())
                try:
                    event, cur = self._queue.get(timeout=min(wait, 0.5))
                except queue.Empty:
                    event = None
                    cur = None
            if event is not None:
                data = orjson.dumps(event)
                if batch and size + len(data) + 1 > self.options.max_batch_bytes - 512:
                    self._seal(batch, cursor)
                    batch, size = [], 0
                if not batch:
                    first = time.monotonic()
                batch.append(data)
                size += len(data) + 1
                cursor = cur
            if batch and (len(batch) >= self.options.batch_size or time.monotonic() - first >= self.options.flush_seconds):
                self._seal(batch, cursor)
                batch, size = [], 0
            if not drain_only and self._next_send and time.monotonic() >= self._next_send:
                self._deliver()
        if batch:
            self._seal(batch, cursor)

    def _body(self, events: list[bytes]) -> bytes:
        head = orjson.dumps({"apiVersion": API_VERSION, "kind": KIND, "host": self.host.to_dict()})
        return head[:-1] + b',"events":[' + b",".join(events) + b"]}"

    def _seal(self, events: list[bytes], cursor: Cursor | None) -> None:
        self.spool.put(self._body(events), len(events))
        self.stats.batches_spooled += 1
        if cursor is not None:
            self.spool.save_cursor(cursor)
        if self._send_delay == 0.0:
            self._next_send = time.monotonic()  # not backing off: post now

    # ------------------------------------------------------------------ posting
    def _deliver(self, *, force: bool = False) -> None:
        """Post spooled batches oldest first, until one fails (then back off)."""
        if not force and time.monotonic() < self._next_send:
            return
        self._next_send = 0.0
        for path in self.spool.pending():
            outcome = self._post(path)
            if outcome == "retry":
                self.stats.post_failures += 1
                self._send_delay = min(max(self._send_delay * 2, 0.5), self.options.backoff_max)
                self._next_send = time.monotonic() + self._send_delay
                return
        self._send_delay = 0.0

    def _post(self, path: Path) -> str:
        from adscore.sinks.webhook import standard_headers

        try:
            body = path.read_bytes()
        except FileNotFoundError:  # dropped by the cap meanwhile
            return "gone"
        headers = standard_headers(self.options.secret, path.stem, int(time.time()), body)
        headers["Content-Type"] = "application/json"
        try:
            resp = self._http.post(self.options.endpoint, content=body, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("adscore forward: posting batch %s failed: %s (will retry)", path.stem, type(exc).__name__)
            return "retry"
        status = resp.status_code
        events = events_in(path)
        if 200 <= status < 300 or status == 409:
            self.spool.delivered(path)
            if status == 409:
                self.stats.batches_already_received += 1
            else:
                self.stats.batches_delivered += 1
            self.stats.events_forwarded += events
            return "delivered"
        if status in (408, 429) or status >= 500 or status < 200:
            log.warning("adscore forward: the endpoint answered %d to batch %s (will retry)", status, path.stem)
            return "retry"
        self.spool.reject(path, f"HTTP {status}: {resp.text[:200]!r}")
        self.stats.batches_rejected += 1
        return "rejected"
