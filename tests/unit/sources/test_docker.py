"""Docker engine events: operation, action, resources, principal, time, errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from adscore.events import Event, RecordError
from adscore.sources.docker import parse


def ev(obj: dict[str, Any]) -> Event:
    out = parse(obj, "d")
    assert len(out) == 1 and isinstance(out[0], Event), out
    return out[0]


def event(
    action: str, typ: str = "container", attrs: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "Type": typ,
        "Action": action,
        "Actor": {"ID": "cid", "Attributes": attrs or {"name": "web"}},
        "scope": "local",
        "time": 1700000000,
        "timeNano": 1700000000123456789,
        **extra,
    }


@pytest.mark.parametrize(
    ("typ", "action", "semantic"),
    [
        ("container", "commit", "container.commit"),
        ("container", "export", "container.export"),
        ("image", "save", "container.save"),
        ("container", "start", None),
        ("image", "pull", None),
        ("network", "connect", None),
    ],
)
def test_actions(typ: str, action: str, semantic: str | None) -> None:
    e = ev(event(action, typ))
    assert e.operation == f"{typ} {action}"
    assert e.action == semantic
    assert (e.cloud, e.source, e.service, e.read_only, e.outcome) == (
        "docker",
        "docker",
        "docker",
        False,
        "success",
    )


def test_commit_resources() -> None:
    e = ev(event("commit", attrs={"imageID": "sha256:new", "imageRef": "evil/x:1", "comment": ""}))
    assert [r.to_dict() for r in e.resources] == [
        {"type": "container", "id": "cid", "role": "source"},
        {"type": "image", "id": "sha256:new", "role": "created"},
    ]
    # older engines: only the reference
    e = ev(event("commit", attrs={"imageRef": "evil/x:1"}))
    assert e.resources[1].to_dict() == {"type": "image", "id": "evil/x:1", "role": "created"}


def test_save_and_export_resources() -> None:
    assert [r.to_dict() for r in ev(event("save", "image")).resources] == [
        {"type": "image", "id": "cid", "role": "target"}
    ]
    assert [r.to_dict() for r in ev(event("export")).resources] == [
        {"type": "container", "id": "cid", "role": "source"}
    ]


def test_exec_suffix_is_split_into_command() -> None:
    e = ev(event("exec_start: sh -c id"))
    assert e.operation == "container exec_start"
    assert e.command == ("sh", "-c", "id")
    # a suffix on other actions is dropped from the operation, not made a command
    e = ev(event("health_status: healthy"))
    assert e.operation == "container health_status" and e.command == ()


def test_principal_is_the_host() -> None:
    assert ev(event("start")).principal.to_dict() == {
        "id": "docker-host:local",
        "type": "host",
        "name": "local",
        "account": None,
        "session": None,
        "invoked_by": None,
    }
    assert ev(event("start", host="h1")).principal.id == "docker-host:h1"
    assert ev(event("start", hostname="h2")).principal.id == "docker-host:h2"


def test_time_prefers_nanoseconds_then_seconds() -> None:
    assert ev(event("start")).time == datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=UTC)
    obj = event("start")
    del obj["timeNano"]
    assert ev(obj).time == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    obj["timeNano"] = "garbage"
    assert ev(obj).time == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


def test_old_format() -> None:
    e = ev({"status": "export", "id": "c1", "from": "ubuntu", "time": 1423339459})
    assert e.operation == "container export" and e.action == "container.export"
    assert e.resources[0].to_dict() == {"type": "container", "id": "c1", "role": "source"}
    e = ev({"status": "untag", "id": "sha256:1", "time": 1423339459})
    assert e.operation == "image untag"


def test_event_id_stable_and_distinct() -> None:
    a, b = ev(event("start")), ev(event("start"))
    c = ev(event("stop"))
    assert a.event_id == b.event_id != c.event_id


def test_kubernetes_namespace_label() -> None:
    e = ev(event("start", attrs={"io.kubernetes.pod.namespace": "payments"}))
    assert e.namespace == "payments"


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        ({"Type": "container", "Actor": {}, "time": 1}, "no Action"),
        ({"Type": "container", "Action": ": x", "time": 1}, "empty Action"),
        ({"Type": "container", "Action": "start"}, "no time"),
        ({"Type": "container", "Action": "start", "time": "soon"}, "invalid time"),
        ({"Type": "container", "Action": "start", "time": 10**30}, "invalid time"),
        (["x"], "not a Docker event"),
    ],
)
def test_errors(obj: Any, reason: str) -> None:
    out = parse(obj, "d:3")
    assert len(out) == 1 and isinstance(out[0], RecordError)
    assert reason in out[0].reason and out[0].location == "d:3" and out[0].family == "docker"


def test_wrong_types_do_not_raise() -> None:
    e = ev({"Type": 5, "Action": "start", "Actor": "nope", "time": 1, "host": ["x"]})
    assert e.operation == "container start" and e.resources == () and e.principal.id == "docker-host:local"


# --------------------------------------------------------------------------- adscore forward docker


def test_forwarded_user_becomes_the_principal_acting_through_the_host() -> None:
    e = ev(event("commit", hostname="prod-web-01", host_id="i-0abc", user="alice"))
    assert e.principal.to_dict() == {
        "id": "docker-user:prod-web-01/alice",
        "type": "user",
        "name": "alice",
        "account": None,
        "session": None,
        "invoked_by": "docker-host:prod-web-01",
    }
    assert ("docker.host_id", "i-0abc") in e.tags
    # without a user the host stays the principal
    assert ev(event("commit", hostname="prod-web-01", user=None)).principal.id == "docker-host:prod-web-01"


def test_forwarded_changes_become_bounded_tags() -> None:
    paths = [{"kind": "A", "category": "secret", "path": f"/root/.ssh/k{i}" + "x" * 600} for i in range(30)]
    changes = {"added": 30, "changed": 0, "deleted": 0, "total": 30, "sensitive": 30, "sensitive_paths": paths}
    tags = dict(ev(event("export", changes=changes)).tags)
    assert tags["docker.changes.added"] == "30" and tags["docker.changes.sensitive"] == "30"
    listed = [k for k in tags if k.startswith("docker.changes.path.")]
    assert len(listed) == 20 and all(len(tags[k]) <= 512 + len("A secret ") for k in listed)
    assert tags["docker.changes.path.0"].startswith("A secret /root/.ssh/k0")
    assert tags["docker.changes.truncated"] == "true"


@pytest.mark.parametrize(
    "changes",
    [
        "lots",
        {"added": -1, "changed": 0, "deleted": 0, "total": 0, "sensitive": 0},
        {"added": True, "changed": 0, "deleted": 0, "total": 0, "sensitive": 0},
        {"added": 1},
    ],
)
def test_unreadable_change_summaries_are_ignored(changes: Any) -> None:
    e = ev(event("commit", changes=changes))
    assert not [k for k, _ in e.tags if k.startswith("docker.changes")]


def test_hostile_change_paths_are_kept_only_when_well_formed() -> None:
    paths = [
        {"kind": "X", "category": "secret", "path": "/a"},
        {"kind": "A", "category": "other", "path": "/b"},
        {"kind": "A", "category": "secret", "path": 7},
        {"kind": ["A"], "category": "secret", "path": "/c"},  # unhashable: skipped, never a crash
        {"kind": "A", "category": {"x": 1}, "path": "/d"},
        "junk",
        {"kind": "D", "category": "backup", "path": "/backup/x\n\x1b[2J"},
    ]
    changes = {"added": 1, "changed": 0, "deleted": 1, "total": 2, "sensitive": 1, "sensitive_paths": paths}
    tags = dict(ev(event("commit", changes=changes)).tags)
    assert [v for k, v in tags.items() if k.startswith("docker.changes.path.")] == ["D backup /backup/x\n\x1b[2J"]
    assert tags["docker.changes.truncated"] == "false"


def test_changes_on_an_image_save_are_not_read() -> None:
    e = ev(event("save", typ="image", changes={"added": 1, "changed": 0, "deleted": 0, "total": 1, "sensitive": 0}))
    assert e.tags == ()
