"""Host identity for ``adscore forward docker``: instance metadata services (a loopback stand-in for
each cloud's documented protocol) and the auditd lookup of who ran docker."""

from __future__ import annotations

import os
import pwd
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

from adscore.forward.identity import attribute, cloud_instance, host_identity, read_audit

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


class Metadata:
    """Answers like one cloud's metadata service: ``aws`` (IMDSv2 only), ``azure``, ``gcp`` or ``none``."""

    def __init__(self, cloud: str) -> None:
        self.cloud = cloud
        self.seen: list[tuple[str, str, dict[str, str]]] = []

    def answer(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        self.seen.append((method, path, headers))
        if self.cloud == "aws":
            if method == "PUT" and path == "/latest/api/token" and headers.get("x-aws-ec2-metadata-token-ttl-seconds"):
                return 200, {}, b"AQAEAtoken=="
            if path == "/latest/meta-data/instance-id" and headers.get("x-aws-ec2-metadata-token") == "AQAEAtoken==":
                return 200, {}, b"i-0abc1234def567890"
            return 401, {}, b""
        if self.cloud == "azure" and path.startswith("/metadata/instance/compute/vmId?") and headers.get("metadata") == "true":
            return 200, {}, b"02aab8a4-74ef-476e-8182-f6d2ba4166a6"
        if self.cloud == "gcp" and path == "/computeMetadata/v1/instance/id" and headers.get("metadata-flavor") == "Google":
            return 200, {"Metadata-Flavor": "Google"}, b"4520031799277581759"
        if self.cloud == "hostile":
            return 200, {"Metadata-Flavor": "Google"}, b"i-0abc\n\x1b[2J" + b"x" * 300
        return 404, {}, b""


@pytest.fixture
def metadata(request: pytest.FixtureRequest) -> Iterator[tuple[str, Metadata]]:
    md = Metadata(request.param)

    class Handler(BaseHTTPRequestHandler):
        def _do(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, extra, body = md.answer(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
            self.send_response(status)
            for k, v in extra.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PUT = _do

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", md
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ("aws", ("aws", "i-0abc1234def567890")),
        ("azure", ("azure", "02aab8a4-74ef-476e-8182-f6d2ba4166a6")),
        ("gcp", ("gcp", "4520031799277581759")),
        ("none", None),
        ("hostile", None),
    ],
    indirect=["metadata"],
)
def test_instance_id_from_each_clouds_metadata_service(metadata: tuple[str, Metadata], expected: Any) -> None:
    base, md = metadata
    assert cloud_instance(base, timeout=2) == expected
    if expected and expected[0] == "aws":  # IMDSv2: a token first, then the id with it
        assert [(m, p) for m, p, _ in md.seen[:2]] == [("PUT", "/latest/api/token"), ("GET", "/latest/meta-data/instance-id")]


def test_no_metadata_service_is_fast_and_optional() -> None:
    # a closed loopback port: refused at once
    assert cloud_instance("http://127.0.0.1:9", timeout=0.3) is None
    ident = host_identity(metadata=False)
    assert ident.instance_id is None and ident.cloud is None and ident.hostname


ME = os.getuid()
MY_NAME = pwd.getpwuid(ME).pw_name
# Raw auditd records as the kernel and auditd write them for the rule `-w /usr/bin/docker -p x -k docker`,
# the second in log_format=ENRICHED (interpreted fields after the 0x1d separator), hex argv when it holds a space.
AUDIT = f"""\
type=SYSCALL msg=audit(1773656090.101:8800): arch=c000003e syscall=59 success=yes exit=0 a0=55d0c6f3a0 a1=55d0c6f3c0 a2=55d0c6e2a0 a3=8 items=2 ppid=20100 pid=20101 auid=4242 uid=4242 gid=4242 euid=4242 suid=4242 fsuid=4242 egid=4242 sgid=4242 fsgid=4242 tty=pts2 ses=9 comm="docker" exe="/usr/bin/docker" subj=unconfined key="docker"
type=EXECVE msg=audit(1773656090.101:8800): argc=2 a0="docker" a1="ps"
type=PROCTITLE msg=audit(1773656090.101:8800): proctitle=646F636B6572007073
type=SYSCALL msg=audit(1773656099.512:8812): arch=c000003e syscall=59 success=yes exit=0 a0=55d0c6f3a0 a1=55d0c6f3c0 a2=55d0c6e2a0 a3=8 items=2 ppid=20211 pid=20388 auid={ME} uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts1 ses=7 comm="docker" exe="/usr/bin/docker" subj=unconfined key="docker"\x1dARCH=x86_64 SYSCALL=execve AUID="{MY_NAME}" UID="root"
type=EXECVE msg=audit(1773656099.512:8812): argc=4 a0="docker" a1="commit" a2="billing-db" a3="snapshot-test"
type=CWD msg=audit(1773656099.512:8812): cwd="/root"
type=SYSCALL msg=audit(1773656140.000:8830): arch=c000003e syscall=59 success=yes exit=0 items=2 ppid=20211 pid=20400 auid={ME} uid=0 gid=0 euid=0 comm="docker" exe="/usr/bin/docker" key="docker"
type=EXECVE msg=audit(1773656140.000:8830): argc=6 a0="docker" a1="image" a2="save" a3="-o" a4=2F746D702F6D7920696D6167652E746172 a5="snapshot-test"
type=SYSCALL msg=audit(1773656141.000:8831): arch=c000003e syscall=257 success=yes exit=3 items=1 ppid=1 pid=900 auid=4294967295 uid=0 comm="sshd" exe="/usr/sbin/sshd" key="logins"
"""


def test_audit_lookup_names_who_ran_the_docker_command(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text(AUDIT)
    records = read_audit(log, frozenset({"docker"}))
    assert [r.serial for r in records] == ["8800", "8812", "8830"]  # the sshd record has another key
    assert records[2].argv == ("docker", "image", "save", "-o", "/tmp/my image.tar", "snapshot-test")  # hex decoded
    # the commit: two users ran docker in the window, the argv names the container: the login uid wins
    names = ("4f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0", "4f1e2d3c4b5a", "billing-db")
    assert attribute(records, "container commit", 1773656100.0, names) == MY_NAME
    # the save: `docker image save -o ... snapshot-test` names the image (its tag defaults to latest)
    image = ("sha256:9b1f3c5e7a9d2b4f6e8a0c2e4a6c8e0a2c4e6a8c0e2a4c6e8a0c2e4a6c8e0a2c", "9b1f3c5e7a9d", "snapshot-test:latest")
    assert attribute(records, "image save", 1773656160.0, image) == MY_NAME
    # an export nobody's argv mentions, with two users in the window: ambiguous, no attribution
    assert attribute(records, "container export", 1773656100.0, names) is None
    # nothing in the window
    assert attribute(records, "container commit", 1773659999.0, names) is None
    # only one user in the window and no argv match: that user (time only)
    assert attribute(records[1:], "container export", 1773656100.0, names) == MY_NAME


def test_audit_lookup_is_bounded_and_tolerates_a_missing_file(tmp_path: Path) -> None:
    assert read_audit(tmp_path / "absent.log", frozenset({"docker"})) == []
    big = tmp_path / "audit.log"
    big.write_text("type=USER_LOGIN msg=audit(1.0:1): junk\n" * 50_000 + AUDIT)
    assert len(read_audit(big, frozenset({"docker"}), max_bytes=len(AUDIT) + 10)) == 3
